"""The reverse diffusion process, shared by every diffusion bundle (image generation, field sampling)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

__all__ = ["SamplingStep", "check_eta", "sampling_timesteps", "reverse_process"]


@dataclass
class SamplingStep:
    """What an observer of the reverse process receives: the step index (0-based), the timestep just denoised,
    the total number of steps, the new sample ``x_{t-1}`` and the current clean-sample estimate ``x0_hat``."""

    index: int
    timestep: int
    total: int
    sample: torch.Tensor
    x0: torch.Tensor


def sampling_timesteps(scheduler, start: int | None = None, steps: int | None = None) -> list[int]:
    """Timesteps of the reverse process, in the order they are denoised, and configures ``scheduler`` for them.

    DDPM: every timestep from ``start`` (default ``T - 1``: pure noise) down to 0 (``steps`` must be ``None`` or
    that count). DDIM: timesteps ``start, start - s, ...`` with the stride ``s = round((start + 1) / steps)``, so
    ``start // s + 1`` steps: exactly ``steps`` from pure noise when it divides T (T = 2000: 50, 10), 67 for
    80 requested from ``start = 200``. Why not MONAI's own DDIM timesteps: ``set_timesteps`` spaces them by
    ``linspace`` while ``step`` jumps by ``T // n``, so each step lands next to, not on, the next timestep.
    """
    total = scheduler.num_train_timesteps
    start = total - 1 if start is None else int(start)
    if not 0 <= start < total:
        raise ValueError(f"start must be in 0..{total - 1}, got {start}")
    if isinstance(scheduler, DDPMScheduler):
        if steps is not None and steps != start + 1:
            raise ValueError(f"DDPM denoises every timestep: {start + 1} steps from t = {start}, not {steps}")
        scheduler.set_timesteps(total)
    elif isinstance(scheduler, DDIMScheduler):
        if steps is None or steps < 1:
            raise ValueError(f"DDIM needs a positive number of steps, got {steps}")
        stride = max(1, round((start + 1) / int(steps)))
        scheduler.set_timesteps(total // stride)  # step() then jumps by exactly `stride`
        scheduler.timesteps = torch.arange(start, -1, -stride, dtype=torch.long)
    else:
        raise TypeError(f"scheduler must be MONAI's DDPMScheduler or DDIMScheduler, got {type(scheduler).__name__}")
    return [int(t) for t in scheduler.timesteps if int(t) <= start]


def check_eta(sampler: str, eta: float | None) -> float:
    """The per-step noise ``eta`` for ``sampler`` (``"ddpm"`` or ``"ddim"``), as DDIM's paper defines it: 0
    deterministic, 1 the ancestral variance. DDIM takes any value in [0, 1] (``None``: 0); DDPM's steps are
    ancestral, ``eta = 1`` (``None`` or 1). Raises ``ValueError`` otherwise."""
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
    if eta is not None and not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    if sampler == "ddpm" and eta is not None and eta != 1.0:
        raise ValueError(f"DDPM's ancestral steps are eta = 1; eta = {eta} needs the DDIM sampler")
    return 1.0 if sampler == "ddpm" else float(eta or 0.0)


@torch.no_grad()
def reverse_process(
    predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scheduler,
    timesteps: list[int],
    observer: Callable[[SamplingStep], bool | None] | None = None,
    every: int = 1,
    generator: torch.Generator | None = None,
    eta: float | None = None,
) -> torch.Tensor:
    """Denoise ``x`` (the sample at ``timesteps[0]``) through ``timesteps`` with ``scheduler.step``.

    ``predict_noise(x_t, t)`` returns the noise estimate (``t`` a ``(B,)`` long tensor). ``observer`` is called
    every ``every`` steps and after the last one with a :class:`SamplingStep`; returning ``True`` stops the
    process early (the current ``x0_hat`` is then returned). ``generator`` seeds the added noise. ``eta``: the
    noise per step (:func:`check_eta`). Returns the final sample (``x0``).
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    ddim = isinstance(scheduler, DDIMScheduler)
    eta = check_eta("ddim" if ddim else "ddpm", eta)
    kwargs = {"generator": generator} if generator is not None else {}
    if ddim:
        kwargs["eta"] = eta
    dtype = x.dtype
    for index, t in enumerate(timesteps):
        time = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        x, x0 = (v.to(dtype) for v in scheduler.step(predict_noise(x, time), t, x, **kwargs))
        last = index == len(timesteps) - 1
        if observer is not None and ((index + 1) % every == 0 or last):
            if observer(SamplingStep(index, t, len(timesteps), x, x0)) and not last:
                return x0
    return x
