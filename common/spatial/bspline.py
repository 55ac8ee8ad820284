"""Cubic B-spline free-form deformation: control-point grid -> dense field (MIDIR, Qiu et al. 2021).

Control point ``j`` along an axis with integer spacing ``s`` sits at voxel ``(j - 1) * s``: one control
point lies before the first voxel and the grid reaches past the last one, so the grid has
``ceil((n - 1) / s) + 1 + 2`` points (:func:`control_grid_size`). The dense value at voxel ``x`` is
``sum_j c_j B3((x - (j - 1) s) / s)``, evaluated axis by axis as a transposed convolution with stride
``s`` and the sampled cubic B-spline kernel (length ``4 s - 1``), as MIDIR does; values keep their
units (voxels), so control-point velocities give a dense velocity field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import as_tuple, check_field
from .integrate import integrate_svf

__all__ = ["control_grid_size", "bspline_kernel", "bspline_to_dense", "BSplineSVF"]


def _check_spacing(spacing, ndim: int) -> tuple[int, ...]:
    spacing = as_tuple(spacing, ndim, "spacing")
    if any(int(s) != s or not 1 <= s <= 8 for s in spacing):
        raise ValueError(f"spacing must be integers in 1..8 (voxels between control points), got {spacing}")
    return tuple(int(s) for s in spacing)


def control_grid_size(image_size: Sequence[int], spacing: Sequence[int] | int) -> tuple[int, ...]:
    """Control-point grid size for an image: ``ceil((n - 1) / s) + 1 + 2`` per axis (MIDIR)."""
    image_size = tuple(int(n) for n in image_size)
    spacing = _check_spacing(spacing, len(image_size))
    return tuple(math.ceil((n - 1) / s) + 3 for n, s in zip(image_size, spacing))


def bspline_kernel(spacing: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Cubic B-spline ``B3`` sampled at ``(i - (2 s - 1)) / s``, ``i = 0 .. 4 s - 2``: shape ``(4 s - 1,)``."""
    x = (torch.arange(4 * spacing - 1, dtype=torch.float64) - (2 * spacing - 1)).abs() / spacing
    inner = 2.0 / 3.0 - x**2 + 0.5 * x**3
    outer = (2.0 - x).clamp(min=0) ** 3 / 6.0
    return torch.where(x < 1, inner, outer).to(dtype=dtype, device=device)


def _dense(control_points: torch.Tensor, kernels: Sequence[torch.Tensor], spacing, image_size) -> torch.Tensor:
    ndim = len(image_size)
    channels = control_points.shape[1]
    conv = F.conv_transpose2d if ndim == 2 else F.conv_transpose3d
    out = control_points
    for axis, (s, kernel, n) in enumerate(zip(spacing, kernels, image_size)):
        shape = [1] * ndim
        shape[axis] = kernel.numel()
        weight = kernel.to(out).view(1, 1, *shape).expand(channels, 1, *shape)
        stride = [1] * ndim
        stride[axis] = s
        padding = [0] * ndim
        # padding 3s - 1 drops the kernel overhang and the leading control point: output voxel 0 is image voxel 0
        padding[axis] = 3 * s - 1
        out = conv(out, weight, stride=stride, padding=padding, groups=channels)
        out = out.narrow(axis + 2, 0, n)
    return out


def bspline_to_dense(
    control_points: torch.Tensor, spacing: Sequence[int] | int, image_size: Sequence[int]
) -> torch.Tensor:
    """Dense field ``(B, C, *image_size)`` from control points ``(B, C, *control_grid_size(image_size, spacing))``."""
    if control_points.ndim not in (4, 5):
        raise ValueError(
            f"control_points must have shape (B, C, *grid) with 2 or 3 spatial axes, got {tuple(control_points.shape)}"
        )
    ndim = control_points.ndim - 2
    image_size = tuple(int(n) for n in as_tuple(image_size, ndim, "image_size"))
    spacing = _check_spacing(spacing, ndim)
    expected = control_grid_size(image_size, spacing)
    if tuple(control_points.shape[2:]) != expected:
        raise ValueError(
            f"control_points grid {tuple(control_points.shape[2:])} does not match image_size {image_size} "
            f"with spacing {spacing}: expected {expected}"
        )
    kernels = [bspline_kernel(s, dtype=control_points.dtype, device=control_points.device) for s in spacing]
    return _dense(control_points, kernels, spacing, image_size)


class BSplineSVF(nn.Module):
    """Control-point velocities ``(B, ndim, *grid)`` -> DDF ``(B, ndim, *image_size)`` in voxel units.

    The cubic B-spline gives a dense stationary velocity field, integrated by scaling and squaring with
    ``steps`` steps (MIDIR); ``diffeomorphic=False`` returns the B-spline displacement itself.
    Kernels are precomputed once (non-persistent buffers, so checkpoints hold no copies).
    """

    def __init__(
        self, image_size: Sequence[int], spacing: Sequence[int] | int, steps: int = 7, diffeomorphic: bool = True
    ) -> None:
        super().__init__()
        self.image_size = tuple(int(n) for n in image_size)
        if len(self.image_size) not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 values, got {self.image_size}")
        self.spacing = _check_spacing(spacing, len(self.image_size))
        self.grid_size = control_grid_size(self.image_size, self.spacing)
        self.steps = steps
        self.diffeomorphic = diffeomorphic
        for axis, s in enumerate(self.spacing):
            self.register_buffer(f"kernel{axis}", bspline_kernel(s), persistent=False)

    def dense(self, control_points: torch.Tensor) -> torch.Tensor:
        """The dense B-spline field (velocity, or displacement when not diffeomorphic) ``(B, ndim, *image_size)``."""
        ndim = len(self.image_size)
        if control_points.ndim != ndim + 2 or tuple(control_points.shape[1:]) != (ndim, *self.grid_size):
            raise ValueError(
                f"control_points must have shape (B, {ndim}, {', '.join(map(str, self.grid_size))}), "
                f"got {tuple(control_points.shape)}"
            )
        kernels = [getattr(self, f"kernel{axis}") for axis in range(ndim)]
        return _dense(control_points, kernels, self.spacing, self.image_size)

    def forward(self, control_points: torch.Tensor) -> torch.Tensor:
        field = self.dense(control_points)
        if not self.diffeomorphic:
            return field
        check_field(field, "B-spline velocity")
        return integrate_svf(field, steps=self.steps)
