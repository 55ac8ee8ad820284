"""End-to-end: the ddm bundle generates ED -> ES sequences with the real frame count and evaluates them against
the real frames, side by side with VoxelMorph (scaled field) and VoxelMorph-diff (integrated velocity)."""

import json
import math
import os

import nibabel as nib
import pytest
from monai.bundle import ConfigParser

from common.data import acdc_sequences
from common.engines import load_weights

from .helpers import REPO, copy_bundle, monai_bundle, summary, verify_and_export

pytestmark = pytest.mark.slow

QUICK_GRID = {"pixdim": [3.0, 3.0, 6.3], "image_size": [64, 64, 16]}


def test_ddm_is_diffusemorphs_model_and_objective():
    """The ddm bundle trains exactly DiffuseMorph's 3D ACDC model, so one trained checkpoint serves both here."""

    def load(bundle):
        with open(os.path.join(REPO, "bundles", bundle, "configs", "train.json"), encoding="utf-8") as f:
            return json.load(f)

    ddm, dm = load("ddm"), load("diffusemorph")
    for key in ("network_def", "loss", "optimizer", "lambda", "learning_rate", "pixdim", "image_size", "moving"):
        assert ddm[key] == dm[key], key


def test_network_contract_and_torchscript_export(diffusemorph_quick, tmp_path):
    """DDM's inference network (DiffuseMorph's model on the quick grid) passes MONAI's contract check and exports
    to TorchScript; the exported file gives the same DDF on another input than the one traced."""
    import torch

    root = copy_bundle("ddm", tmp_path / "ddm")
    checkpoint = os.path.join(diffusemorph_quick, "models", "model.pt")
    ts = verify_and_export(root, tmp_path, [1, 2, 64, 64, 16], ("inference.json", "quick.json"), checkpoint)
    parser = ConfigParser()
    parser.read_config([os.path.join(root, "configs", c) for c in ("inference.json", "quick.json")])
    parser.update({"bundle_root": root})
    network = load_weights(parser.get_parsed_content("network_def"), checkpoint).eval()
    inputs = torch.rand(1, 2, 64, 64, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(ts)(inputs), network(inputs), atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def vm_diff_checkpoint(acdc_demo, tmp_path_factory):
    root = copy_bundle("voxelmorph", tmp_path_factory.mktemp("vm_diff"))
    configs = ["train.json", "vm_diff.json", "quick.json"]
    monai_bundle("run", configs, root, dataset_dir=acdc_demo, **{"train#trainer#max_epochs": 10, "val_interval": 5})
    return os.path.join(root, "models", "model.pt")


def test_evaluation_table_has_ddm_and_the_baselines(
    diffusemorph_quick, voxelmorph_quick, vm_diff_checkpoint, acdc_demo, tmp_path
):
    root = copy_bundle("ddm", tmp_path)
    monai_bundle(
        "run",
        ["train.json", "quick.json", "evaluate.json"],
        root,
        dataset_dir=acdc_demo,
        checkpoint=os.path.join(diffusemorph_quick, "models", "model.pt"),
        vm_checkpoint=os.path.join(voxelmorph_quick, "models", "model.pt"),
        vm_diff_checkpoint=vm_diff_checkpoint,
    )
    figures = summary(os.path.join(root, "eval"))
    assert figures["dice_mean"] >= figures["dice_initial"] + 0.10  # Dice at ES
    for name in ("ddm", "vm", "vm_diff"):
        for metric in ("psnr", "nmse", "dice_es", "trajectory_seconds"):
            assert math.isfinite(figures[f"{metric}_{name}"]), (metric, name)
    # an independent truth on the phantoms: VoxelMorph's scaled field follows the real motion better than no motion
    assert figures["psnr_vm"] > figures["psnr_identity"] + 1.0
    assert figures["nmse_vm"] < figures["nmse_identity"]


def test_inference_writes_as_many_frames_as_the_real_sequence(diffusemorph_quick, acdc_demo, tmp_path):
    root = copy_bundle("ddm", tmp_path)
    out = str(tmp_path / "sequences")
    monai_bundle(
        "run",
        ["inference.json"],
        root,
        dataset_dir=acdc_demo,
        output_dir=out,
        checkpoint=os.path.join(diffusemorph_quick, "models", "model.pt"),
        **QUICK_GRID,
    )
    for item in acdc_sequences(acdc_demo, "testing", "acdc"):
        frames = nib.load(os.path.join(out, item["subject"], "frames.nii.gz"))
        assert frames.shape == (64, 64, 16, item["es"] - item["ed"] + 1)
        assert os.path.isfile(os.path.join(out, item["subject"], "frames.gif"))


def test_missing_baseline_checkpoint_is_named(diffusemorph_quick, acdc_demo, tmp_path):
    root = copy_bundle("ddm", tmp_path)
    result = monai_bundle(
        "run",
        ["train.json", "quick.json", "evaluate.json"],
        root,
        check=False,
        dataset_dir=acdc_demo,
        checkpoint=os.path.join(diffusemorph_quick, "models", "model.pt"),
        vm_checkpoint=str(tmp_path / "nowhere" / "model.pt"),
    )
    assert result.returncode != 0 and "nowhere" in result.stderr and "checkpoint not found" in result.stderr
