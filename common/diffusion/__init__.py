"""Denoising diffusion: the papers' noise schedule on MONAI's schedulers, and one reverse-process loop
(DDPM or DDIM, from any start step, observable every k steps) shared by the diffusion bundles."""

from .sampling import SamplingStep, reverse_process, sampling_timesteps
from .schedule import make_scheduler, q_sample

__all__ = ["SamplingStep", "make_scheduler", "q_sample", "reverse_process", "sampling_timesteps"]
