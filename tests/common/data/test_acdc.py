import os
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from common.data import DataError, acdc_pairs, acdc_sequences, acdc_subjects, pair_transforms, parse_info_cfg


def test_info_cfg_parsing(tmp_path):
    cfg = tmp_path / "Info.cfg"
    cfg.write_text("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n")
    assert parse_info_cfg(str(cfg)) == {
        "ED": 1,
        "ES": 12,
        "Group": "DCM",
        "Height": 184.0,
        "NbFrame": 30,
        "Weight": 95.0,
    }


@pytest.mark.parametrize(
    "text, match",
    [
        ("ES: 12\nNbFrame: 30\n", "no 'ED' entry"),
        ("ED: one\nES: 3\n", "'ED' must be a number"),
        ("ED: 1\nES: 40\nNbFrame: 30\n", "outside 1..30"),
        ("ED 1\n", "expected 'Key: value'"),
    ],
)
def test_info_cfg_errors_name_the_file(tmp_path, text, match):
    cfg = tmp_path / "Info.cfg"
    cfg.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        parse_info_cfg(str(cfg))
    assert str(cfg) in str(info.value)


def test_pairs_direction_and_files(acdc_demo):
    ed_es = acdc_pairs(acdc_demo, "training", "acdc", moving="ED")
    es_ed = acdc_pairs(acdc_demo, "training", "acdc", moving="ES")
    assert len(ed_es) == 10
    first = ed_es[0]
    info = parse_info_cfg(os.path.join(acdc_demo, "training", "patient001", "Info.cfg"))
    assert first["moving"].endswith("patient001_frame01.nii.gz")
    assert first["fixed"].endswith(f"patient001_frame{info['ES']:02d}.nii.gz")
    assert first["fixed_label"].endswith(f"patient001_frame{info['ES']:02d}_gt.nii.gz")
    assert es_ed[0]["moving"] == first["fixed"] and es_ed[0]["fixed"] == first["moving"]


def test_split_schemes(acdc_demo):
    names = lambda dirs: [os.path.basename(d) for d in dirs]  # noqa: E731
    assert names(acdc_subjects(acdc_demo, "training", "90/10")) == [f"patient{i:03d}" for i in range(1, 10)]
    assert names(acdc_subjects(acdc_demo, "testing", "90/10")) == ["patient010"]
    assert names(acdc_subjects(acdc_demo, "validation", "90/10")) == ["patient010"]
    assert names(acdc_subjects(acdc_demo, "testing", "acdc")) == ["patient011", "patient012", "patient013"]
    assert acdc_subjects(acdc_demo, "validation", "acdc") == []
    assert names(acdc_subjects(acdc_demo, "validation", "fsdiffreg")) == ["patient009", "patient010"]
    assert len(acdc_subjects(acdc_demo, "training", "fsdiffreg")) == 8
    with pytest.raises(ValueError, match="scheme"):
        acdc_subjects(acdc_demo, "training", "80/20")


def test_sequences_have_every_frame_labelled(acdc_demo):
    seq = acdc_sequences(acdc_demo, "testing", "acdc")[0]
    image = nib.load(seq["sequence"])
    labels = nib.load(seq["sequence_label"])
    assert image.shape == labels.shape and image.shape[3] == seq["nb_frames"]
    ed = np.asarray(nib.load(seq["moving_label"]).dataobj)
    np.testing.assert_array_equal(np.asarray(labels.dataobj)[..., seq["ed"] - 1], ed)


