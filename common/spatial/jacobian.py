"""Jacobian determinant of the transform ``p -> p + u(p)``: the one implementation every metric uses."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .checks import as_tuple, check_field

__all__ = ["jacobian_matrix", "jacobian_determinant"]


def jacobian_matrix(ddf: torch.Tensor, spacing: Sequence[float] | float | None = None) -> torch.Tensor:
    """Jacobian ``J[i, j] = delta_ij + d u_i / d p_j`` of ``p -> p + u(p)``: shape ``(B, ndim, ndim, *spatial)``.

    Central differences inside, one-sided (first order) at the border (``torch.gradient``).
    ``spacing=None``: ``ddf`` in voxel units, unit steps. With ``spacing`` (per axis, e.g. millimetres),
    ``ddf`` is taken to be in those physical units and derivatives use the physical step; a voxel-unit
    field needs no spacing, its determinant does not depend on it.
    """
    ndim = check_field(ddf, "ddf")
    step = as_tuple(1.0 if spacing is None else spacing, ndim, "spacing")
    if any(s <= 0 for s in step):
        raise ValueError(f"spacing must be positive, got {step}")
    size = ddf.shape[2:]
    if min(size) < 2:
        raise ValueError(f"ddf needs at least 2 voxels along every spatial axis, got shape {tuple(ddf.shape)}")
    grads = torch.gradient(ddf, spacing=[float(s) for s in step], dim=list(range(2, ndim + 2)))
    jac = torch.stack(grads, dim=2)  # (B, ndim [component i], ndim [derivative j], *spatial)
    eye = torch.eye(ndim, device=ddf.device, dtype=ddf.dtype).view(1, ndim, ndim, *([1] * ndim))
    return jac + eye


def jacobian_determinant(ddf: torch.Tensor, spacing: Sequence[float] | float | None = None) -> torch.Tensor:
    """Determinant of the Jacobian of ``p -> p + u(p)``: shape ``(B, 1, *spatial)``; see :func:`jacobian_matrix`."""
    j = jacobian_matrix(ddf, spacing)
    if j.shape[1] == 2:
        det = j[:, 0, 0] * j[:, 1, 1] - j[:, 0, 1] * j[:, 1, 0]
    else:
        det = (
            j[:, 0, 0] * (j[:, 1, 1] * j[:, 2, 2] - j[:, 1, 2] * j[:, 2, 1])
            - j[:, 0, 1] * (j[:, 1, 0] * j[:, 2, 2] - j[:, 1, 2] * j[:, 2, 0])
            + j[:, 0, 2] * (j[:, 1, 0] * j[:, 2, 1] - j[:, 1, 1] * j[:, 2, 0])
        )
    return det.unsqueeze(1)
