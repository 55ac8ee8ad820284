"""``regzoo benchmark accuracy``: every method on the same pairs in one run, through the whole user path
(``common.realscan.register_pair``: network grid, affine, network, refinement, outputs written), beside ANTs SyN.

Rows: the headers alone (identity), the affine stage alone, each given bundle, each bundle + refinement of each
given number of steps, and the classical peers where a Python that has them is found (each in its own process, so
its numpy / ITK pins never meet ours): ANTs SyN (``antspyx``: ``ants.registration(type_of_transform="SyN")``, its
own affine stage included), elastix (``itk-elastix``: its default affine then B-spline parameter maps, Mattes
mutual information, 4 resolutions, 10 mm final grid), ConvexAdam (``convexadam``: ``convex_adam_pt`` at its
defaults, MIND features, on the fixed voxel grid; no affine stage of its own; its labels warped and its det J
computed here, by ``common.spatial``) and FireANTs (``fireants``: the affine then greedy deformable registration of
its quickstart, CC with a 5-voxel window, or mutual information where the affine-only row takes NMI, on the fixed
voxel grid, on ``device`` where its torch has it, else the CPU; labels and det J here, as ConvexAdam's). Columns:
Dice mean over the labels present in both maps, Dice of each label group of the data (the union of the group's
labels), HD95 (mm, mean over labels), NJD % and SDlogJ of the whole map, and seconds per pair (everything from
reading the files to the written outputs; peers: reading, registration and label resampling; ConvexAdam and
FireANTs: reading and registration).

Pairs: the demo brains (phantoms, 2 mm; ``data="multimodal"``: their T2w-like moving images), ``data="mni"`` (real
anatomy: subjects of the MNI ICBM152 2009 template, :mod:`common.data.template`), a data set in its own layout
(``dataset_dir`` with ``layout`` ``oasis`` for Learn2Reg OASIS or ``acdc``: its held-out test pairs) or a
``datalist``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

from common.atomic import atomic_open

from .benchmark_affine import find_python, run_peer

__all__ = ["accuracy"]

_ANTS_SYN = r"""
import json, os, sys, time
import ants, numpy as np
out = []
for pair in json.load(open(sys.argv[1])):
    start = time.perf_counter()
    fixed, moving = ants.image_read(pair["fixed"]), ants.image_read(pair["moving"])
    result = ants.registration(fixed, moving, type_of_transform="SyN")
    label = ants.apply_transforms(fixed, ants.image_read(pair["moving_label"]), result["fwdtransforms"],
                                  interpolator="nearestNeighbor")
    seconds = time.perf_counter() - start
    ants.image_write(label, os.path.join(pair["out"], "warped_label.nii.gz"))
    jac = ants.create_jacobian_determinant_image(fixed, result["fwdtransforms"][0])
    ants.image_write(jac, os.path.join(pair["out"], "jacobian.nii.gz"))
    out.append({"seconds": seconds})
json.dump(out, open(sys.argv[2], "w"))
"""

_ELASTIX_BSPLINE = r"""
import json, os, sys, time
import itk
out = []
for pair in json.load(open(sys.argv[1])):
    start = time.perf_counter()
    fixed, moving = itk.imread(pair["fixed"], itk.F), itk.imread(pair["moving"], itk.F)
    maps = itk.ParameterObject.New()
    maps.AddParameterMap(maps.GetDefaultParameterMap("affine"))
    maps.AddParameterMap(maps.GetDefaultParameterMap("bspline"))
    _, transform = itk.elastix_registration_method(fixed, moving, parameter_object=maps, log_to_console=False)
    for index in range(transform.GetNumberOfParameterMaps()):
        transform.SetParameter(index, "FinalBSplineInterpolationOrder", "0")
    label = itk.transformix_filter(itk.imread(pair["moving_label"], itk.F), transform)
    seconds = time.perf_counter() - start
    itk.imwrite(label, os.path.join(pair["out"], "warped_label.nii.gz"))
    _, det = itk.transformix_jacobian(moving, transform)
    itk.imwrite(det, os.path.join(pair["out"], "jacobian.nii.gz"))
    out.append({"seconds": seconds})
