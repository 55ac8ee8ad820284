"""The template data kind: subjects of the MNI ICBM152 2009 template read from the nilearn wheel's files (the
README's test command installs them), checked against the anatomy and MNI space itself."""

import nibabel as nib
import numpy as np
import pytest
import torch

from common.data import DataError, ensure_demo_data
from common.data.template import MNI_GROUPS, MNI_LABELS, template_files, template_volumes

try:
    template_files()
except DataError as err:
    pytest.skip(str(err), allow_module_level=True)


def test_template_labels_lie_in_their_mni_sectors_and_white_matter_is_brighter_on_t1():
    t1, labels, affine = template_volumes((40, 48, 56))
    assert np.allclose(np.diag(affine)[:3], affine[0, 0]) and 3.5 < affine[0, 0] < 4.5  # isotropic, about 4 mm
    assert set(np.unique(labels.numpy())) == {0, *MNI_LABELS}
    ijk = np.argwhere(labels.numpy() > 0)
    world = nib.affines.apply_affine(affine, ijk)
    values = labels.numpy()[tuple(ijk.T)]
    for label, name in MNI_LABELS.items():
        centre = world[values == label].mean(0)
        assert (centre[0] < 0) == name.startswith("left"), name
        assert (centre[1] > -18) == ("anterior" in name), name
        assert (centre[2] > 18) == ("superior" in name), name
    # real T1 contrast, not a construction of this code: white matter brighter than grey matter
    grey = t1[torch.isin(labels, torch.tensor(MNI_GROUPS["GM"]))].mean()
    white = t1[torch.isin(labels, torch.tensor(MNI_GROUPS["WM"]))].mean()
    assert white > grey + 0.1
    assert labels[0].max() == labels[-1].max() == labels[:, :, 0].max() == labels[:, :, -1].max() == 0  # margin


def test_template_subjects_are_deterministic_deformed_copies_in_the_oasis_layout(tmp_path):
    root = ensure_demo_data(str(tmp_path / "mni"), "mni", subjects=3, seed=0, size=(40, 48, 56))
    again = ensure_demo_data(str(tmp_path / "mni2"), "mni", subjects=3, seed=0, size=(40, 48, 56))
    _, template, _ = template_volumes((40, 48, 56))
    for n in (1, 2, 3):
        name = f"OASIS_OAS1_{n:04d}_MR1"
        image = nib.load(f"{root}/{name}/aligned_norm.nii.gz")
        label = np.asarray(nib.load(f"{root}/{name}/aligned_seg35.nii.gz").dataobj)
        assert (
            image.shape == label.shape == (40, 48, 56) and 0 <= image.get_fdata().min() <= image.get_fdata().max() <= 1
        )
        assert np.array_equal(label, np.asarray(nib.load(f"{again}/{name}/aligned_seg35.nii.gz").dataobj))
        overlap = (label == template.numpy()) & (label > 0)
        dice = 2 * overlap.sum() / ((label > 0).sum() + (template.numpy() > 0).sum())
        assert 0.5 < dice < 0.97, dice  # deformed, but the same anatomy
    first, second = (np.asarray(nib.load(f"{root}/OASIS_OAS1_000{n}_MR1/aligned_seg35.nii.gz").dataobj) for n in (1, 2))
    assert not np.array_equal(first, second)


def test_a_missing_nilearn_is_named_with_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install nilearn"):
        template_files()
