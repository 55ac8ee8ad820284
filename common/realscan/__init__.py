"""The real-scan stage every path that registers a user's pair goes through (``regzoo register``, the bundles'
inference configs, the MONAI Label app): the network grid built from the fixed image, affine pre-alignment in
physical space, the network, and one composite transform on the fixed image's own grid."""

from .affine import AFFINE_MODELS, SIMILARITIES, AffineResult, align_affine, describe_affine
from .batch import BatchError, BatchRegistration, metrics_row, pair_name, pair_names, report_frames, write_metrics_table
from .finetune import finetune, finetune_pairs, prepare_pairs
from .grid import foreground_centre, network_grid, reorientation
from .refine import Refinement, RefiningInferer, bundle_refinement, refinement_kind
from .register import load_volume, register_pair, run_network, save_like
from .stage import PreparedPair, RealScanStage

__all__ = [
    "AFFINE_MODELS",
    "SIMILARITIES",
    "AffineResult",
    "BatchError",
    "BatchRegistration",
    "PreparedPair",
    "RealScanStage",
    "Refinement",
    "RefiningInferer",
    "align_affine",
    "bundle_refinement",
    "describe_affine",
    "finetune",
    "finetune_pairs",
    "foreground_centre",
    "load_volume",
    "metrics_row",
    "network_grid",
    "pair_name",
    "pair_names",
    "prepare_pairs",
    "refinement_kind",
    "register_pair",
    "reorientation",
    "report_frames",
    "run_network",
    "save_like",
    "write_metrics_table",
]
