"""Evaluator postprocessing: everything a metric or writer needs, computed once per batch."""

from __future__ import annotations

import time

import torch

from ..spatial.jacobian import jacobian_determinant
from ..spatial.warp import sample_displaced

__all__ = ["WarpOutputs", "TimedInferer"]


class TimedInferer:
    """Calls the network once, timing it (CUDA synchronised): ``self.seconds`` holds the last call's time."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs):
        if inputs.is_cuda:
            torch.cuda.synchronize(inputs.device)
        start = time.perf_counter()
        out = network(inputs, *args, **kwargs)
        if inputs.is_cuda:
            torch.cuda.synchronize(inputs.device)
        self.seconds = time.perf_counter() - start
        return out


class WarpOutputs:
    """MONAI postprocessing on ``{**batch, **output}`` (``decollate=False``): from the predicted DDF (``pred``) adds
    ``warped`` (moving image, bilinear), ``warped_label`` (moving labels, nearest), ``jacobian`` (det J) and
    ``seconds`` (from a :class:`TimedInferer`)."""

    def __init__(self, inferer: TimedInferer | None = None) -> None:
        self.inferer = inferer

    def __call__(self, data: dict) -> dict:
        ddf, targets = data["pred"], data["label"]
        data["warped"] = sample_displaced(targets["moving"], ddf, mode="bilinear", padding_mode="border")
        if "moving_label" in targets:
            data["warped_label"] = sample_displaced(targets["moving_label"], ddf, mode="nearest", padding_mode="zeros")
            data["target_label"] = targets["fixed_label"]
        data["jacobian"] = jacobian_determinant(ddf)
        data["seconds"] = self.inferer.seconds / ddf.shape[0] if self.inferer is not None else float("nan")
        return data
