"""The MONAI Label infer task (atlas label propagation), through MONAI Label's InferTask interface."""

import nibabel as nib
import numpy as np
import pytest
import torch

from regzoo.monailabel_app import AtlasLabelPropagation, FineTuneRegistration, demo_atlas

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
    from regzoo.monailabel_app import read_label_names

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


class _Datastore:
    """MONAI Label's datastore interface as far as the train task reads it."""

    def __init__(self, images):
        self.images = list(images)

    def list_images(self):
        return [f"id{i}" for i in range(len(self.images))]

    def get_image_uri(self, image_id):
        return self.images[int(image_id[2:])]


def _dice(label_file, truth_file):
    warped, truth = (np.asarray(nib.load(f).dataobj).astype(int) for f in (label_file, truth_file))
    values = [v for v in np.unique(truth) if v != 0]
    return float(np.mean([2 * ((warped == v) & (truth == v)).sum() / ((warped == v).sum() + (truth == v).sum())
                          for v in values]))  # fmt: skip


def test_fine_tuning_on_unlabelled_studies_improves_the_served_labels_and_never_serves_worse_weights(
    atlas_dir, tmp_path
):
    atlas_image, _ = demo_atlas(atlas_dir)
    image = atlas_image.replace("0001", "0002")
    truth = image.replace("aligned_norm", "aligned_seg35")
    checkpoint = _checkpoint("transmorph_tvf", tmp_path / "tm.pt", ("quick.json",), tvf=True)  # a constant shift
    weights = tmp_path / "model" / "transmorph_tvf_finetuned.pt"
    task = AtlasLabelPropagation(
        "transmorph_tvf", checkpoint, "quick.json", atlas_dir=atlas_dir, affine="none", weights=str(weights)
    )
    trainer = FineTuneRegistration(task, str(tmp_path / "model"))
    datastore = _Datastore([atlas_image, image])
    assert trainer.stats() == {} and task.served_weights() == checkpoint
    before = _dice(task({"image": image})[0], truth)

    frozen = trainer({"max_epochs": 1, "learning_rate": 0.0}, datastore)  # unchanged weights score the same
    assert frozen["pairs"] == 4 and not frozen["improved"] and not weights.exists()

    result = trainer({"max_epochs": 2}, datastore)
    assert result["improved"] and result["val_similarity_best"] > result["val_similarity_before"]
    assert weights.is_file() and task.served_weights() == str(weights) and trainer.stats() == result
    after = _dice(task({"image": image})[0], truth)  # the same task object serves the new weights
    print(f"Dice of the served labels: {before:.3f} before, {after:.3f} after fine-tuning ({result})")
    assert after > before + 0.02, (before, after)
    restarted = AtlasLabelPropagation(
        "transmorph_tvf", checkpoint, "quick.json", atlas_dir=atlas_dir, affine="none", weights=str(weights)
    )
    assert abs(_dice(restarted({"image": image})[0], truth) - after) < 1e-6  # and a restarted server too


def test_fine_tuning_pairs():
    from common.realscan.finetune import finetune_pairs

    pairs = finetune_pairs(["a", "b", "c"], "atlas")
    assert pairs[:3] == [{"fixed": x, "moving": "atlas"} for x in "abc"]
    assert all(p["fixed"] != p["moving"] for p in pairs) and len(pairs) == 6
    assert len(finetune_pairs(["a", "b", "c"], "atlas", max_pairs=4)) == 4
    assert finetune_pairs(["a", "b"], None) == [{"fixed": "a", "moving": "b"}, {"fixed": "b", "moving": "a"}]
    with pytest.raises(ValueError, match="at least 2 images"):
        finetune_pairs(["a"], None)
