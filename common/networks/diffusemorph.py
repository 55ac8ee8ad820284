"""DiffuseMorph (Kim, Han, Ye 2022) and DDM (Kim, Ye 2022): a DDPM denoiser conditioned on [moving, fixed]
whose noise estimate (the "latent code") drives a VoxelMorph-1 style deformation U-Net.

Images enter in [0, 1] (the inference contract) and are mapped to [-1, 1] for both sub-networks; fields are
DDFs in voxel units (DESIGN.md). The same model registers (one pass at t = 0), gives a continuous trajectory
(the latent code scaled by gamma in [0, 1]) and generates images (reverse diffusion from the noised moving image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.networks.nets import DiffusionModelUNet
from torch import nn

from ..diffusion import SamplingStep, make_scheduler, q_sample, reverse_process, sampling_timesteps
from .blocks import flow_head
from .registration import check_pair_input
from .unet import RegistrationUNet

__all__ = ["DiffuseMorph", "DIFFUSEMORPH_3D", "DIFFUSEMORPH_2D"]

# The published channel sets (supplementary material / official code). 3D: denoiser 8/16/32/32, GroupNorm 4;
# deformation encoder 16-32-32-32-32 (first at full resolution), decoder 32-32-32-8-8 then the 3-channel head.
DIFFUSEMORPH_3D = {
    "channels": (8, 16, 32, 32),
    "norm_num_groups": 4,
    "num_head_channels": 8,
    "deformation_encoder": (16, 32, 32, 32, 32),
    "deformation_decoder": (32, 32, 32, 8, 8),
}
# 2D: denoiser 64/128/256/256, GroupNorm 32, one attention head; deformation 64..1024 / 1024..64.
DIFFUSEMORPH_2D = {
    "channels": (64, 128, 256, 256),
    "norm_num_groups": 32,
    "num_head_channels": 256,
    "deformation_encoder": (64, 128, 256, 512, 1024),
    "deformation_decoder": (1024, 512, 256, 128, 64),
}


class DiffuseMorph(nn.Module):
    """The DiffuseMorph / DDM model.

    Diffusion module: MONAI's ``DiffusionModelUNet`` with input [moving, fixed, x_t] (x_t the noised fixed image),
    output the 1-channel noise estimate; ``channels`` per level (3 downsamplings for 4 levels), GroupNorm,
    Swish, one residual block per level down and two up (MONAI uses ``num_res_blocks + 1`` going up), sinusoidal
    time embedding added in every residual block, self-attention only in the middle block. Deviation: the
    official 3D code uses linear attention (4 heads) there; MONAI's is softmax attention (``channels[-1] /
    num_head_channels`` heads).

    Deformation module: :class:`RegistrationUNet` on [moving, latent], stride-2 convolutions down, 2x2
    transposed convolutions up, LeakyReLU 0.2, then a ``spatial_dims``-channel head: the DDF (not
    diffeomorphic, as published).

    ``forward(x)``: registration, ``x = (B, 2, *spatial)`` [moving, fixed] in [0, 1] -> DDF. ``forward(x,
    outputs=True)``: one training draw (t uniform in 0..T-1, Gaussian noise): ``{"ddf", "noise", "noise_pred"}``.
    Spatial sizes must be divisible by 16 (the deformation U-Net's four stride-2 convolutions).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        channels: Sequence[int] = DIFFUSEMORPH_3D["channels"],
        norm_num_groups: int = DIFFUSEMORPH_3D["norm_num_groups"],
        num_head_channels: int = DIFFUSEMORPH_3D["num_head_channels"],
        deformation_encoder: Sequence[int] = DIFFUSEMORPH_3D["deformation_encoder"],
        deformation_decoder: Sequence[int] = DIFFUSEMORPH_3D["deformation_decoder"],
        num_train_timesteps: int = 2000,
        beta_start: float = 1e-6,
        beta_end: float = 1e-2,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.spatial_dims = spatial_dims
        self.schedule = {"num_train_timesteps": num_train_timesteps, "beta_start": beta_start, "beta_end": beta_end}
        self.scheduler = make_scheduler("ddpm", **self.schedule)
        self.denoiser = DiffusionModelUNet(
            spatial_dims=spatial_dims,
            in_channels=3,
            out_channels=1,
            num_res_blocks=1,
            channels=tuple(channels),
            attention_levels=(False,) * len(channels),
            norm_num_groups=norm_num_groups,
            num_head_channels=num_head_channels,
        )
        self.deformation = RegistrationUNet(
            spatial_dims,
            2,
            deformation_encoder,
            deformation_decoder,
            strides=(1,) + (2,) * (len(deformation_encoder) - 1),
            upsample="transpose",
        )
        self.flow = flow_head(spatial_dims, self.deformation.out_channels)

    @property
    def num_train_timesteps(self) -> int:
        return self.schedule["num_train_timesteps"]

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_pair_input(x, self.spatial_dims)
        x = x * 2.0 - 1.0
        return x[:, :1], x[:, 1:]

    def predict_noise(self, moving: torch.Tensor, fixed: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """The diffusion module: noise estimate of ``x_t`` at timesteps ``t`` ``(B,)``; images in [-1, 1]."""
        return self.denoiser(torch.cat([moving, fixed, x_t], dim=1), timesteps=t)

    def deform(self, moving: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """The deformation module: DDF from the moving image in [-1, 1] and a latent code."""
        return self.flow(self.deformation(torch.cat([moving, latent], dim=1)))

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The registration latent code: the noise estimate at t = 0 with x_t = the fixed image."""
        moving, fixed = self._split(x)
        t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return self.predict_noise(moving, fixed, fixed, t)

    def forward(self, x: torch.Tensor, outputs: bool = False):
        if not outputs:
            return self.deform(self._split(x)[0], self.latent(x))
        moving, fixed = self._split(x)
        t = torch.randint(0, self.num_train_timesteps, (x.shape[0],), device=x.device)
        noise = torch.randn_like(fixed)
        noise_pred = self.predict_noise(moving, fixed, q_sample(self.scheduler, fixed, noise, t), t)
        return {"ddf": self.deform(moving, noise_pred), "noise": noise, "noise_pred": noise_pred}

    def trajectory(self, x: torch.Tensor, gammas: Sequence[float]) -> list[torch.Tensor]:
        """DDFs along the continuous path moving -> fixed: the deformation module on ``gamma * latent``.

        As published, ``gamma = 0`` is whatever the deformation module makes of a zero code (near identity after
        training, not exactly identity) and ``gamma = 1`` is the registration.
        """
        moving = self._split(x)[0]
        code = self.latent(x)
        return [self.deform(moving, float(g) * code) for g in gammas]

    def generate(
        self,
        x: torch.Tensor,
        sampler: str = "ddpm",
        start: int = 200,
        steps: int | None = None,
        observer: Callable[[SamplingStep], bool | None] | None = None,
        every: int = 10,
        seed: int | None = 0,
        eta: float | None = None,
    ) -> torch.Tensor:
        """Conditional image generation: the moving image noised to ``start`` (q-sample), then the reverse process
        conditioned on [moving, fixed] (``"ddpm"``: ``start + 1`` ancestral steps; ``"ddim"``: about ``steps``,
        with noise ``eta`` per step, see :func:`~common.diffusion.reverse_process`), x0 clipped to [-1, 1].
        Returns the generated image in [0, 1], ``(B, 1, *spatial)``; ``observer`` sees every ``every``-th step
        (samples in [-1, 1]). ``seed`` makes the noise reproducible.
        """
        moving, fixed = self._split(x)
        scheduler = make_scheduler(sampler, **self.schedule)
        timesteps = sampling_timesteps(scheduler, start, steps)
        generator = torch.Generator(device=x.device).manual_seed(seed) if seed is not None else None
        noise = torch.randn(moving.shape, generator=generator, device=x.device, dtype=moving.dtype)
        t = torch.full((x.shape[0],), timesteps[0], dtype=torch.long, device=x.device)
        x_t = q_sample(scheduler, moving, noise, t)
        sample = reverse_process(
            lambda sample, time: self.predict_noise(moving, fixed, sample, time),
            x_t,
            scheduler,
            timesteps,
            observer,
            every,
            generator,
            eta,
        )
        return ((sample.clamp(-1.0, 1.0) + 1.0) / 2.0).to(x.dtype)
