"""TransMorph (Chen et al. 2022) and TransMorph-TVF (Chen, Frey, Du 2023): a Swin-transformer encoder, a
convolutional decoder, and either one displacement head (``time_steps=0``, the TM baseline) or a
time-dependent velocity field head integrated step by step (TVF).

Fields are ``(B, ndim, *spatial)`` in voxel units (DESIGN.md); the contract input is ``(B, 2, *spatial)`` =
[moving, fixed] in [0, 1], 2D or 3D, any size (features are resized to their skips' sizes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.blocks.patchembedding import PatchEmbed
from monai.networks.nets.swin_unetr import PatchMergingV2, SwinTransformerBlock, compute_mask, get_window_size
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..spatial.integrate import integrate_tvf, invert_displacement, tvf_step
from ..spatial.resize import resize_displacement
from ..spatial.warp import sample_displaced, warp
from .blocks import conv_norm_act, flow_head
from .registration import check_pair_input

__all__ = ["SwinEncoder", "TransMorph", "TRANSMORPH_LARGE", "TRANSMORPH_SMALL"]

#: The paper's TransMorph-Large for OASIS (160 x 192 x 224): embedding 128, depths (2, 2, 12, 2).
TRANSMORPH_LARGE = {
    "embed_dim": 128,
    "depths": (2, 2, 12, 2),
    "num_heads": (4, 4, 8, 16),
    "window_size": (5, 6, 7),
    "patch_size": 4,
    "drop_path": 0.3,
}
#: A small preset for the demo data and tests (minutes on 2 CPU cores).
TRANSMORPH_SMALL = {
    "embed_dim": 24,
    "depths": (1, 1, 2, 1),
    "num_heads": (2, 2, 4, 4),
    "window_size": (4, 4, 4),
    "patch_size": 4,
    "drop_path": 0.0,
}


class SwinEncoder(nn.Module):
    """TransMorph's Swin encoder, built from MONAI's Swin blocks (windowed attention with relative-position
    bias, shifted windows with MONAI's mask) and patch embedding.

    MONAI's ``SwinTransformer`` cannot be configured to match: it returns each stage's output only after
    patch merging (and merges after the last stage too), whereas TransMorph uses each stage's output at its
    own resolution and no merging after the last. So the stages are assembled here from MONAI's parts.
    ``PatchMergingV2`` is MONAI's correct merging (its legacy ``PatchMerging`` repeats one neighbour in 3D).

    Returns ``[E @ 1/p, 2E @ 1/2p, 4E @ 1/4p, ...]`` (channel-first, LayerNorm'd) for ``len(depths)`` stages.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        embed_dim: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        window_size: Sequence[int],
        patch_size: int = 4,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} must have the same length")
        window_size = tuple(window_size)[:spatial_dims] if len(window_size) >= spatial_dims else None
        if window_size is None:
            raise ValueError(f"window_size needs {spatial_dims} entries")
        self.window_size = window_size
        self.shift_size = tuple(w // 2 for w in window_size)
        self.patch_embed = PatchEmbed(patch_size, in_channels, embed_dim, nn.LayerNorm, spatial_dims)
        rates = np.linspace(0, drop_path, sum(depths)).tolist()
        self.stages, self.norms, self.merges = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        first = 0
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = embed_dim * 2**i
            self.stages.append(
                nn.ModuleList(
                    SwinTransformerBlock(
                        dim,
                        heads,
                        window_size,
                        (0,) * spatial_dims if b % 2 == 0 else self.shift_size,
                        mlp_ratio=mlp_ratio,
                        qkv_bias=True,
                        drop_path=rates[first + b],
                        use_checkpoint=use_checkpoint,
                    )
                    for b in range(depth)
                )
            )
            first += depth
            self.norms.append(nn.LayerNorm(dim))
            if i < len(depths) - 1:
                self.merges.append(PatchMergingV2(dim, nn.LayerNorm, spatial_dims))
        self.channels = [embed_dim * 2**i for i in range(len(depths))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x).movedim(1, -1)  # channel-last for the Swin blocks
        features = []
        for i, blocks in enumerate(self.stages):
            size = tuple(x.shape[1:-1])
            window, shift = get_window_size(size, self.window_size, self.shift_size)
            padded = [int(np.ceil(n / w)) * w for n, w in zip(size, window)]
            mask = compute_mask(padded, window, shift, x.device)
            for block in blocks:
                x = block(x, mask)
            features.append(self.norms[i](x).movedim(-1, 1).contiguous())
            if i < len(self.merges):
                x = self.merges[i](x)
        return features


class _UpBlock(nn.Module):
    """Upsample to the skip's size (linear), concatenate the skip, two conv-InstanceNorm-LeakyReLU units."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_norm_act(spatial_dims, in_channels + skip_channels, out_channels),
            conv_norm_act(spatial_dims, out_channels, out_channels),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        x = F.interpolate(x, size=skip.shape[2:], mode=mode, align_corners=False)
        return self.convs(torch.cat([x, skip], 1))


class TransMorph(nn.Module):
    """TransMorph with a direct displacement head (``time_steps=0``) or a TVF head (``time_steps=N``).

    Encoder: Swin transformer on [moving, fixed] (patch ``p``, ``len(depths)`` stages); decoder: up-blocks with
    the transformer skips down to ``1/p`` resolution (E channels).

    * ``time_steps=0`` (TM): up-blocks to half resolution (skip: conv of the average-pooled input) and full
      resolution (skip: conv of the input), then an output convolution N(0, 1e-5) -> DDF.
    * ``time_steps=N`` (TM-TVF): at half resolution, step ``t`` takes [moving warped by the running transform,
      fixed] (average-pooled), its own conv unit, up-block and output convolution N(0, 1e-5) -> ``v_t``;
      the running transform is updated by ``common.spatial.tvf_step`` (``integration="compose"``: true
      composition, the default; ``"self"``: the published update). The half-resolution displacement is
      resized to full resolution *with its values rescaled* (``resize_displacement``); the published code
      interpolates without rescaling, which halves every displacement.

    The inverse DDF (``inverse_ddf``) composes the inverses of the steps in reverse order (``inverse="compose"``;
    each step ``id + v_t`` is inverted by ``inverse_iterations`` fixed-point iterations from ``id - v_t``, 0 gives
    the plain "negated fields in reverse order" of DESIGN.md), or uses the paper's approximation
    ``Id - sum_t v_t o phi_t`` (``inverse="approx"``, phi_t the running transform before step t), for comparison.

    ``use_checkpoint`` recomputes the Swin blocks and the decoder's up-blocks in the backward pass instead of
    storing their activations (less memory, more time; see ``regzoo benchmark transmorph``).

    ``forward(x)`` returns the DDF; ``forward(x, outputs=True)`` a dict with ``ddf`` and ``velocities`` (the
    half-resolution ``v_t``; empty for ``time_steps=0``).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        embed_dim: int = TRANSMORPH_SMALL["embed_dim"],
        depths: Sequence[int] = TRANSMORPH_SMALL["depths"],
        num_heads: Sequence[int] = TRANSMORPH_SMALL["num_heads"],
        window_size: Sequence[int] = TRANSMORPH_SMALL["window_size"],
        patch_size: int = 4,
        drop_path: float = 0.0,
        mlp_ratio: float = 4.0,
        reg_head_channels: int = 16,
        time_steps: int = 8,
        integration: str = "compose",
        inverse: str = "compose",
        inverse_iterations: int = 3,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if not isinstance(time_steps, int) or time_steps < 0:
            raise ValueError(f"time_steps must be a non-negative integer (0: direct displacement), got {time_steps!r}")
        if integration not in ("compose", "self"):
            raise ValueError(f"integration must be 'compose' or 'self', got {integration!r}")
        if inverse not in ("compose", "approx"):
            raise ValueError(f"inverse must be 'compose' or 'approx', got {inverse!r}")
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even, got {embed_dim}")
        self.spatial_dims, self.time_steps, self.use_checkpoint = spatial_dims, time_steps, use_checkpoint
        self.integration, self.inverse, self.inverse_iterations = integration, inverse, inverse_iterations
        self.encoder = SwinEncoder(
            spatial_dims, 2, embed_dim, depths, num_heads, window_size, patch_size, mlp_ratio, drop_path, use_checkpoint
        )
        ch = self.encoder.channels
        self.ups = nn.ModuleList(_UpBlock(spatial_dims, ch[i], ch[i - 1], ch[i - 1]) for i in range(len(ch) - 1, 0, -1))
        nd, e = spatial_dims, embed_dim
        if time_steps == 0:
            self.skip_half = conv_norm_act(nd, 2, e // 2)
            self.skip_full = conv_norm_act(nd, 2, reg_head_channels)
            self.up_half = _UpBlock(nd, e, e // 2, e // 2)
            self.up_full = _UpBlock(nd, e // 2, reg_head_channels, reg_head_channels)
            self.head = flow_head(nd, reg_head_channels)
        else:
            self.step_skips = nn.ModuleList(conv_norm_act(nd, 2, e // 2) for _ in range(time_steps))
            self.step_ups = nn.ModuleList(_UpBlock(nd, e, reg_head_channels, e // 2) for _ in range(time_steps))
            self.step_heads = nn.ModuleList(flow_head(nd, reg_head_channels) for _ in range(time_steps))

    def _run(self, block: nn.Module, *args: torch.Tensor) -> torch.Tensor:
        """``block(*args)``, recomputed in the backward pass instead of stored when ``use_checkpoint``."""
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.avg_pool2d if self.spatial_dims == 2 else F.avg_pool3d
        return pool(x, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, outputs: bool = False):
        check_pair_input(x, self.spatial_dims)
        half = self._pool(x)
        features = self.encoder(x)
        y = features[-1]
        for up, skip in zip(self.ups, reversed(features[:-1])):
            y = self._run(up, y, skip)
        velocities: list[torch.Tensor] = []
        if self.time_steps == 0:
            y = self.up_half(y, self.skip_half(half))
            ddf = self.head(self.up_full(y, self.skip_full(x)))
        else:
            moving, fixed = half[:, :1], half[:, 1:]
            running, warped = None, moving
            for skip, up, head in zip(self.step_skips, self.step_ups, self.step_heads):
                v = head(self._run(up, y, skip(torch.cat([warped, fixed], 1))))
                velocities.append(v)
                running = tvf_step(running, v, self.integration)
                warped = warp(moving, running)
            ddf = resize_displacement(running, x.shape[2:])
        return {"ddf": ddf, "velocities": velocities} if outputs else ddf

    def ddf_and_inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and inverse DDFs of the pair ``x`` (B, 2, *spatial) = [moving, fixed] from one network pass."""
        out = self(x, outputs=True)
        return out["ddf"], self.inverse_ddf(out["velocities"], x.shape[2:])

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """DDF of the inverse transform for the pair ``x`` (B, 2, *spatial) = [moving, fixed] (moving -> fixed)."""
        return self.ddf_and_inverse(x)[1]

    def inverse_ddf(self, velocities: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """DDF of the inverse transform at full resolution ``size`` from the ``velocities`` of ``forward``."""
        if not velocities:
            raise ValueError("the inverse needs the TVF velocities: this TransMorph predicts a displacement directly")
        if self.inverse == "compose":
            inv = integrate_tvf([invert_displacement(v, self.inverse_iterations) for v in reversed(velocities)])
        else:
            running, inv = None, torch.zeros_like(velocities[0])
            for v in velocities:
                inv = inv - (v if running is None else sample_displaced(v, running, padding_mode="border"))
                running = tvf_step(running, v, self.integration)
        return resize_displacement(inv, size)
