"""Which handlers each process runs under ``torch.distributed`` (``multi_gpu_train.json``)."""

from __future__ import annotations

import torch.distributed as dist
from monai.handlers import StatsHandler, TensorBoardStatsHandler

__all__ = ["rank_handlers"]

_LOGGING = (StatsHandler, TensorBoardStatsHandler)


def rank_handlers(handlers: list) -> list:
    """All ``handlers`` on rank 0 (and without ``torch.distributed``); on the other ranks every handler but the
    logging ones. Handlers that change training state (validation, learning-rate schedules, field statistics)
    must run on every rank alike, or the ranks' weights drift apart: selecting them by position had left a
    learning-rate schedule on rank 0 only."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        return list(handlers)
    return [h for h in handlers if not isinstance(h, _LOGGING)]
