"""Evaluation metrics: overlap (Dice, HD95), transform regularity (Jacobian based), image fidelity."""

from .cumulative import ImageSimilarityMetric, LabelDiceMetric, LabelHD95Metric, RegularityMetric
from .image import nmse, psnr, ssim
from .overlap import ACDC_GROUPS, dice_per_label, grouped_dice, hd95_per_label, labels_present_in_both
from .pair import dice_row, jacobian_row, pair_metrics
from .regularity import (
    folding_ratio,
    mean_grad_jacobian,
    njd_percent,
    sdlogj,
    std_jacobian,
)

__all__ = [
    "ACDC_GROUPS",
    "ImageSimilarityMetric",
    "LabelDiceMetric",
    "LabelHD95Metric",
    "RegularityMetric",
    "dice_per_label",
    "dice_row",
    "folding_ratio",
    "grouped_dice",
    "hd95_per_label",
    "jacobian_row",
    "labels_present_in_both",
    "mean_grad_jacobian",
    "njd_percent",
    "nmse",
    "pair_metrics",
    "psnr",
    "sdlogj",
    "ssim",
    "std_jacobian",
]