def test_preprocessing_gives_paper_grid_and_ranges(acdc_demo):
    pair = acdc_pairs(acdc_demo, "testing", "acdc")[0]
    raw_labels = set(np.unique(np.asarray(nib.load(pair["fixed_label"]).dataobj)).tolist())
    native_spacing = nib.load(pair["fixed"]).header.get_zooms()
    assert native_spacing[2] == pytest.approx(10.0)  # the phantoms are resampled like ACDC
    out = pair_transforms(pixdim=(1.5, 1.5, 3.15), spatial_size=(128, 128, 32))(pair)
    for key in ("moving", "fixed", "moving_label", "fixed_label"):
        assert out[key].shape == (1, 128, 128, 32)
        np.testing.assert_allclose(out[key].pixdim.numpy(), [1.5, 1.5, 3.15], atol=1e-4)
    for key in ("moving", "fixed"):
        assert out[key].min() >= 0 and out[key].max() <= 1 and out[key].max() > 0.99
    for key in ("moving_label", "fixed_label"):
        values = out[key].unique()
        assert torch.equal(values, values.round())
    assert set(out["fixed_label"].unique().int().tolist()) == raw_labels


def test_minmax_normalisation_option(acdc_demo):
    pair = acdc_pairs(acdc_demo, "testing", "acdc")[0]
    out = pair_transforms(intensity="minmax")(pair)
    raw = np.asarray(nib.load(pair["fixed"]).dataobj).astype(np.float32)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(out["fixed"][0].numpy(), expected, atol=1e-6)


def _copy_subject(acdc_demo, tmp_path):
    root = tmp_path / "acdc"
    shutil.copytree(os.path.join(acdc_demo, "training", "patient001"), root / "training" / "patient001")
    return root, root / "training" / "patient001"


def test_missing_es_file(acdc_demo, tmp_path):
    root, subject = _copy_subject(acdc_demo, tmp_path)
    es = parse_info_cfg(str(subject / "Info.cfg"))["ES"]
    os.remove(subject / f"patient001_frame{es:02d}.nii.gz")
    with pytest.raises(DataError, match=f"patient001_frame{es:02d}.nii.gz: missing ES image file"):
        acdc_pairs(str(root), "training", "acdc")


def test_info_without_ed(acdc_demo, tmp_path):
    root, subject = _copy_subject(acdc_demo, tmp_path)
    (subject / "Info.cfg").write_text("ES: 5\nNbFrame: 20\n")
    with pytest.raises(DataError, match="Info.cfg: no 'ED' entry"):
        acdc_pairs(str(root), "training", "acdc")


def test_label_of_another_shape(acdc_demo, tmp_path):
    root, subject = _copy_subject(acdc_demo, tmp_path)
    label = subject / "patient001_frame01_gt.nii.gz"
    img = nib.load(str(label))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-4], img.affine), str(label))
    pair = acdc_pairs(str(root), "training", "acdc")[0]
    with pytest.raises(DataError, match="patient001_frame01_gt.nii.gz: label 'moving_label' has shape"):
        pair_transforms()(pair)


def test_truncated_and_non_nifti_files(acdc_demo, tmp_path):
    root, subject = _copy_subject(acdc_demo, tmp_path)
    image = subject / "patient001_frame01.nii.gz"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    pair = acdc_pairs(str(root), "training", "acdc")[0]  # the header is intact
    with pytest.raises(DataError, match="patient001_frame01.nii.gz: cannot read the image"):
        pair_transforms()(pair)
    image.write_bytes(b"this is not an image")
    with pytest.raises(DataError, match="patient001_frame01.nii.gz: not a readable NIfTI"):
        acdc_pairs(str(root), "training", "acdc")


def test_2d_file_where_3d_required(acdc_demo, tmp_path):
    root, subject = _copy_subject(acdc_demo, tmp_path)
    image = subject / "patient001_frame01.nii.gz"
    img = nib.load(str(image))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine), str(image))
    with pytest.raises(DataError, match="patient001_frame01.nii.gz: has 2 dimensions .* expected a 3D image"):
        acdc_pairs(str(root), "training", "acdc")


def test_empty_folder(tmp_path):
    (tmp_path / "training").mkdir()
    with pytest.raises(DataError, match="no patientNNN subject folder"):
        acdc_pairs(str(tmp_path), "training", "acdc")
    with pytest.raises(DataError, match="ACDC folder not found"):
        acdc_pairs(str(tmp_path / "nowhere"), "training", "acdc")
