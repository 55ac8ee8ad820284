"""``regzoo register``: outputs on the fixed image's own grid, checked with ITK itself; inverse round trip; bad
input is refused in tests/tools/test_fault_catalogue.py.

The networks get fixed, non-trivial weights (a smooth non-zero field) instead of training, so the tests check the
geometry of the outputs, not the quality of a registration (the bundles' own tests do that)."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser

from regzoo.register import find_bundle

from .test_cli import regzoo

itk = pytest.importorskip("itk")


def _affine(angles, spacing, origin):
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def _blobs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, 5, 5, 4, generator=g)
    img = F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0, 0].numpy()
    return img, (img > 0.55).astype(np.int16) + (img > 0.7).astype(np.int16)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Anisotropic spacing, non-zero origins, non-identity directions, different fixed / moving grids."""
    root = tmp_path_factory.mktemp("pair")
    files = {}
    for name, shape, affine, seed in (
        ("fixed", (60, 56, 14), _affine((0.05, -0.04, 0.2), (1.3, 1.4, 4.0), (-40.0, -35.0, -20.0)), 1),
        ("moving", (64, 60, 12), _affine((-0.03, 0.05, 0.1), (1.2, 1.3, 4.5), (-38.0, -40.0, -22.0)), 2),
    ):
        image, label = _blobs(shape, seed)
        for kind, array in (("", image * 300.0), ("_label", label)):
            path = str(root / f"{name}{kind}.nii.gz")
            nib.save(nib.Nifti1Image(array.astype(np.float32 if not kind else np.int16), affine), path)
            files[name + kind] = path
    return files


def _checkpoint(bundle, path, configs=(), tvf=False):
    """Weights giving a smooth, clearly non-zero field: small random weights, a constant bias in the head."""
    folder = find_bundle(bundle)
    parser = ConfigParser()
    parser.read_config([os.path.join(folder, "configs", c) for c in ("inference.json", *configs)])
    parser.update({"bundle_root": folder})
    torch.manual_seed(0)
    net = parser.get_parsed_content("network_def")
    heads = net.step_heads if tvf else [net.flow]
    with torch.no_grad():
        for head in heads:
            head.weight.normal_(0, 2e-3)
            head.bias.copy_(torch.tensor([0.6, -0.4, 0.2]) / len(heads))
    torch.save(net.state_dict(), path)
    return str(path)


def _itk_resample(moving_path, fixed_path, transform_path):
    moving = itk.imread(moving_path, itk.F)
    fixed = itk.imread(fixed_path, itk.F)
    transform = itk.transformread(transform_path)[0]
    out = itk.resample_image_filter(
        moving,
        transform=transform,
        use_reference_image=True,
        reference_image=fixed,
        interpolator=itk.LinearInterpolateImageFunction.New(moving),
    )
    return np.transpose(itk.array_from_image(out), (2, 1, 0))


def test_outputs_on_the_fixed_grid_match_itk_applying_the_exported_transform(pair, tmp_path):
    ckpt = _checkpoint("voxelmorph", tmp_path / "vm.pt")
    out = tmp_path / "out"
    result = regzoo(
        "register",
        "--bundle",
        "voxelmorph",
        "--fixed",
        pair["fixed"],
        "--moving",
        pair["moving"],
        "--moving-label",
        pair["moving_label"],
        "--fixed-label",
        pair["fixed_label"],
        "--checkpoint",
        ckpt,
        "--out",
        str(out),
        "--report",
        "--refine",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "report.png").stat().st_size > 10_000
    fixed = nib.load(pair["fixed"])
    for name in ("warped", "warped_label", "jacobian"):
        image = nib.load(out / f"{name}.nii.gz")
        assert image.shape == fixed.shape and np.allclose(image.affine, fixed.affine, atol=1e-4)
    field = nib.load(out / "ddf_itk.nii.gz")
    assert field.shape[:3] == fixed.shape
    assert np.abs(np.asarray(field.dataobj)).max() > 0.5  # the test field is not the identity
    ours = np.asarray(nib.load(out / "warped.nii.gz").dataobj)
    theirs = _itk_resample(pair["moving"], pair["fixed"], str(out / "transform.h5"))
    inside = (ours > 1) & (theirs > 1)
    assert inside.mean() > 0.5
    assert np.corrcoef(ours[inside], theirs[inside])[0, 1] > 0.99
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["dice_mean"] <= 1 and metrics["njd_percent"] == 0.0
    assert not (out / "inverse_transform.h5").exists()  # VoxelMorph has no true inverse


