"""Saving the whole training state every epoch, so an interrupted run resumes where it stopped, and resuming it
only into the same run: the state records the run's data folder and grid, and a run on other data or another
grid is refused instead of silently resuming a finished run (which would train nothing on the new data)."""

from __future__ import annotations

import json
import os

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from ..atomic import atomic_path

__all__ = ["ResumeTraining", "TrainingStateSaver"]

RUN_KEY = "regzoo_run"  # the run record inside the state file, beside the objects' state dicts


def _record(run: dict | None) -> dict | None:
    """``run`` as plain JSON values (paths absolute), comparable with the record read back from a state file."""
    if run is None:
        return None
    out = {}
    for key, value in run.items():
        if isinstance(value, str) and key == "data":
            value = os.path.abspath(value)
        out[key] = json.loads(json.dumps(value, default=str))
    return out


class TrainingStateSaver:
    """Save ``{name: obj.state_dict()}`` of ``objects`` (network, optimizer, trainer, ...) to ``path`` after every
    ``every`` epochs, atomically (``common.atomic.atomic_path``): a crash never leaves a half-written state.

    :class:`ResumeTraining` with the same objects resumes from it (see the bundles' train.json).

    ``run``: what identifies the run (the bundles pass ``{"data": data folder, "image_size", "pixdim"}``), saved
    with the state for :class:`ResumeTraining`.
    """

    def __init__(self, path: str, objects: dict, run: dict | None = None, every: int = 1) -> None:
        self.path, self.objects, self.run, self.every = path, objects, _record(run), every

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine: Engine) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        state = {}
        for name, obj in self.objects.items():
            target = obj.module if hasattr(obj, "module") else obj
            state[name] = target.state_dict()
        if self.run is not None:
            state[RUN_KEY] = self.run
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)


class ResumeTraining:
    """Resume training from the state :class:`TrainingStateSaver` wrote to ``path``, when there is one.

    The state is read once and loaded into ``objects`` (the saver's ``objects``) when the engine starts, as MONAI's
    ``CheckpointLoader`` does (``ignite.handlers.Checkpoint.load_objects``; the configured ``max_epochs`` is kept,
    so a finished run can be continued by raising it). A state whose run record differs from ``run`` (other data
    folder, grid or spacing) is refused with a one-line error naming the file and the difference: resuming it would
    continue, or end at once, a run on other data. A state without a record (written before records existed) is
    resumed.
    """

    def __init__(self, path: str, objects: dict, run: dict | None = None, map_location=None) -> None:
        self.path, self.objects, self.run, self.map_location = path, objects, _record(run), map_location

    def attach(self, engine: Engine) -> None:
        if not os.path.isfile(self.path):
            return
        try:
            state = torch.load(self.path, map_location=self.map_location, weights_only=True)
        except Exception as err:  # a damaged file: name it rather than fail inside ignite
            raise ValueError(
                f"{self.path}: not a readable training state ({type(err).__name__}); move it away"
            ) from None
        if not isinstance(state, dict):
            raise ValueError(f"{self.path}: not a training state (a {type(state).__name__}); move it away")
        saved = state.get(RUN_KEY)
        if saved is not None and self.run is not None and saved != self.run:
            changed = "; ".join(
                f"{key} {saved.get(key)!r}, now {value!r}" for key, value in self.run.items() if saved.get(key) != value
            )
            raise ValueError(
                f"{self.path}: the training state of another run ({changed}); resuming it would not train on this "
                f"run's data: move it away, or pass --ckpt_dir <another folder> to train afresh"
            )
        missing = [name for name in self.objects if name not in state]
        if missing:
            raise ValueError(f"{self.path}: a training state without {', '.join(missing)}; move it away")
        engine.add_event_handler(Events.STARTED, self._load, state)

    def _load(self, engine: Engine, state: dict) -> None:
        configured = engine.state.max_epochs
        Checkpoint.load_objects(to_load=self.objects, checkpoint=state)
        if configured is not None and engine.state.epoch > configured:
            raise ValueError(
                f"{self.path}: the training state is at epoch {engine.state.epoch}, past max_epochs {configured}"
            )
        engine.state.max_epochs = configured
