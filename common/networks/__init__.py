"""Registration networks: building blocks and whole models following the inference contract of DESIGN.md."""

from .diffusemorph import DIFFUSEMORPH_2D, DIFFUSEMORPH_3D, DiffuseMorph
from .diffusereg import DIFFUSEREG_ACDC, DIFFUSEREG_SMALL, DiffuseReg, DiffuseRegBackbone
from .registration import MIDIR, VoxelMorph, check_pair_input
from .swin_cross import SwinCrossBlock
from .transmorph import TRANSMORPH_LARGE, TRANSMORPH_SMALL, SwinEncoder, TransMorph
from .unet import VM1, VM2, RegistrationUNet
from .vtn import VTN

__all__ = [
    "DIFFUSEREG_ACDC",
    "DIFFUSEREG_SMALL",
    "DiffuseReg",
    "DiffuseRegBackbone",
    "SwinCrossBlock",
    "VTN",
    "DIFFUSEMORPH_2D",
    "DIFFUSEMORPH_3D",
    "DiffuseMorph",
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
