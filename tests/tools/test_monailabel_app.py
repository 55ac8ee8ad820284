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


def test_label_names_from_the_demo_atlas_and_from_label_tables(atlas_dir, tmp_path):
    from common.data.files import DataError
    from tools.monailabel_app import read_label_names

    task = AtlasLabelPropagation("transmorph_tvf", _zero_field(tmp_path / "zero.pt"), "quick.json", atlas_dir=atlas_dir)
    assert task.info()["labels"]["cortex L"] == 1 and task.info()["labels"]["white matter R"] == 4
    (tmp_path / "names.json").write_text('{"liver": 1, "spleen": 2}')
    (tmp_path / "values.json").write_text('{"1": "liver", "2": "spleen"}')
    (tmp_path / "slicer.txt").write_text(
        "# Slicer colour table\n0 background 0 0 0 0\n1 liver 255 0 0 255\n2 spleen 0 255 0 255\n"
    )
    (tmp_path / "itksnap.txt").write_text(
        '# ITK-SnAP Label Description File\n    0     0    0    0        0  0  0    "Clear Label"\n'
        '    1   255    0    0        1  1  1    "Left liver"\n    2     0  255    0        1  1  1    "spleen"\n'
    )
    assert read_label_names(str(tmp_path / "names.json")) == read_label_names(str(tmp_path / "values.json"))
    assert read_label_names(str(tmp_path / "slicer.txt")) == {"liver": 1, "spleen": 2}
    assert read_label_names(str(tmp_path / "itksnap.txt")) == {"Left liver": 1, "spleen": 2}
    (tmp_path / "bad.txt").write_text("liver one\n")
    with pytest.raises(DataError, match="bad.txt: not a label table"):
        read_label_names(str(tmp_path / "bad.txt"))
