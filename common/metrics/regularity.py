"""Regularity of a transform from its Jacobian determinant ``det J`` ``(B, 1, *spatial)`` (``common.spatial``).

Every function returns one value per batch element, shape ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "njd_percent",
    "folding_ratio",
    "std_jacobian",
    "sdlogj",
    "mean_grad_jacobian",
]


def _flat(det: torch.Tensor) -> torch.Tensor:
    if det.ndim not in (4, 5) or det.shape[1] != 1:
        raise ValueError(f"det must have shape (B, 1, *spatial) with 2 or 3 spatial axes, got {tuple(det.shape)}")
    return det.flatten(1).double()


def njd_percent(det: torch.Tensor) -> torch.Tensor:
    """NJD%: percentage of voxels with ``det J <= 0`` (DiffuseReg, TransMorph)."""
    return 100.0 * (_flat(det) <= 0).double().mean(1)


def folding_ratio(det: torch.Tensor) -> torch.Tensor:
    """Fraction of voxels with ``det J < 0`` (MIDIR)."""
    return (_flat(det) < 0).double().mean(1)


def std_jacobian(det: torch.Tensor) -> torch.Tensor:
    """Standard deviation of ``det J`` (DiffuseReg's "JSD")."""
    return _flat(det).std(1, unbiased=False)


def sdlogj(det: torch.Tensor, variant: str = "plain") -> torch.Tensor:
    """Standard deviation of ``log det J``.

    ``"plain"``: ``std(log(clip(det J, 1e-9, 1e9)))`` over all voxels.
    ``"l2r2021"``: the Learn2Reg 2021 evaluation, ``std(log(clip(det J + 3, 1e-9, 1e9)))`` with 2 voxels
    cropped from every border, kept as published so figures compare with the challenge tables.
    """
    if variant == "plain":
        return torch.log(_flat(det).clamp(1e-9, 1e9)).std(1, unbiased=False)
    if variant == "l2r2021":
        _flat(det)
        inner = det[(slice(None), slice(None)) + (slice(2, -2),) * (det.ndim - 2)]
        return torch.log((inner.flatten(1).double() + 3).clamp(1e-9, 1e9)).std(1, unbiased=False)
    raise ValueError(f"variant must be 'plain' or 'l2r2021', got {variant!r}")


def mean_grad_jacobian(det: torch.Tensor, spacing: Sequence[float] | None = None) -> torch.Tensor:
    """Mean magnitude of the spatial gradient of ``det J`` (MIDIR's smoothness figure)."""
    _flat(det)
    dims = list(range(2, det.ndim))
    step = [1.0] * len(dims) if spacing is None else [float(s) for s in spacing]
    grads = torch.gradient(det.double(), spacing=step, dim=dims)
    return torch.sqrt(sum(g * g for g in grads)).flatten(1).mean(1)
