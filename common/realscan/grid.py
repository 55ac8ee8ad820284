"""The network grid of a real pair: built from the fixed image, in the bundle's orientation and spacing, placed
around the fixed image's foreground.

Affines are nibabel voxel-to-world matrices (4 x 4, world in RAS millimetres). The network grid ``N`` is

    N = F @ P @ S

with ``F`` the fixed image's affine, ``P`` the axis permutation / flip that reorients the fixed voxel axes to
``orientation`` (what MONAI's ``Orientationd`` does: an oblique direction keeps its obliquity, as MONAI keeps it),
and ``S`` the scaling to ``pixdim`` with an offset that puts the grid's centre on the foreground's centre of mass,
rounded to a whole fixed voxel: a fixed image already in the bundle's orientation and spacing is then sampled on
its own voxels (no interpolation), cropped or zero-padded around the organ rather than the array centre.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

__all__ = ["foreground_centre", "network_grid", "reorientation"]


def reorientation(affine: np.ndarray, shape: Sequence[int], orientation: str | None = "RAS") -> np.ndarray:
    """4 x 4 voxel map ``P`` (new voxel index -> old voxel index) such that ``affine @ P`` has its voxel axes
    along ``orientation`` (e.g. ``"RAS"``: axis 0 towards Right, 1 Anterior, 2 Superior); identity for ``None``."""
    if orientation is None:
        return np.eye(4)
    if len(orientation) != 3 or set(orientation.upper()) - set("RLAPSI"):
        raise ValueError(f"orientation must be three axis codes such as 'RAS', got {orientation!r}")
    transform = ornt_transform(io_orientation(affine), axcodes2ornt(tuple(orientation.upper())))
    return inv_ornt_aff(transform, tuple(shape))


def foreground_centre(image: torch.Tensor, threshold: float = 0.1) -> np.ndarray:
    """Centre of mass, in voxel coordinates (ndim,), of the intensities above ``threshold`` of an image
    ``(1, *spatial)`` in [0, 1]; the array centre when nothing is above it.

    The centre of mass rather than the bounding box: a neck or a large field of view moves the box's centre far
    more than the centre of the organ's mass."""
    values = image[0].to(torch.float64)
    weights = values * (values > threshold)
    total = float(weights.sum())
    shape = values.shape
    if total <= 0:
        return np.array([(n - 1) / 2 for n in shape])
    centre = []
    for axis in range(values.ndim):
        profile = weights.sum(dim=[a for a in range(values.ndim) if a != axis])
        centre.append(float((profile * torch.arange(shape[axis], dtype=torch.float64)).sum()) / total)
    return np.array(centre)


def network_grid(
    fixed_affine: np.ndarray,
    fixed_shape: Sequence[int],
    spatial_size: Sequence[int],
    pixdim: Sequence[float] | None = None,
    orientation: str | None = "RAS",
    centre: Sequence[float] | None = None,
) -> np.ndarray:
    """Affine ``N`` (4 x 4) of the network grid of size ``spatial_size`` (module docstring).

    Args:
        fixed_affine, fixed_shape: the fixed image's grid.
        spatial_size: the bundle's network input size, in the reoriented axis order.
        pixdim: the bundle's spacing (mm) in the reoriented axis order; ``None`` keeps the fixed image's.
        orientation: the bundle's training orientation (``"RAS"``), or ``None`` to keep the fixed voxel axes.
        centre: the point (fixed voxel coordinates) the grid is centred on: the foreground centre
            (:func:`foreground_centre`); ``None``: the array centre.
    """
    fixed_affine = np.asarray(fixed_affine, dtype=np.float64)
    if abs(np.linalg.det(fixed_affine[:3, :3])) < 1e-12:
        raise ValueError("the fixed image's affine is singular (zero spacing or degenerate direction)")
    shape = tuple(int(n) for n in fixed_shape)
    permute = reorientation(fixed_affine, shape, orientation)
    spacing = np.linalg.norm((fixed_affine @ permute)[:3, :3], axis=0)
    target = spacing if pixdim is None else np.asarray(pixdim, dtype=np.float64)
    if target.shape != (3,) or not (target > 0).all():
        raise ValueError(f"pixdim must be three positive spacings in mm, got {pixdim}")
    size = np.asarray(spatial_size, dtype=np.float64)
    middle = np.array([(n - 1) / 2 for n in shape]) if centre is None else np.asarray(centre, dtype=np.float64)
    middle = (np.linalg.inv(permute) @ np.append(middle, 1.0))[:3]  # in reoriented voxel coordinates
    scale = target / spacing
    offset = np.round(middle - scale * (size - 1) / 2)
    grid = np.eye(4)
    grid[:3, :3] = np.diag(scale)
    grid[:3, 3] = offset
    return fixed_affine @ permute @ grid
