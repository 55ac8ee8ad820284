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

``fetch`` reads such an index, downloads the zip (any URL ``urllib`` opens, ``file://`` included) with a bounded
downloader (:func:`download`: timeout, size limit, hash) that refuses a file whose md5 differs from the index,
extracts it, then fetches and checks the large files: a corrupted archive, a wrong hash, a silent server or a name
that would leave ``bundle_dir`` stops with a one-line message naming the file, and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.error
import zipfile
import zlib

from common.atomic import atomic_open, atomic_path, check_writable
from common.data.files import warn

from .register import find_bundle

__all__ = ["download", "fetch", "package"]

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
    if os.path.exists(out) and not os.path.isdir(out):
        raise FileExistsError(f"{out}: is a file, expected a folder for the archive")
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
        with atomic_path(archive) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
            for directory, _, files in sorted(os.walk(root)):
                for file in sorted(files):
                    path = os.path.join(directory, file)
                    z.write(path, os.path.relpath(path, tmp))
        with atomic_path(weights) as partial:
            shutil.copyfile(checkpoint, partial)

    index_path = os.path.join(out, "model_info.json")
    index = {}
    if os.path.exists(index_path):
        index = _read_index(index_path, 10)
    index[stem] = {"checksum": _md5(archive), "source": f"{base_url}/{stem}.zip"}
    with atomic_open(index_path, "w", encoding="utf-8") as f:
        json.dump(index, f, indent=4, sort_keys=True)
    print(f"{archive} (md5 {index[stem]['checksum']}), weights {weights}, index {index_path}")
    return archive


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CHUNK = 1 << 20


def _check_name(name, what: str) -> str:
    """A bundle or index name that is safe as a single path component (no ``/``, no ``..``)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(f"{what} {name!r} is not a valid bundle name (letters, digits, '_', '-', '.'; no '..')")
    return name


def _open(url: str, timeout: float):
    import urllib.request

    source = url if "://" in url else "file://" + os.path.abspath(url)
    return urllib.request.urlopen(source, timeout=timeout)


def download(url: str, path: str, hash_val: str, hash_type: str = "md5", timeout: float = 60, max_mb: float = 4096):
    """Download ``url`` (any URL ``urllib`` opens, ``file://`` included) to ``path`` through
    :func:`common.atomic.atomic_path`, refusing a server silent for ``timeout`` seconds (connect and each read;
    urllib and MONAI's downloader wait forever by default), a file over ``max_mb`` MiB (before or while
    reading) and a hash other than ``hash_val``; the one-line ``ValueError`` names the URL."""
    limit = int(max_mb * (1 << 20))
    digest = hashlib.new(hash_type)
    try:
        with _open(url, timeout) as response, atomic_path(path) as tmp:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            if length and length.isdigit() and int(length) > limit:
                raise ValueError(f"{url}: refused, {int(length) >> 20} MiB is over the {max_mb:g} MiB limit")
            size = 0
            with open(tmp, "wb") as f:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    size += len(block)
                    if size > limit:
                        raise ValueError(f"{url}: refused, larger than the {max_mb:g} MiB limit")
                    digest.update(block)
                    f.write(block)
            if digest.hexdigest() != hash_val.lower():
                raise ValueError(f"{url}: refused, its {hash_type} {digest.hexdigest()} is not {hash_val} (index)")
    except TimeoutError:
        raise ValueError(f"{url}: no answer within {timeout:g} s; refused (--timeout to wait longer)") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise ValueError(f"{url}: no answer within {timeout:g} s; refused (--timeout to wait longer)") from None
        raise ValueError(f"{url}: cannot download ({err.reason})") from None
    except OSError as err:
        raise ValueError(f"{url}: cannot download ({err})") from None


def _read_index(index: str, timeout: float) -> dict:
    try:
        with _open(index, timeout) as response:
            entries = json.loads(response.read(64 << 20))
    except (TimeoutError, urllib.error.URLError) as err:
        if isinstance(err, TimeoutError) or isinstance(err.reason, TimeoutError):
            raise ValueError(f"{index}: no answer within {timeout:g} s (--timeout to wait longer)") from None
        raise ValueError(f"{index}: cannot read the model index ({err.reason})") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{index}: cannot read the model index ({err})") from None
    if not isinstance(entries, dict):
        raise ValueError(f"{index}: the model index is a JSON {type(entries).__name__}, expected an object")
    return entries


def _entry(entries: dict, key: str, index: str) -> tuple[str, str]:
    """(source URL, md5) of an index entry; integrity cannot be turned off."""
    entry = entries[key]
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise ValueError(f"{index}: entry {key!r} has no 'source' URL")
    checksum = entry.get("checksum")
    if not isinstance(checksum, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", checksum):
        raise ValueError(f"{index}: entry {key!r} has no md5 'checksum' ({checksum!r}); refusing an unchecked archive")
    return entry["source"], checksum


def _large_files(bundle: str, timeout: float, max_mb: float) -> None:
    """Fetch and check the files ``<bundle>/large_files.yml`` lists, each inside the bundle folder."""
    import yaml

    spec_path = os.path.join(bundle, "large_files.yml")
    if not os.path.isfile(spec_path):
        return
    try:
        with open(spec_path, encoding="utf-8") as f:
            items = (yaml.safe_load(f) or {}).get("large_files")
    except (yaml.YAMLError, AttributeError) as err:
        raise ValueError(f"{spec_path}: not a readable large_files list ({err})") from None
    if not items:
        warn(f"{spec_path}: lists no large files; the bundle comes without trained weights")
        return
    root = os.path.realpath(bundle)
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("path", "url", "hash_val")):
            raise ValueError(f"{spec_path}: each large file needs path, url and hash_val; got {item!r}")
        target = os.path.realpath(os.path.join(root, item["path"]))
        if os.path.isabs(item["path"]) or not target.startswith(root + os.sep):
            raise ValueError(f"{spec_path}: large file path {item['path']!r} points outside the bundle; refused")
        hash_type = item.get("hash_type", "md5")
        if hash_type not in hashlib.algorithms_available:
            raise ValueError(f"{spec_path}: unknown hash_type {hash_type!r}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        download(item["url"], target, item["hash_val"], hash_type, timeout, max_mb)


def fetch(name: str, index: str, bundle_dir: str = "bundles", timeout: float = 60, max_mb: float = 4096) -> str:
    """Download bundle ``name`` (e.g. ``voxelmorph_v0.1.0``, or ``voxelmorph`` for its newest version listed) from
    the model-zoo index ``index`` (a path or URL of ``model_info.json``) into ``bundle_dir``, checking the
    archive's md5 and then its large files' hashes; returns the bundle folder.

    Everything is staged in a hidden folder inside ``bundle_dir`` and moved into place complete; any refusal or
    interruption removes it. ``timeout``: seconds a server may stay silent; ``max_mb``: the largest file (MiB)."""
    _check_name(name, "--name")
    entries = _read_index(index, float(timeout))
    if name not in entries:
        versions = sorted((k for k in entries if k.rsplit("_v", 1)[0] == name), key=_version_key)
        if not versions:
            raise ValueError(f"{name!r} is not in {index}; it lists {sorted(entries)}")
        name = versions[-1]
    _check_name(name, f"{index}: index entry")
    source, checksum = _entry(entries, name, index)
    bundle = name.rsplit("_v", 1)[0]
    target = os.path.join(bundle_dir, bundle)
    if os.path.lexists(target):
        raise FileExistsError(f"{target}: exists; refusing to overwrite it (remove it first)")
    check_writable(target)
    os.makedirs(bundle_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{bundle}.fetch-", dir=bundle_dir)
    try:
        archive = os.path.join(staging, f"{name}.zip")
        download(source, archive, checksum, "md5", float(timeout), float(max_mb))
        extracted = os.path.join(staging, "extracted")
        try:
            with zipfile.ZipFile(archive) as z:
                bad = z.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"damaged member {bad}")
                tops = {member.split("/", 1)[0] for member in z.namelist()}
                if tops != {bundle}:
                    raise zipfile.BadZipFile(f"its top folder is {sorted(tops)}, expected {bundle!r}")
                z.extractall(extracted)
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise ValueError(f"{source}: refused, {err}") from None
        _large_files(os.path.join(extracted, bundle), float(timeout), float(max_mb))
        os.replace(os.path.join(extracted, bundle), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{name} in {target}")
    return target


def _version_key(stem: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in stem.rsplit("_v", 1)[1].split("."))
