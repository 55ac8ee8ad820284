"""Loading published or trained weights (plain state dicts, ``weights_only=True``, clear errors) and saving the
best model so that an interrupted save never loses it."""

from __future__ import annotations

import os

import ignite.distributed as idist
import torch
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver
from torch import nn

from ..atomic import atomic_path, check_writable
from ..bundle.values import flag

__all__ = [
    "AtomicDiskSaver",
    "BestModelSaver",
    "CheckpointError",
    "check_output_dir",
    "load_weights",
    "pretrained_network",
]


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not belong to the network."""


def load_weights(network: nn.Module, path: str, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load the state dict at ``path`` into ``network`` (strict); returns the network.

    Accepts a plain state dict or a dict holding one under ``network`` / ``model`` / ``state_dict``.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found (train the bundle first, or give checkpoint=<file>)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(state, dict):
        for key in ("network", "model", "state_dict"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    target = network.module if hasattr(network, "module") else network
    own = target.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            part
            for part in (
                f"missing {len(missing)} (e.g. {missing[:3]})" if missing else "",
                f"unexpected {len(unexpected)} (e.g. {unexpected[:3]})" if unexpected else "",
                f"shape mismatch for {wrong[:3]}" if wrong else "",
            )
            if part
        )
        raise CheckpointError(
            f"{path}: does not fit {type(target).__name__} ({detail}); is it from another bundle "
            "or another configuration?"
        )
    target.load_state_dict(state)
    return network


def pretrained_network(network: nn.Module, path: str, device: str | torch.device = "cpu") -> nn.Module:
    """``network`` with the weights at ``path`` (:func:`load_weights`), on ``device``, in eval mode: a frozen
    baseline or teacher named in a config (DDM's VoxelMorph baselines, DiffuseReg's bootstrap)."""
    return load_weights(network, path, device).to(device).eval()


def check_output_dir(path: str, overwrite: bool = False) -> str:
    """Refuse an output folder that is a file, one that cannot be created, or (without ``overwrite``) one that
    already holds results."""
    overwrite = flag(overwrite, "overwrite")
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path}: output_dir is a file, expected a folder")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"{path}: output_dir already holds results; choose another folder or set overwrite=true")
    check_writable(os.path.join(path, "x"))
    return path


class AtomicDiskSaver(BaseSaveHandler):
    """ignite save handler writing each checkpoint through :func:`common.atomic.atomic_path`; with a fixed
    ``filename`` the old file is never removed first (ignite removes the worse checkpoint before saving the
    better one), the new one replaces it whole. Saves on rank 0 only."""

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        self.dirname, self.filename = dirname, filename

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        if idist.get_rank() != 0:
            return
        os.makedirs(self.dirname, exist_ok=True)
        with atomic_path(os.path.join(self.dirname, self.filename or filename)) as tmp:
            torch.save(checkpoint, tmp)

    def remove(self, filename: str) -> None:
        if self.filename is None and idist.get_rank() == 0:
            os.remove(os.path.join(self.dirname, filename))


class BestModelSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` keeping the best model by the evaluator's key metric in
    ``save_dir/key_metric_filename``, written atomically (MONAI's own disk saver writes in place: a run killed
    while saving left a corrupt ``model.pt`` and no previous best).

    ``state_dict`` / ``load_state_dict`` carry the best score so far: the bundles' training state holds it, and a
    resumed run replaces ``model.pt`` only with a better model."""

    def __init__(self, save_dir: str, save_dict: dict, key_metric_filename: str = "model.pt", **kwargs) -> None:
        super().__init__(
            save_dir=save_dir,
            save_dict=save_dict,
            save_key_metric=True,
            key_metric_filename=key_metric_filename,
            **kwargs,
        )
        for checkpoint in (self._key_metric_checkpoint, self._final_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(save_dir, checkpoint.save_handler.filename)

    def state_dict(self) -> dict:
        return self._key_metric_checkpoint.state_dict()
