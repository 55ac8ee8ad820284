"""Which training handlers a process runs under torch.distributed."""

from monai.handlers import LrScheduleHandler, StatsHandler, TensorBoardStatsHandler, ValidationHandler

import common.engines.distributed as distributed
from common.engines import rank_handlers


def test_other_ranks_keep_every_state_changing_handler(monkeypatch, tmp_path):
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    lr = LrScheduleHandler(torch.optim.lr_scheduler.StepLR(optimizer, 1))
    validation = ValidationHandler(interval=1)
    logs = [StatsHandler(), TensorBoardStatsHandler(log_dir=str(tmp_path))]
    handlers = [logs[0], validation, logs[1], lr]  # the order must not matter
    assert rank_handlers(handlers) == handlers  # no process group: everything
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 0)
    assert rank_handlers(handlers) == handlers
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 1)
    assert rank_handlers(handlers) == [validation, lr]
