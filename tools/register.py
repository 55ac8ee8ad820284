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

from common.atomic import check_new_folder
from common.engines import check_output_dir

__all__ = ["find_bundle", "register"]

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_bundle(name: str) -> str:
    """Folder of bundle ``name`` (:func:`common.bundle.bundle_root`); an unknown name is a ``ValueError`` listing
    the known bundles."""
    from common.bundle import bundle_root

    try:
        return bundle_root(name)
    except FileNotFoundError:
        folder = os.path.join(_REPO, "bundles")
        known = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        raise ValueError(f"unknown bundle {name!r}: no bundle of that name found; known bundles: {known}") from None


def _parser(bundle: str, configs, overrides: dict):
    from common.bundle import inference_parser

    folder = find_bundle(bundle)
    files = [os.path.join(folder, "configs", "inference.json")]
    for extra in _config_list(configs):
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


def _refinement(bundle: str, configs, steps: int, lr: float, levels: int = 1):
    """``common.realscan.bundle_refinement`` of the bundle with the same overlays; ``None`` for 0 steps."""
    from common.realscan import bundle_refinement

    return bundle_refinement(find_bundle(bundle), steps, lr, _config_list(configs), levels)


def _default_refinement(parser, bundle: str, configs, steps, lr, levels):
    """:func:`_refinement` with ``steps`` and ``lr`` defaulting (``None``, or null / none as typed) to the bundle's
    own ``refine_steps`` and ``refine_lr`` (its ``inference.json``, which its ``register`` run uses too)."""
    from common.bundle.values import optional

    steps = optional(steps, "refine")
    lr = optional(lr, "refine_lr")
    steps = parser.get_parsed_content("refine_steps") if steps is None else steps
    lr = parser.get_parsed_content("refine_lr") if lr is None else lr
    try:
        steps, lr = int(steps), float(lr)
    except ValueError:
        raise ValueError(
            f"--refine takes a whole number of steps and --refine_lr a number, got {steps!r}, {lr!r}"
        ) from None
    return _refinement(bundle, configs, steps, lr, levels)


def _train_parser(bundle: str, configs):
    """``common.bundle.train_parser`` of the bundle with the same overlays as its inference configs."""
    from common.bundle import train_parser

    return train_parser(find_bundle(bundle), _config_list(configs))


def _config_list(configs) -> list[str]:
    return [configs] if isinstance(configs, str) else list(configs or [])


def _register_pair(
    parser, network, pair: dict, out: str, device: str, overwrite: bool, report: bool = False, refine=None
) -> dict:
    """Register one pair ``{"fixed", "moving", "fixed_label"?, "moving_label"?}`` (file paths) into ``out``
    through the bundle's real-scan stage (``common.realscan.register_pair``)."""
    from common.realscan import register_pair, report_frames

    stage = parser.get_parsed_content("real_scan")
    return register_pair(
        stage, network, pair, out, device, report=report, frames=report_frames, refine=refine, overwrite=overwrite
    )


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
    refine: int | None = None,
    refine_lr: float | None = None,
    refine_levels: int = 1,
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
        refine: test-time refinement steps after the network (0: none; default: the bundle's ``refine_steps``, 30
            for MIDIR and 20 for the others, which gave MIDIR and TM-TVF quick at least ANTs SyN's Dice on the demo
            brains and the template subjects, README): Adam on the bundle's own training objective (``train.json``'s
            ``loss``), keeping the method's guarantee (``common.realscan.refine``).
        refine_lr: its learning rate (voxels per step; default: the bundle's ``refine_lr``, 0.05).
        refine_levels: resolution levels of the refinement (1: every step on the network grid; 2: three quarters
            of the steps on the grid halved, for large grids).
        overwrite: replace existing outputs that regzoo wrote (default: refuse, or skip in batch mode); a folder
            holding anyone else's files is never replaced.
        report: also write ``report.png`` (``common.export.registration_report``: images, differences before /
            after, checkerboard, deformation grid, det J with folds in red), and for methods with a trajectory
            (DiffuseMorph, DDM) ``frames.png`` and ``frames.gif`` (the moving image from gamma 0 to 1); for DiffuseReg
            the same along the sampling steps.
    """
    from common.realscan import AFFINE_MODELS, BatchRegistration, metrics_row

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
        check_new_folder(out, overwrite)  # before loading the network: fail fast
        parser = _parser(bundle, configs, overrides)
        network = _load_network(parser, device)
        pair = {"fixed": fixed, "moving": moving, "moving_label": moving_label, "fixed_label": fixed_label}
        refinement = _default_refinement(parser, bundle, configs, refine, refine_lr, refine_levels)
        metrics = _register_pair(parser, network, pair, out, device, overwrite, report, refinement)
        print(json.dumps({"bundle": bundle, **metrics_row(metrics)}, indent=1))
        return
    from common.data import load_datalist

    pairs = load_datalist(datalist, key)
    check_output_dir(out, overwrite=True)  # a folder (or nothing yet); finished pairs inside are skipped
    parser = _parser(bundle, configs, overrides)
    network = _load_network(parser, device)
    stage = parser.get_parsed_content("real_scan")
    refinement = _default_refinement(parser, bundle, configs, refine, refine_lr, refine_levels)
    BatchRegistration(stage, network, pairs, out, device, overwrite, report, refinement).run()
