import math

import pytest
import torch

from common.metrics import (
    ACDC_GROUPS,
    LabelDiceMetric,
    dice_per_label,
    grouped_dice,
    hd95_per_label,
    labels_present_in_both,
)


def boxes():
    pred = torch.zeros(1, 1, 10, 10)
    target = torch.zeros(1, 1, 10, 10)
    pred[..., 0:4, 0:5] = 1  # 20 voxels
    target[..., 0:4, 2:7] = 1  # 20 voxels, 12 shared
    pred[..., 6:8, 0:2] = 3  # 4 voxels
    target[..., 6:8, 0:2] = 3
    return pred, target


def test_dice_per_label_by_counting():
    pred, target = boxes()
    dice = dice_per_label(pred, target, [1, 2, 3])
    assert dice[0, 0].item() == pytest.approx(2 * 12 / 40)
    assert math.isnan(dice[0, 1].item())  # label 2 absent from both
    assert dice[0, 2].item() == pytest.approx(1.0)


def test_acdc_groups_use_unions():
    pred, target = boxes()
    groups = grouped_dice(pred, target, ACDC_GROUPS)
    # whole heart = labels 1..3: 24 voxels each, 16 shared
    assert groups["WholeHeart"].item() == pytest.approx(2 * 16 / 48)
    assert groups["LV"].item() == pytest.approx(1.0)
    assert labels_present_in_both(pred, target) == [1, 3]


def test_labels_present_in_both_counts_large_and_negative_values():
    pred = torch.tensor([0, 7, 1000, 1000, -2, 5.0]).view(1, 1, 1, 2, 3)
    target = torch.tensor([1000, 7, 7, -2, 0, 0.0]).view(1, 1, 1, 2, 3)
    assert labels_present_in_both(pred, target) == [-2, 7, 1000]  # the negative map goes through unique
    assert labels_present_in_both(pred.abs(), target.abs()) == [2, 7, 1000]  # non-negative: bincount
    huge = torch.tensor([0, 7, 2.0**40]).view(1, 1, 1, 1, 3)  # a count table of 2^40 entries is never built
    assert labels_present_in_both(huge, huge) == [7, 2**40]


def test_hd95_in_millimetres_for_a_shifted_cube():
    pred = torch.zeros(1, 1, 20, 20, 20)
    target = torch.zeros(1, 1, 20, 20, 20)
    pred[..., 5:12, 5:12, 5:12] = 1
    target[..., 5:12, 5:12, 7:14] = 1  # shifted by 2 voxels along axis 2
    hd_vox = hd95_per_label(pred, target, [1])
    hd_mm = hd95_per_label(pred, target, [1], spacing=(1.0, 1.0, 3.0))
    assert hd_vox[0, 0].item() == pytest.approx(2.0)
    assert hd_mm[0, 0].item() == pytest.approx(6.0)
    assert math.isnan(hd95_per_label(pred, target, [2])[0, 0].item())


def test_cumulative_dice_metric_averages_pairs_ignoring_nan():
    pred, target = boxes()
    metric = LabelDiceMetric(labels=[1, 2, 3])
    metric(pred, target)
    metric(target, target)
    per_label = LabelDiceMetric(labels=[1, 2, 3], reduction="none")
    per_label(pred, target)
    per_label(target, target)
    torch.testing.assert_close(per_label.aggregate()[0], torch.tensor((0.6 + 1.0) / 2, dtype=torch.float64))
    assert metric.aggregate().item() == pytest.approx(((0.6 + 1.0) / 2 + 1.0) / 2)


def test_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        dice_per_label(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5), [1])
    with pytest.raises(ValueError, match="exactly one"):
        LabelDiceMetric()
