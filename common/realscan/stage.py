"""The real-scan stage: a user's pair, on any grids and in any orientations, put in one physical frame on the
bundle's network grid, affinely pre-aligned, and the network's result mapped back to physical transforms.

1. The network grid ``N`` is built from the fixed image (:func:`~common.realscan.grid.network_grid`: the bundle's
   orientation and spacing, centred on the fixed foreground); the fixed image is sampled on it, the moving image
   through its own affine, so a zero network output is the physical identity.
2. Optional affine pre-alignment ``A`` (fixed -> moving world points, :func:`~common.realscan.affine.align_affine`);
   the moving image enters the network as ``m(A N j)``.
3. A network DDF ``u`` on the network grid (voxels, DESIGN convention) then stands for the physical map
   ``x -> A N (N^-1 x + u(N^-1 x))``: ``A`` after the deformation ``x -> N (N^-1 x + u(N^-1 x))``.
Images are scaled to [0, 1] as the bundle's preprocessing does (``intensity``, ``percentiles``) on the whole
original image, before resampling.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..spatial.physical import apply_affine, grid_world, physical_displacement, resample_affine
from .affine import AFFINE_MODELS, SIMILARITIES, align_affine
from .grid import foreground_centre, network_grid

__all__ = ["PreparedPair", "RealScanStage"]


@dataclass
class PreparedPair:
    """A pair on the network grid. ``inputs``: ``(1, 2, *spatial)`` = [moving, fixed] in [0, 1]; ``grid``: the
    network grid's affine ``N``; ``affine``: the pre-alignment ``A`` (fixed -> moving world, RAS mm); ``seconds``:
    time per step."""

    inputs: torch.Tensor
    grid: np.ndarray
    affine: np.ndarray
    seconds: dict = field(default_factory=dict)

    def displacements(
        self, ddf: torch.Tensor, out_affine: np.ndarray, out_shape: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical displacements (RAS mm, ``(3, *out_shape)``, float64) on the grid ``out_affine`` of the network
        DDF ``ddf`` ``(3, *spatial)``: (the whole map, the deformation alone: ANTs' warp, applied before the
        affine). One sampling of ``ddf`` gives both: the whole map's displacement is ``A(x + w(x)) - x`` of the
        deformation's ``w``."""
        warp = physical_displacement(ddf, self.grid, self.grid, out_affine, out_shape)
        world = grid_world(out_affine, out_shape)
        return apply_affine(self.affine, world + warp) - world, warp

    def inverse_displacement(
        self, inverse_ddf: torch.Tensor, out_affine: np.ndarray, out_shape: Sequence[int], with_affine: bool = True
    ) -> torch.Tensor:
        """Physical displacement (RAS mm) of the network's inverse DDF (moving network grid -> fixed network grid):
        of the whole inverse map on a moving-space grid (``with_affine``), or of the inverse deformation alone on a
        fixed-space grid (ANTs' inverse warp, applied after the inverse affine)."""
        source = self.affine @ self.grid if with_affine else self.grid
        return physical_displacement(inverse_ddf, source, self.grid, out_affine, out_shape)


