"""Noise schedules: MONAI's DDPM/DDIM schedulers with the diffusion-registration papers' defaults."""

from __future__ import annotations

import torch
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

__all__ = ["make_scheduler", "q_sample"]


def make_scheduler(
    kind: str = "ddpm",
    num_train_timesteps: int = 2000,
    beta_start: float = 1e-6,
    beta_end: float = 1e-2,
    clip_sample: bool = True,
):
    """A MONAI scheduler with a linear beta schedule ``beta_start -> beta_end`` over ``num_train_timesteps``.

    Defaults are DiffuseMorph's, DDM's and DiffuseReg's (T = 2000, beta 1e-6 -> 1e-2). ``clip_sample`` clips the
    x0 estimate of every reverse step to [-1, 1] (DiffuseMorph's generation; DiffuseReg samples fields unclipped).
    """
    if kind not in ("ddpm", "ddim"):
        raise ValueError(f"kind must be 'ddpm' or 'ddim', got {kind!r}")
    if not 0 < beta_start < beta_end < 1:
        raise ValueError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
    common = dict(
        num_train_timesteps=int(num_train_timesteps),
        schedule="linear_beta",
        beta_start=beta_start,
        beta_end=beta_end,
        clip_sample=clip_sample,
    )
    if kind == "ddpm":
        scheduler = DDPMScheduler(**common)
    else:
        # set_alpha_to_one: the last DDIM step lands on the clean sample, as DDIM's paper
        scheduler = DDIMScheduler(set_alpha_to_one=True, **common)
    # Why float64: MONAI keeps the schedule in float32, where 1 - alpha_bar_0 = 1 - (1 - 1e-6) is off by 5%, so
    # DDPM's last step multiplied x0 by 1.05. Steps index these 0-d tensors, which keep the samples' dtype.
    scheduler.betas = torch.linspace(beta_start, beta_end, int(num_train_timesteps), dtype=torch.float64)
    scheduler.alphas = 1.0 - scheduler.betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, dim=0)
    scheduler.one = torch.tensor(1.0, dtype=torch.float64)
    if kind == "ddim":
        scheduler.final_alpha_cumprod = scheduler.one
    return scheduler


def q_sample(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The forward process ``sqrt(a_t) x0 + sqrt(1 - a_t) noise`` at timesteps ``t`` ``(B,)``, in ``x0``'s dtype.

    Used instead of MONAI's ``add_noise``, which casts the scheduler's own schedule to the samples' dtype
    (undoing the float64 of :func:`make_scheduler`).
    """
    a = scheduler.alphas_cumprod.to(x0.device)[t.to(x0.device)].view(-1, *([1] * (x0.ndim - 1)))
    return (a.sqrt() * x0 + (1.0 - a).sqrt() * noise).to(x0.dtype)