def test_inverse_transform_round_trip(pair, tmp_path):
    ckpt = _checkpoint("transmorph_tvf", tmp_path / "tm.pt", ("quick.json",), tvf=True)
    out = tmp_path / "out"
    result = regzoo(
        "register",
        "--bundle",
        "transmorph_tvf",
        "--configs",
        "quick.json",
        "--fixed",
        pair["fixed"],
        "--moving",
        pair["moving"],
        "--checkpoint",
        ckpt,
        "--out",
        str(out),
        "--refine",
        "0",
    )
    assert result.returncode == 0, result.stderr
    forward = itk.transformread(str(out / "transform.h5"))[0]
    inverse = itk.transformread(str(out / "inverse_transform.h5"))[0]
    fixed = itk.imread(pair["fixed"], itk.F)
    errors, moved = [], []
    for index in ([20, 20, 5], [30, 28, 7], [40, 35, 8], [25, 40, 6]):
        x = np.array(fixed.TransformIndexToPhysicalPoint(index))
        y = np.array(forward.TransformPoint(x.tolist()))
        moved.append(np.linalg.norm(y - x))
        errors.append(np.linalg.norm(np.array(inverse.TransformPoint(y.tolist())) - x))
    assert min(moved) > 1.0  # mm: the test transform moves points
    # mm: the inverse undoes it to a small fraction of the network's 4 mm voxels (measured up to 0.29 mm: the
    # fields are resampled from the network grid to the images' 4-4.5 mm slices and interpolated there by ITK)
    assert max(errors) < 0.5


def test_batch_mode_writes_a_table_and_resumes(pair, tmp_path):
    ckpt = _checkpoint("voxelmorph", tmp_path / "vm.pt")
    spec = {
        "testing": [
            {"fixed": pair["fixed"], "moving": pair["moving"]},
            {
                "fixed": pair["moving"],
                "moving": pair["fixed"],
                "fixed_label": pair["moving_label"],
                "moving_label": pair["fixed_label"],
            },
        ]
    }
    datalist = tmp_path / "pairs.json"
    datalist.write_text(json.dumps(spec))
    out = tmp_path / "batch"
    args = ("register", "--bundle", "voxelmorph", "--datalist", str(datalist), "--checkpoint", ckpt, "--out", str(out))
    args += ("--refine", "0")  # batch bookkeeping here; refinement has its own tests
    result = regzoo(*args)
    assert result.returncode == 0, result.stderr
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "dice_mean" in rows[0]
    folders = sorted(p for p in os.listdir(out) if (out / p).is_dir())
    assert len(folders) == 2
    kept = (out / folders[0] / "warped.nii.gz").stat().st_mtime_ns
    for name in os.listdir(out / folders[1]):
        os.remove(out / folders[1] / name)
    os.rmdir(out / folders[1])
    result = regzoo(*args)  # resumes: only the removed pair is registered again
    assert result.returncode == 0, result.stderr
    assert (out / folders[1] / "metrics.json").exists()
    assert (out / folders[0] / "warped.nii.gz").stat().st_mtime_ns == kept
    assert len((out / "metrics.csv").read_text().splitlines()) == 3


def test_the_inference_config_register_run_registers_as_the_command(pair, tmp_path):
    """``python -m monai.bundle run register --config_file configs/inference.json`` (the model-zoo path) goes
    through the same real-scan stage and default refinement as ``regzoo register``: the same pairs give the same
    figures."""
    ckpt = _checkpoint("voxelmorph", tmp_path / "vm.pt")
    datalist = tmp_path / "pairs.json"
    spec = {
        "testing": [
            {
                "fixed": pair["fixed"],
                "moving": pair["moving"],
                "fixed_label": pair["fixed_label"],
                "moving_label": pair["moving_label"],
            }
        ]
    }
    datalist.write_text(json.dumps(spec))
    result = regzoo(
        "register",
        "--bundle",
        "voxelmorph",
        "--datalist",
        str(datalist),
        "--checkpoint",
        ckpt,
        "--out",
        str(tmp_path / "cli"),
    )  # both with the bundle's default refinement (its inference.json's refine_steps)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "voxelmorph"
    shutil.copytree(find_bundle("voxelmorph"), root, ignore=shutil.ignore_patterns("data", "models", "runs", "eval"))
    command = [
        sys.executable, "-m", "monai.bundle", "run", "register",
        "--config_file", str(root / "configs" / "inference.json"),
        "--bundle_root", str(root), "--checkpoint", ckpt, "--datalist", str(datalist),
        "--demo_data", "False", "--output_dir", str(tmp_path / "bundle"),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {}
    for name in ("cli", "bundle"):
        with open(tmp_path / name / "metrics.csv", encoding="utf-8") as f:
            rows[name] = list(csv.DictReader(f))
    assert len(rows["cli"]) == len(rows["bundle"]) == 1
    assert int(rows["cli"][0]["refine_steps"]) == int(rows["bundle"][0]["refine_steps"]) == 20
    for column in ("dice_mean", "affine_rotation_deg", "affine_translation_mm", "njd_percent"):
        assert float(rows["cli"][0][column]) == pytest.approx(float(rows["bundle"][0][column]), abs=1e-4), column
    assert (tmp_path / "bundle" / rows["bundle"][0]["pair"] / "transform.h5").is_file()
