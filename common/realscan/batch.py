"""Registering a list of pairs through the real-scan stage: one folder per pair, a resumable run, one table.

Used by ``regzoo register --datalist`` and by every bundle's ``inference.json`` run ``register``
(``python -m monai.bundle run register --config_file configs/inference.json``), so the model-zoo path registers
as the command does.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys

import torch

from ..atomic import atomic_open
from ..bundle.values import flag
from .register import register_pair
from .stage import RealScanStage

__all__ = [
    "BatchError",
    "BatchRegistration",
    "metrics_row",
    "pair_name",
    "pair_names",
    "report_frames",
    "write_metrics_table",
]

PAIR_KEYS = ("fixed", "moving", "fixed_label", "moving_label")


def pair_name(pair: dict) -> str:
    """``<fixed>__<moving>``: file stems, each prefixed by its folder's name (generic stems such as
    ``aligned_norm`` are told apart by their subject folder)."""

    def name(path):
        stem = os.path.basename(path).removesuffix(".gz").removesuffix(".nii")
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        return f"{folder}_{stem}" if folder else stem

    return f"{name(pair['fixed'])}__{name(pair['moving'])}"


def pair_names(pairs: list[dict]) -> list[str]:
    """One output folder name per pair that no two different pairs share: :func:`pair_name`, and where that
    collides (same folder names and stems elsewhere on disk) a suffix of 8 hex digits of the pair's absolute
    file paths; the same pair gets the same name in every run (a resumed batch finds its folders)."""
    names = [pair_name(pair) for pair in pairs]
    keys = [_pair_key(pair) for pair in pairs]
    owners: dict[str, set] = {}
    for name, key in zip(names, keys):
        owners.setdefault(name, set()).add(key)
    return [
        f"{name}_{hashlib.sha1(repr(key).encode()).hexdigest()[:8]}" if len(owners[name]) > 1 else name
        for name, key in zip(names, keys)
    ]


def _pair_key(pair: dict) -> tuple:
    return tuple(os.path.abspath(pair[k]) if pair.get(k) else "" for k in PAIR_KEYS)


def metrics_row(metrics: dict) -> dict:
    """A table row of a pair's ``metrics.json``: per-label Dice left out, the affine as its rotation (degrees) and
    the length of its translation at the network grid's centre (mm)."""
    row = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if isinstance(metrics.get("affine"), dict):
        row["affine_rotation_deg"] = metrics["affine"]["rotation_deg"]
        row["affine_translation_mm"] = sum(t * t for t in metrics["affine"]["translation_mm"]) ** 0.5
    return row


def write_metrics_table(out: str, rows: list[dict]) -> str:
    """``<out>/metrics.csv`` of the rows (:func:`metrics_row`), written atomically."""
    flat = [metrics_row(row) for row in rows]
    columns = list(dict.fromkeys(k for row in flat for k in row))
    path = os.path.join(out, "metrics.csv")
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(flat)
    return path


def report_frames(network, inputs: torch.Tensor, folder: str, title: str, frames: int = 8) -> None:
    """``frames.png`` (strip) and ``frames.gif`` on the network grid where the method has them: the moving image
    along the trajectory, gamma 0 -> 1 (DiffuseMorph, DDM), or warped by the field estimate at about ``frames``
    evenly spaced steps of the seeded reverse process (DiffuseReg)."""
    from ..export.frames import frame_gif, frame_strip
    from ..spatial.warp import warp

    if callable(getattr(network, "trajectory", None)):
        gammas = torch.linspace(0, 1, frames).tolist()
        with torch.no_grad():
            fields = network.trajectory(inputs, gammas)
        captions = [f"γ={g:.2f}" for g in gammas]
    elif callable(getattr(network, "sample", None)):
        seen = []
        total = network.steps if network.sampler == "ddim" else network.num_train_timesteps
        with torch.no_grad():
            network.sample(inputs, observer=seen.append, every=max(1, total // frames))
        fields = [step.x0 for step in seen]
        captions = [f"step {step.index + 1}/{step.total}" for step in seen]
    else:
        return
    with torch.no_grad():
        images = torch.cat([warp(inputs[:, :1], ddf) for ddf in fields], 1)[0].cpu().numpy()
    frame_strip(os.path.join(folder, "frames.png"), images, captions, title=title)
    frame_gif(os.path.join(folder, "frames.gif"), images)


class BatchRegistration:
    """Register ``pairs`` (dicts of file paths) into ``<output_dir>/<pair name>/`` (:func:`pair_names`) and write
    ``<output_dir>/metrics.csv``, each prediction refined by ``refine`` when given.

    Pairs whose folder holds a ``metrics.json`` are skipped unless ``overwrite``, so an interrupted run resumes.
    A pair listed twice is registered once. A pair that cannot be registered (a bad file,
    a folder regzoo may not replace) does not stop the batch: its row in ``metrics.csv`` has the one-line
    ``error``, and :meth:`run` raises :class:`BatchError` after the table is written."""

    def __init__(
        self,
        stage: RealScanStage,
        network,
        pairs: list[dict],
        output_dir: str,
        device: str | torch.device = "cpu",
        overwrite: bool = False,
        report: bool = False,
        refine=None,
    ) -> None:
        self.stage, self.network, self.pairs, self.refine = stage, network, list(pairs), refine
        self.output_dir, self.device, self.report = output_dir, device, flag(report, "report")
        self.overwrite = flag(overwrite, "overwrite")

    def run(self) -> list[dict]:
        from tqdm import tqdm

        from ..data.files import DataError

        os.makedirs(self.output_dir, exist_ok=True)
        self.network.eval()
        rows, seen, failed = [], set(), []
        for pair, name in tqdm(list(zip(self.pairs, pair_names(self.pairs))), desc="register", unit="pair"):
            if name in seen:  # the same files twice (load_datalist warns about the entry): registered once
                continue
            seen.add(name)
            folder = os.path.join(self.output_dir, name)
            done = os.path.join(folder, "metrics.json")
            if os.path.isfile(done) and not self.overwrite:
                with open(done, encoding="utf-8") as f:
                    rows.append({"pair": name, **json.load(f)})
                continue
            try:
                metrics = register_pair(
                    self.stage,
                    self.network,
                    pair,
                    folder,
                    self.device,
                    report=self.report,
                    frames=report_frames,
                    refine=self.refine,
                    overwrite=self.overwrite,
                )
            except (DataError, OSError) as err:  # the pair's own problem: the others still run
                message = str(err).replace("\n", " ")
                print(f"regzoo: error: pair {name}: {message}", file=sys.stderr, flush=True)
                failed.append(name)
                metrics = {"fixed": pair["fixed"], "moving": pair["moving"], "error": message}
            rows.append({"pair": name, **metrics})
        path = write_metrics_table(self.output_dir, rows)
        print(f"{len(rows) - len(failed)} of {len(rows)} pairs registered; metrics in {path}", flush=True)
        if failed:
            raise BatchError(
                f"{path}: {len(failed)} of {len(rows)} pairs failed ({', '.join(failed[:3])}"
                f"{', ...' if len(failed) > 3 else ''}); their rows hold the error"
            )
        return rows


class BatchError(ValueError):
    """Some pairs of a batch could not be registered (the table names them)."""
