"""Registration networks: building blocks and whole models following the inference contract of DESIGN.md."""

from .registration import MIDIR, VoxelMorph, check_pair_input
from .unet import VM1, VM2, RegistrationUNet

__all__ = ["MIDIR", "VM1", "VM2", "RegistrationUNet", "VoxelMorph", "check_pair_input"]
