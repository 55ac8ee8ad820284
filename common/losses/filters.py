"""Separable smoothing filters shared by the SSIM loss and metric."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kernel1d", "separable_filter"]


def gaussian_kernel1d(window: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1D Gaussian of odd length ``window``."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd integer, got {window}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype=dtype, device=device)


def separable_filter(x: torch.Tensor, kernel: torch.Tensor, padding_mode: str = "reflect") -> torch.Tensor:
    """Filter every channel of ``x`` (B, C, *spatial) with ``kernel`` along each spatial axis; output same size."""
    ndim = x.ndim - 2
    channels = x.shape[1]
    conv = F.conv2d if ndim == 2 else F.conv3d
    half = kernel.numel() // 2
    kernel = kernel.to(x)
    for axis in range(ndim):
        pad = [0, 0] * ndim
        pad[2 * (ndim - 1 - axis)] = pad[2 * (ndim - 1 - axis) + 1] = half  # F.pad lists the last axis first
        shape = [1] * ndim
        shape[axis] = kernel.numel()
        x = conv(
            F.pad(x, pad, mode=padding_mode), kernel.view(1, 1, *shape).expand(channels, 1, *shape), groups=channels
        )
    return x
