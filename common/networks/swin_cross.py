"""Swin cross-attention: DiffuseReg's condition fusion inside shifted-window attention.

In every window the attention sequence is ``[time; moving; fixed; field]`` (``1 + 3N`` tokens for ``N`` tokens
per window), attended jointly with one shared qkv projection. The relative-position bias and the shifted-window
mask are tiled over the three token groups (``N x N`` blocks, 3 x 3 of them) and not applied to the time token,
which is visible to every query. Only the field tokens' outputs are kept, so only their queries are computed
(the other rows of the attention would be discarded). Tokens are channel-last, ``(B, *spatial, C)``.

Built on MONAI's ``SwinTransformerBlock`` (its norms, qkv, bias table, projection and MLP) because MONAI's
window attention takes one token group only. Unlike the published code this works for any batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets.swin_unetr import (
    SwinTransformerBlock,
    compute_mask,
    get_window_size,
    window_partition,
    window_reverse,
)

__all__ = ["SwinCrossBlock", "fused_window_attention", "window_mask"]


def window_mask(size: Sequence[int], window: Sequence[int], shift: Sequence[int], device) -> torch.Tensor | None:
    """MONAI's shifted-window mask ``(nW, N, N)`` (0 / -100) for a token grid of ``size`` (padded to whole
    windows), or ``None`` when nothing is shifted."""
    window, shift = get_window_size(tuple(size), tuple(window), tuple(shift))
    if not any(s > 0 for s in shift):
        return None
    padded = [int(np.ceil(n / w)) * w for n, w in zip(size, window)]
    return compute_mask(padded, window, shift, device)


def fused_window_attention(
    block: SwinTransformerBlock,
    time: torch.Tensor,
    moving: torch.Tensor,
    fixed: torch.Tensor,
    field: torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Joint attention of ``block.attn`` over ``[time (b, 1, C); moving, fixed, field (b, N, C)]`` per window
    (``b`` = batch x windows); returns the field tokens' outputs ``(b, N, C)``.

    ``mask``: ``(nW, N, N)`` additive shifted-window mask or ``None``.
    """
    attn = block.attn
    b, n, c = field.shape
    heads = attn.num_heads
    tokens = torch.cat([time, moving, fixed, field], dim=1)  # (b, 1 + 3n, c)
    length = tokens.shape[1]
    q, k, v = attn.qkv(tokens).reshape(b, length, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q = q[:, :, -n:]  # the field tokens' queries
    index = attn.relative_position_index[:n, :n].reshape(-1)
    bias = attn.relative_position_bias_table[index].reshape(n, n, heads).permute(2, 0, 1)  # (heads, n, n)
    bias = bias.unsqueeze(0)  # (1, heads, n, n)
    if mask is not None:
        windows = mask.shape[0]
        bias = (bias.unsqueeze(0) + mask.view(1, windows, 1, n, n).to(bias.dtype)).expand(
            b // windows, windows, heads, n, n
        )
        bias = bias.reshape(b, heads, n, n)
    # queries: field rows; keys: time (no bias), then the same N x N bias for each of the three groups
    full = torch.cat([torch.zeros_like(bias[..., :1]), bias.repeat(1, 1, 1, 3)], dim=-1)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=full.expand(b, heads, n, length).to(q.dtype), scale=attn.scale
    )
    out = out.transpose(1, 2).reshape(b, n, c)
    return attn.proj_drop(attn.proj(out))


class SwinCrossBlock(SwinTransformerBlock):
    """A Swin block over the noisy-field tokens that attends, window by window, to the time token and to the
    moving and fixed images' tokens (the condition encoder's inputs to its block at the same depth).

    ``forward(x, moving, fixed, time, mask)``: ``x``, ``moving``, ``fixed`` ``(B, *spatial, C)``, ``time``
    ``(B, C)``; ``mask`` from :func:`window_mask` for shifted blocks. Returns ``(B, *spatial, C)``.
    """

    def _windows(self, x: torch.Tensor, window, shift) -> tuple[torch.Tensor, list[int]]:
        x = self.norm1(x)
        spatial = x.shape[1:-1]
        pads = [(w - n % w) % w for n, w in zip(spatial, window)]
        pad = []
        for p in reversed(pads):
            pad += [0, p]
        x = F.pad(x, [0, 0] + pad)
        if any(s > 0 for s in shift):
            x = torch.roll(x, shifts=[-s for s in shift], dims=list(range(1, len(spatial) + 1)))
        return window_partition(x, window), [x.shape[0], *x.shape[1:-1]]

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        moving: torch.Tensor,
        fixed: torch.Tensor,
        time: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        spatial = tuple(x.shape[1:-1])
        window, shift = get_window_size(spatial, self.window_size, self.shift_size)
        field, dims = self._windows(x, window, shift)
        m, _ = self._windows(moving, window, shift)
        f, _ = self._windows(fixed, window, shift)
        windows = field.shape[0] // x.shape[0]
        token = time.repeat_interleave(windows, dim=0).unsqueeze(1)  # (B * nW, 1, C), batch-major like windows
        out = fused_window_attention(self, token, m, f, field, mask if any(s > 0 for s in shift) else None)
        out = window_reverse(out.view(-1, *window, x.shape[-1]), window, dims)
        if any(s > 0 for s in shift):
            out = torch.roll(out, shifts=list(shift), dims=list(range(1, len(spatial) + 1)))
        crop = (slice(None),) + tuple(slice(0, n) for n in spatial)
        x = x + self.drop_path(out[crop])
        return x + self.forward_part2(x)
