"""Image similarity losses on images in [0, 1], ``(B, C, *spatial)``, 2D or 3D: LNCC and SSIM."""

from __future__ import annotations

import torch
from monai.losses import LocalNormalizedCrossCorrelationLoss
from torch import nn

from .filters import gaussian_kernel1d, separable_filter

__all__ = ["LNCCLoss", "ssim_map", "SSIMLoss"]


class LNCCLoss(LocalNormalizedCrossCorrelationLoss):
    """Negative local normalised cross-correlation, squared as VoxelMorph's NCC, in a ``window``^ndim box.

    MONAI's ``LocalNormalizedCrossCorrelationLoss`` with the registration defaults: rectangular window
    (7 for MIDIR, 9 for VoxelMorph/DiffuseMorph/TransMorph). Returns a scalar in [-1, 0].
    """

    def __init__(self, spatial_dims: int = 3, window: int = 9, reduction: str = "mean", smooth_dr: float = 1e-5):
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd integer, got {window}")
        super().__init__(
            spatial_dims=spatial_dims,
            kernel_size=window,
            kernel_type="rectangular",
            reduction=reduction,
            smooth_dr=smooth_dr,
        )


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 9,
    sigma: float = 1.5,
    data_range: float = 1.0,
    padding_mode: str = "reflect",
) -> torch.Tensor:
    """Local SSIM of ``x`` and ``y`` (B, C, *spatial), Gaussian window, same-size output (``reflect`` padding).

    Constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = data_range`` (Wang et al. 2004).
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.ndim not in (4, 5):
        raise ValueError(f"x must have shape (B, C, *spatial) with 2 or 3 spatial axes, got {tuple(x.shape)}")
    kernel = gaussian_kernel1d(window, sigma, dtype=x.dtype, device=x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    stats = separable_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), kernel, padding_mode)
    mx, my, mxx, myy, mxy = stats.chunk(5, dim=1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


class SSIMLoss(nn.Module):
    """``1 - mean SSIM`` of two images ``(B, C, *spatial)``; Gaussian window 9, sigma 1.5 by default (DiffuseReg)."""

    def __init__(self, window: int = 9, sigma: float = 1.5, data_range: float = 1.0) -> None:
        super().__init__()
        gaussian_kernel1d(window, sigma)  # validates the arguments now rather than at the first batch
        self.window, self.sigma, self.data_range = window, sigma, data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1.0 - ssim_map(x, y, self.window, self.sigma, self.data_range).mean()
