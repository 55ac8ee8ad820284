"""KL divergence of VoxelMorph-diff's Gaussian velocity posterior to its smoothness prior (Dalca et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn

from .regularisers import forward_differences

__all__ = ["KLPriorLoss"]


class KLPriorLoss(nn.Module):
    """``KL(q(v) || p(v))`` per voxel for ``q = N(mean, exp(log_sigma))`` and the prior ``p = N(0, (lambda L)^-1)``,
    ``L`` the graph Laplacian of the voxel grid (degree ``2 ndim``):

    ``0.5 * [lambda * D * exp(log_sigma) - log_sigma]`` (mean over voxels and channels) ``+ 0.5 * lambda * sum over
    axes of mean squared forward differences of mean`` (the precision term). ``forward`` takes the model's outputs dict.
    """

    def __init__(self, prior_lambda: float = 25.0) -> None:
        super().__init__()
        if prior_lambda <= 0:
            raise ValueError(f"prior_lambda must be positive, got {prior_lambda}")
        self.prior_lambda = float(prior_lambda)

    def forward(self, outputs: dict) -> torch.Tensor:
        mean, log_sigma = outputs["mean"], outputs["log_sigma"]
        degree = 2 * (mean.ndim - 2)
        sigma_term = (self.prior_lambda * degree * torch.exp(log_sigma) - log_sigma).mean()
        precision_term = sum((d * d).mean() for d in forward_differences(mean))
        return 0.5 * (sigma_term + self.prior_lambda * precision_term)
