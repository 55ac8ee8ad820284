"""Image fidelity between a generated/warped image and a reference, ``(B, C, *spatial)`` in [0, 1]."""

from __future__ import annotations

import torch

from ..losses.similarity import ssim_map

__all__ = ["psnr", "nmse", "ssim"]


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(L^2 / MSE)``: ``(B,)``."""
    _check(pred, target)
    mse = ((pred.double() - target.double()) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def nmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalised mean squared error ``||pred - target||^2 / ||target||^2``: ``(B,)``."""
    _check(pred, target)
    diff = ((pred.double() - target.double()) ** 2).flatten(1).sum(1)
    return diff / (target.double() ** 2).flatten(1).sum(1)


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 9, sigma: float = 1.5, data_range: float = 1.0):
    """Mean SSIM (Gaussian window): ``(B,)``."""
    _check(pred, target)
    return ssim_map(pred, target, window, sigma, data_range).flatten(1).mean(1)
