"""DiffuseReg (Zhuo, Shen 2024): a DDPM that denoises the deformation field itself, conditioned on the moving and
fixed images through Swin cross-attention (:mod:`common.networks.swin_cross`).

Fields are DDFs ``(B, ndim, *spatial)`` in voxel units (DESIGN.md); the diffusion runs on the field z-scored per
channel with the training set's statistics (buffers ``field_mean`` / ``field_std``, saved with the weights).
The contract input is ``(B, 2, *spatial)`` = [moving, fixed] in [0, 1]; ``forward(x)`` samples a DDF.
Axis order is the array's (ACDC in this repository: x, y, z, so the paper's D x H x W window (2, 4, 4) is
(4, 4, 2) here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks.patchembedding import PatchEmbed
from monai.networks.nets.diffusion_model_unet import get_timestep_embedding
from monai.networks.nets.swin_unetr import PatchMergingV2, SwinTransformerBlock
from torch import nn

from ..diffusion import SamplingStep, make_scheduler, q_sample, reverse_process, sampling_timesteps
from .registration import check_pair_input
from .swin_cross import SwinCrossBlock, window_mask

__all__ = ["DiffuseReg", "DiffuseRegBackbone", "DIFFUSEREG_ACDC", "DIFFUSEREG_SMALL"]

#: The paper's ACDC network (input 128 x 128 x 32 here): patch 2, feature 120, depths (2, 2, 2, 2).
DIFFUSEREG_ACDC = {
    "feature_size": 120,
    "depths": (2, 2, 2, 2),
    "num_heads": (3, 6, 12, 24),
    "window_size": (4, 4, 2),
    "patch_size": 2,
}
#: A small preset for the demo data and tests (minutes on 2 CPU cores).
DIFFUSEREG_SMALL = {
    "feature_size": 16,
    "depths": (1, 1, 1, 1),
    "num_heads": (2, 2, 4, 4),
    "window_size": (4, 4, 2),
    "patch_size": 2,
}


def _conv(spatial_dims: int, cin: int, cout: int, kernel: int = 3) -> nn.Module:
    return (nn.Conv2d if spatial_dims == 2 else nn.Conv3d)(cin, cout, kernel, padding=kernel // 2, bias=False)


class TimeResBlock(nn.Module):
    """UNETR's residual block (conv-InstanceNorm-LeakyReLU, conv-InstanceNorm, 1x1 shortcut when channels
    change) with the time embedding added after the first unit through SiLU -> Linear (DiffuseReg's decoder)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, time_dim: int) -> None:
        super().__init__()
        norm = nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d
        self.conv1, self.norm1 = _conv(spatial_dims, in_channels, out_channels), norm(out_channels, affine=True)
        self.conv2, self.norm2 = _conv(spatial_dims, out_channels, out_channels), norm(out_channels, affine=True)
        self.time = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, out_channels))
        self.shortcut = (
            nn.Sequential(_conv(spatial_dims, in_channels, out_channels, 1), norm(out_channels, affine=True))
            if in_channels != out_channels
            else nn.Identity()
        )
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        h = h + self.time(temb).view(*temb.shape[:1], -1, *([1] * (x.ndim - 2)))
        return self.act(self.norm2(self.conv2(h)) + self.shortcut(x))


