"""Model zoo: a packaged bundle is downloaded from a URL with its hash checked, and runs where this repository is
absent; damaged or tampered archives are refused."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import nibabel as nib
import pytest

from common.data import acdc_pairs
from regzoo.package import fetch, package

from .helpers import REPO

pytestmark = pytest.mark.slow


def _tree(folder) -> dict:
    """{relative path: md5} of every file under ``folder``."""
    return {
        os.path.relpath(os.path.join(d, n), folder): _md5(os.path.join(d, n))
        for d, _, files in os.walk(folder)
        for n in files
    }


def _md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


@pytest.fixture(scope="module")
def dist(voxelmorph_quick, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("dist"))
    package("voxelmorph", out, checkpoint=os.path.join(voxelmorph_quick, "models", "model.pt"))
    return out


def test_archive_has_the_model_zoo_structure(dist, voxelmorph_quick):
    archive = os.path.join(dist, "voxelmorph_v0.1.0.zip")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
    assert {
        "voxelmorph/configs/metadata.json",
        "voxelmorph/configs/inference.json",
        "voxelmorph/docs/README.md",
        "voxelmorph/LICENSE",
        "voxelmorph/large_files.yml",
        "voxelmorph/common/__init__.py",
        "voxelmorph/common/networks/registration.py",
    } <= names
    assert not any(n.endswith((".pt", ".pyc")) for n in names)  # weights are a large file, fetched and checked
    with open(os.path.join(dist, "model_info.json"), encoding="utf-8") as f:
        index = json.load(f)
    assert index["voxelmorph_v0.1.0"]["checksum"] == _md5(archive)
    weights = os.path.join(dist, "voxelmorph_v0.1.0_model.pt")
    assert _md5(weights) == _md5(os.path.join(voxelmorph_quick, "models", "model.pt"))
    with pytest.raises(FileExistsError, match="overwrite"):
        package("voxelmorph", dist, checkpoint=weights)


ISOLATED = textwrap.dedent(
    """
    import json, os, sys
    repo = {repo!r}
    # the repository is absent: no editable-install finder, not on the path (its virtual environment may be)
    sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != repo]
    try:
        import common
        raise SystemExit("the repository's common is still importable: " + common.__file__)
    except ImportError:
        pass
    from monai.apps.utils import download_url, extractall
    from monai.bundle import download_large_files, run
    entry = json.load(open({index!r}))["voxelmorph_v0.1.0"]
    download_url(entry["source"], "voxelmorph.zip", hash_val=entry["checksum"], hash_type="md5", progress=False)
    extractall("voxelmorph.zip", "bundles")
    download_large_files(bundle_path="bundles/voxelmorph")
    os.chdir("bundles/voxelmorph")
    run(config_file="configs/inference.json", dataset_dir={data!r}, output_dir={out!r},
        pixdim=[3.0, 3.0, 6.3], image_size=[64, 64, 16])
    import common
    print("COMMON", common.__file__)
    """
)


def test_downloaded_bundle_runs_without_the_repository(dist, acdc_demo, tmp_path):
    work, out = tmp_path / "empty", str(tmp_path / "out")
    work.mkdir()
    code = ISOLATED.format(repo=REPO, index=os.path.join(dist, "model_info.json"), data=acdc_demo, out=out)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    location = [line for line in result.stdout.splitlines() if line.startswith("COMMON")][0]
    assert location.split()[1].startswith(str(work / "bundles" / "voxelmorph" / "common"))
    subject = acdc_pairs(acdc_demo, "testing", "acdc")[0]["subject"]
    assert nib.load(os.path.join(out, subject, "warped.nii.gz")).shape == (64, 64, 16)


def test_fetch_checks_hashes_and_refuses_damaged_archives(dist, tmp_path):
    index = os.path.join(dist, "model_info.json")
    folder = fetch("voxelmorph", index, str(tmp_path / "ok"))
    assert os.path.isfile(os.path.join(folder, "models", "model.pt"))
    # a tampered archive (its md5 no longer matches the index)
    with open(index, encoding="utf-8") as f:
        entries = json.load(f)
    bad = tmp_path / "bad"
    bad.mkdir()
    archive = bad / "voxelmorph_v0.1.0.zip"
    original_zip = open(os.path.join(dist, "voxelmorph_v0.1.0.zip"), "rb").read()
    tampered = bytearray(original_zip)
    tampered[len(tampered) // 2] ^= 0xFF
    archive.write_bytes(bytes(tampered))
    entries["voxelmorph_v0.1.0"]["source"] = "file://" + str(archive)
    (bad / "model_info.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="md5"):
        fetch("voxelmorph", str(bad / "model_info.json"), str(tmp_path / "b1"))
    assert not os.path.exists(tmp_path / "b1" / "voxelmorph")
    # the archive's hash recorded for the damaged file: wherever the damage lies, the zip is refused (a flipped
    # byte breaks a CRC, the deflate stream or a header) or, where it hit a header field nothing reads (a local
    # header's "version needed"), the installed bundle is byte-identical to the good one: never a different bundle
    good = _tree(folder)
    for k, fraction in enumerate((0.2, 0.35, 0.5, 0.65, 0.8)):
        damaged = bytearray(original_zip)
        damaged[int(len(damaged) * fraction)] ^= 0xFF
        archive.write_bytes(bytes(damaged))
        entries["voxelmorph_v0.1.0"]["checksum"] = _md5(archive)
        (bad / "model_info.json").write_text(json.dumps(entries))
        try:
            installed = fetch("voxelmorph", str(bad / "model_info.json"), str(tmp_path / f"b2_{k}"))
        except ValueError as err:
            assert "refused" in str(err)
            assert os.listdir(tmp_path / f"b2_{k}") == []
        else:
            assert _tree(installed) == good
    # wrong weights behind a good archive: the large file's md5 check refuses them
    weights = os.path.join(dist, "voxelmorph_v0.1.0_model.pt")
    original = open(weights, "rb").read()
    try:
        open(weights, "ab").write(b"tampered")
        with pytest.raises(ValueError, match="md5"):
            fetch("voxelmorph", index, str(tmp_path / "b3"))
    finally:
        open(weights, "wb").write(original)
    assert not os.path.exists(tmp_path / "b3" / "voxelmorph")
    with pytest.raises(ValueError, match="not in"):
        fetch("nope", index, str(tmp_path / "b4"))


def test_foreign_weights_are_not_packaged(dist, tmp_path):
    import torch

    other = str(tmp_path / "other.pt")
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(Exception, match="does not fit"):
        package("voxelmorph", str(tmp_path / "d"), checkpoint=other)
    assert not os.path.exists(tmp_path / "d" / "voxelmorph_v0.1.0.zip")
