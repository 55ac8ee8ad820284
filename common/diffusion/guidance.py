"""Steering and stopping the reverse diffusion of a deformation field (DiffuseReg).

Guidance: an energy ``E(ddf, moving, fixed, mask)`` of the current clean-field estimate; each reverse step moves
``x0_hat`` by ``-scale * dE/dx0_hat`` (normalised field units) before the scheduler's step, i.e. the noise
estimate is replaced by the one consistent with the corrected ``x0_hat``. Gradients are taken with respect to
``x0_hat`` only (not through the denoiser): one extra backward through the energy per step, no backward through
the network ("universal guidance" style; cheaper and independent of the timestep's noise level).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..spatial.jacobian import jacobian_determinant
from ..spatial.warp import sample_displaced
from .sampling import SamplingStep

__all__ = ["FoldingGuidance", "MaskedSimilarityGuidance", "StopWhenStable"]


class FoldingGuidance:
    """Smoothness guidance: ``E = sum relu(margin - det J)^2`` per pair, penalising folds (det J <= 0) and
    near-folds of ``p -> p + u(p)``; ``scale`` is the step size on ``x0_hat``."""

    def __init__(self, scale: float = 1.0, margin: float = 0.1) -> None:
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.scale, self.margin = float(scale), float(margin)

    def __call__(self, ddf: torch.Tensor, moving: torch.Tensor, fixed: torch.Tensor, mask=None) -> torch.Tensor:
        return F.relu(self.margin - jacobian_determinant(ddf)).pow(2).sum() / ddf.shape[0]


class MaskedSimilarityGuidance:
    """Similarity guidance restricted to a mask (a target organ): ``E = sum_mask (moving o phi - fixed)^2`` per
    pair, images in [0, 1]. Sampling needs ``mask`` ``(B, 1, *spatial)``; without one it refuses."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, ddf: torch.Tensor, moving: torch.Tensor, fixed: torch.Tensor, mask=None) -> torch.Tensor:
        if mask is None:
            raise ValueError("MaskedSimilarityGuidance needs a mask (e.g. PairBatch(mask_labels=[...]))")
        warped = sample_displaced(moving, ddf, padding_mode="border")
        return (mask * (warped - fixed) ** 2).sum() / ddf.shape[0]


class StopWhenStable:
    """Early-stop rule for the reverse process (an observer): stop once the field estimate ``x0_hat`` has changed
    by less than ``tolerance`` (voxels, largest absolute change) over the last ``window`` observations.

    ``stopped_at`` holds the step index it stopped at (``None`` if it never did); call :meth:`reset` between runs.
    """

    def __init__(self, tolerance: float = 0.05, window: int = 2) -> None:
        if tolerance <= 0 or window < 1:
            raise ValueError(f"need tolerance > 0 and window >= 1, got {tolerance}, {window}")
        self.tolerance, self.window = float(tolerance), int(window)
        self.reset()

    def reset(self) -> None:
        self.history: list[torch.Tensor] = []
        self.stopped_at: int | None = None

    def __call__(self, step: SamplingStep) -> bool:
        self.history.append(step.x0.detach())
        self.history = self.history[-(self.window + 1) :]
        if len(self.history) <= self.window:
            return False
        if float((self.history[-1] - self.history[0]).abs().max()) < self.tolerance:
            self.stopped_at = step.index
            return True
        return False
