"""Denoising diffusion: the papers' noise schedule on MONAI's schedulers, one reverse-process loop (DDPM or
DDIM, from any start step, observable every k steps) shared by the diffusion bundles, and guidance / early
stopping for sampling deformation fields."""

from .guidance import FoldingGuidance, MaskedSimilarityGuidance, StopWhenStable
from .sampling import SamplingStep, check_eta, reverse_process, sampling_timesteps
from .schedule import make_scheduler, q_sample

__all__ = [
    "FoldingGuidance",
    "MaskedSimilarityGuidance",
    "SamplingStep",
    "StopWhenStable",
    "check_eta",
    "make_scheduler",
    "q_sample",
    "reverse_process",
    "sampling_timesteps",
]
