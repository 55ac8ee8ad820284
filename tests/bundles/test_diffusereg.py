"""End-to-end: the diffusereg bundle trains its VTN bootstrap and the field diffusion model on the demo phantoms
(shortened quick settings), registers by DDIM sampling better than the identity, writes observable sampling
frames with an early stop, and its inference network follows the contract."""

import csv
import json
import os

import nibabel as nib
import pytest
import torch
from monai.bundle import ConfigParser

from common.data import acdc_pairs
from common.engines import load_weights

from .helpers import copy_bundle, monai_bundle, summary, verify_and_export

pytestmark = pytest.mark.slow

QUICK = ["quick.json"]
# 4 bootstrap and 4 diffusion epochs (the suite's time budget): measured 2026-12-02, DDIM-10 Dice 0.748 vs identity
# 0.622 (after 5 + 10 epochs: 0.783, as after 15)
SHORT = {"bootstrap_epochs": 4, "max_epochs": 4, "val_interval": 4, "sampling_steps": 10}


@pytest.fixture(scope="module")
def diffusereg_quick(acdc_demo, tmp_path_factory):
    root = copy_bundle("diffusereg", tmp_path_factory.mktemp("diffusereg"))
    monai_bundle("run", ["train_bootstrap.json", *QUICK], root, dataset_dir=acdc_demo, **SHORT)
    assert os.path.isfile(os.path.join(root, "models", "bootstrap.pt"))
    monai_bundle("run", ["train.json", *QUICK], root, dataset_dir=acdc_demo, **SHORT)
    return root


def test_ddim_sampling_beats_identity(diffusereg_quick, acdc_demo):
    result = monai_bundle(
        "run", ["train.json", *QUICK, "evaluate.json"], diffusereg_quick, dataset_dir=acdc_demo, sampling_steps=10
    )
    figures = summary(os.path.join(diffusereg_quick, "eval", "ddim10"))
    assert figures["dice_mean"] >= figures["dice_initial"] + 0.05, result.stdout[-3000:]
    assert {"dice_LV", "dice_Myo", "dice_RV", "std_jacobian", "njd_percent", "seconds"} <= set(figures)


def test_observed_sampling_writes_frames_and_stops_early(diffusereg_quick, acdc_demo, tmp_path):
    out = str(tmp_path / "sampling")
    monai_bundle(
        "run",
        ["inference.json", *QUICK, "sampling.json"],
        diffusereg_quick,
        dataset_dir=acdc_demo,
        output_dir=out,
        sampling_steps=20,
        snapshot_every=5,
        stop_tolerance=1000.0,  # always "stable": stops after window + 1 = 3 observations
        stop_window=2,
    )
    subject = acdc_pairs(acdc_demo, "testing", "acdc", moving="ES")[0]["subject"]
    folder = os.path.join(out, subject)
    assert nib.load(os.path.join(folder, "frames.nii.gz")).shape == (64, 64, 16, 3)
    assert nib.load(os.path.join(folder, "frames_ddf.nii.gz")).shape == (64, 64, 16, 3, 3)
    with open(os.path.join(folder, "frames.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [5, 10, 15] and {"dice_mean", "njd_percent"} <= set(rows[0])
    assert {"frames.png", "frames.gif"} <= set(os.listdir(folder))
    assert os.path.isfile(os.path.join(out, "registration", subject, "ddf.nii.gz"))
    assert summary(out)["steps_run"] == 15


def test_network_contract_and_torchscript_export(diffusereg_quick, tmp_path):
    """The sampling loop is traced unrolled (each DDIM step one backbone call; with the default 50 steps the export
    took 7 min on 2 CPU cores), so the test exports 2 steps; the TorchScript file gives the network's DDF for the
    same noise on another input than the one traced."""
    two = {"sampling_steps": 2}
    ts = verify_and_export(diffusereg_quick, tmp_path, [1, 2, 64, 64, 16], ("inference.json", *QUICK), None, two, **two)
    parser = ConfigParser()
    parser.read_config([os.path.join(diffusereg_quick, "configs", c) for c in ("inference.json", *QUICK)])
    parser.update({"bundle_root": diffusereg_quick, "sampling_steps": 2})
    checkpoint = os.path.join(diffusereg_quick, "models", "model.pt")
    network = load_weights(parser.get_parsed_content("network_def"), checkpoint)
    exported, inputs = torch.jit.load(ts), torch.rand(1, 2, 64, 64, 16)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = network.eval()(inputs)
        torch.manual_seed(1)
        torch.testing.assert_close(exported(inputs), expected, atol=1e-5, rtol=1e-4)


def test_regzoo_register_writes_sampling_frames(diffusereg_quick, acdc_demo, tmp_path):
    from regzoo.register import register

    pair = acdc_pairs(acdc_demo, "testing", "acdc", moving="ES")[0]
    steps = tmp_path / "steps.json"
    steps.write_text(json.dumps({"sampling_steps": 10}))
    out = str(tmp_path / "registered")
    register(
        "diffusereg",
        out,
        fixed=pair["fixed"],
        moving=pair["moving"],
        checkpoint=os.path.join(diffusereg_quick, "models", "model.pt"),
        configs=[os.path.join(diffusereg_quick, "configs", "quick.json"), str(steps)],
        report=True,
    )
    assert nib.load(os.path.join(out, "warped.nii.gz")).shape == nib.load(pair["fixed"]).shape
    assert {"report.png", "frames.png", "frames.gif", "transform.h5"} <= set(os.listdir(out))
