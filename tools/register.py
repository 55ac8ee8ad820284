"""``regzoo register``: register one pair, or a datalist of pairs, with any bundle, through the real-scan stage.

The bundle's ``inference.json`` (plus any extra configs, e.g. ``quick.json`` for a quick-trained checkpoint)
gives the network and its ``real_scan`` settings (``common.realscan.RealScanStage``): the pair is put on a
network grid built from the fixed image (the bundle's orientation, spacing and size, around the fixed
foreground), the moving image is affinely pre-aligned (``--affine none|rigid|affine``), the network runs, and
every output is written on the fixed image's own grid and geometry (``common.realscan.register_pair`` lists the
files: warped image and labels, det J, one ITK composite transform, the ANTs affine + warp pair, the full
displacement field, inverses where the method has one, ``metrics.json``, and ``report.png`` with ``report``).
Results go to a temporary folder moved into place when complete; an existing output is never replaced without
``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from common.engines import check_output_dir

__all__ = ["find_bundle", "register"]

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_bundle(name: str) -> str:
    """Folder of bundle ``name``: ``./bundles/<name>``, ``./<name>``, or this repository's ``bundles/<name>``."""
    for root in (os.path.join(os.getcwd(), "bundles"), os.getcwd(), os.path.join(_REPO, "bundles")):
        folder = os.path.join(root, name)
        if os.path.isfile(os.path.join(folder, "configs", "inference.json")):
            return os.path.abspath(folder)
    known = sorted(os.listdir(os.path.join(_REPO, "bundles"))) if os.path.isdir(os.path.join(_REPO, "bundles")) else []
    raise ValueError(f"unknown bundle {name!r}: no {name}/configs/inference.json found; known bundles: {known}")


def _parser(bundle: str, configs, overrides: dict):
    from common.bundle import inference_parser

    folder = find_bundle(bundle)
    files = [os.path.join(folder, "configs", "inference.json")]
    for extra in [configs] if isinstance(configs, str) else list(configs or []):
        path = extra if os.path.isfile(extra) else os.path.join(folder, "configs", extra)
        if not os.path.isfile(path):
            raise ValueError(f"config {extra!r} not found (neither a file nor in {folder}/configs)")
        files.append(path)
    parser = inference_parser(files)
    parser.update({"bundle_root": folder, **overrides})
    return parser


def _load_network(parser, device: str):
    from common.engines import load_weights

    if parser.get_parsed_content("spatial_dims") != 3:
        raise ValueError("regzoo register handles 3D bundles; this bundle with these configs is 2D")
    network = parser.get_parsed_content("network_def").to(device).eval()
    return load_weights(network, parser.get_parsed_content("checkpoint"), device)


def _frames(network, x, folder: str, title: str) -> None:
    """Report frames where the method has them: along the trajectory (DiffuseMorph, DDM) or the sampling steps
    (DiffuseReg)."""
    if callable(getattr(network, "trajectory", None)):
        _trajectory_frames(network, x, folder, title)
    elif callable(getattr(network, "sample", None)):
        _sampling_frames(network, x, folder, title)


def _register_pair(parser, network, pair: dict, out: str, device: str, overwrite: bool, report: bool = False) -> dict:
    """Register one pair ``{"fixed", "moving", "fixed_label"?, "moving_label"?}`` (file paths) into ``out``
    through the bundle's real-scan stage (``common.realscan.register_pair``)."""
    from common.realscan import register_pair

    check_output_dir(out, overwrite)
    stage = parser.get_parsed_content("real_scan")
    return register_pair(stage, network, pair, out, device, report=report, frames=_frames)


def _trajectory_frames(network, x, folder: str, title: str, frames: int = 8) -> None:
    """``frames.png`` (strip) and ``frames.gif``: the moving image along the network's trajectory, gamma 0 -> 1,
    on the network's grid."""
    import torch

    from common.export import frame_gif, frame_strip
    from common.spatial import warp

    gammas = torch.linspace(0, 1, frames).tolist()
    with torch.no_grad():
        images = torch.cat([warp(x[:, :1], ddf) for ddf in network.trajectory(x, gammas)], 1)[0].cpu().numpy()
    frame_strip(os.path.join(folder, "frames.png"), images, [f"γ={g:.2f}" for g in gammas], title=title)
    frame_gif(os.path.join(folder, "frames.gif"), images)


