"""Loading published or trained weights: plain state dicts, ``weights_only=True``, clear errors."""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["CheckpointError", "check_output_dir", "load_weights"]


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


def check_output_dir(path: str, overwrite: bool = False) -> str:
    """Refuse an output folder that is a file, or (without ``overwrite``) one that already holds results."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{path}: output_dir is a file, expected a folder")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"{path}: output_dir already holds results; choose another folder or set overwrite=true")
    return path
