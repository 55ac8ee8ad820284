"""Ignite handlers for registration evaluators: per-pair outputs on disk, and the metrics table.

Both read ``engine.state.output`` as produced by :class:`~common.engines.postprocessing.WarpOutputs` with
``decollate=False`` (one dict per batch) and ``engine.state.batch`` for names and geometry.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor

from ..atomic import atomic_folder, atomic_open
from ..bundle.values import flag
from ..metrics.pair import dice_row, jacobian_row

__all__ = ["pair_ids", "pair_folder", "RegistrationWriter", "RegistrationMetricsTable"]


def _stem(path: str) -> str:
    name = os.path.basename(str(path))
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def pair_ids(batch: Mapping, size: int) -> list[str]:
    """A file-system-safe name per pair: the subject (ACDC), ``fixed__moving`` subjects, or image file stems."""

    def column(key):
        value = batch.get(key)
        if value is None:
            return None
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)] * size

    if column("subject"):
        ids = column("subject")
    elif column("fixed_subject") and column("moving_subject"):
        ids = [f"{f}__{m}" for f, m in zip(column("fixed_subject"), column("moving_subject"))]
    else:
        names = []
        for key in ("fixed", "moving"):
            value = batch[key]
            files = value.meta.get("filename_or_obj") if isinstance(value, MetaTensor) else None
            files = files if isinstance(files, (list, tuple)) else [files] * size
            names.append([_stem(f) if f else f"pair{i}" for i, f in enumerate(files)])
        ids = [f"{f}__{m}" for f, m in zip(*names)]
    return [i.replace(os.sep, "_") for i in ids]


def pair_folder(output_dir: str, name: str, overwrite: bool = False):
    """A pair's output folder ``<output_dir>/<name>``, written complete or not at all
    (:func:`common.atomic.atomic_folder`); an existing one is refused unless ``overwrite`` and regzoo wrote it."""
    return atomic_folder(os.path.join(output_dir, name), overwrite)


def _affine(image, index: int) -> np.ndarray:
    if isinstance(image, MetaTensor):
        affine = image.affine
        return np.asarray((affine[index] if affine.ndim == 3 else affine).cpu(), dtype=np.float64)
    return np.eye(4)


class RegistrationWriter:
    """Write per pair, on the fixed image's grid and affine: ``warped.nii.gz`` (moving image), ``warped_label.nii.gz``
    (nearest), ``ddf.nii.gz`` (voxel units, channel last ``(*spatial, ndim)``), ``jacobian.nii.gz`` (det J), and
    ``inverse_ddf.nii.gz`` when the postprocessing computed an inverse.

    Each pair's folder ``<output_dir>/<pair id>/`` is written to a temporary folder and moved into place when
    complete. An existing pair folder is never replaced unless ``overwrite=True``.
    """

    def __init__(
        self,
        output_dir: str,
        overwrite: bool = False,
        outputs: Sequence[str] = ("warped", "warped_label", "ddf", "jacobian", "inverse_ddf"),
    ) -> None:
        self.output_dir, self.outputs = output_dir, tuple(outputs)
        self.overwrite = flag(overwrite, "overwrite")

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        out, batch = engine.state.output, engine.state.batch
        size = out["pred"].shape[0]
        for b, name in enumerate(pair_ids(batch, size)):
            with pair_folder(self.output_dir, name, self.overwrite) as tmp:
                self._write(out, b, _affine(batch["fixed"], b), tmp)

    def _write(self, out: dict, b: int, affine: np.ndarray, tmp: str) -> None:
        volumes = {
            "warped": out["warped"][b, 0],
            "warped_label": out["warped_label"][b, 0].round().to(torch.int16) if "warped_label" in out else None,
            "ddf": out["pred"][b].movedim(0, -1),
            "jacobian": out["jacobian"][b, 0],
            "inverse_ddf": out["inverse_ddf"][b].movedim(0, -1) if "inverse_ddf" in out else None,
        }
        for key in self.outputs:
            if volumes.get(key) is not None:
                array = volumes[key].detach().cpu().numpy()
                array = array.astype(np.int16 if key == "warped_label" else np.float32)
                nib.save(nib.Nifti1Image(array, affine), os.path.join(tmp, f"{key}.nii.gz"))


def _spacing(image, index: int) -> list[float] | None:
    """Voxel spacing (mm) of the batch's fixed image: the norms of its affine's columns."""
    if isinstance(image, MetaTensor):
        return [float(s) for s in np.linalg.norm(_affine(image, index)[:3, :3], axis=0)[: image.ndim - 2]]
    return None


class RegistrationMetricsTable:
    """Per-pair metrics, written to ``<output_dir>/metrics.csv`` and summarised (mean, std) in ``summary.json`` and
    ``summary.md`` when the evaluation completes; the summary is also logged and printed.

    Columns: Dice per label (``labels``, or the labels present in both maps when ``None``) and their mean,
    grouped Dice (``groups``, e.g. ACDC's), the identity transform's mean Dice (``dice_initial``), mean HD95
    in mm (fixed image spacing), NJD%, folding ratio, std det J, SDlogJ (plain and Learn2Reg 2021),
    mean |grad det J|, network seconds per pair (the Jacobian columns only when the output has a DDF), the
    inverse's error in voxels when it was computed, and any per-pair ``extra_metrics`` of the postprocessing
    (trajectory fidelity, generation).
    """

    def __init__(
        self,
        output_dir: str,
        labels: Sequence[int] | None = None,
        groups: Mapping[str, Sequence[int]] | None = None,
        hd95: bool = True,
        title: str = "",
    ) -> None:
        self.output_dir, self.labels, self.groups, self.hd95, self.title = output_dir, labels, groups, hd95, title
        self.rows: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def collect(self, engine: Engine) -> None:
        out, batch = engine.state.output, engine.state.batch
        size = out["pred"].shape[0]
        det = out.get("jacobian")
        for b, name in enumerate(pair_ids(batch, size)):
            row: dict = {"pair": name}
            if "warped_label" in out:
                row.update(
                    dice_row(
                        out["warped_label"][b : b + 1],
                        out["target_label"][b : b + 1],
                        self.labels,
                        moving=out["label"]["moving_label"][b : b + 1],
                        groups=self.groups,
                        spacing=_spacing(batch["fixed"], b),
                        hd95=self.hd95,
                    )
                )
            if det is not None:
                row.update({**jacobian_row(det[b : b + 1]), "seconds": float(out["seconds"])})
            if "inverse_error" in out:
                row["inverse_error_vox"] = float(out["inverse_error"][b])
            row.update(out.get("extra_metrics", [{}] * size)[b])
            self.rows.append(row)

    def summary(self) -> dict[str, tuple[float, float]]:
        columns = [k for k in dict.fromkeys(k for row in self.rows for k in row) if k != "pair"]
        result = {}
        for column in columns:
            values = np.array([row.get(column, math.nan) for row in self.rows], dtype=np.float64)
            values = values[~np.isnan(values)]
            result[column] = (float(values.mean()), float(values.std())) if values.size else (math.nan, math.nan)
        return result

    def markdown(self) -> str:
        lines = [
            f"{self.title or 'Registration metrics'} ({len(self.rows)} pairs, mean ± std)",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for column, (mean, std) in self.summary().items():
            lines.append(f"| {column} | {mean:.4g} ± {std:.2g} |")
        return "\n".join(lines)

    def write(self, engine: Engine | None = None) -> None:
        os.makedirs(self.output_dir, exist_ok=True)
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        with atomic_open(os.path.join(self.output_dir, "metrics.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        with atomic_open(os.path.join(self.output_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump({k: {"mean": m, "std": s} for k, (m, s) in self.summary().items()}, f, indent=1)
        table = self.markdown()
        with atomic_open(os.path.join(self.output_dir, "summary.md"), "w", encoding="utf-8") as f:
            f.write(table + "\n")
        print(table, flush=True)