def _sampling_frames(network, x, folder: str, title: str, frames: int = 8) -> None:
    """``frames.png`` and ``frames.gif``: the moving image warped by the field estimate at about ``frames``
    evenly spaced steps of the reverse process (the same seeded sampling as the registration)."""
    import torch

    from common.export import frame_gif, frame_strip
    from common.spatial import warp

    seen = []
    total = network.steps if network.sampler == "ddim" else network.num_train_timesteps
    with torch.no_grad():
        network.sample(x, observer=seen.append, every=max(1, total // frames))
        images = torch.cat([warp(x[:, :1], step.x0) for step in seen], 1)[0].cpu().numpy()
    captions = [f"step {step.index + 1}/{step.total}" for step in seen]
    frame_strip(os.path.join(folder, "frames.png"), images, captions, title=title)
    frame_gif(os.path.join(folder, "frames.gif"), images)


def _pair_name(pair: dict) -> str:
    """``<fixed>__<moving>``: file stems, prefixed by the folder name when the stem alone is generic."""

    def name(path):
        stem = os.path.basename(path).removesuffix(".gz").removesuffix(".nii")
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        return f"{folder}_{stem}" if folder else stem

    return f"{name(pair['fixed'])}__{name(pair['moving'])}"


def _write_table(out: str, rows: list[dict]) -> None:
    import csv

    flat = [_flat_row(row) for row in rows]
    columns = list(dict.fromkeys(k for row in flat for k in row))
    with open(os.path.join(out, "metrics.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(flat)


def _flat_row(metrics: dict) -> dict:
    """A table row of ``metrics.json``: per-label Dice left out, the affine as its rotation (degrees) and the
    length of its translation at the fixed foreground centre (mm)."""
    row = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if isinstance(metrics.get("affine"), dict):
        row["affine_rotation_deg"] = metrics["affine"]["rotation_deg"]
        row["affine_translation_mm"] = sum(t * t for t in metrics["affine"]["translation_mm"]) ** 0.5
    return row


def register(
    bundle: str,
    out: str,
    fixed: str | None = None,
    moving: str | None = None,
    moving_label: str | None = None,
    fixed_label: str | None = None,
    datalist: str | None = None,
    key: str = "testing",
    checkpoint: str | None = None,
    configs=None,
    device: str = "cpu",
    affine: str | None = None,
    overwrite: bool = False,
    report: bool = False,
) -> None:
    """Register ``moving`` to ``fixed`` (3D NIfTI files) with ``bundle``'s trained network, or every pair of a
    datalist JSON, writing the outputs listed in the module docstring to ``out`` and printing the metrics.

    Args:
        bundle: bundle name (``voxelmorph``, ``midir``, ``transmorph_tvf``, ...).
        out: output folder (one pair) or parent folder (batch: ``out/<fixed>__<moving>/`` per pair and
            ``out/metrics.csv``); batch runs skip pairs already done, so an interrupted run resumes.
        datalist: JSON with lists of ``{"fixed", "moving", "fixed_label"?, "moving_label"?}`` (paths relative to
            the JSON); ``key`` names the list (``testing``).
        configs: extra configs of the bundle stacked on ``inference.json`` (e.g. ``quick.json``).
        checkpoint: weights (default: the bundle's ``models/model.pt``).
        affine: pre-alignment before the network: ``none``, ``rigid`` or ``affine`` (default: the bundle's
            ``real_scan#affine``, ``affine`` in every bundle).
        overwrite: replace existing outputs (default: refuse, or skip in batch mode).
        report: also write ``report.png`` (``common.export.registration_report``: images, differences before /
            after, checkerboard, deformation grid, det J with folds in red), and for methods with a trajectory
            (DiffuseMorph, DDM) ``frames.png`` and ``frames.gif`` (the moving image from gamma 0 to 1); for DiffuseReg
            the same along the sampling steps.
    """
    from common.realscan import AFFINE_MODELS

    overrides = {"device": f"$torch.device('{device}')"}
    if affine is not None:
        if affine not in AFFINE_MODELS:
            raise ValueError(f"--affine must be one of {', '.join(AFFINE_MODELS)}, got {affine!r}")
        overrides["real_scan#affine"] = affine
    if checkpoint is not None:
        overrides["checkpoint"] = checkpoint
    if datalist is None:
        if fixed is None or moving is None:
            raise ValueError("give --fixed and --moving (one pair) or --datalist (a batch)")
        check_output_dir(out, overwrite)  # before loading the network: fail fast
        parser = _parser(bundle, configs, overrides)
        network = _load_network(parser, device)
        pair = {"fixed": fixed, "moving": moving, "moving_label": moving_label, "fixed_label": fixed_label}
        metrics = _register_pair(parser, network, pair, out, device, overwrite, report)
        print(json.dumps({"bundle": bundle, **_flat_row(metrics)}, indent=1))
        return
    from tqdm import tqdm

    from common.data import load_datalist

    pairs = load_datalist(datalist, key)
    check_output_dir(out, overwrite=True)  # a folder (or nothing yet); finished pairs inside are skipped
    parser = _parser(bundle, configs, overrides)
    network = _load_network(parser, device)
    rows = []
    for pair in tqdm(pairs, desc=f"regzoo register {bundle}", unit="pair"):
        folder = os.path.join(out, _pair_name(pair))
        done = os.path.join(folder, "metrics.json")
        if os.path.isfile(done) and not overwrite:
            with open(done, encoding="utf-8") as f:
                rows.append({"pair": os.path.basename(folder), **json.load(f)})
            continue
        metrics = _register_pair(parser, network, pair, folder, device, True, report)
        rows.append({"pair": os.path.basename(folder), **metrics})
    _write_table(out, rows)
    print(f"{len(rows)} pairs registered with {bundle}; metrics in {os.path.join(out, 'metrics.csv')}")
