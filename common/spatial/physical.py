"""From voxel displacements on a network grid to physical transforms on the original images' grids.

Affines are NIfTI/nibabel voxel-to-world matrices (4 x 4, world in RAS millimetres). A network DDF ``u`` on a
grid maps voxel ``c`` of the *source* grid (affine ``S``) to voxel ``c + u(c)`` of the *target* grid (affine
``T``; the two network grids share their voxel index space, e.g. fixed and moving after the same resampling and
crop). Its physical transform is ``x -> T (S^-1 x + u(S^-1 x))`` and its physical displacement
``d(x) = T (S^-1 x + u(S^-1 x)) - x`` (RAS, mm), evaluated here on any output grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .warp import identity_grid

__all__ = [
    "RAS_TO_LPS",
    "apply_affine",
    "grid_world",
    "physical_displacement",
    "resample_affine",
    "sample_points",
    "sample_world",
    "warp_physical",
]

#: RAS <-> LPS (ITK's physical convention): negate the first two world axes.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def sample_points(
    image: torch.Tensor, points: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border"
) -> torch.Tensor:
    """``image`` (C, *size) sampled at continuous voxel coordinates ``points`` (ndim, *out) -> (C, *out)."""
    size = image.shape[1:]
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in size], dtype=points.dtype, device=points.device)
    grid = (points.movedim(0, -1) * scale - 1.0).flip(-1).unsqueeze(0).to(image.dtype)
    out = F.grid_sample(image.unsqueeze(0), grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    return out[0]


def apply_affine(affine: np.ndarray, points: torch.Tensor) -> torch.Tensor:
    """Affine ``(ndim+1)^2`` applied to points ``(ndim, *shape)``."""
    a = torch.as_tensor(affine, dtype=points.dtype, device=points.device)
    ndim = points.shape[0]
    flat = points.reshape(ndim, -1)
    return (a[:ndim, :ndim] @ flat + a[:ndim, ndim:]).reshape(points.shape)


def physical_displacement(
    ddf: torch.Tensor,
    source_affine: np.ndarray,
    target_affine: np.ndarray,
    out_affine: np.ndarray,
    out_shape: Sequence[int],
) -> torch.Tensor:
    """Physical displacement ``d(x)`` (RAS mm, ``(ndim, *out_shape)``, float64) on the grid ``out_affine`` /
    ``out_shape`` of the network DDF ``ddf`` (ndim, *net_shape) in voxels (module docstring). Outside the network
    grid the DDF is continued by its border value."""
    world = apply_affine(out_affine, identity_grid(out_shape, dtype=torch.float64))
    source = apply_affine(np.linalg.inv(source_affine), world)
    moved = source + sample_points(ddf.detach().to(torch.float64).cpu(), source, padding_mode="border")
    return apply_affine(target_affine, moved) - world


def grid_world(affine: np.ndarray, shape: Sequence[int], device=None) -> torch.Tensor:
    """World (RAS mm) coordinates ``(ndim, *shape)``, float64, of the voxels of the grid ``affine`` / ``shape``."""
    return apply_affine(affine, identity_grid(shape, device=device, dtype=torch.float64))


def sample_world(
    image: torch.Tensor, image_affine: np.ndarray, world: torch.Tensor, mode: str = "bilinear"
) -> torch.Tensor:
    """``image`` (C, *size) with voxel-to-world ``image_affine`` sampled at world points ``world`` (ndim, *out)
    (RAS mm) -> (C, *out), in ``image``'s dtype.

    As ITK's resampling: the image covers its voxels' boxes (continuous indices -0.5 .. n - 0.5), inside which
    interpolation replicates the border voxels; outside it the result is zero."""
    points = apply_affine(np.linalg.inv(image_affine), world.to(torch.float64))
    out = sample_points(image, points.to(image.device), mode=mode, padding_mode="border")
    size = torch.tensor(image.shape[1:], dtype=points.dtype, device=points.device)
    inside = ((points >= -0.5) & (points < size.view(-1, *([1] * (points.ndim - 1))) - 0.5)).all(0)
    return out * inside.to(out.device, out.dtype)


def resample_affine(
    image: torch.Tensor,
    image_affine: np.ndarray,
    out_affine: np.ndarray,
    out_shape: Sequence[int],
    world_map: np.ndarray | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """``image`` (C, *size) resampled onto the grid ``out_affine`` / ``out_shape`` through the world-space affine
    ``world_map`` (``(ndim+1)^2``, output-grid point -> image point, RAS mm; identity when ``None``): the value at
    output voxel ``j`` is ``image(image_affine^-1 world_map out_affine j)`` (:func:`sample_world`)."""
    full = out_affine if world_map is None else np.asarray(world_map, dtype=np.float64) @ out_affine
    return sample_world(image, image_affine, grid_world(full, out_shape), mode=mode)


def warp_physical(
    image: torch.Tensor,
    image_affine: np.ndarray,
    displacement: torch.Tensor,
    out_affine: np.ndarray,
    mode: str = "bilinear",
) -> torch.Tensor:
    """``image`` (C, *size) with ``image_affine`` resampled at ``x + d(x)`` for the points ``x`` of the grid
    ``out_affine`` on which ``displacement`` (ndim, *out_shape, RAS mm) lives (:func:`sample_world`, in
    ``image``'s dtype)."""
    world = grid_world(out_affine, displacement.shape[1:]) + displacement.to(torch.float64).cpu()
    return sample_world(image, image_affine, world, mode=mode)
