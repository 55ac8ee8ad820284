"""Soft Dice loss on one-hot label maps (labels warped as one-hot with linear interpolation, DESIGN.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

__all__ = ["one_hot", "SoftDiceLoss"]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer label map ``(B, 1, *spatial)`` -> float one-hot ``(B, num_classes, *spatial)``."""
    if labels.ndim < 3 or labels.shape[1] != 1:
        raise ValueError(f"labels must have shape (B, 1, *spatial), got {tuple(labels.shape)}")
    index = labels[:, 0].round().long()
    if index.min() < 0 or index.max() >= num_classes:
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1} for num_classes={num_classes}, "
            f"got values {int(index.min())}..{int(index.max())}"
        )
    return F.one_hot(index, num_classes).movedim(-1, 1).float()


class SoftDiceLoss(DiceLoss):
    """``1 - soft Dice`` of one-hot maps ``(B, K, *spatial)`` (MONAI ``DiceLoss``, no activation).

    Background (channel 0) is excluded unless ``include_background=True``; mean over classes and batch.
    """

    def __init__(self, include_background: bool = False, smooth: float = 1e-5) -> None:
        super().__init__(
            include_background=include_background,
            to_onehot_y=False,
            sigmoid=False,
            softmax=False,
            smooth_nr=smooth,
            smooth_dr=smooth,
        )
