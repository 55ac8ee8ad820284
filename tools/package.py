"""``regzoo package`` and ``regzoo fetch``: bundles as MONAI model-zoo archives, and getting them back safely.

``package`` builds ``<out>/<name>_v<version>.zip`` in the model-zoo structure::

    <name>/configs/...  <name>/docs/README.md  <name>/LICENSE  <name>/large_files.yml
    <name>/common/      (a copy of regzoo's ``common`` package: the bundle runs where this repository is absent;
                         MONAI puts the bundle folder on ``sys.path``, and running from inside it finds it too)

The trained weights are published beside the zip as ``<name>_v<version>_model.pt`` and listed in
``large_files.yml`` (path ``models/model.pt``, URL, md5), as the model zoo does for large files:
``python -m monai.bundle download_large_files --bundle_path <name>`` downloads and checks them. ``model_info.json``
in ``<out>`` indexes every packaged version (``{"<name>_v<version>": {"checksum": md5 of the zip, "source": URL}}``),
the model zoo's index format.

``fetch`` reads such an index, downloads the zip (any URL ``urllib`` opens, ``file://`` included) with MONAI's
downloader, which refuses a file whose md5 differs from the index, extracts it, then fetches and checks the
large files: a corrupted archive or a wrong hash stops with a message naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib

from .register import find_bundle

__all__ = ["package", "fetch"]

_COMMON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "common")
_BUNDLE_FILES = ("configs", "docs", "LICENSE")


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_weights(folder: str, checkpoint: str) -> None:
    """Refuse weights that do not fit the bundle's inference network (another bundle's, a damaged file)."""
    from monai.bundle import ConfigParser

    from common.engines import load_weights

    parser = ConfigParser()
    parser.read_config(os.path.join(folder, "configs", "inference.json"))
    parser.update({"bundle_root": folder})
    load_weights(parser.get_parsed_content("network_def"), checkpoint)


def package(
    bundle: str, out: str = "dist", checkpoint: str | None = None, base_url: str | None = None, overwrite: bool = False
) -> str:
    """Build the model-zoo archive of ``bundle`` in ``out`` and add it to ``out/model_info.json``.

    Args:
        bundle: bundle name (``voxelmorph``, ``midir``, ...).
        out: output folder (created).
        checkpoint: trained weights (default: the bundle's ``models/model.pt``); checked against the network.
        base_url: where ``out``'s files will be published (default: ``out`` itself as a ``file://`` URL), used in
            ``large_files.yml`` and the index.
        overwrite: replace an existing archive of the same version.
    Returns the path of the zip.
    """
    folder = find_bundle(bundle)
    with open(os.path.join(folder, "configs", "metadata.json"), encoding="utf-8") as f:
        meta = json.load(f)
    name, version = meta.get("name", bundle), meta["version"]
    checkpoint = checkpoint or os.path.join(folder, "models", "model.pt")
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no trained weights to package (train the bundle or pass --checkpoint)")
    _check_weights(folder, checkpoint)
    os.makedirs(out, exist_ok=True)
    stem = f"{name}_v{version}"
    archive, weights = os.path.join(out, f"{stem}.zip"), os.path.join(out, f"{stem}_model.pt")
    if not overwrite and (os.path.exists(archive) or os.path.exists(weights)):
        raise FileExistsError(f"{archive}: exists; refusing to overwrite it (pass --overwrite to replace)")
    base_url = (base_url or "file://" + os.path.abspath(out)).rstrip("/")

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, name)
        os.makedirs(root)
        for item in _BUNDLE_FILES:
            source = os.path.join(folder, item)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(root, item))
            else:
                shutil.copy2(source, os.path.join(root, item))
        shutil.copytree(_COMMON, os.path.join(root, "common"), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        md5 = _md5(checkpoint)
        with open(os.path.join(root, "large_files.yml"), "w", encoding="utf-8") as f:
            f.write(
                "large_files:\n"
                '  - path: "models/model.pt"\n'
                f'    url: "{base_url}/{stem}_model.pt"\n'
                f'    hash_val: "{md5}"\n'
                '    hash_type: "md5"\n'
            )
        partial = archive + ".partial"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
            for directory, _, files in sorted(os.walk(root)):
                for file in sorted(files):
                    path = os.path.join(directory, file)
                    z.write(path, os.path.relpath(path, tmp))
        shutil.copyfile(checkpoint, weights + ".partial")
        os.replace(weights + ".partial", weights)
        os.replace(partial, archive)

    index_path = os.path.join(out, "model_info.json")
    index = {}
    if os.path.exists(index_path):
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    index[stem] = {"checksum": _md5(archive), "source": f"{base_url}/{stem}.zip"}
    with open(index_path, "w", encoding="utf-8") as f:
        json.dump(index, f, indent=4, sort_keys=True)
    print(f"{archive} (md5 {index[stem]['checksum']}), weights {weights}, index {index_path}")
    return archive


def fetch(name: str, index: str, bundle_dir: str = "bundles") -> str:
    """Download bundle ``name`` (e.g. ``voxelmorph_v0.1.0``, or ``voxelmorph`` for its newest version listed) from
    the model-zoo index ``index`` (a path or URL of ``model_info.json``) into ``bundle_dir``, checking the
    archive's md5 and then its large files' md5; returns the bundle folder."""
    import urllib.request

    from monai.apps.utils import download_url
    from monai.bundle import download_large_files

    try:
        source = index if "://" in index else "file://" + os.path.abspath(index)
        with urllib.request.urlopen(source) as response:
            entries = json.load(response)
    except (OSError, ValueError) as err:
        raise ValueError(f"{index}: cannot read the model index ({err})") from None
    if name not in entries:
        versions = sorted((k for k in entries if k.rsplit("_v", 1)[0] == name), key=_version_key)
        if not versions:
            raise ValueError(f"{name!r} is not in {index}; it lists {sorted(entries)}")
        name = versions[-1]
    entry = entries[name]
    bundle = name.rsplit("_v", 1)[0]
    target = os.path.join(bundle_dir, bundle)
    if os.path.exists(target):
        raise FileExistsError(f"{target}: exists; refusing to overwrite it (remove it first)")
    os.makedirs(bundle_dir, exist_ok=True)
    archive = os.path.join(bundle_dir, f"{name}.zip")
    try:
        download_url(entry["source"], archive, hash_val=entry["checksum"], hash_type="md5", progress=False)
    except RuntimeError as err:
        if os.path.exists(archive):
            os.remove(archive)
        raise ValueError(f"{entry['source']}: refused, {err}") from None
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as z:
            bad = z.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"damaged member {bad}")
            z.extractall(staging)
        download_large_files(bundle_path=os.path.join(staging, bundle))
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ValueError(f"{archive}: refused, {err}") from None
    finally:
        os.remove(archive)
    os.replace(os.path.join(staging, bundle), target)
    shutil.rmtree(staging, ignore_errors=True)
    print(f"{name} in {target}")
    return target


def _version_key(stem: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in stem.rsplit("_v", 1)[1].split("."))
