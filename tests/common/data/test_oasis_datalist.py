import json
import os

import pytest

from common.data import (
    DataError,
    RandomPairDataset,
    atlas_pairs,
    consecutive_pairs,
    learn2reg_pairs,
    load_datalist,
    oasis_split,
    oasis_subjects,
    pair_transforms,
)


def test_oasis_subjects_and_split(oasis_demo):
    subjects = oasis_subjects(oasis_demo)
    assert [s["subject"] for s in subjects][:2] == ["OASIS_OAS1_0001_MR1", "OASIS_OAS1_0002_MR1"]
    assert len(oasis_split(oasis_demo, "training")) == 8
    assert [s["subject"] for s in oasis_split(oasis_demo, "testing")] == ["OASIS_OAS1_0010_MR1"]


def test_fixed_and_atlas_pairs(oasis_demo):
    subjects = oasis_subjects(oasis_demo)
    pairs = consecutive_pairs(subjects[:3])
    assert pairs[0]["fixed"] == subjects[0]["image"] and pairs[0]["moving"] == subjects[1]["image"]
    atlas = atlas_pairs(subjects[1:3], subjects[0])
    assert all(p["moving"] == subjects[0]["image"] and p["moving_label"] == subjects[0]["label"] for p in atlas)


def test_random_pairs_are_inter_subject_and_change(oasis_demo):
    subjects = oasis_split(oasis_demo, "training")
    ds = RandomPairDataset(subjects, pair_transforms(image_keys=("image",), label_keys=("label",)), seed=1)
    draws = [ds[0]["moving_subject"] for _ in range(12)]
    assert all(d != subjects[0]["subject"] for d in draws)
    assert len(set(draws)) > 3
    item = ds[3]
    assert item["fixed"].shape == item["moving_label"].shape == (1, 80, 96, 112)


def test_learn2reg_json(oasis_demo, tmp_path):
    images, labels = tmp_path / "imagesTr", tmp_path / "labelsTr"
    images.mkdir()
    labels.mkdir()
    for k, s in enumerate(oasis_subjects(oasis_demo)[:2]):
        os.symlink(s["image"], images / f"OASIS_{k:04d}_0000.nii.gz")
        os.symlink(s["label"], labels / f"OASIS_{k:04d}_0000.nii.gz")
    spec = {
        "registration_val": [
            {"fixed": "./imagesTr/OASIS_0000_0000.nii.gz", "moving": "./imagesTr/OASIS_0001_0000.nii.gz"}
        ]
    }
    (tmp_path / "OASIS_dataset.json").write_text(json.dumps(spec))
    pair = learn2reg_pairs(str(tmp_path / "OASIS_dataset.json"))[0]
    assert pair["fixed_label"] == str(labels / "OASIS_0000_0000.nii.gz")
    with pytest.raises(DataError, match="no 'registration_test' list"):
        learn2reg_pairs(str(tmp_path / "OASIS_dataset.json"), "registration_test")


def test_multimodal_datalist(oasis_demo):
    pairs = load_datalist(os.path.join(oasis_demo, "dataset_multimodal.json"), "training")
    assert pairs[0]["moving"].endswith("aligned_norm_t2.nii.gz") and pairs[0]["fixed"].endswith("aligned_norm.nii.gz")
    out = pair_transforms()(pairs[0])
    assert out["moving"].shape == out["fixed_label"].shape == (1, 80, 96, 112)


def test_datalist_errors_name_the_json_and_the_entry(oasis_demo, tmp_path):
    spec = {
        "training": [
            {
                "fixed": os.path.join(oasis_demo, "OASIS_OAS1_0001_MR1", "aligned_norm.nii.gz"),
                "moving": "missing.nii.gz",
            }
        ]
    }
    path = tmp_path / "list.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(DataError, match=r"list.json: training\[0\]\['moving'\]: .*missing.nii.gz: file not found"):
        load_datalist(str(path))
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_datalist(str(path))
    path.write_text(json.dumps({"training": []}))
    with pytest.raises(DataError, match="is empty"):
        load_datalist(str(path))
    with pytest.raises(DataError, match="OASIS folder not found"):
        oasis_subjects(str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no OASIS_OAS1_NNNN_MR1 subject folder"):
        oasis_subjects(str(tmp_path / "empty"))
