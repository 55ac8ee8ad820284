"""MONAI/ignite engine pieces for registration: batch preparation, the training objective, evaluator
postprocessing, output writers, the metrics table, checkpoint loading, and trajectory / generation outputs."""

from .batch import PairBatch
from .checkpoint import (
    AtomicDiskSaver,
    BestModelSaver,
    CheckpointError,
    check_output_dir,
    load_weights,
    pretrained_network,
)
from .distributed import rank_handlers
from .field_diffusion import FieldStatistics, SamplingInferer, SamplingOutputs
from .handlers import RegistrationMetricsTable, RegistrationWriter, pair_ids
from .loss import RegistrationLoss
from .postprocessing import TimedInferer, WarpOutputs
from .state import ResumeTraining, TrainingStateSaver
from .trajectory import FramesWriter, GenerationInferer, GenerationOutputs, TrajectoryOutputs

__all__ = [
    "AtomicDiskSaver",
    "BestModelSaver",
    "FieldStatistics",
    "SamplingInferer",
    "SamplingOutputs",
    "CheckpointError",
    "FramesWriter",
    "GenerationInferer",
    "GenerationOutputs",
    "PairBatch",
    "RegistrationLoss",
    "RegistrationMetricsTable",
    "RegistrationWriter",
    "ResumeTraining",
    "TimedInferer",
    "TrainingStateSaver",
    "TrajectoryOutputs",
    "check_output_dir",
    "WarpOutputs",
    "load_weights",
    "pretrained_network",
    "pair_ids",
    "rank_handlers",
]
