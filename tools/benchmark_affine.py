"""``regzoo benchmark affine``: the real-scan stage's affine pre-alignment beside ANTs' own affine registration, on
the same pairs in one run, at 2 mm and 1 mm.

Pairs: demo brains (fixed subject ``i``, moving subject ``i + 1``) whose moving header is moved by a known random
affine (rotation 15-30 degrees about a random axis, shift 10-20 mm, scales 0.9-1.1), so the pair needs a large
affine. Rows per resolution: the headers alone, regzoo (``common.realscan.align_affine``, torch), ANTs
(``antspyx``: ``ants.registration(type_of_transform="Affine")``, ITK's v4 registration framework with ANTs'
defaults: Mattes MI, 4 levels), and, for reference, the headers of the pair before the known affine was applied.
Columns: Dice over the labels present in both (moving labels resampled by the found affine, nearest) and seconds
per pair (regzoo: intensity scaling, network grid and alignment; ANTs: reading both files and the registration).
ANTs runs in the Python given by ``ants_python`` (antspyx pins other numpy / scipy versions than ours; a separate
environment is expected), with ITK threads set to ``threads``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time

import numpy as np

__all__ = ["affine"]

_ANTS_SCRIPT = r"""
import json, sys, time
import ants, numpy as np
from scipy.io import loadmat
out = []
for pair in json.load(open(sys.argv[1])):
    start = time.perf_counter()
    fixed, moving = ants.image_read(pair["fixed"]), ants.image_read(pair["moving"])
    result = ants.registration(fixed, moving, type_of_transform="Affine")
    seconds = time.perf_counter() - start
    mat = loadmat(result["fwdtransforms"][0])
    key = [k for k in mat if k.startswith("AffineTransform")][0]
    out.append({"parameters": mat[key].ravel().tolist(), "centre": mat["fixed"].ravel().tolist(), "seconds": seconds})
