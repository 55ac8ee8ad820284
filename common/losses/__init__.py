"""Registration losses: image similarity (Parzen NMI, LNCC, SSIM), field regularisers and soft Dice."""

from .dice import SoftDiceLoss, one_hot
from .nmi import ParzenNMILoss, nmi_from_histogram, normalized_mutual_information, parzen_joint_histogram
from .prior import KLPriorLoss
from .regularisers import (
    AffineCascadeRegulariser,
    BendingEnergy,
    GradientRegulariser,
    LDDMMRegulariser,
    forward_differences,
    laplacian,
    lddmm_operator,
)
from .similarity import LNCCLoss, SSIMLoss, ssim_map

__all__ = [
    "AffineCascadeRegulariser",
    "BendingEnergy",
    "GradientRegulariser",
    "KLPriorLoss",
    "LDDMMRegulariser",
    "LNCCLoss",
    "ParzenNMILoss",
    "SSIMLoss",
    "SoftDiceLoss",
    "forward_differences",
    "laplacian",
    "lddmm_operator",
    "nmi_from_histogram",
    "normalized_mutual_information",
    "one_hot",
    "parzen_joint_histogram",
    "ssim_map",
]
