"""MONAI ``Cumulative`` metrics for ignite evaluators (``monai.handlers.IgniteMetricHandler``).

Each ``_compute_tensor(y_pred, y)`` returns one row per pair; ``aggregate()`` averages over pairs,
ignoring NaN (labels missing from a pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.metrics import CumulativeIterationMetric

from ..spatial.jacobian import jacobian_determinant
from .overlap import dice_per_label, grouped_dice, hd95_per_label
from .regularity import folding_ratio, mean_grad_jacobian, njd_percent, sdlogj, std_jacobian

__all__ = ["ImageSimilarityMetric", "LabelDiceMetric", "LabelHD95Metric", "RegularityMetric"]


class _PairMetric(CumulativeIterationMetric):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        self.reduction = reduction

    def aggregate(self):
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError("no pair has been added to the metric yet")
        per_column = torch.nanmean(data.double(), dim=0)
        return torch.nanmean(per_column) if self.reduction == "mean" else per_column


class LabelDiceMetric(_PairMetric):
    """Dice of warped moving labels (``y_pred``) against fixed labels (``y``), both ``(B, 1, *spatial)``.

    ``labels``: label values, one column each; or ``groups``: ``{name: labels}`` (e.g. ``ACDC_GROUPS``).
    ``aggregate()``: mean over labels and pairs, or one value per label with ``reduction="none"``.
    """

    def __init__(
        self,
        labels: Sequence[int] | None = None,
        groups: Mapping[str, Sequence[int]] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction)
        if (labels is None) == (groups is None):
            raise ValueError("give exactly one of labels or groups")
        self.labels, self.groups = labels, groups

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.groups is not None:
            return torch.stack(list(grouped_dice(y_pred, y, self.groups).values()), dim=1)
        return dice_per_label(y_pred, y, self.labels)


class LabelHD95Metric(_PairMetric):
    """HD95 per label (``spacing`` in mm) of warped moving labels against fixed labels."""

    def __init__(self, labels: Sequence[int], spacing: Sequence[float] | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.labels, self.spacing = labels, spacing

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return hd95_per_label(y_pred, y, self.labels, self.spacing)


class RegularityMetric(_PairMetric):
    """A regularity figure of the predicted DDF (``y_pred``, voxel units); ``y`` is ignored.

    ``name``: ``njd_percent``, ``folding_ratio``, ``std_jacobian``, ``sdlogj``, ``sdlogj_l2r2021`` or
    ``mean_grad_jacobian``.
    """

    _FUNCTIONS = {
        "njd_percent": njd_percent,
        "folding_ratio": folding_ratio,
        "std_jacobian": std_jacobian,
        "sdlogj": sdlogj,
        "sdlogj_l2r2021": lambda det: sdlogj(det, "l2r2021"),
        "mean_grad_jacobian": mean_grad_jacobian,
    }

    def __init__(self, name: str = "njd_percent") -> None:
        super().__init__("mean")
        if name not in self._FUNCTIONS:
            raise ValueError(f"name must be one of {sorted(self._FUNCTIONS)}, got {name!r}")
        self.name = name

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self._FUNCTIONS[self.name](jacobian_determinant(y_pred)).unsqueeze(1)


class ImageSimilarityMetric(_PairMetric):
    """Image similarity of the warped moving image (``y_pred``) to the fixed image (``y``), both ``(B, 1, *spatial)``:
    ``-similarity(warped, fixed)`` per pair, so higher is better, for a key metric where there are no labels (e.g.
    fine-tuning on a server's unlabelled studies). ``similarity``: an image loss such as the bundle's own
    ``LNCCLoss`` or ``ParzenNMILoss`` (lower is more similar)."""

    def __init__(self, similarity: torch.nn.Module) -> None:
        super().__init__("mean")
        self.similarity = similarity

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            values = [-self.similarity(y_pred[i : i + 1], y[i : i + 1]).detach().reshape(()) for i in range(len(y))]
        return torch.stack(values).unsqueeze(1)
