"""The per-pair metrics row every evaluation writes (the bundles' tables, ``regzoo register``, sampling snapshots,
trajectories, the benchmarks), computed one way: Dice averaged over labels ignoring labels absent from both maps
(``nanmean``), HD95 in mm on the fixed image's spacing, and the Jacobian figures of ``common.metrics.regularity``
(det J from a DDF in voxels; the standard deviation of det J is the population one)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from .overlap import dice_per_label, grouped_dice, hd95_per_label, labels_present_in_both
from .regularity import folding_ratio, mean_grad_jacobian, njd_percent, sdlogj, std_jacobian

__all__ = ["dice_row", "jacobian_row", "pair_metrics"]


def dice_row(
    warped: torch.Tensor,
    fixed: torch.Tensor,
    labels: Sequence[int] | None = None,
    moving: torch.Tensor | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    spacing: Sequence[float] | None = None,
    hd95: bool = False,
    per_label: bool = True,
) -> dict[str, float]:
    """Overlap of one pair's warped moving labels with the fixed labels, both ``(1, 1, *spatial)``:
    ``dice_<label>`` (``per_label``), ``dice_mean`` over ``labels`` (default: those present in both maps; NaN
    when there are none), ``dice_<group>`` for ``groups``, ``dice_initial`` (the moving labels before warping,
    when given) and ``hd95_mm`` (``hd95``, mean over the labels, in mm with ``spacing``)."""
    warped, fixed = warped.round(), fixed.round()
    labels = list(labels) if labels is not None else labels_present_in_both(warped, fixed)
    row: dict[str, float] = {}
    if not labels:
        row["dice_mean"] = math.nan
        if moving is not None:
            row["dice_initial"] = math.nan
        return row
    dice = dice_per_label(warped, fixed, labels)[0]
    if per_label:
        row.update({f"dice_{value}": float(score) for value, score in zip(labels, dice.tolist())})
    row["dice_mean"] = float(torch.nanmean(dice))
    for group, score in (grouped_dice(warped, fixed, groups) if groups else {}).items():
        row[f"dice_{group}"] = float(score[0])
    if moving is not None:
        row["dice_initial"] = float(torch.nanmean(dice_per_label(moving.round(), fixed, labels)[0]))
    if hd95:
        row["hd95_mm"] = float(torch.nanmean(hd95_per_label(warped.cpu(), fixed.cpu(), labels, spacing)))
    return row


def jacobian_row(det: torch.Tensor) -> dict[str, float]:
    """Regularity of one pair's det J ``(1, 1, *spatial)``: NJD %, folding ratio, std det J, SDlogJ (plain and
    Learn2Reg 2021; the latter needs more than 4 voxels along every axis), mean |grad det J|."""
    return {
        "njd_percent": float(njd_percent(det)[0]),
        "folding_ratio": float(folding_ratio(det)[0]),
        "std_jacobian": float(std_jacobian(det)[0]),
        "sdlogj": float(sdlogj(det)[0]),
        "sdlogj_l2r2021": float(sdlogj(det, "l2r2021")[0]) if min(det.shape[2:]) > 4 else math.nan,
        "mean_grad_jacobian": float(mean_grad_jacobian(det)[0]),
    }


def pair_metrics(
    warped_label: torch.Tensor | None = None,
    fixed_label: torch.Tensor | None = None,
    det: torch.Tensor | None = None,
    **dice_options,
) -> dict[str, float]:
    """The whole row of one pair: :func:`dice_row` when both label maps are given, :func:`jacobian_row` when det J
    is."""
    row: dict[str, float] = {}
    if warped_label is not None and fixed_label is not None:
        row.update(dice_row(warped_label, fixed_label, **dice_options))
    if det is not None:
        row.update(jacobian_row(det))
    return row
