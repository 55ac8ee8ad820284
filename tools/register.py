"""``regzoo register``: register one pair with any bundle and write results on the fixed image's own grid.

The bundle's ``inference.json`` (plus any extra configs, e.g. ``quick.json`` for a quick-trained checkpoint)
gives the preprocessing and the network. The network's DDF lives on the preprocessed (resampled, cropped) grid;
it is turned into a physical transform and evaluated on the original fixed grid (``common.spatial.physical``),
so every output has the fixed image's geometry:

``warped.nii.gz`` (moving image, linear), ``warped_label.nii.gz`` (nearest), ``ddf_itk.nii.gz`` +
``transform.h5`` (the fixed -> moving transform as an ITK displacement field, LPS millimetres: ITK, ANTs and
3D Slicer read it), ``inverse_ddf_itk.nii.gz`` + ``inverse_transform.h5`` on the moving grid when the network
has a true inverse (``ddf_and_inverse``), ``jacobian.nii.gz`` (det J of the physical map), ``metrics.json`` and, with
``report``, ``report.png`` (plus ``frames.png`` / ``frames.gif`` along the trajectory for DiffuseMorph and DDM,
and along the sampling steps for DiffuseReg).
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
    from monai.bundle import ConfigParser

    folder = find_bundle(bundle)
    files = [os.path.join(folder, "configs", "inference.json")]
    for extra in [configs] if isinstance(configs, str) else list(configs or []):
        path = extra if os.path.isfile(extra) else os.path.join(folder, "configs", extra)
        if not os.path.isfile(path):
            raise ValueError(f"config {extra!r} not found (neither a file nor in {folder}/configs)")
        files.append(path)
    parser = ConfigParser()
    parser.read_config(files)
    parser.update({"bundle_root": folder, **overrides})
    return parser


def _load_original(path: str, what: str):
    """(array (1, *S) float64 tensor, affine) of a 3D NIfTI file, with clear errors."""
    import nibabel as nib
    import numpy as np
    import torch

    from common.data import check_image_file

    check_image_file(path, ndim=3, full=True)
    image = nib.load(path)
    data = np.asarray(image.dataobj, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{path}: {what} must be a 3D image, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: {what} holds NaN or infinite values")
    return torch.from_numpy(data)[None], image.affine


def _load_network(parser, device: str):
    from common.engines import load_weights

    if parser.get_parsed_content("spatial_dims") != 3:
        raise ValueError("regzoo register handles 3D bundles; this bundle with these configs is 2D")
    network = parser.get_parsed_content("network_def").to(device).eval()
    return load_weights(network, parser.get_parsed_content("checkpoint"), device)


def _register_pair(parser, network, pair: dict, out: str, device: str, overwrite: bool, report: bool = False) -> dict:
    """Register one pair ``{"fixed", "moving", "fixed_label"?, "moving_label"?}`` (file paths) into ``out``."""
    import nibabel as nib
    import numpy as np
    import torch

    from common.export import registration_report, write_itk_displacement
    from common.metrics import dice_per_label, labels_present_in_both, regularity_metrics
    from common.spatial import jacobian_determinant, physical_displacement, warp_physical

    check_output_dir(out, overwrite)
    fixed_image, fixed_affine = _load_original(pair["fixed"], "the fixed image")
    moving_image, moving_affine = _load_original(pair["moving"], "the moving image")
    labels = {}
    for key, image in (("moving_label", moving_image), ("fixed_label", fixed_image)):
        if pair.get(key) is not None:
            labels[key] = _load_original(pair[key], key.replace("_", " "))
            if labels[key][0].shape != image.shape:
                raise ValueError(
                    f"{pair[key]}: {key} grid {tuple(labels[key][0].shape[1:])} differs from its image's "
                    f"{tuple(image.shape[1:])}"
                )
    data = parser.get_parsed_content("preprocessing")({k: v for k, v in pair.items() if v is not None})
    x = torch.cat([data["moving"], data["fixed"]], 0)[None].to(device)
    net_fixed = np.asarray(data["fixed"].affine, dtype=np.float64)
    net_moving = np.asarray(data["moving"].affine, dtype=np.float64)
    start = time.perf_counter()
    with torch.no_grad():
        if callable(getattr(network, "ddf_and_inverse", None)):  # one pass for both (TransMorph-TVF)
            ddf, inverse = (field[0] for field in network.ddf_and_inverse(x))
        else:
            ddf, inverse = network(x)[0], None
    seconds = time.perf_counter() - start

    d = physical_displacement(ddf, net_fixed, net_moving, fixed_affine, fixed_image.shape[1:])
    outputs = {"warped": (warp_physical(moving_image, moving_affine, d, fixed_affine)[0], np.float32)}
    if "moving_label" in labels:
        warped_label = warp_physical(labels["moving_label"][0], moving_affine, d, fixed_affine, mode="nearest")[0]
        outputs["warped_label"] = (warped_label, np.int16)
    # det J of the physical map from the displacement in the fixed grid's voxel units (same determinant)
    voxel_ddf = torch.einsum("ij,j...->i...", torch.as_tensor(np.linalg.inv(fixed_affine[:3, :3])), d)[None].float()
    outputs["jacobian"] = (jacobian_determinant(voxel_ddf)[0, 0], np.float32)

    metrics = {"fixed": pair["fixed"], "moving": pair["moving"], "seconds": seconds}
    metrics.update({k: float(v[0]) for k, v in regularity_metrics(voxel_ddf).items()})
    if "warped_label" in outputs and "fixed_label" in labels:
        warped = outputs["warped_label"][0][None, None].round()
        target = labels["fixed_label"][0][None].round()
        present = labels_present_in_both(warped, target)
        dice = dice_per_label(warped, target, present)[0]
        metrics["dice"] = {str(k): float(v) for k, v in zip(present, dice.tolist())}
        metrics["dice_mean"] = float(torch.nanmean(dice)) if present else float("nan")

    tmp = out.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, (array, dtype) in outputs.items():
        nib.save(nib.Nifti1Image(array.cpu().numpy().astype(dtype), fixed_affine), os.path.join(tmp, f"{name}.nii.gz"))
    write_itk_displacement(d, fixed_affine, os.path.join(tmp, "ddf_itk.nii.gz"), os.path.join(tmp, "transform.h5"))
    if inverse is not None:
        d_inv = physical_displacement(inverse, net_moving, net_fixed, moving_affine, moving_image.shape[1:])
        write_itk_displacement(
            d_inv, moving_affine, os.path.join(tmp, "inverse_ddf_itk.nii.gz"), os.path.join(tmp, "inverse_transform.h5")
        )
    if report:
        before = warp_physical(moving_image, moving_affine, torch.zeros_like(d), fixed_affine)[0]
        registration_report(
            os.path.join(tmp, "report.png"),
            fixed_image[0].numpy(),
            before.numpy(),
            outputs["warped"][0].numpy(),
            voxel_ddf[0].numpy(),
            outputs["jacobian"][0].numpy(),
            title=_pair_name(pair).replace("__", "  <-  "),
        )
        if callable(getattr(network, "trajectory", None)):  # DiffuseMorph, DDM: the path from moving to fixed
            _trajectory_frames(network, x, tmp, _pair_name(pair))
        elif callable(getattr(network, "sample", None)):  # DiffuseReg: the field estimate while sampling
            _sampling_frames(network, x, tmp, _pair_name(pair))
    with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.replace(tmp, out)
    return metrics


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

    columns = list(dict.fromkeys(k for row in rows for k in row if k != "dice"))
    with open(os.path.join(out, "metrics.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows([{k: v for k, v in row.items() if k != "dice"} for row in rows])


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
        overwrite: replace existing outputs (default: refuse, or skip in batch mode).
        report: also write ``report.png`` (``common.export.registration_report``: images, differences before /
            after, checkerboard, deformation grid, det J with folds in red), and for methods with a trajectory
            (DiffuseMorph, DDM) ``frames.png`` and ``frames.gif`` (the moving image from gamma 0 to 1); for DiffuseReg
            the same along the sampling steps.
    """
    overrides = {"device": f"$torch.device('{device}')"}
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
        print(json.dumps({"bundle": bundle, **{k: v for k, v in metrics.items() if k != "dice"}}, indent=1))
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
