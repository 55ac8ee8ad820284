"""Saving the whole training state every epoch, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import os

import torch
from ignite.engine import Engine, Events

from ..atomic import atomic_path

__all__ = ["TrainingStateSaver"]


class TrainingStateSaver:
    """Save ``{name: obj.state_dict()}`` of ``objects`` (network, optimizer, trainer, ...) to ``path`` after every
    ``every`` epochs, atomically (``common.atomic.atomic_path``): a crash never leaves a half-written state.

    MONAI's ``CheckpointLoader`` with the same ``load_dict`` resumes from it (see the bundles' train.json).
    """

    def __init__(self, path: str, objects: dict, every: int = 1) -> None:
        self.path, self.objects, self.every = path, objects, every

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine: Engine) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        state = {}
        for name, obj in self.objects.items():
            target = obj.module if hasattr(obj, "module") else obj
            state[name] = target.state_dict()
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)
