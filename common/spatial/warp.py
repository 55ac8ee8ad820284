"""Warping an image by a dense displacement field (DDF).

Convention (DESIGN.md, identical to ``monai.networks.blocks.Warp``): ``ddf`` is ``(B, ndim, *spatial)``
in voxel units, channel ``c`` along array axis ``c``; the warped image is ``image(p + ddf(p))``, sampled
with ``align_corners=True`` (voxel centres at the corners of the normalised grid).

Why not ``monai.networks.blocks.Warp`` itself: it is a module that caches its reference grid per
instance and warns at every construction; the integrators and composition need a plain function
called many times per step. ``tests/common/spatial/test_warp.py`` checks both give the same result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import check_field, check_image

__all__ = ["ddf_from_grid", "identity_grid", "warp", "sample_displaced", "warp_label"]

_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")


def identity_grid(size, device=None, dtype=torch.float32) -> torch.Tensor:
    """Voxel coordinates of a grid of ``size``: shape ``(ndim, *size)``, channel ``c`` = index along axis ``c``."""
    axes = [torch.arange(n, device=device, dtype=dtype) for n in size]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0)


_GRID_CACHE: dict = {}


def _normalised_identity(size, device, dtype) -> torch.Tensor:
    """Identity sampling grid of ``grid_sample``: ``(1, *size, ndim)`` in [-1, 1], last axis in (x, y, z) order.

    Cached per size/device/dtype (a few entries): rebuilding it took a third of scaling-and-squaring time.
    """
    key = (tuple(size), str(device), dtype)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        axes = [
            torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)
            if n > 1
            else torch.full((1,), -1.0, device=device, dtype=dtype)
            for n in size
        ]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij")[::-1], dim=-1).unsqueeze(0)
        if len(_GRID_CACHE) > 8:
            _GRID_CACHE.clear()
        _GRID_CACHE[key] = grid
    return grid


def ddf_from_grid(grid: torch.Tensor) -> torch.Tensor:
    """The DDF ``(B, ndim, *size)`` (voxels) of a ``grid_sample`` grid ``(B, *size, ndim)`` (normalised [-1, 1],
    ``align_corners=True``, last axis in (x, y, z) order): the inverse of the conversion :func:`sample_displaced`
    makes, for tools that hand back sampling grids (FireANTs)."""
    size = grid.shape[1:-1]
    index = (grid.flip(-1).movedim(-1, 1) + 1) / 2
    index = index * torch.tensor([max(n - 1, 1) for n in size], dtype=grid.dtype, device=grid.device).view(
        -1, *[1] * len(size)
    )
    return index - identity_grid(size, grid.device, grid.dtype)


def sample_displaced(
    image: torch.Tensor, ddf: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border"
) -> torch.Tensor:
    """``image(p + ddf(p))`` without argument checks; the kernel behind :func:`warp`, used on hot paths.

    ``image`` may have batch size 1 with a batched ``ddf`` (the image is broadcast).
    """
    size = ddf.shape[2:]
    # voxel displacement -> normalised units (align_corners=True), reversed to grid_sample's (x, y, z) order
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in reversed(size)], device=ddf.device, dtype=ddf.dtype)
    grid = torch.addcmul(_normalised_identity(size, ddf.device, ddf.dtype), ddf.flip(1).movedim(1, -1), scale)
    if image.shape[0] == 1 and ddf.shape[0] > 1:
        image = image.expand(ddf.shape[0], *image.shape[1:])
    if image.dtype != grid.dtype:
        image = image.to(grid.dtype)
    return _grid_sample(image, grid, mode, padding_mode)


def _grid_sample(image: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str) -> torch.Tensor:
    """``F.grid_sample`` (align_corners=True); a single 3D volume on the CPU is cut into equal slabs along its
    first axis (at least 2 rows each, one per thread) that go through as a batch: PyTorch's CPU 3D kernel runs one
    thread per batch item, so one volume used one core (MIDIR 3D inference, 2 threads: 4.43 s -> 3.22 s).
    Results are identical."""
    single_cpu_volume = grid.ndim == 5 and grid.shape[0] == 1 and grid.device.type == "cpu"
    slabs, depth = (torch.get_num_threads() if single_cpu_volume else 1), grid.shape[1]
    while slabs > 1 and (depth % slabs or depth < 2 * slabs):
        slabs -= 1
    if slabs < 2:
        return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    out = F.grid_sample(
        image.expand(slabs, *image.shape[1:]),
        grid.view(slabs, depth // slabs, *grid.shape[2:]),
        mode=mode,
        padding_mode=padding_mode,
        align_corners=True,
    )
    return out.transpose(0, 1).reshape(1, image.shape[1], depth, *grid.shape[2:4])


def warp(image: torch.Tensor, ddf: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Warp ``image`` (B, C, *spatial) by ``ddf`` (B, ndim, *spatial): returns ``image(p + ddf(p))``.

    Args:
        image: channel-first image, 2 or 3 spatial axes; integer label maps are cast to the field's dtype.
        ddf: displacement in voxel units, same spatial size as ``image``.
        mode: ``"bilinear"`` (trilinear in 3D), ``"nearest"`` (labels), or ``"bicubic"`` (2D only).
        padding_mode: ``"border"``, ``"zeros"`` or ``"reflection"`` for points outside the image.
    """
    ndim = check_field(ddf, "ddf")
    if check_image(image, "image") != ndim:
        raise ValueError(
            f"image and ddf must have the same number of spatial axes, got image {tuple(image.shape)} "
            f"and ddf {tuple(ddf.shape)}"
        )
    if image.shape[2:] != ddf.shape[2:] or image.shape[0] not in (1, ddf.shape[0]):
        raise ValueError(
            f"image {tuple(image.shape)} and ddf {tuple(ddf.shape)} must share the spatial size and batch size"
        )
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "bicubic" and ndim != 2:
        raise ValueError("mode='bicubic' is only available for 2D images")
    if padding_mode not in _PADDINGS:
        raise ValueError(f"padding_mode must be one of {_PADDINGS}, got {padding_mode!r}")
    return sample_displaced(image, ddf, mode=mode, padding_mode=padding_mode)


def warp_label(label: torch.Tensor, ddf: torch.Tensor) -> torch.Tensor:
    """Integer label map ``(B, 1, *spatial)`` warped by ``ddf`` (voxels): nearest neighbour, zero (background)
    outside the image. The one label warp of every evaluation on the network grid (postprocessing, trajectories,
    sampling snapshots, benchmarks); labels on a real scan's own grid go through
    ``common.spatial.physical.warp_physical(..., mode="nearest")``."""
    return sample_displaced(label, ddf, mode="nearest", padding_mode="zeros")
