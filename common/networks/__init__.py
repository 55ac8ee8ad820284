"""Registration networks: building blocks and whole models following the inference contract of DESIGN.md."""

from .registration import MIDIR, VoxelMorph, check_pair_input
from .transmorph import TRANSMORPH_LARGE, TRANSMORPH_SMALL, SwinEncoder, TransMorph
from .unet import VM1, VM2, RegistrationUNet

__all__ = [
    "MIDIR",
    "TRANSMORPH_LARGE",
    "TRANSMORPH_SMALL",
    "VM1",
    "VM2",
    "RegistrationUNet",
    "SwinEncoder",
    "TransMorph",
    "VoxelMorph",
    "check_pair_input",
]
