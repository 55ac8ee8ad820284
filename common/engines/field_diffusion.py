"""Engine pieces for diffusion over deformation fields (DiffuseReg): the training set's field statistics, an
observable sampling inferer and the per-snapshot outputs (frames, Dice, NJD%) for :class:`FramesWriter`."""

from __future__ import annotations

import time

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from tqdm import tqdm

from ..diffusion import SamplingStep, StopWhenStable
from ..metrics.pair import dice_row
from ..metrics.regularity import njd_percent
from ..spatial.jacobian import jacobian_determinant
from ..spatial.warp import sample_displaced, warp_label
from .postprocessing import WarpOutputs

__all__ = ["FieldStatistics", "SamplingInferer", "SamplingOutputs"]


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


class FieldStatistics:
    """Trainer handler: before the first epoch, the per-channel mean, std and range of the bootstrap DDFs over
    the training loader, stored in the model (``set_field_statistics``) and so saved with its weights. Skipped
    when the model already holds statistics (a resumed run). Under ``torch.distributed`` the ranks' sums are
    added, so every rank normalises alike.
    """

    def __init__(self, network, loader, prepare_batch, device=None) -> None:
        self.network, self.loader, self.prepare_batch, self.device = network, loader, prepare_batch, device

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine | None = None) -> None:
        model = self.network.module if hasattr(self.network, "module") else self.network
        if int(model.field_count) > 0:
            return
        total = total_sq = low = high = None
        count = torch.zeros((), dtype=torch.float64)
        for batch in self.loader:
            inputs = self.prepare_batch(batch, self.device)[0]
            ddf = model.bootstrap_ddf(inputs).as_subclass(torch.Tensor).double()  # plain tensors (no MONAI metadata)
            flat = ddf.transpose(0, 1).reshape(ddf.shape[1], -1)
            total = flat.sum(1) if total is None else total + flat.sum(1)
            total_sq = (flat**2).sum(1) if total_sq is None else total_sq + (flat**2).sum(1)
            count += flat.shape[1]
            low = flat.min(1).values if low is None else torch.minimum(low, flat.min(1).values)
            high = flat.max(1).values if high is None else torch.maximum(high, flat.max(1).values)
        if total is None:
            raise ValueError("FieldStatistics: the training loader is empty")
        if dist.is_available() and dist.is_initialized():
            stats = torch.cat([total, total_sq, count.view(1)]).to(inputs.device)
            dist.all_reduce(stats)
            stats = stats.cpu()
            n = total.numel()
            total, total_sq, count = stats[:n], stats[n : 2 * n], stats[2 * n]
            low, high = low.to(inputs.device), high.to(inputs.device)
            dist.all_reduce(low, op=dist.ReduceOp.MIN)
            dist.all_reduce(high, op=dist.ReduceOp.MAX)
        total, total_sq = total.cpu(), total_sq.cpu()
        mean = total / count
        std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
        model.set_field_statistics(mean.tolist(), std.tolist(), int(count), low.cpu().tolist(), high.cpu().tolist())


class SamplingInferer:
    """Inferer that samples each pair's DDF with ``network.sample`` (a progress bar), keeping the DDF estimates
    every ``every`` steps (``snapshots``, ``snapshot_steps``), the time (``seconds``), the number of steps run
    (``steps_run``) and, with ``stop_tolerance``, stopping early once the estimate is stable
    (:class:`~common.diffusion.StopWhenStable` over ``stop_window`` observations).

    ``sampler``/``steps``: ``None`` = the model's defaults. A ``mask`` keyword (``PairBatch(mask_labels=...)``)
    is passed on for masked guidance.
    """

    def __init__(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        every: int = 10,
        stop_tolerance: float | None = None,
        stop_window: int = 2,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        self.sampler, self.steps, self.every, self.seed, self.progress = sampler, steps, every, seed, progress
        self.stop = StopWhenStable(stop_tolerance, stop_window) if stop_tolerance else None
        self.snapshots: list[torch.Tensor] = []
        self.snapshot_steps: list[int] = []
        self.seconds, self.steps_run = 0.0, 0

    def __call__(self, inputs: torch.Tensor, network, *args, mask=None, **kwargs) -> torch.Tensor:
        model = network.module if hasattr(network, "module") else network
        self.snapshots, self.snapshot_steps = [], []
        if self.stop is not None:
            self.stop.reset()
        bar = tqdm(desc="sampling", unit="step", disable=not self.progress)

        def observe(step: SamplingStep) -> bool:
            bar.total = step.total
            bar.update(step.index + 1 - bar.n)
            self.snapshots.append(step.x0.detach().cpu())
            self.snapshot_steps.append(step.index + 1)
            self.steps_run = step.index + 1
            return bool(self.stop(step)) if self.stop is not None else False

        _sync(inputs)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.sample(inputs, self.sampler, self.steps, observe, self.every, self.seed, mask=mask)
        _sync(inputs)
        self.seconds = time.perf_counter() - start
        bar.close()
        return out


class SamplingOutputs:
    """Postprocessing of a sampling run: the registration outputs (:class:`WarpOutputs`: warped images and labels,
    det J, seconds) and, per snapshot of the field estimate, the warped moving image (``trajectory``
    ``(B, K, *spatial)``), the DDF (``trajectory_ddf``) and ``frame_metrics`` (per pair a list of dicts: step,
    NJD%, and Dice when labels exist) for :class:`FramesWriter`; ``extra_metrics``: ``steps_run``."""

    def __init__(self, inferer: SamplingInferer, labels=None) -> None:
        self.inferer, self.labels = inferer, labels
        self.warp = WarpOutputs(inferer)

    def __call__(self, data: dict) -> dict:
        data = self.warp(data)
        targets, device = data["label"], data["pred"].device
        ddfs = torch.stack(self.inferer.snapshots, dim=1).to(device)  # (B, K, ndim, *spatial)
        frames, rows = [], [[] for _ in range(ddfs.shape[0])]
        for k, step in enumerate(self.inferer.snapshot_steps):
            ddf = ddfs[:, k]
            frames.append(sample_displaced(targets["moving"], ddf, padding_mode="border"))
            det = jacobian_determinant(ddf)
            for b in range(ddf.shape[0]):
                row = {"step": step, "njd_percent": float(njd_percent(det[b : b + 1])[0])}
                if "moving_label" in targets and "fixed_label" in targets:
                    warped = warp_label(targets["moving_label"][b : b + 1], ddf[b : b + 1])
                    fixed = targets["fixed_label"][b : b + 1]
                    row["dice_mean"] = dice_row(warped, fixed, self.labels, per_label=False)["dice_mean"]
                rows[b].append(row)
        data["trajectory"] = torch.cat(frames, dim=1)
        data["trajectory_ddf"] = ddfs
        data["gammas"] = [f"step {s}" for s in self.inferer.snapshot_steps]
        data["frame_metrics"] = rows
        data["extra_metrics"] = [{"steps_run": self.inferer.steps_run} for _ in range(ddfs.shape[0])]
        return data
