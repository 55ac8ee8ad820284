"""Resizing displacement fields between grids."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .checks import as_tuple, check_field

__all__ = ["resize_displacement"]


def resize_displacement(ddf: torch.Tensor, size: Sequence[int] | int) -> torch.Tensor:
    """Resample ``ddf`` (B, ndim, *spatial), voxel units, to ``size`` and rescale its values.

    Resampling is (bi/tri)linear with ``align_corners=True``, the warping convention, so the first and last
    voxel centres of both grids coincide and one voxel of the old grid spans ``(n_new - 1) / (n_old - 1)``
    voxels of the new one: channel ``c`` is multiplied by that size ratio of axis ``c``. An affine field
    stays exactly the same physical transform.
    """
    ndim = check_field(ddf, "ddf")
    size = tuple(int(s) for s in as_tuple(size, ndim, "size"))
    if any(s < 1 for s in size):
        raise ValueError(f"size must be positive, got {size}")
    old = ddf.shape[2:]
    if tuple(old) == size:
        return ddf
    ratio = [(n - 1) / (o - 1) if o > 1 else 1.0 for n, o in zip(size, old)]
    mode = "bilinear" if ndim == 2 else "trilinear"
    out = F.interpolate(ddf, size=size, mode=mode, align_corners=True)
    return out * torch.tensor(ratio, device=ddf.device, dtype=ddf.dtype).view(1, ndim, *([1] * ndim))
