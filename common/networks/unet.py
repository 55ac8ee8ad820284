"""The registration U-Net of VoxelMorph, also the deformation module of DiffuseMorph/DDM and MIDIR's backbone.

Why not MONAI's ``VoxelMorphUNet``: it only upsamples by nearest neighbour and arranges channels in
(down, up) pairs, so neither VoxelMorph-1's full-resolution decoder convolutions (..., 8, 8) nor
DiffuseMorph's transposed-convolution decoder nor MIDIR's truncated decoder can be configured.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import conv_block

__all__ = ["RegistrationUNet", "VM1", "VM2"]

# VoxelMorph (Balakrishnan et al. 2019) channel sets: encoder, decoder
VM1 = {"encoder": (16, 32, 32, 32), "decoder": (32, 32, 32, 32, 8, 8)}
VM2 = {"encoder": (16, 32, 32, 32), "decoder": (32, 32, 32, 32, 32, 16, 16)}


class RegistrationUNet(nn.Module):
    """U-Net ``(B, in_channels, *spatial) -> (B, out_channels, *spatial / 2**k)``, LeakyReLU 0.2 everywhere.

    Encoder: one 3x3 convolution per entry of ``encoder`` with the matching ``strides`` (default all 2).
    Decoder: the first ``num_upsamplings`` entries of ``decoder`` each convolve, upsample x2 (``"nearest"``
    then convolve, as VoxelMorph, or ``"transpose"``: a 2x2 transposed convolution, as DiffuseMorph) and
    concatenate the skip features of that resolution (the input and full-resolution encoder features at
    the top); the remaining entries convolve at the final resolution. Defaults give VoxelMorph-1.
    Spatial sizes must be divisible by ``2 ** number of stride-2 convolutions``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 2,
        encoder: Sequence[int] = VM1["encoder"],
        decoder: Sequence[int] = VM1["decoder"],
        strides: Sequence[int] | None = None,
        num_upsamplings: int | None = None,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        strides = tuple(strides) if strides is not None else (2,) * len(encoder)
        if len(strides) != len(encoder) or any(s not in (1, 2) for s in strides):
            raise ValueError(f"strides must give 1 or 2 for each of the {len(encoder)} encoder layers, got {strides}")
        if upsample not in ("nearest", "transpose"):
            raise ValueError(f"upsample must be 'nearest' or 'transpose', got {upsample!r}")
        self.spatial_dims, self.upsample_mode = spatial_dims, upsample
        self.depth = sum(s == 2 for s in strides)
        self.num_upsamplings = self.depth if num_upsamplings is None else int(num_upsamplings)
        if not 0 <= self.num_upsamplings <= self.depth or self.num_upsamplings > len(decoder):
            raise ValueError(f"num_upsamplings must be in 0..{min(self.depth, len(decoder))}, got {num_upsamplings}")
        self.strides = strides
        self.encoder = nn.ModuleList()
        level_channels = {0: [in_channels]}  # channels available as skips at each level (0 = full resolution)
        channels, level = in_channels, 0
        for out, stride in zip(encoder, strides):
            self.encoder.append(conv_block(spatial_dims, channels, out, stride=stride))
            level += stride == 2
            channels = out
            level_channels.setdefault(level, []).append(out)
        self.decoder = nn.ModuleList()
        self.up = nn.ModuleList()
        transposed = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        for i, out in enumerate(decoder):
            self.decoder.append(conv_block(spatial_dims, channels, out))
            channels = out
            if i < self.num_upsamplings:
                level -= 1
                if upsample == "transpose":
                    self.up.append(transposed(out, out, 2, stride=2))
                channels = out + sum(level_channels[level])
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2**self.depth
        if any(n % factor for n in x.shape[2:]):
            raise ValueError(f"spatial size {tuple(x.shape[2:])} must be divisible by {factor} for this U-Net")
        skips = {0: [x]}
        level = 0
        for layer, stride in zip(self.encoder, self.strides):
            x = layer(x)
            level += stride == 2
            skips.setdefault(level, []).append(x)
        # the deepest features are the decoder's input, not a skip
        skips[level].pop()
        for i, layer in enumerate(self.decoder):
            x = layer(x)
            if i < self.num_upsamplings:
                level -= 1
                if self.upsample_mode == "transpose":
                    x = self.up[i](x)
                else:
                    x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = torch.cat([x, *skips[level]], dim=1)
        return x