class DiffuseRegBackbone(nn.Module):
    """The noise predictor ``eps_hat(x_t, moving, fixed, t)``.

    * Condition encoder: a Swin encoder on one image (1 channel; run on moving and on fixed with shared weights),
      patch embedding then ``len(depths)`` stages of MONAI Swin blocks, patch merging between stages.
    * Main encoder: the same layout over the noisy field ``x_t`` (``ndim`` channels) with
      :class:`~common.networks.swin_cross.SwinCrossBlock` blocks: block ``k`` of a stage attends to the moving and
      fixed tokens the condition encoder's block ``k`` received, and to the stage's time token.
    * Time: sinusoidal embedding (``feature_size``) -> Linear -> SiLU -> Linear (x4 hidden); one Linear per stage
      gives its time token.
    * Decoder (UNETR style): :class:`TimeResBlock` at the bottom, then per stage upsampling to the skip's size
      (trilinear), concatenation and a :class:`TimeResBlock`; at full resolution the skip is a
      :class:`TimeResBlock` of [x_t, moving, fixed] (a deviation: the published decoder's full-resolution skip
      sees x_t only, so the images reach it through attention alone); a 1x1 convolution to ``ndim`` channels.

    Any batch size and any spatial size (windows are padded, upsampling follows the skips' sizes).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        feature_size: int = DIFFUSEREG_SMALL["feature_size"],
        depths: Sequence[int] = DIFFUSEREG_SMALL["depths"],
        num_heads: Sequence[int] = DIFFUSEREG_SMALL["num_heads"],
        window_size: Sequence[int] = DIFFUSEREG_SMALL["window_size"],
        patch_size: int = DIFFUSEREG_SMALL["patch_size"],
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} must have the same length")
        if len(window_size) < spatial_dims:
            raise ValueError(f"window_size needs {spatial_dims} entries, got {tuple(window_size)}")
        self.spatial_dims, self.feature_size = spatial_dims, feature_size
        self.window_size = tuple(window_size)[:spatial_dims]
        self.shift_size = tuple(w // 2 for w in self.window_size)
        dims = [feature_size * 2**i for i in range(len(depths))]
        self.dims = dims

        def blocks(kind, dim, heads, depth):
            return nn.ModuleList(
                kind(
                    dim,
                    heads,
                    self.window_size,
                    (0,) * spatial_dims if b % 2 == 0 else self.shift_size,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=True,
                )
                for b in range(depth)
            )

        self.cond_embed = PatchEmbed(patch_size, 1, feature_size, nn.LayerNorm, spatial_dims)
        self.field_embed = PatchEmbed(patch_size, spatial_dims, feature_size, nn.LayerNorm, spatial_dims)
        # the condition encoder's last block would feed nothing (the field tokens of the last block attend to its
        # input): it is left out, which also keeps every parameter in use (DistributedDataParallel requires it)
        cond_depths = [*depths[:-1], depths[-1] - 1]
        self.cond_stages = nn.ModuleList(
            blocks(SwinTransformerBlock, d, h, n) for d, h, n in zip(dims, num_heads, cond_depths)
        )
        self.field_stages = nn.ModuleList(blocks(SwinCrossBlock, d, h, n) for d, h, n in zip(dims, num_heads, depths))
        self.cond_merges = nn.ModuleList(PatchMergingV2(d, nn.LayerNorm, spatial_dims) for d in dims[:-1])
        self.field_merges = nn.ModuleList(PatchMergingV2(d, nn.LayerNorm, spatial_dims) for d in dims[:-1])
        self.norms = nn.ModuleList(nn.LayerNorm(d) for d in dims)
        time_dim = feature_size
        self.time_mlp = nn.Sequential(
            nn.Linear(feature_size, 4 * feature_size), nn.SiLU(), nn.Linear(4 * feature_size, time_dim)
        )
        self.time_tokens = nn.ModuleList(nn.Linear(time_dim, d) for d in dims)
        self.bottom = TimeResBlock(spatial_dims, dims[-1], dims[-1], time_dim)
        self.ups = nn.ModuleList(
            TimeResBlock(spatial_dims, dims[i + 1] + dims[i], dims[i], time_dim) for i in reversed(range(len(dims) - 1))
        )
        self.stem = TimeResBlock(spatial_dims, spatial_dims + 2, feature_size, time_dim)
        self.top = TimeResBlock(spatial_dims, dims[0] + feature_size, feature_size, time_dim)
        self.out = (nn.Conv2d if spatial_dims == 2 else nn.Conv3d)(feature_size, spatial_dims, 1)

    def _resize(self, x: torch.Tensor, size) -> torch.Tensor:
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        return F.interpolate(x, size=tuple(size), mode=mode, align_corners=False)

    def forward(self, x_t: torch.Tensor, moving: torch.Tensor, fixed: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        batch = x_t.shape[0]
        temb = self.time_mlp(get_timestep_embedding(t, self.feature_size).to(x_t.dtype))
        cond = self.cond_embed(torch.cat([moving, fixed], dim=0)).movedim(1, -1)  # (2B, *s, C): shared weights
        x = self.field_embed(x_t).movedim(1, -1)
        features = []
        for i, (cond_blocks, field_blocks) in enumerate(zip(self.cond_stages, self.field_stages)):
            size = tuple(x.shape[1:-1])
            mask = window_mask(size, self.window_size, self.shift_size, x.device)
            token = self.time_tokens[i](temb)
            for k, field_block in enumerate(field_blocks):
                block_mask = mask if any(s > 0 for s in field_block.shift_size) else None
                x = field_block(x, cond[:batch], cond[batch:], token, block_mask)
                if k < len(cond_blocks):
                    cond = cond_blocks[k](cond, block_mask)
            features.append(self.norms[i](x).movedim(-1, 1))
            if i < len(self.field_merges):
                x = self.field_merges[i](x)
                cond = self.cond_merges[i](cond)
        h = self.bottom(features[-1], temb)
        for up, skip in zip(self.ups, reversed(features[:-1])):
            h = up(torch.cat([self._resize(h, skip.shape[2:]), skip], dim=1), temb)
        top = self.stem(torch.cat([x_t, moving, fixed], dim=1), temb)
        h = self.top(torch.cat([self._resize(h, x_t.shape[2:]), top], dim=1), temb)
        return self.out(h)


class DiffuseReg(nn.Module):
    """The DiffuseReg model: backbone, noise schedule, field statistics and (for training) the bootstrap network.

    Args:
        spatial_dims, feature_size, depths, num_heads, window_size, patch_size: the backbone
            (:data:`DIFFUSEREG_ACDC` is the paper's, :data:`DIFFUSEREG_SMALL` the demo's).
        bootstrap: a registration network following the inference contract (VTN, or any bundle's) whose DDFs are
            the training targets ``x0``; frozen (no gradients, always in eval mode), not part of the state dict;
            not needed to sample.
        num_train_timesteps, beta_start, beta_end: linear schedule (T = 2000, 1e-6 -> 1e-2).
        sampler, steps, seed: what ``forward(x)`` samples with (``"ddim"`` with ``steps``, or ``"ddpm"``: all
            T steps), seeded so registration is reproducible.
        guidance: energies (``common.diffusion.FoldingGuidance``, ``MaskedSimilarityGuidance``) applied while
            sampling.

    Clean-field estimates are clipped to the training fields' range widened by half (:meth:`clip`), in training
    and sampling. ``forward(x)``: DDF by sampling; ``forward(x, mask=m)``: the same with a mask for masked guidance;
    ``forward(x, outputs=True)``: one training draw ``{"ddf": de-normalised x0_hat, "noise", "noise_pred",
    "target_ddf"}`` (``t`` uniform, ``x_t`` = q-sample of the normalised bootstrap DDF).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        feature_size: int = DIFFUSEREG_SMALL["feature_size"],
        depths: Sequence[int] = DIFFUSEREG_SMALL["depths"],
        num_heads: Sequence[int] = DIFFUSEREG_SMALL["num_heads"],
        window_size: Sequence[int] = DIFFUSEREG_SMALL["window_size"],
        patch_size: int = DIFFUSEREG_SMALL["patch_size"],
        bootstrap: nn.Module | None = None,
        num_train_timesteps: int = 2000,
        beta_start: float = 1e-6,
        beta_end: float = 1e-2,
        sampler: str = "ddim",
        steps: int | None = 50,
        seed: int | None = 0,
        guidance: Sequence[Callable] = (),
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.backbone = DiffuseRegBackbone(spatial_dims, feature_size, depths, num_heads, window_size, patch_size)
        # kept out of the module tree: not trained, not in the state dict (the model's weights do not depend on
        # which bootstrap made its training targets), moved to the input's device when used
        self._bootstrap = [bootstrap.requires_grad_(False).eval()] if bootstrap is not None else []
        self.schedule = {"num_train_timesteps": num_train_timesteps, "beta_start": beta_start, "beta_end": beta_end}
        self.scheduler = make_scheduler("ddpm", clip_sample=False, **self.schedule)
        make_scheduler(sampler, **self.schedule)  # validates the sampler now
        self.sampler, self.steps, self.seed, self.guidance = sampler, steps, seed, list(guidance)
        self.register_buffer("field_mean", torch.zeros(spatial_dims))
        self.register_buffer("field_std", torch.ones(spatial_dims))
        self.register_buffer("field_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("field_min", torch.full((spatial_dims,), -float("inf")))
        self.register_buffer("field_max", torch.full((spatial_dims,), float("inf")))

    @property
    def num_train_timesteps(self) -> int:
        return self.schedule["num_train_timesteps"]

    def train(self, mode: bool = True):
        super().train(mode)
        for net in self._bootstrap:
            net.eval()
        return self

    def _view(self, v: torch.Tensor) -> torch.Tensor:
        return v.view(1, -1, *([1] * self.spatial_dims))

    def normalise(self, ddf: torch.Tensor) -> torch.Tensor:
        return (ddf - self._view(self.field_mean)) / self._view(self.field_std)

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self._view(self.field_std) + self._view(self.field_mean)

    def set_field_statistics(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        count: int,
        minimum: Sequence[float] | None = None,
        maximum: Sequence[float] | None = None,
    ) -> None:
        """Store the per-channel mean, std, and range of the training set's bootstrap DDFs (voxels)."""
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (self.spatial_dims,) or std.shape != (self.spatial_dims,) or not bool((std > 0).all()):
            raise ValueError(f"need {self.spatial_dims} means and positive stds, got {mean.tolist()}, {std.tolist()}")
        self.field_mean.copy_(mean)
        self.field_std.copy_(std)
        self.field_count.fill_(int(count))
        if minimum is not None and maximum is not None:
            self.field_min.copy_(torch.as_tensor(minimum, dtype=torch.float32))
            self.field_max.copy_(torch.as_tensor(maximum, dtype=torch.float32))

    def clip(self, x0: torch.Tensor) -> torch.Tensor:
        """Clip a normalised clean-field estimate to the training fields' range widened by half on each side.

        A deviation from the published sampler, which does not clip: from pure noise, early estimates are
        ``(x_t - sqrt(1 - a) eps_hat) / sqrt(a)`` with ``1 / sqrt(a)`` up to ~150 at T = 2000, so a small error
        in ``eps_hat`` becomes displacements of tens of voxels (in training, the image and smoothness terms on
        such estimates dominated the loss). Without a stored range this is the identity.
        """
        if not bool(torch.isfinite(self.field_min).all() and torch.isfinite(self.field_max).all()):
            return x0
        half = (self.field_max - self.field_min) / 2
        low = (self.field_min - half - self.field_mean) / self.field_std
        high = (self.field_max + half - self.field_mean) / self.field_std
        return torch.maximum(torch.minimum(x0, self._view(high)), self._view(low))

    def bootstrap_ddf(self, x: torch.Tensor) -> torch.Tensor:
        """The bootstrap network's DDF for the pairs ``x`` (no gradients)."""
        if not self._bootstrap:
            raise ValueError("this DiffuseReg has no bootstrap network: name one (bootstrap=...) to train it")
        net = self._bootstrap[0].to(x.device)
        with torch.no_grad():
            return net(x).detach()

    def _condition(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[moving, fixed] z-scored jointly per pair, as the published code."""
        check_pair_input(x, self.spatial_dims)
        dims = tuple(range(1, x.ndim))
        z = (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + 1e-6)
        return z[:, :1], z[:, 1:]

    def _alpha(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        a = self.scheduler.alphas_cumprod.to(like.device)[t.to(like.device)]
        return a.view(-1, *([1] * (like.ndim - 1))).to(like.dtype)

    def predict_noise(self, x_t, moving, fixed, t, a) -> torch.Tensor:
        """``eps_hat = sqrt(1 - a_t) x_t + backbone(x_t, moving, fixed, t)``.

        The skip term is the exact noise estimate for a unit-variance field that carries no information
        (what the z-scored field is a priori), so the backbone learns only what the images add. A deviation
        from the published network, which must learn to copy ``x_t`` to its output at high ``t``: on the demo
        budget it had not (noise MSE 0.35 at t = 1999 after 540 iterations) and sampling failed.
        """
        return (1 - a).sqrt() * x_t + self.backbone(x_t, moving, fixed, t)

    def forward(self, x: torch.Tensor, outputs: bool = False, mask: torch.Tensor | None = None):
        if not outputs:
            return self.sample(x, mask=mask)
        if int(self.field_count) == 0:
            raise ValueError(
                "DiffuseReg's field statistics are not set: compute them on the training set first "
                "(common.engines.FieldStatistics in train.json)"
            )
        moving, fixed = self._condition(x)
        target = self.bootstrap_ddf(x)
        x0 = self.normalise(target)
        t = torch.randint(0, self.schedule["num_train_timesteps"], (x.shape[0],), device=x.device)
        noise = torch.randn_like(x0)
        x_t = q_sample(self.scheduler, x0, noise, t)
        a = self._alpha(t, x_t)
        noise_pred = self.predict_noise(x_t, moving, fixed, t, a)
        x0_hat = self.clip((x_t - (1 - a).sqrt() * noise_pred) / a.sqrt())
        return {"ddf": self.denormalise(x0_hat), "noise": noise, "noise_pred": noise_pred, "target_ddf": target}

    def sample(
        self,
        x: torch.Tensor,
        sampler: str | None = None,
        steps: int | None = None,
        observer: Callable[[SamplingStep], bool | None] | None = None,
        every: int = 10,
        seed: int | None = None,
        guidance: Sequence[Callable] | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A DDF for each pair by reverse diffusion from pure noise: ``"ddpm"`` (all T ancestral steps, the
        paper) or ``"ddim"`` with ``steps`` (stride ``round(T / steps)``). Defaults are the model's.

        ``observer`` sees every ``every``-th step with ``x0`` = the current DDF estimate (de-normalised, voxels);
        returning ``True`` stops early with that estimate (e.g. :class:`common.diffusion.StopWhenStable`).
        ``guidance`` (default the model's) steers each step; ``mask`` ``(B, 1, *spatial)`` for masked guidance.
        """
        sampler = self.sampler if sampler is None else sampler
        steps = (self.steps if sampler == "ddim" else None) if steps is None else steps
        seed = self.seed if seed is None else seed
        guidance = self.guidance if guidance is None else list(guidance)
        moving01, fixed01 = x[:, :1], x[:, 1:]
        moving, fixed = self._condition(x)
        scheduler = make_scheduler(sampler, clip_sample=False, **self.schedule)
        timesteps = sampling_timesteps(scheduler, None, steps if sampler == "ddim" else None)
        generator = torch.Generator(device=x.device).manual_seed(seed) if seed is not None else None
        shape = (x.shape[0], self.spatial_dims, *x.shape[2:])
        sample = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)

        def predict(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            a = self._alpha(t, x_t)
            eps = self.predict_noise(x_t, moving, fixed, t, a)
            x0 = self.clip((x_t - (1 - a).sqrt() * eps) / a.sqrt())
            if guidance:
                with torch.enable_grad():
                    x0 = x0.detach().requires_grad_(True)
                    energy = sum(g.scale * g(self.denormalise(x0), moving01, fixed01, mask) for g in guidance)
                    (grad,) = torch.autograd.grad(energy, x0)
                x0 = self.clip(x0.detach() - grad)
            # the noise estimate consistent with the clipped / guided x0 (the scheduler's step recomputes x0 from it)
            return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

        def observe(step: SamplingStep):
            return observer(SamplingStep(step.index, step.timestep, step.total, step.sample, self.denormalise(step.x0)))

        z = reverse_process(
            predict, sample, scheduler, timesteps, observe if observer is not None else None, every, generator
        )
        return self.denormalise(z)
