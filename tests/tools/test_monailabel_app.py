"""The MONAI Label infer task (atlas label propagation), through MONAI Label's InferTask interface."""

import nibabel as nib
import numpy as np
import pytest
import torch

from tools.monailabel_app import AtlasLabelPropagation, demo_atlas

from .test_register import _checkpoint


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("atlas"))


def _zero_field(path):
    """transmorph_tvf (quick) weights whose velocity heads output zero: the identity transform."""
    state = torch.load(_checkpoint("transmorph_tvf", path, ("quick.json",), tvf=True), weights_only=True)
    for key in state:
        if key.startswith("step_heads."):
            state[key].zero_()
    torch.save(state, path)
    return str(path)


def test_identity_registration_returns_the_atlas_labels_on_the_image_grid(atlas_dir, tmp_path):
    atlas_image, atlas_label = demo_atlas(atlas_dir)
    image = atlas_image.replace("0001", "0002")  # the other demo subject, same grid as the atlas
    task = AtlasLabelPropagation(
        "transmorph_tvf", _zero_field(tmp_path / "zero.pt"), "quick.json", atlas_dir=atlas_dir, affine="none"
    )
    info = task.info()
    assert info["type"] == "segmentation" and info["dimension"] == 3 and task.is_valid()
    label_file, result = task({"image": image, "result_path": str(tmp_path / "label.nii.gz")})
    out, truth = nib.load(label_file), nib.load(atlas_label)
    assert out.shape == nib.load(image).shape and np.allclose(out.affine, nib.load(image).affine)
    assert np.array_equal(np.asarray(out.dataobj), np.asarray(truth.dataobj))
    assert result["njd_percent"] == 0.0


def test_a_deforming_network_moves_the_labels_and_bad_requests_are_refused(atlas_dir, tmp_path):
    atlas_image, atlas_label = demo_atlas(atlas_dir)
    image = atlas_image.replace("0001", "0002")
    checkpoint = _checkpoint("transmorph_tvf", tmp_path / "tm.pt", ("quick.json",), tvf=True)
    task = AtlasLabelPropagation("transmorph_tvf", checkpoint, "quick.json", atlas_dir=atlas_dir)
    label_file, _ = task({"image": image})
    warped = np.asarray(nib.load(label_file).dataobj)
    atlas = np.asarray(nib.load(atlas_label).dataobj)
    assert set(np.unique(warped)) <= set(np.unique(atlas)) and not np.array_equal(warped, atlas)
    with pytest.raises(ValueError, match="names no 'image'"):
        task({})
    with pytest.raises(ValueError, match="atlas file not found"):
        AtlasLabelPropagation(
            "transmorph_tvf", checkpoint, "quick.json", atlas_image="a.nii.gz", atlas_label="b.nii.gz"
        )
