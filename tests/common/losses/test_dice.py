import pytest
import torch

from common.losses import SoftDiceLoss, one_hot


def test_identical_is_zero_disjoint_is_one():
    a = torch.zeros(1, 1, 8, 8)
    a[..., :4, :] = 1
    b = 1 - a
    assert SoftDiceLoss()(one_hot(a, 2), one_hot(a, 2)).item() == pytest.approx(0.0, abs=1e-6)
    assert SoftDiceLoss()(one_hot(a, 2), one_hot(b, 2)).item() == pytest.approx(1.0, abs=1e-6)


def test_half_overlap():
    a = torch.zeros(1, 1, 8, 8)
    b = torch.zeros(1, 1, 8, 8)
    a[..., :4, :] = 1  # 32 voxels
    b[..., 2:6, :] = 1  # 32 voxels, 16 shared: Dice 0.5
    assert SoftDiceLoss()(one_hot(a, 2), one_hot(b, 2)).item() == pytest.approx(0.5, abs=1e-5)


def test_one_hot_rejects_out_of_range():
    with pytest.raises(ValueError, match="0..2"):
        one_hot(torch.full((1, 1, 4, 4), 3.0), 3)
