"""Evaluator postprocessing: everything a metric or writer needs, computed once per batch."""

from __future__ import annotations

import time

import torch

from ..spatial.integrate import compose
from ..spatial.jacobian import jacobian_determinant
from ..spatial.warp import sample_displaced, warp_label

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
    ``seconds`` (from a :class:`TimedInferer`).

    ``inverse="network"`` also adds ``inverse_ddf`` from ``network.invert(inputs)`` (methods with a true inverse,
    e.g. TransMorph-TVF), ``inverse="negate"`` the first-order ``-ddf`` (VoxelMorph's ``Id - u``); both add
    ``inverse_error``: per pair, the mean over the fixed grid of ``|phi(phi^-1(p)) - p|`` in voxels.
    """

    def __init__(self, inferer: TimedInferer | None = None, inverse: str | None = None, network=None) -> None:
        if inverse not in (None, "network", "negate"):
            raise ValueError(f"inverse must be None, 'network' or 'negate', got {inverse!r}")
        if inverse == "network" and not callable(getattr(network, "invert", None)):
            raise ValueError(
                f"inverse='network' needs a network with an invert(x) method, got {type(network).__name__}"
            )
        self.inferer, self.inverse, self.network = inferer, inverse, network

    def __call__(self, data: dict) -> dict:
        ddf, targets = data["pred"], data["label"]
        data["warped"] = sample_displaced(targets["moving"], ddf, mode="bilinear", padding_mode="border")
        if "moving_label" in targets:
            data["warped_label"] = warp_label(targets["moving_label"], ddf)
            data["target_label"] = targets["fixed_label"]
        data["jacobian"] = jacobian_determinant(ddf)
        if self.inverse is not None:
            with torch.no_grad():
                if self.inverse == "negate":
                    inverse = -ddf
                elif getattr(self.inferer, "inverse", None) is not None:  # a RefiningInferer's refined inverses
                    inverse = self.inferer.inverse
                else:
                    inverse = self.network.invert(data["image"])
            data["inverse_ddf"] = inverse
            data["inverse_error"] = compose(ddf, inverse).norm(dim=1).flatten(1).mean(1)
        data["seconds"] = self.inferer.seconds / ddf.shape[0] if self.inferer is not None else float("nan")
        return data
