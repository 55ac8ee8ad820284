"""VTN (Zhao et al. 2019, "Unsupervised 3D end-to-end medical image registration with volume tweening network"):
an affine stem followed by cascaded deformable sub-networks, each registering the moving image warped by the
transform so far. DiffuseReg's bootstrap registration: its DDFs are the diffusion model's training targets.

Fields are DDFs ``(B, ndim, *spatial)`` in voxel units (DESIGN.md); the contract input is ``(B, 2, *spatial)`` =
[moving, fixed] in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..spatial.integrate import compose
from ..spatial.warp import sample_displaced
from .blocks import conv_block, flow_head
from .registration import check_pair_input
from .unet import RegistrationUNet

__all__ = ["VTN", "affine_ddf"]


def affine_ddf(matrix: torch.Tensor, translation: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """DDF ``u(p) = (A - I)(p - c) + b`` of the affine map ``p -> A (p - c) + c + b`` about the grid centre ``c``;
    ``matrix`` ``(B, ndim, ndim)``, ``translation`` ``(B, ndim)``, voxel units, axes in array order."""
    ndim = len(spatial)
    axes = [torch.arange(n, dtype=matrix.dtype, device=matrix.device) - (n - 1) / 2 for n in spatial]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (ndim, *spatial), centred
    eye = torch.eye(ndim, dtype=matrix.dtype, device=matrix.device)
    u = torch.einsum("bij,j...->bi...", matrix - eye, grid)
    return u + translation.view(*translation.shape, *([1] * ndim))


class VTN(nn.Module):
    """Affine stem + ``cascades`` deformable sub-networks.

    Affine stem: stride-2 3x3 convolutions (``affine_channels``, LeakyReLU 0.2), global average pooling, a linear
    layer to the matrix offset ``A - I`` and translation ``b`` (zero-initialised: the identity). Each cascade: a
    :class:`RegistrationUNet` (``cascade_encoder`` / ``cascade_decoder``) on [moving warped so far, fixed] with a
    flow head; its flow ``w`` is composed after the transform so far, ``u <- w + u o (id + w)``.

    ``forward(x)`` -> DDF; ``forward(x, outputs=True)`` -> ``{"ddf", "matrix", "flows"}`` for
    :class:`~common.losses.AffineCascadeRegulariser` (VTN's determinant / orthogonality terms on ``A`` and the
    gradient term on each cascade's flow). Spatial sizes must be divisible by ``2 ** len(cascade_encoder)``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        cascades: int = 3,
        affine_channels: Sequence[int] = (16, 32, 64, 128),
        cascade_encoder: Sequence[int] = (16, 32, 32, 32),
        cascade_decoder: Sequence[int] = (32, 32, 32, 32, 16),
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if cascades < 0:
            raise ValueError(f"cascades must be >= 0, got {cascades}")
        self.spatial_dims = spatial_dims
        layers, channels = [], 2
        for out in affine_channels:
            layers.append(conv_block(spatial_dims, channels, out, stride=2))
            channels = out
        pool = nn.AdaptiveAvgPool2d(1) if spatial_dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.affine = nn.Sequential(*layers, pool, nn.Flatten())
        self.affine_head = nn.Linear(channels, spatial_dims * (spatial_dims + 1))
        nn.init.zeros_(self.affine_head.weight)
        nn.init.zeros_(self.affine_head.bias)
        self.cascades = nn.ModuleList(
            RegistrationUNet(spatial_dims, 2, cascade_encoder, cascade_decoder) for _ in range(cascades)
        )
        self.heads = nn.ModuleList(flow_head(spatial_dims, net.out_channels) for net in self.cascades)

    def forward(self, x: torch.Tensor, outputs: bool = False):
        check_pair_input(x, self.spatial_dims)
        moving, fixed = x[:, :1], x[:, 1:]
        n = self.spatial_dims
        params = self.affine_head(self.affine(x)).view(-1, n, n + 1)
        matrix = torch.eye(n, dtype=x.dtype, device=x.device) + params[..., :n]
        ddf = affine_ddf(matrix, params[..., n], x.shape[2:])
        flows = []
        for net, head in zip(self.cascades, self.heads):
            warped = sample_displaced(moving, ddf, padding_mode="border")
            flow = head(net(torch.cat([warped, fixed], dim=1)))
            ddf = compose(ddf, flow)
            flows.append(flow)
        if outputs:
            return {"ddf": ddf, "matrix": matrix, "flows": flows}
        return ddf
