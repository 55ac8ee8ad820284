"""Evaluator pieces for what diffusion-deformation models produce beyond one DDF: continuous trajectories
(DiffuseMorph, DDM, and the DDM paper's VoxelMorph baselines) and conditionally generated images.

They read the evaluator's output dict (``decollate=False``): ``image`` = network input ``(B, 2, *spatial)``,
``label`` = the :class:`~common.engines.PairBatch` targets. Per-pair figures go to ``extra_metrics`` (one dict
per batch element), which :class:`~common.engines.RegistrationMetricsTable` adds as columns.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Mapping, Sequence

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine, Events
from torch import nn
from tqdm import tqdm

from ..bundle.values import flag
from ..diffusion import SamplingStep, check_eta
from ..export.frames import frame_gif, frame_strip
from ..metrics.image import nmse, psnr
from ..metrics.pair import dice_row
from ..spatial.warp import sample_displaced, warp_label
from .handlers import _affine, pair_folder, pair_ids

__all__ = ["TrajectoryOutputs", "GenerationInferer", "GenerationOutputs", "FramesWriter"]


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


class TrajectoryOutputs:
    """Postprocessing: frames along each model's trajectory from the moving image (gamma = 0) to the fixed one
    (gamma = 1), and, when the real sequence is in the batch, their fidelity to the real frames.

    The frame count is ``frames`` or, per subject, the real sequence's frames from ED to ES (``es - ed + 1``,
    batch keys ``ed``/``es``, 1-based); gammas are evenly spaced in [0, 1]. Every model must have a
    ``trajectory(x, gammas)`` method returning DDFs (``DiffuseMorph``, ``VoxelMorph``). ``network`` is the
    bundle's model (its frames are kept as ``trajectory`` ``(B, N, *spatial)`` and ``trajectory_ddf``
    ``(B, N, ndim, *spatial)`` for writers); ``baselines`` are compared on the same frames.

    Metrics per model ``name`` (``extra_metrics``): ``psnr_<name>`` (dB) and ``nmse_<name>``, the mean over the
    generated frames 2..N (frame 1 is the ED input itself) against the real frames ``sequence[ed..es]``, and
    the same for ``identity`` (every frame = the ED image: what no motion model scores);
    ``dice_es_<name>``: mean Dice at ES of the moving labels warped (nearest) by the last frame's DDF;
    ``trajectory_seconds_<name>``: time to compute all the frames' DDFs, per pair. ``warp`` (a
    :class:`WarpOutputs`) runs first, so one postprocessing gives the registration outputs too.
    """

    def __init__(
        self,
        network: nn.Module,
        frames: int | None = None,
        baselines: Mapping[str, nn.Module] | None = None,
        name: str = "model",
        labels: Sequence[int] | None = None,
        warp=None,
    ) -> None:
        models = {name: network, **dict(baselines or {})}
        for key, model in models.items():
            if not callable(getattr(model, "trajectory", None)):
                raise ValueError(f"model {key!r} ({type(model).__name__}) has no trajectory(x, gammas) method")
        if frames is not None and frames < 2:
            raise ValueError(f"frames must be at least 2 (moving and fixed), got {frames}")
        self.models, self.name, self.frames, self.labels, self.warp = models, name, frames, labels, warp

    def _count(self, targets: dict) -> int:
        if self.frames is not None:
            return self.frames
        if "ed" not in targets or "es" not in targets:
            raise ValueError("no frame count: set frames, or give ED/ES frame numbers (common.data.acdc_sequences)")
        counts = {int(e) - int(d) + 1 for d, e in zip(targets["ed"].reshape(-1), targets["es"].reshape(-1))}
        if len(counts) != 1 or min(counts) < 2:
            raise ValueError(f"ES must follow ED and every pair of a batch have the same frame count, got {counts}")
        return counts.pop()

    @torch.no_grad()
    def __call__(self, data: dict) -> dict:
        if self.warp is not None:
            data = self.warp(data)
        inputs, targets = data["image"], data["label"]
        moving, size = targets["moving"], inputs.shape[0]
        n = self._count(targets)
        gammas = torch.linspace(0.0, 1.0, n).tolist()
        truth = None
        if "sequence" in targets:
            ed = int(targets["ed"].reshape(-1)[0])
            truth = targets["sequence"][:, ed - 1 : ed - 1 + n]
        extra = data.setdefault("extra_metrics", [{} for _ in range(size)])
        if truth is not None:  # the static reference: every frame = the ED image
            for b in range(size):
                real = truth[b, 1:].unsqueeze(1)
                static = moving[b : b + 1].expand_as(real)
                extra[b]["psnr_identity"] = float(psnr(static, real).mean())
                extra[b]["nmse_identity"] = float(nmse(static, real).mean())
        for name, model in self.models.items():
            _sync(inputs)
            start = time.perf_counter()
            ddfs = model.trajectory(inputs, gammas)
            _sync(inputs)
            seconds = (time.perf_counter() - start) / size
            frames = torch.cat([sample_displaced(moving, d, padding_mode="border") for d in ddfs], dim=1)
            if name == self.name:
                data["trajectory"], data["trajectory_ddf"], data["gammas"] = frames, torch.stack(ddfs, 1), gammas
            for b in range(size):
                row = extra[b]
                row[f"trajectory_seconds_{name}"] = seconds
                if truth is not None:
                    pred, real = frames[b, 1:].unsqueeze(1), truth[b, 1:].unsqueeze(1)
                    row[f"psnr_{name}"] = float(psnr(pred, real).mean())
                    row[f"nmse_{name}"] = float(nmse(pred, real).mean())
                if "moving_label" in targets and "fixed_label" in targets:
                    warped = warp_label(targets["moving_label"][b : b + 1], ddfs[-1][b : b + 1])
                    fixed = targets["fixed_label"][b : b + 1]
                    row[f"dice_es_{name}"] = dice_row(warped, fixed, self.labels, per_label=False)["dice_mean"]
        return data


class GenerationInferer:
    """Inferer for conditional image generation: ``network.generate(inputs, ...)`` with a progress bar; keeps the
    x0 estimates every ``every`` steps (``self.snapshots``, ``self.snapshot_steps``) and the time (``seconds``).

    ``sampler``: ``"ddpm"`` (``start + 1`` ancestral steps) or ``"ddim"`` (about ``steps``); ``eta``: the
    noise per step, 0 deterministic (DDIM only), 1 ancestral (both samplers); ``start``: the timestep the
    moving image is noised to (DiffuseMorph: 200). ``seed`` fixes the noise.
    """

    def __init__(
        self,
        sampler: str = "ddpm",
        start: int = 200,
        steps: int | None = None,
        every: int = 10,
        seed: int = 0,
        progress: bool = True,
        eta: float | None = None,
    ) -> None:
        self.eta = check_eta(sampler, eta)  # refused here, before any data is read
        self.sampler, self.start, self.steps, self.every, self.seed = sampler, start, steps, every, seed
        self.progress = progress
        self.snapshots: list[torch.Tensor] = []
        self.snapshot_steps: list[int] = []
        self.seconds = 0.0

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs) -> torch.Tensor:
        self.snapshots, self.snapshot_steps = [], []
        bar = tqdm(desc=f"{self.sampler} generation", unit="step", disable=not self.progress)

        def observe(step: SamplingStep) -> None:
            bar.total = step.total
            bar.update(step.index + 1 - bar.n)
            self.snapshots.append(((step.x0.clamp(-1, 1) + 1) / 2).detach().cpu())
            self.snapshot_steps.append(step.index + 1)

        _sync(inputs)
        start = time.perf_counter()
        with torch.no_grad():
            out = network.generate(
                inputs,
                self.sampler,
                self.start,
                self.steps,
                observer=observe,
                every=self.every,
                seed=self.seed,
                eta=self.eta,
            )
        _sync(inputs)
        self.seconds = time.perf_counter() - start
        bar.close()
        return out


class GenerationOutputs:
    """Postprocessing of a generation run (``pred`` = generated image in [0, 1]): NMSE and PSNR of the generated
    image against the fixed (target) and the moving image, seconds per pair, and the snapshot frames
    ``(B, K, *spatial)`` from ``inferer`` as ``trajectory`` for :class:`FramesWriter`."""

    def __init__(self, inferer: GenerationInferer) -> None:
        self.inferer = inferer

    def __call__(self, data: dict) -> dict:
        generated, targets = data["pred"], data["label"]
        fixed, moving = targets["fixed"], targets["moving"]
        n_fixed, n_moving = nmse(generated, fixed), nmse(generated, moving)
        p_fixed = psnr(generated, fixed)
        data["extra_metrics"] = [
            {
                "nmse_to_fixed": float(n_fixed[b]),
                "nmse_to_moving": float(n_moving[b]),
                "nmse_moving_to_fixed": float(nmse(moving[b : b + 1], fixed[b : b + 1])[0]),
                "psnr_to_fixed": float(p_fixed[b]),
                "seconds": self.inferer.seconds / generated.shape[0],
            }
            for b in range(generated.shape[0])
        ]
        data["trajectory"] = torch.cat(self.inferer.snapshots, dim=1).to(generated.device)
        data["gammas"] = [f"step {s}" for s in self.inferer.snapshot_steps]
        return data


class FramesWriter:
    """Per pair, in ``<output_dir>/<pair id>/`` with the fixed image's affine: ``frames.nii.gz`` (the frames as
    the last axis: trajectory or sampling snapshots), ``frames_ddf.nii.gz`` (``(*spatial, N, ndim)``, voxel
    units) when there are DDFs, ``generated.nii.gz`` for generation, ``frames.csv`` when the outputs carry
    ``frame_metrics`` (per-frame figures, e.g. Dice and NJD% of sampling snapshots), ``frames.png`` (a strip)
    and ``frames.gif``. Written to a temporary folder, moved into place complete; never overwrites unless
    ``overwrite=True``.
    """

    def __init__(self, output_dir: str, overwrite: bool = False, generated: bool = False) -> None:
        self.output_dir = output_dir
        self.overwrite, self.generated = flag(overwrite, "overwrite"), flag(generated, "generated")

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        out, batch = engine.state.output, engine.state.batch
        frames = out["trajectory"]
        captions = [g if isinstance(g, str) else f"γ={g:.2f}" for g in out.get("gammas", range(frames.shape[1]))]
        for b, name in enumerate(pair_ids(batch, frames.shape[0])):
            with pair_folder(self.output_dir, name, self.overwrite) as tmp:
                self._write(out, b, _affine(batch["fixed"], b), tmp, name, captions)

    def _write(self, out: dict, b: int, affine: np.ndarray, tmp: str, name: str, captions: list) -> None:
        frames = out["trajectory"]
        stack = frames[b].detach().cpu().float().numpy()
        nib.save(nib.Nifti1Image(np.moveaxis(stack, 0, -1), affine), os.path.join(tmp, "frames.nii.gz"))
        if "trajectory_ddf" in out:
            ddf = out["trajectory_ddf"][b].detach().cpu().float().numpy()  # (N, ndim, *spatial)
            ddf = np.moveaxis(np.moveaxis(ddf, 1, -1), 0, -2)
            nib.save(nib.Nifti1Image(ddf, affine), os.path.join(tmp, "frames_ddf.nii.gz"))
        if self.generated:
            image = out["pred"][b, 0].detach().cpu().float().numpy()
            nib.save(nib.Nifti1Image(image, affine), os.path.join(tmp, "generated.nii.gz"))
        if "frame_metrics" in out:
            rows = out["frame_metrics"][b]
            with open(os.path.join(tmp, "frames.csv"), "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        frame_strip(os.path.join(tmp, "frames.png"), stack, captions, title=name)
        frame_gif(os.path.join(tmp, "frames.gif"), stack)
