"""End-to-end: the diffusemorph bundle trains on the demo phantoms, registers, gives continuous trajectories and
generates images with DDPM and DDIM; the inference network follows the contract."""

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch

from common.data import acdc_pairs
from common.metrics import dice_per_label

from .helpers import monai_bundle, summary, verify_and_export

pytestmark = pytest.mark.slow

QUICK_GRID = {"pixdim": [3.0, 3.0, 6.3], "image_size": [64, 64, 16]}
LABELS = ("moving_label", "fixed_label")


def test_quick_training_beats_identity_without_folding(diffusemorph_quick, acdc_demo):
    root = diffusemorph_quick
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(root, "runs", "train")))
    result = monai_bundle("run", ["train.json", "quick.json", "evaluate.json"], root, dataset_dir=acdc_demo)
    figures = summary(os.path.join(root, "eval"))
    assert figures["dice_mean"] >= figures["dice_initial"] + 0.10, result.stdout[-3000:]
    assert figures["folding_ratio"] < 0.005
    assert {"dice_LV", "dice_Myo", "dice_RV", "dice_WholeHeart", "njd_percent", "seconds"} <= set(figures)


def test_trajectory_frames_are_written_from_moving_to_fixed(diffusemorph_quick, acdc_demo, tmp_path):
    out = str(tmp_path / "trajectory")
    monai_bundle(
        "run",
        ["inference.json", "trajectory.json"],
        diffusemorph_quick,
        dataset_dir=acdc_demo,
        output_dir=out,
        frames=5,
        **QUICK_GRID,
    )
    subject = acdc_pairs(acdc_demo, "testing", "acdc")[0]["subject"]
    folder = os.path.join(out, subject)
    assert nib.load(os.path.join(folder, "frames.nii.gz")).shape == (64, 64, 16, 5)
    assert nib.load(os.path.join(folder, "frames_ddf.nii.gz")).shape == (64, 64, 16, 5, 3)
    assert {"frames.png", "frames.gif"} <= set(os.listdir(folder))
    figures = summary(out)
    assert figures["dice_es_diffusemorph"] == pytest.approx(figures["dice_mean"], abs=1e-6)  # gamma = 1
    assert figures["trajectory_seconds_diffusemorph"] > 0


@pytest.mark.parametrize("sampler, start, steps, count", [("ddpm", 12, None, 13), ("ddim", 200, 10, 11)])
def test_generation_runs_and_keeps_snapshots(diffusemorph_quick, acdc_demo, tmp_path, sampler, start, steps, count):
    out = str(tmp_path / sampler)
    overrides = {"sampler": sampler, "start_step": start, "snapshot_every": 5, **QUICK_GRID}
    if steps:
        overrides["sampling_steps"] = steps
    result = monai_bundle(
        "run",
        ["inference.json", "generate.json"],
        diffusemorph_quick,
        dataset_dir=acdc_demo,
        output_dir=out,
        **overrides,
    )
    assert f"{count}/{count}" in result.stderr  # the progress bar ran through every step
    subject = acdc_pairs(acdc_demo, "testing", "acdc")[0]["subject"]
    folder = os.path.join(out, subject)
    assert nib.load(os.path.join(folder, "generated.nii.gz")).shape == (64, 64, 16)
    snapshots = -(-count // 5)  # every 5 steps and the last
    assert nib.load(os.path.join(folder, "frames.nii.gz")).shape == (64, 64, 16, snapshots)
    figures = summary(out)
    assert {"nmse_to_fixed", "nmse_to_moving", "psnr_to_fixed", "seconds"} <= set(figures)


def test_network_contract_and_export(diffusemorph_quick, tmp_path):
    verify_and_export(diffusemorph_quick, tmp_path, [1, 2, 64, 64, 16])


def test_regzoo_register_runs_the_trained_bundle_on_original_files(diffusemorph_quick, acdc_demo, tmp_path):
    from regzoo.register import register

    pair = acdc_pairs(acdc_demo, "testing", "acdc")[0]
    out = str(tmp_path / "registered")
    grid = tmp_path / "quick_grid.json"  # the quick-trained network's grid
    grid.write_text(json.dumps(QUICK_GRID))
    register(
        "diffusemorph",
        out,
        fixed=pair["fixed"],
        moving=pair["moving"],
        moving_label=pair["moving_label"],
        fixed_label=pair["fixed_label"],
        checkpoint=os.path.join(diffusemorph_quick, "models", "model.pt"),
        configs=str(grid),
        report=True,
    )
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    moving, fixed = (torch.from_numpy(np.asarray(nib.load(pair[k]).dataobj))[None, None].float() for k in LABELS)
    initial = float(dice_per_label(moving, fixed, [1, 2, 3])[0].mean())  # both labels on the same original grid
    assert metrics["dice_mean"] > initial + 0.05
    assert nib.load(os.path.join(out, "warped.nii.gz")).shape == nib.load(pair["fixed"]).shape
    assert {"report.png", "frames.png", "frames.gif"} <= set(os.listdir(out))