json.dump(out, open(sys.argv[2], "w"))
"""

#: what the peers that work on the fixed voxel grid share (ConvexAdam, FireANTs): the pair read, the moving image
#: and labels resampled onto the fixed grid by their headers, the labels saved for :func:`_field_outputs`
_ON_FIXED_GRID = r"""
import json, os, sys, time
import nibabel as nib, numpy as np, torch
from nibabel.processing import resample_from_to
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
def on_fixed_grid(pair):
    fixed, moving, label = (nib.load(pair[k]) for k in ("fixed", "moving", "moving_label"))
    if moving.shape[:3] != fixed.shape[:3] or not np.allclose(moving.affine, fixed.affine):
        moving = resample_from_to(moving, fixed, order=1)
        label = resample_from_to(label, fixed, order=0)
    return fixed, moving, label
def save_label(pair, label, fixed):
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj), fixed.affine), os.path.join(pair["out"], "moving_label.nii.gz"))
"""

_CONVEXADAM = (
    _ON_FIXED_GRID
    + r"""
from convexAdam.convex_adam_MIND import convex_adam_pt
out = []
for pair in json.load(open(sys.argv[1])):
    start = time.perf_counter()
    fixed, moving, label = on_fixed_grid(pair)
    disp = convex_adam_pt(fixed.get_fdata(), moving.get_fdata(), device=torch.device("cpu"))  # voxels, fixed grid
    seconds = time.perf_counter() - start
    np.save(os.path.join(pair["out"], "ddf_voxels.npy"), disp.astype(np.float32))
    save_label(pair, label, fixed)
    out.append({"seconds": seconds})
json.dump(out, open(sys.argv[2], "w"))
"""
)

_FIREANTS = (
    _ON_FIXED_GRID
    + r"""
import SimpleITK as sitk
from fireants.io import BatchedImages, Image
from fireants.registration.affine import AffineRegistration
from fireants.registration.greedy import GreedyRegistration
asked = os.environ.get("REGZOO_PEER_DEVICE", "cpu")
device = asked if asked.startswith("cuda") and torch.cuda.is_available() else "cpu"
out = []
for pair in json.load(open(sys.argv[1])):
    start = time.perf_counter()
    fixed, moving, label = on_fixed_grid(pair)
    # one voxel grid for both, so voxel space is all that matters: nibabel (i, j, k) is SimpleITK's array (k, j, i)
    fixed_image, moving_image = (
        BatchedImages([Image(sitk.GetImageFromArray(np.asarray(n.dataobj, np.float32).transpose(2, 1, 0)), device)])
        for n in (fixed, moving)
    )
    loss = {"loss_type": "mi"} if pair["similarity"] == "nmi" else {"loss_type": "cc", "cc_kernel_size": 5}
    affine = AffineRegistration([4, 2, 1], [200, 100, 50], fixed_image, moving_image, optimizer="Adam",
                                optimizer_lr=3e-3, **loss)
    affine.optimize()
    greedy = GreedyRegistration(scales=[4, 2, 1], iterations=[200, 100, 25], fixed_images=fixed_image,
                                moving_images=moving_image, deformation_type="compositive", smooth_grad_sigma=1,
                                optimizer="adam", optimizer_lr=0.5, init_affine=affine.get_affine_matrix().detach(),
                                **loss)
    greedy.optimize()
    grid = greedy.get_warped_coordinates(fixed_image, moving_image)[0].detach().cpu().numpy()
    seconds = time.perf_counter() - start
    np.save(os.path.join(pair["out"], "grid_normalized.npy"), grid.astype(np.float32))
    save_label(pair, label, fixed)
    out.append({"seconds": seconds, "device": device})
