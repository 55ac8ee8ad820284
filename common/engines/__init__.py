"""MONAI/ignite engine pieces for registration: batch preparation, the training objective, evaluator
postprocessing, output writers, the metrics table and checkpoint loading."""

from .batch import PairBatch
from .checkpoint import CheckpointError, check_output_dir, load_weights
from .handlers import RegistrationMetricsTable, RegistrationWriter, pair_ids
from .loss import RegistrationLoss
from .postprocessing import TimedInferer, WarpOutputs
from .state import TrainingStateSaver

__all__ = [
    "CheckpointError",
    "PairBatch",
    "RegistrationLoss",
    "RegistrationMetricsTable",
    "RegistrationWriter",
    "TimedInferer",
    "TrainingStateSaver",
    "check_output_dir",
    "WarpOutputs",
    "load_weights",
    "pair_ids",
]