json.dump(out, open(sys.argv[2], "w"))
"""


def _ants_matrix(parameters, centre) -> np.ndarray:
    """World (RAS) fixed -> moving affine of an ITK ``AffineTransform`` (LPS: ``y = M (x - c) + c + t``)."""
    lps = np.diag([-1.0, -1.0, 1.0])
    m, t, c = np.reshape(parameters[:9], (3, 3)), np.asarray(parameters[9:12]), np.asarray(centre)
    matrix = np.eye(4)
    matrix[:3, :3] = lps @ m @ lps
    matrix[:3, 3] = lps @ (t + c - m @ c)
    return matrix


def _random_affine(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    axis = rng.normal(size=3)
    rotation = Rotation.from_rotvec(np.radians(rng.uniform(15, 30)) * axis / np.linalg.norm(axis)).as_matrix()
    shift = rng.normal(size=3)
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag(rng.uniform(0.9, 1.1, size=3))
    matrix[:3, 3] = centre - matrix[:3, :3] @ centre + rng.uniform(10, 20) * shift / np.linalg.norm(shift)
    return matrix


def _dice(moving_label, moving_affine, fixed_label, fixed_affine, matrix) -> float:
    from common.metrics import dice_row
    from common.spatial import resample_affine

    warped = resample_affine(moving_label, moving_affine, fixed_affine, fixed_label.shape[1:], matrix, mode="nearest")
    return dice_row(warped[None], fixed_label[None], per_label=False)["dice_mean"]


def find_python(check: str, candidates) -> str | None:
    """The first of ``candidates`` (Python executables; ``None`` skipped) that runs ``check`` (an import statement),
    else ``None``."""
    for python in dict.fromkeys(c for c in candidates if c):
        try:
            found = subprocess.run([python, "-c", check], capture_output=True, timeout=120).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            found = False
        if found:
            return python
    return None


def run_peer(
    python: str, script: str, jobs: list, work: str, name: str, threads: int, timeout: int = 7200, device: str = "cpu"
):
    """Run a peer's ``script`` in ``python`` (its own environment) as ``script <jobs.json> <result.json>`` with
    ``threads`` ITK / OpenMP threads and ``device`` as ``$REGZOO_PEER_DEVICE`` (progress bars off); returns the JSON
    it wrote. A peer that fails or runs past ``timeout`` seconds raises ``RuntimeError`` naming it and its last
    line of error output."""
    spec, result = os.path.join(work, f"{name}_pairs.json"), os.path.join(work, f"{name}_result.json")
    with open(spec, "w", encoding="utf-8") as f:
        json.dump(jobs, f)
    env = {
        **os.environ,
        "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "REGZOO_PEER_DEVICE": device,
        "TQDM_DISABLE": "1",
    }
    try:
        done = subprocess.run([python, "-c", script, spec, result], env=env, timeout=timeout, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{name} ({python}) ran past {timeout} s") from None
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"{name} ({python}) exited with {done.returncode}: {last}")
    with open(result, encoding="utf-8") as f:
        return json.load(f)


def _find_ants(ants_python: str | None) -> str | None:
    return find_python("import ants", [ants_python, os.environ.get("REGZOO_ANTS_PYTHON"), "python3"])


def affine(
    pairs: int = 4,
    resolutions=(2.0, 1.0),
    ants_python: str | None = None,
    threads: int = 2,
    seed: int = 0,
    data_dir: str | None = None,
) -> None:
    """Print the table of the module docstring (Markdown) for ``pairs`` demo pairs per resolution (mm).

    Args:
        ants_python: a Python with ``antspyx`` (default: ``$REGZOO_ANTS_PYTHON``, then ``python3``); ANTs' rows are
            left out, with a note, when none is found.
        data_dir: where the demo brains are written (default: a temporary folder).
    """
    import nibabel as nib
    import torch

    from common.data import ensure_demo_data
    from common.realscan import RealScanStage, load_volume

    torch.set_num_threads(threads)
    python = _find_ants(ants_python)
    work = tempfile.mkdtemp(prefix="regzoo-affine-")
    rng = np.random.default_rng(seed)
    lines = [
        f"regzoo benchmark affine: {pairs} demo brain pairs per resolution, known affines (15-30 deg, 10-20 mm, "
        f"scales 0.9-1.1); {platform.node()} ({platform.processor() or platform.machine()}), CPU, {threads} threads, "
        f"torch {torch.__version__}; ANTs: {'antspyx via ' + python if python else 'not found (rows left out)'}",
        "",
        "| grid | method | Dice | seconds / pair |",
        "|---|---|---|---|",
    ]
    for mm in (
        [resolutions] if isinstance(resolutions, (int, float)) else resolutions
    ):  # fire: --resolutions 4 is a number
        size = tuple(int(round(n * 2.0 / mm)) for n in (80, 96, 112))
        root = ensure_demo_data(
            os.path.join(data_dir or work, f"brain_{mm:g}mm"), "oasis", subjects=pairs + 1, seed=seed, size=size
        )
        cases, jobs = [], []
        for i in range(pairs):
            fixed_path, fixed_label_path, moving_path, moving_label_path = (
                os.path.join(root, f"OASIS_OAS1_{s:04d}_MR1", name)
                for s in (i + 1, i + 2)
                for name in ("aligned_norm.nii.gz", "aligned_seg35.nii.gz")
            )
            fixed, fixed_image = load_volume(fixed_path, "fixed")
            fixed_label, _ = load_volume(fixed_label_path, "fixed label")
            moving, moving_image = load_volume(moving_path, "moving")
            moving_label, _ = load_volume(moving_label_path, "moving label")
            centre = (fixed_image.affine @ np.append((np.array(fixed.shape[1:]) - 1) / 2, 1.0))[:3]
            known = _random_affine(rng, centre)
            moved_affine = known @ moving_image.affine
            moved_path = os.path.join(work, f"moving_{mm:g}_{i}.nii.gz")
            nib.save(nib.Nifti1Image(moving[0].numpy(), moved_affine), moved_path)
            cases.append(
                (fixed, fixed_image.affine, fixed_label, moving, moved_affine, moving_label, moving_image.affine)
            )
            jobs.append({"fixed": fixed_path, "moving": moved_path})
        rows = {"headers, before the known affine": [], "headers": [], "regzoo affine (torch)": []}
        stage = RealScanStage(spatial_size=size, percentiles=(0.05, 99.95), affine="affine")
        for fixed, fixed_affine, fixed_label, moving, moved_affine, moving_label, original in cases:
            rows["headers, before the known affine"].append(
                (_dice(moving_label, original, fixed_label, fixed_affine, np.eye(4)), float("nan"))
            )
            rows["headers"].append(
                (_dice(moving_label, moved_affine, fixed_label, fixed_affine, np.eye(4)), float("nan"))
            )
            start = time.perf_counter()
            prepared = stage.prepare(fixed, fixed_affine, moving, moved_affine)
            seconds = time.perf_counter() - start
            rows["regzoo affine (torch)"].append(
                (_dice(moving_label, moved_affine, fixed_label, fixed_affine, prepared.affine), seconds)
            )
        if python:
            found = run_peer(python, _ANTS_SCRIPT, jobs, work, f"ants_{mm:g}", threads, timeout=3600)
            rows["ANTs Affine (antspyx)"] = [
                (_dice(case[5], case[4], case[2], case[1], _ants_matrix(r["parameters"], r["centre"])), r["seconds"])
                for case, r in zip(cases, found)
            ]
        for name, values in rows.items():
            dice, seconds = np.array(values).T
            time_text = "-" if np.isnan(seconds).all() else f"{seconds.mean():.2f}"
            lines.append(f"| {mm:g} mm {'x'.join(map(str, size))} | {name} | {dice.mean():.3f} | {time_text} |")
    print("\n".join(lines))