json.dump(out, open(sys.argv[2], "w"))
"""
)


def fireants_ddf(grid: np.ndarray):
    """The DDF ``(1, 3, X, Y, Z)`` (voxels, nibabel's axis order) of FireANTs' sampling grid: ``grid_sample``
    coordinates over SimpleITK's ``(k, j, i)`` array, shape ``(Z, Y, X, 3)``, whose last axis is therefore
    nibabel's ``(i, j, k)``; turned into the grid over the nibabel-ordered array for ``common.spatial``."""
    import torch

    from common.spatial import ddf_from_grid

    return ddf_from_grid(torch.from_numpy(np.ascontiguousarray(grid)).permute(2, 1, 0, 3).flip(-1)[None])


def _field_outputs(folder: str) -> None:
    """A peer that gives only its displacement (``ddf_voxels.npy``: fixed voxel grid, voxels, axes last; or FireANTs'
    ``grid_normalized.npy``, :func:`fireants_ddf`) and the
    moving labels on the fixed grid: ``warped_label.nii.gz`` and ``jacobian.nii.gz`` by the project's own label
    warp and Jacobian (``common.spatial``), as every bundle row."""
    import nibabel as nib
    import torch

    from common.spatial import jacobian_determinant, warp_label

    grid = os.path.join(folder, "grid_normalized.npy")
    if os.path.isfile(grid):
        ddf = fireants_ddf(np.load(grid))
    else:
        ddf = torch.from_numpy(np.load(os.path.join(folder, "ddf_voxels.npy"))).permute(3, 0, 1, 2)[None]
    label = nib.load(os.path.join(folder, "moving_label.nii.gz"))
    moving = torch.from_numpy(np.asarray(label.dataobj).astype(np.float32))[None, None]
    warped = warp_label(moving, ddf)[0, 0].numpy().astype(np.int16)
    nib.save(nib.Nifti1Image(warped, label.affine), os.path.join(folder, "warped_label.nii.gz"))
    det = jacobian_determinant(ddf)[0, 0].numpy()
    nib.save(nib.Nifti1Image(det, label.affine), os.path.join(folder, "jacobian.nii.gz"))


#: peer row -> (name in ``peers``, what its Python must run, its script, the variable naming that Python)
_PEERS = {
    "ANTs SyN (antspyx)": ("ants", "import ants", _ANTS_SYN, "REGZOO_ANTS_PYTHON"),
    "elastix affine + B-spline (itk-elastix)": (
        "elastix",
        "from itk import ElastixRegistrationMethod",
        _ELASTIX_BSPLINE,
        "REGZOO_ELASTIX_PYTHON",
    ),
    "ConvexAdam (convexadam)": (
        "convexadam",
        "from convexAdam.convex_adam_MIND import convex_adam_pt",
        _CONVEXADAM,
        "REGZOO_CONVEXADAM_PYTHON",
    ),
    "FireANTs greedy (fireants)": (
        "fireants",
        "from fireants.registration.greedy import GreedyRegistration",
        _FIREANTS,
        "REGZOO_FIREANTS_PYTHON",
    ),
}


def _names(value) -> set[str]:
    """``"ants,elastix"``, ``["ants"]``, ``"none"`` ... as a set of lower-case names."""
    if isinstance(value, str):
        value = value.split(",")
    return {str(v).strip().lower() for v in value or () if str(v).strip()}


class _Identity:
    """The inference contract's zero field: the affine stage alone."""

    def __call__(self, x):
        import torch

        return torch.zeros(x.shape[0], 3, *x.shape[2:], device=x.device)

    def eval(self):
        return self


def _scores(folder: str, pair: dict, hd95: bool, groups: dict | None) -> dict:
    import nibabel as nib
    import torch

    from common.metrics import dice_row, jacobian_row

    warped = torch.from_numpy(np.asarray(nib.load(os.path.join(folder, "warped_label.nii.gz")).dataobj))
    fixed_image = nib.load(pair["fixed_label"])
    fixed = torch.from_numpy(np.asarray(fixed_image.dataobj))
    spacing = [float(s) for s in fixed_image.header.get_zooms()[:3]]
    overlap = dice_row(
        warped[None, None], fixed[None, None], groups=groups, spacing=spacing, hd95=hd95, per_label=False
    )
    row = {"dice": overlap["dice_mean"], **({"hd95_mm": overlap.get("hd95_mm", float("nan"))} if hd95 else {})}
    row.update({f"dice_{g}": overlap[f"dice_{g}"] for g in groups or {}})
    det_path = os.path.join(folder, "jacobian.nii.gz")
    if os.path.isfile(det_path):
        det = torch.from_numpy(np.asarray(nib.load(det_path).dataobj, dtype=np.float32)).reshape(1, 1, *fixed.shape)
        regularity = jacobian_row(det)
        row["njd_percent"], row["sdlogj"] = regularity["njd_percent"], regularity["sdlogj"]
    return row


def _cases(data: str, data_dir: str, dataset_dir, layout: str, datalist, key: str, pairs: int):
    """``(pairs, label groups, description)`` of the benchmark's data (see the module docstring)."""
    from common.data import (
        BRAIN_PHANTOM_GROUPS,
        all_pairs,
        ensure_demo_data,
        inference_pairs,
        load_datalist,
        oasis_split,
    )
    from common.metrics import ACDC_GROUPS

    if datalist:
        return load_datalist(datalist, key)[:pairs], None, f"datalist {datalist} ({key})"
    if dataset_dir:
        groups = ACDC_GROUPS if layout.startswith("acdc") else None
        return inference_pairs(layout=layout, data_root=dataset_dir)[:pairs], groups, f"{dataset_dir} ({layout})"
    if data == "mni":
        from common.data.template import MNI_GROUPS

        root = ensure_demo_data(os.path.join(data_dir, "mni_80x96x112"), "mni", 16, 0, (80, 96, 112))
        description = "MNI ICBM152 2009 template subjects (nilearn), 2 mm, test subjects"
        return all_pairs(oasis_split(root, "testing", 0.15, 0.25))[:pairs], MNI_GROUPS, description
    if data not in ("demo", "multimodal"):
        raise ValueError(f"data must be 'demo', 'multimodal' or 'mni' (or give dataset_dir / datalist), got {data!r}")
    root = ensure_demo_data(os.path.join(data_dir, "demo_oasis_80x96x112"), "multimodal", 16, 0, (80, 96, 112))
    if data == "multimodal":
        pairs_t2 = load_datalist(os.path.join(root, "dataset_multimodal.json"), "testing")[:pairs]
        return pairs_t2, BRAIN_PHANTOM_GROUPS, "demo brains, 2 mm, test subjects, moving T2w-like, fixed T1w-like"
    description = "demo brains, 2 mm, test subjects"
    return all_pairs(oasis_split(root, "testing", 0.15, 0.25))[:pairs], BRAIN_PHANTOM_GROUPS, description


def _bundle_specs(bundles, configs) -> list[tuple[str, str, str, list]]:
    """``(row label, bundle, checkpoint, configs)`` of each entry of ``bundles``: ``{"midir": "model.pt"}`` (the
    label is the bundle, with the shared ``configs``) or ``{"label": {"bundle": "midir", "checkpoint": "model.pt",
    "configs": [...]}}`` (one bundle trained several ways, e.g. NMI and LNCC, in one table)."""
    from regzoo.register import _config_list

    specs = []
    for label, spec in bundles.items():
        if isinstance(spec, str):
            specs.append((label, label, spec, _config_list(configs)))
        elif isinstance(spec, dict) and "checkpoint" in spec:
            specs.append(
                (label, spec.get("bundle", label), spec["checkpoint"], _config_list(spec.get("configs", configs)))
            )
        else:
            raise ValueError(
                f'bundles[{label!r}] must be a checkpoint path or {{"bundle", "checkpoint", "configs"}}, got {spec!r}'
            )
    return specs


def _bundle_rows(specs, refine_steps, refine_levels, device):
    from regzoo.register import _load_network, _parser, _refinement

    for label, name, checkpoint, configs in specs:
        parser = _parser(name, configs, {"checkpoint": checkpoint, "device": f"$torch.device('{device}')"})
        network = _load_network(parser, device)
        stage = parser.get_parsed_content("real_scan")
        yield label, stage, network, None
        for steps in [int(s) for s in refine_steps if int(s) > 0]:
            for levels in refine_levels:
                row = f"{label} + refine {steps}" + ("" if levels == 1 else f" ({levels} levels)")
                refinement = _refinement(name, configs, steps, parser.get_parsed_content("refine_lr"), levels)
                yield row, stage, network, refinement


def accuracy(
    bundles: str | dict | None = None,
    configs=None,
    refine=(50,),
    refine_levels=(1,),
    pairs: int = 12,
    datalist: str | None = None,
    key: str = "testing",
    ants_python: str | None = None,
    hd95: bool = True,
    threads: int = 2,
    device: str = "cpu",
    out: str | None = None,
    data_dir: str | None = None,
    data: str = "demo",
    dataset_dir: str | None = None,
    layout: str = "oasis",
    label_groups: str | dict | None = None,
    elastix_python: str | None = None,
    peers=("ants", "elastix", "convexadam", "fireants"),
    affine_similarity: str | None = None,
    convexadam_python: str | None = None,
    fireants_python: str | None = None,
) -> None:
    """Print (and write to ``out`` as ``accuracy.md`` / ``accuracy.csv``) the table of the module docstring.

    Args:
        bundles: ``{"bundle": "checkpoint.pt", ...}`` or ``{"row label": {"bundle": "midir", "checkpoint":
            "model.pt", "configs": ["multimodal.json", "quick.json"]}, ...}`` (JSON or a dict); none: the identity
            and affine rows only.
        configs: overlays stacked on each bundle's configs (e.g. ``quick.json`` for quick-trained checkpoints),
            for the entries of ``bundles`` that name no configs of their own.
        refine: refinement steps, one row per value and bundle (0 or empty: no refinement rows).
        refine_levels: the refinement's resolution levels, one row per value (default 1, as ``regzoo register``).
        pairs: how many pairs (the test subjects' pairs, in order).
        datalist, key: your pairs instead of the demo brains (labels required).
        data: ``demo`` (brain phantoms), ``multimodal`` (the same test pairs with the moving image's T2w-like
            rendering, fixed T1w-like) or ``mni`` (template subjects; needs ``pip install nilearn``).
        dataset_dir, layout: a data set in its own layout (``oasis``: Learn2Reg OASIS, ``acdc``), its test pairs.
        data_dir: where the demo / template subjects are written (default: a temporary folder).
        label_groups: ``{"name": [labels], ...}`` (JSON or a dict), one Dice column each; default: the data's own
            groups (demo brains: cortex, WM, subcortical, cerebellum; template: GM, WM; ACDC: LV, Myo, RV, ...).
        ants_python: a Python with ``antspyx`` (default: ``$REGZOO_ANTS_PYTHON``, then ``python3``).
        elastix_python: a Python with ``itk-elastix`` (default: ``$REGZOO_ELASTIX_PYTHON``, then the ANTs Python,
            then ``python3``).
        convexadam_python: a Python with ``convexadam`` (and torch; default: ``$REGZOO_CONVEXADAM_PYTHON``, then
            the Pythons found for the other peers, then ``python3``).
        fireants_python: a Python with ``fireants`` (and torch; default: ``$REGZOO_FIREANTS_PYTHON``, then the
            Pythons found for the other peers, then ``python3``); it runs on ``device`` where its torch has it.
        peers: which peer rows to run (``ants``, ``elastix``, ``convexadam``, ``fireants``; default all, where
            found; ``none``: no peers).
        affine_similarity: the "affine only" row's similarity (``ncc``, ``nmi``; default: ``nmi`` for
            ``data="multimodal"``, else ``ncc``; the bundle rows use their configs' ``affine_similarity``), and
            FireANTs' (``nmi``: its mutual information, else its CC).
    """
    import torch

    from common.realscan import RealScanStage, register_pair

    wanted = _names(peers)
    unknown = wanted - {key for key, *_ in _PEERS.values()} - {"none"}
    if unknown:
        raise ValueError(
            f"peers must be among ants, elastix, convexadam, fireants (or none), got {', '.join(sorted(unknown))}"
        )
    torch.set_num_threads(threads)
    specs = _bundle_specs(json.loads(bundles) if isinstance(bundles, str) else dict(bundles or {}), configs)
    similarity = affine_similarity or ("nmi" if data == "multimodal" and not (datalist or dataset_dir) else "ncc")
    refine = [refine] if isinstance(refine, (int, str)) else list(refine or [])
    refine_levels = [int(refine_levels)] if isinstance(refine_levels, (int, str)) else [int(n) for n in refine_levels]
    with tempfile.TemporaryDirectory(prefix="regzoo-accuracy-") as work:  # every row's outputs, then gone
        cases, groups, described = _cases(data, data_dir or work, dataset_dir, layout, datalist, key, pairs)
        if label_groups:
            groups = json.loads(label_groups) if isinstance(label_groups, str) else dict(label_groups)
        cases = [c for c in cases if c.get("fixed_label") and c.get("moving_label")]
        if not cases:
            raise ValueError("benchmark accuracy needs pairs with fixed_label and moving_label")
        given = {
            "ants": ants_python,
            "elastix": elastix_python,
            "convexadam": convexadam_python,
            "fireants": fireants_python,
        }
        found = {}  # peer row -> the Python that has it (None: not found)
        for name, (key, check, _, variable) in _PEERS.items():
            if key in wanted:
                found[name] = find_python(check, [given[key], os.environ.get(variable), *found.values(), "python3"])
        size = tuple(int(n) for n in np.asarray(__import__("nibabel").load(cases[0]["fixed"]).shape[:3]))
        affine_only = RealScanStage(spatial_size=size, affine="affine", similarity=similarity)
        methods = [
            ("identity (headers)", RealScanStage(spatial_size=size, affine="none"), _Identity(), None),
            ("affine only", affine_only, _Identity(), None),
            *_bundle_rows(specs, refine, refine_levels, device),
        ]
        rows = []
        for label, stage, network, refinement in methods:
            scores, seconds = [], []
            for index, pair in enumerate(cases):
                folder = os.path.join(work, f"{len(rows)}_{index}")
                start = time.perf_counter()
                register_pair(stage, network, pair, folder, device, refine=refinement)
                seconds.append(time.perf_counter() - start)
                scores.append(_scores(folder, pair, hd95, groups))
            rows.append(_summary(label, scores, seconds))
        for name, python in found.items():
            if python:
                try:
                    rows.append(_peer_row(name, python, cases, work, threads, hd95, groups, similarity, device))
                except RuntimeError as error:  # the other rows stand; the table says what failed
                    print(f"regzoo benchmark accuracy: {error}", file=sys.stderr)
                    rows.append({"method": f"{name}: failed ({error})".replace("|", "/")})
    header = (
        f"regzoo benchmark accuracy: {len(cases)} pairs ({described}); "
        f"{platform.node()} ({platform.processor() or platform.machine()}), {device}, {threads} threads, "
        f"torch {torch.__version__}; peers: {_found(found)}; "
        f"affine only: {similarity}; bundle configs: "
        + "; ".join(f"{label}: inference.json + {' + '.join(c) or 'nothing'}" for label, _, _, c in specs)
    )
    columns = ["method", "dice", *[f"dice_{g}" for g in groups or {}], "hd95_mm", "njd_percent", "sdlogj", "seconds"]
    lines = [header, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    table = "\n".join(lines)
    print(table)
    if out:
        os.makedirs(out, exist_ok=True)
        with atomic_open(os.path.join(out, "accuracy.md"), "w", encoding="utf-8") as f:
            f.write(table + "\n")
        with atomic_open(os.path.join(out, "accuracy.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)


def _peer_row(
    name: str, python: str, cases: list, work: str, threads: int, hd95: bool, groups, similarity: str, device: str
) -> dict:
    """The row of the peer ``name`` (``_PEERS``): its script run by ``python`` on every pair, then scored here; a
    peer that reports its device (FireANTs: ``device`` when its torch has it, else the CPU) names it in the row."""
    key, _, script, _ = _PEERS[name]
    jobs = [{**pair, "out": os.path.join(work, f"{key}_{i}"), "similarity": similarity} for i, pair in enumerate(cases)]
    for job in jobs:
        os.makedirs(job["out"], exist_ok=True)
    results = run_peer(python, script, jobs, work, key, threads, device=device)
    for job in jobs:
        if any(os.path.isfile(os.path.join(job["out"], f)) for f in ("ddf_voxels.npy", "grid_normalized.npy")):
            _field_outputs(job["out"])
    devices = sorted({r["device"] for r in results if "device" in r})
    label = f"{name}, {', '.join(devices)}" if devices else name
    return _summary(label, [_scores(j["out"], j, hd95, groups) for j in jobs], [r["seconds"] for r in results])


def _found(found: dict) -> str:
    """The header's peers: each asked-for peer with the Python it runs in, or "not found"."""
    if not found:
        return "none asked for"
    return "; ".join(f"{name} via {python}" if python else f"{name} not found" for name, python in found.items())


def _summary(label: str, scores: list[dict], seconds: list[float]) -> dict:
    row = {"method": label, "seconds": float(np.mean(seconds))}
    for column in dict.fromkeys(k for s in scores for k in s):
        values = [s[column] for s in scores if column in s]
        if values:
            row[column] = float(np.nanmean(values))
    return row


def _cell(value) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.4g}"
