"""End-to-end: the voxelmorph bundle trains on the demo phantoms, evaluates, infers, exports; bad input is refused."""

import os

import nibabel as nib
import numpy as np
import pytest
import torch

from common.data import acdc_pairs

from .helpers import SHORT_ACDC, monai_bundle, summary, verify_and_export

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(voxelmorph_quick):
    return voxelmorph_quick


def test_quick_training_beats_identity_without_folding(trained, acdc_demo):
    assert os.path.isfile(os.path.join(trained, "models", "model.pt"))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(trained, "runs", "train")))
    monai_bundle("run", ["train.json", "quick.json", "evaluate.json"], trained, dataset_dir=acdc_demo)
    figures = summary(os.path.join(trained, "eval"))
    assert figures["dice_mean"] >= figures["dice_initial"] + 0.10
    assert figures["folding_ratio"] < 0.005
    assert {
        "dice_LV",
        "dice_Myo",
        "dice_RV",
        "dice_LV+Myo",
        "dice_WholeHeart",
        "hd95_mm",
        "njd_percent",
        "std_jacobian",
        "sdlogj",
        "mean_grad_jacobian",
        "seconds",
    } <= set(figures)


def test_training_resumes_from_its_saved_state(trained, acdc_demo):
    state = torch.load(os.path.join(trained, "models", "training_state.pt"), weights_only=True)
    trainer = state["trainer"]
    epochs = SHORT_ACDC["train#trainer#max_epochs"]
    assert trainer["max_epochs"] == epochs and trainer["iteration"] == epochs * trainer["epoch_length"]
    result = monai_bundle("run", ["train.json", "quick.json"], trained, dataset_dir=acdc_demo, **SHORT_ACDC)
    assert "Epoch: 1/" not in result.stdout + result.stderr  # nothing retrained from scratch


def test_inference_writes_outputs_on_the_fixed_grid(trained, acdc_demo, tmp_path):
    out = str(tmp_path / "out")
    monai_bundle(
        "run",
        ["inference.json"],
        trained,
        dataset_dir=acdc_demo,
        output_dir=out,
        checkpoint=os.path.join(trained, "models", "model.pt"),
        pixdim=[3.0, 3.0, 6.3],
        image_size=[64, 64, 16],
    )
    pair = acdc_pairs(acdc_demo, "testing", "acdc")[0]
    folder = os.path.join(out, pair["subject"])
    warped = nib.load(os.path.join(folder, "warped.nii.gz"))
    ddf = nib.load(os.path.join(folder, "ddf.nii.gz"))
    assert warped.shape == (64, 64, 16) and ddf.shape == (64, 64, 16, 3)
    np.testing.assert_allclose(warped.header.get_zooms(), (3.0, 3.0, 6.3), atol=1e-4)
    labels = np.unique(np.asarray(nib.load(os.path.join(folder, "warped_label.nii.gz")).dataobj))
    assert set(labels.tolist()) <= {0, 1, 2, 3}
    assert os.path.isfile(os.path.join(out, "metrics.csv"))
    # a second run refuses to overwrite
    again = monai_bundle(
        "run",
        ["inference.json"],
        trained,
        check=False,
        dataset_dir=acdc_demo,
        output_dir=out,
        checkpoint=os.path.join(trained, "models", "model.pt"),
    )
    assert again.returncode != 0 and "already holds results" in again.stderr


def test_bad_inference_input_is_refused_and_nothing_is_written(trained, acdc_demo, tmp_path):
    checkpoint = os.path.join(trained, "models", "model.pt")
    cases = {}
    # a pair of different dimensionality
    pair = acdc_pairs(acdc_demo, "testing", "acdc")[0]
    img = nib.load(pair["moving"])
    flat = str(tmp_path / "moving2d.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine), flat)
    cases["2d"] = ({"fixed": pair["fixed"], "moving": flat}, checkpoint, "expected a 3D image")
    # an unreadable (truncated) file
    broken = str(tmp_path / "broken.nii.gz")
    data = open(pair["moving"], "rb").read()
    open(broken, "wb").write(data[: len(data) // 3])
    cases["truncated"] = ({"fixed": pair["fixed"], "moving": broken}, checkpoint, "truncated or damaged")
    # a missing checkpoint, and a checkpoint of another network
    good = {"fixed": pair["fixed"], "moving": pair["moving"]}
    cases["missing"] = (good, str(tmp_path / "none.pt"), "checkpoint not found")
    other = str(tmp_path / "other.pt")
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    cases["other"] = (good, other, "does not fit VoxelMorph")
    for name, (entry, ckpt, message) in cases.items():
        datalist = tmp_path / f"{name}.json"
        datalist.write_text(__import__("json").dumps({"testing": [entry]}))
        out = tmp_path / f"out_{name}"
        result = monai_bundle(
            "run",
            ["inference.json"],
            trained,
            check=False,
            dataset_dir=acdc_demo,
            datalist=str(datalist),
            checkpoint=ckpt,
            output_dir=str(out),
        )
        assert result.returncode != 0, name
        assert message in result.stderr, (name, result.stderr[-2000:])
        assert not out.exists() or not os.listdir(out), name


def test_network_contract_and_torchscript_export(trained, tmp_path):
    ts = verify_and_export(trained, tmp_path, [1, 2, 64, 64, 16])
    scripted = torch.jit.load(ts)
    x = torch.rand(1, 2, 64, 64, 16)
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(os.path.join(trained, "configs", "inference.json"))
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(os.path.join(trained, "models", "model.pt"), weights_only=True))
    torch.testing.assert_close(scripted(x), net.eval()(x), atol=1e-5, rtol=1e-4)
