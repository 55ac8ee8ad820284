"""The real-scan stage every path that registers a user's pair goes through (``regzoo register``, the bundles'
inference configs, the MONAI Label app): the network grid built from the fixed image, affine pre-alignment in
physical space, the network, and one composite transform on the fixed image's own grid."""

from .affine import AFFINE_MODELS, SIMILARITIES, AffineResult, align_affine, describe_affine
from .grid import foreground_centre, network_grid, reorientation
from .register import load_volume, register_pair, run_network, save_like
from .stage import PreparedPair, RealScanStage

__all__ = [
    "AFFINE_MODELS",
    "SIMILARITIES",
    "AffineResult",
    "PreparedPair",
    "RealScanStage",
    "align_affine",
    "describe_affine",
    "foreground_centre",
    "load_volume",
    "network_grid",
    "register_pair",
    "reorientation",
    "run_network",
    "save_like",
]