class RealScanStage:
    """Steps 1-2 of the module docstring with a bundle's settings (its ``inference.json`` ``real_scan`` section).

    Args:
        spatial_size: the network input size (the bundle's ``image_size``).
        pixdim: the network grid spacing (mm); ``None`` keeps the fixed image's spacing.
        orientation: the bundle's training orientation (``"RAS"``); ``None`` keeps the fixed image's voxel axes.
        intensity, percentiles: the bundle's scaling to [0, 1] (``common.data.pair_transforms``).
        centre: ``"foreground"`` (centre of mass of the fixed intensities) or ``"array"``.
        affine: pre-alignment ``"none"``, ``"rigid"`` or ``"affine"``.
        similarity, affine_init, affine_levels_mm, affine_iterations, rigid_iterations: of :func:`align_affine`
            (``iterations``, ``rigid_iterations``).
    """

    def __init__(
        self,
        spatial_size: Sequence[int],
        pixdim: Sequence[float] | None = None,
        orientation: str | None = "RAS",
        intensity: str = "percentile",
        percentiles: Sequence[float] | None = (0.5, 99.5),
        centre: str = "foreground",
        affine: str = "affine",
        similarity: str = "ncc",
        affine_init: str = "com",
        affine_levels_mm: Sequence[float] = (8.0, 4.0),
        affine_iterations: Sequence[int] = (50, 25),
        rigid_iterations: Sequence[int] | None = (50, 0),
    ) -> None:
        if len(spatial_size) != 3:
            raise ValueError(f"the real-scan stage handles 3D bundles; spatial_size {tuple(spatial_size)} is not 3D")
        if intensity not in ("percentile", "minmax", "none"):
            raise ValueError(f"intensity must be 'percentile', 'minmax' or 'none', got {intensity!r}")
        if centre not in ("foreground", "array"):
            raise ValueError(f"centre must be 'foreground' or 'array', got {centre!r}")
        if affine not in AFFINE_MODELS:
            raise ValueError(f"affine must be one of {AFFINE_MODELS}, got {affine!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        self.spatial_size = tuple(int(n) for n in spatial_size)
        self.pixdim = None if pixdim is None else tuple(float(p) for p in pixdim)
        self.orientation, self.centre, self.affine = orientation, centre, affine
        self.similarity, self.affine_init = similarity, affine_init
        self.affine_levels_mm, self.affine_iterations = tuple(affine_levels_mm), tuple(affine_iterations)
        self.rigid_iterations = None if rigid_iterations is None else tuple(rigid_iterations)
        self.intensity = intensity
        self.percentiles = tuple(float(p) for p in (percentiles if percentiles is not None else (0.5, 99.5)))

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (1, *spatial) scaled to [0, 1] as the bundle's preprocessing does (MONAI's
        ``ScaleIntensityRangePercentiles`` with clipping, or ``ScaleIntensity``), float32, a plain tensor.

        Computed here with numpy's percentiles on a plain array: MONAI's transforms return MetaTensors, whose
        per-operation overhead made every later step of the stage 2-3 times slower, and ``torch.quantile`` took
        0.2 s per 2 mm brain."""
        values = np.asarray(image, dtype=np.float32)
        if self.intensity == "none":
            return torch.from_numpy(values.copy())
        if self.intensity == "percentile":
            low, high = (float(v) for v in np.percentile(values, self.percentiles))
        else:
            low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else values - low
        scaled = np.clip(scaled, 0.0, 1.0) if self.intensity == "percentile" else scaled
        return torch.from_numpy(scaled.astype(np.float32, copy=False))

    def prepare(
        self,
        fixed: torch.Tensor,
        fixed_affine: np.ndarray,
        moving: torch.Tensor,
        moving_affine: np.ndarray,
        device: str | torch.device = "cpu",
    ) -> PreparedPair:
        """The pair ``fixed``, ``moving`` (1, *spatial) with their RAS affines on the network grid, pre-aligned."""
        start = time.perf_counter()
        fixed, moving = self.normalise(fixed), self.normalise(moving)
        centre = foreground_centre(fixed) if self.centre == "foreground" else None
        grid = network_grid(fixed_affine, fixed.shape[1:], self.spatial_size, self.pixdim, self.orientation, centre)
        fixed_net = resample_affine(fixed.to(device), fixed_affine, grid, self.spatial_size)
        seconds = {"grid": time.perf_counter() - start}
        start = time.perf_counter()
        matrix = np.eye(4)
        if self.affine != "none" or self.affine_init == "moments":
            matrix = align_affine(
                fixed_net,
                grid,
                moving.to(device),
                moving_affine,
                model=self.affine,
                similarity=self.similarity,
                init=self.affine_init,
                levels_mm=self.affine_levels_mm,
                iterations=self.affine_iterations,
                rigid_iterations=self.rigid_iterations,
                device=device,
            ).matrix
        seconds["affine"] = time.perf_counter() - start
        moving_net = resample_affine(moving.to(device), moving_affine, grid, self.spatial_size, matrix)
        inputs = torch.cat([moving_net, fixed_net], 0)[None]
        return PreparedPair(inputs=inputs, grid=grid, affine=matrix, seconds=seconds)
