"""Register one pair of NIfTI files with a bundle's network through the real-scan stage, and write every result
on the fixed image's own grid and geometry (qform / sform codes kept).

Outputs (fixed -> moving points in LPS mm for every transform file; ``docs/DESIGN.md`` "Real scans"):

- ``warped.nii.gz`` (moving image, linear), ``warped_label.nii.gz`` (nearest), ``jacobian.nii.gz`` (det J of the
  whole physical map, affine included), ``metrics.json``;
- ``transform.h5``: one ITK ``CompositeTransform``, the affine after the deformation;
- ``transform_0GenericAffine.mat`` + ``transform_1Warp.nii.gz``: the same as ANTs' pair, applied by
  ``antsApplyTransforms -t transform_1Warp.nii.gz -t transform_0GenericAffine.mat``;
- ``ddf_itk.nii.gz``: the single full displacement field, affine folded in (3D Slicer, tools that take one field);
- with a true inverse (``network.ddf_and_inverse``): ``inverse_transform.h5``, ``transform_1InverseWarp.nii.gz``
  (``-t [transform_0GenericAffine.mat,1] -t transform_1InverseWarp.nii.gz``) and ``inverse_ddf_itk.nii.gz`` on
  the moving grid;
- with ``report``: ``report.png`` (and frames along a trajectory or the sampling steps, where the method has them).
The folder is written complete or not at all (``common.atomic.atomic_folder``).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import nibabel as nib
import numpy as np
import torch

from ..atomic import atomic_folder, check_new_folder
from ..data.files import DataError, check_image_file, check_label_values, warn
from ..export.itk_transform import write_ants_affine, write_displacement_nifti, write_itk_transform
from ..metrics.pair import dice_row, jacobian_row
from ..spatial.jacobian import jacobian_determinant
from ..spatial.physical import warp_physical
from .affine import describe_affine
from .stage import PreparedPair, RealScanStage

__all__ = ["load_volume", "register_pair", "run_network", "save_like"]


def load_volume(path: str, what: str, label: bool = False) -> tuple[torch.Tensor, nib.Nifti1Image]:
    """(voxels ``(1, *spatial)`` float32, the nibabel image) of a 3D NIfTI file; a one-line ``DataError`` naming
    the file for anything that is not a finite 3D image with an invertible affine (``label``: with whole-number
    values); a warning for a constant image or a spacing ratio over 100:1."""
    check_image_file(path, ndim=3)
    image = nib.load(path)
    try:
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as err:
        raise DataError(f"{path}: cannot read the voxel data, the file is truncated or damaged ({err})") from None
    data = data.reshape(data.shape[:3])
    if not np.isfinite(data).all():
        raise DataError(f"{path}: {what} holds NaN or infinite values")
    if abs(np.linalg.det(image.affine[:3, :3])) < 1e-12:
        raise DataError(f"{path}: {what} has a singular affine (zero spacing or degenerate direction) in its header")
    spacing = np.linalg.norm(image.affine[:3, :3], axis=0)
    if spacing.max() > 100 * spacing.min():
        warn(
            f"{path}: {what} has voxel spacing {np.round(spacing, 4).tolist()} mm (ratio over 100:1); check its header"
        )
    if label:
        check_label_values(path, data, what)
    elif data.size and float(data.max()) == float(data.min()):
        warn(f"{path}: {what} is constant ({float(data.min()):g} everywhere); nothing can be registered to it")
    return torch.from_numpy(data)[None], image


def save_like(array: np.ndarray, reference: nib.Nifti1Image, path: str) -> None:
    """Write ``array`` on ``reference``'s grid with its qform and sform (and their codes)."""
    image = nib.Nifti1Image(array, reference.affine)
    header = reference.header
    image.set_qform(reference.get_qform(), int(header["qform_code"]))
    image.set_sform(reference.get_sform(), int(header["sform_code"]))
    image.header.set_xyzt_units(*header.get_xyzt_units())
    nib.save(image, path)


def run_network(network, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(DDF ``(3, *spatial)``, inverse DDF or ``None``, seconds) of one network pass under the inference contract;
    methods with a true inverse give both from one pass (``ddf_and_inverse``)."""
    if inputs.is_cuda:
        torch.cuda.synchronize(inputs.device)
    start = time.perf_counter()
    with torch.no_grad():
        if callable(getattr(network, "ddf_and_inverse", None)):
            ddf, inverse = (field[0] for field in network.ddf_and_inverse(inputs))
        else:
            ddf, inverse = network(inputs)[0], None
    if inputs.is_cuda:
        torch.cuda.synchronize(inputs.device)
    return ddf, inverse, time.perf_counter() - start


def _check_label(path: str, label: torch.Tensor, image: nib.Nifti1Image, key: str) -> None:
    if tuple(label.shape[1:]) != tuple(image.shape[:3]):
        raise DataError(f"{path}: {key} grid {tuple(label.shape[1:])} differs from its image's {image.shape[:3]}")


def register_pair(
    stage: RealScanStage,
    network,
    pair: dict,
    out: str,
    device: str | torch.device = "cpu",
    report: bool = False,
    frames=None,
    refine=None,
    overwrite: bool = False,
) -> dict:
    """Register ``pair`` ``{"fixed", "moving", "fixed_label"?, "moving_label"?}`` (file paths) into the new folder
    ``out`` (module docstring); returns the metrics written to ``metrics.json``. ``frames(network, inputs, folder,
    title)`` adds method-specific report frames; ``refine`` (a :class:`~common.realscan.refine.Refinement`) refines
    the network's prediction on the pair before anything is written. An existing ``out`` is replaced only with
    ``overwrite`` and only when regzoo wrote it (:func:`common.atomic.atomic_folder`), checked before any work."""
    started = time.perf_counter()
    check_new_folder(out, overwrite)
    fixed, fixed_image = load_volume(pair["fixed"], "the fixed image")
    moving, moving_image = load_volume(pair["moving"], "the moving image")
    labels = {}
    for key, image in (("moving_label", moving_image), ("fixed_label", fixed_image)):
        if pair.get(key) is not None:
            label, _ = load_volume(pair[key], key.replace("_", " "), label=True)
            _check_label(pair[key], label, image, key)
            labels[key] = (label, image.affine)
    prepared = stage.prepare(fixed, fixed_image.affine, moving, moving_image.affine, device)
    ddf, inverse, seconds = run_network(network, prepared.inputs)
    if refine is not None and refine.steps:
        ddf, inverse = refine(network, prepared.inputs, ddf, inverse)
    fixed_affine, fixed_shape = fixed_image.affine, fixed_image.shape[:3]
    full, warp = prepared.displacements(ddf, fixed_affine, fixed_shape)
    outputs = {"warped": warp_physical(moving, moving_image.affine, full, fixed_affine)[0].numpy()}
    if "moving_label" in labels:
        warped_label = warp_physical(labels["moving_label"][0], moving_image.affine, full, fixed_affine, mode="nearest")
        outputs["warped_label"] = warped_label[0].round().numpy().astype(np.int16)
    # det J of the physical map, from its displacement in the fixed grid's voxel units (the same determinant)
    to_voxels = torch.as_tensor(np.linalg.inv(fixed_affine[:3, :3]))
    voxel_ddf = torch.einsum("ij,j...->i...", to_voxels, full)[None].float()
    det = jacobian_determinant(voxel_ddf)
    outputs["jacobian"] = det[0, 0].numpy()

    metrics = {
        "fixed": pair["fixed"],
        "moving": pair["moving"],
        "seconds": seconds,
        "seconds_affine": prepared.seconds["affine"],
        "refine_steps": refine.steps if refine is not None else 0,
        "seconds_refine": refine.seconds if refine is not None and refine.steps else 0.0,
        "affine": {"model": stage.affine, **describe_affine(prepared.affine, _world_centre(prepared))},
    }
    metrics.update(jacobian_row(det))
    if "warped_label" in outputs and "fixed_label" in labels:
        row = dice_row(torch.from_numpy(outputs["warped_label"])[None, None], labels["fixed_label"][0][None])
        metrics["dice"] = {k.removeprefix("dice_"): v for k, v in row.items() if k != "dice_mean"}
        metrics["dice_mean"] = row["dice_mean"]

    with atomic_folder(out, overwrite) as tmp:
        writers = _transform_writers(prepared, inverse, full, warp, fixed_image, moving_image, tmp)
        for name, array in outputs.items():
            array = array.astype(np.int16 if name == "warped_label" else np.float32)
            writers.append(partial(save_like, array, fixed_image, f"{tmp}/{name}.nii.gz"))
        _write_all(writers)
        if report:
            _report(prepared, moving, moving_image, fixed, fixed_image, outputs, voxel_ddf, pair, tmp)
            if frames is not None:
                frames(network, prepared.inputs, tmp, _title(pair))
        metrics["seconds_total"] = time.perf_counter() - started
        with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=1)
    return metrics


def _world_centre(prepared: PreparedPair) -> np.ndarray:
    """World point at the centre of the network grid (the fixed foreground's centre)."""
    size = np.array(prepared.inputs.shape[2:], dtype=np.float64)
    return (prepared.grid @ np.append((size - 1) / 2, 1.0))[:3]


def _transform_writers(prepared, inverse, full, warp, fixed_image, moving_image, folder: str) -> list:
    """Writers (calls without arguments) of the transform files of the module docstring, their fields computed
    now; ``full``, ``warp``: the whole map's and the deformation's displacements on the fixed grid."""
    fixed_affine, fixed_shape = fixed_image.affine, fixed_image.shape[:3]
    writers = [
        partial(write_displacement_nifti, full, fixed_affine, f"{folder}/ddf_itk.nii.gz"),
        partial(write_ants_affine, prepared.affine, f"{folder}/transform_0GenericAffine.mat"),
        partial(write_displacement_nifti, warp, fixed_affine, f"{folder}/transform_1Warp.nii.gz"),
        partial(
            write_itk_transform,
            f"{folder}/transform.h5",
            [("field", warp, fixed_affine), ("affine", prepared.affine, None)],
        ),
    ]
    if inverse is None:
        return writers
    moving_affine, moving_shape = moving_image.affine, moving_image.shape[:3]
    inverse_full = prepared.inverse_displacement(inverse, moving_affine, moving_shape)
    inverse_warp = prepared.inverse_displacement(inverse, fixed_affine, fixed_shape, with_affine=False)
    return writers + [
        partial(write_displacement_nifti, inverse_full, moving_affine, f"{folder}/inverse_ddf_itk.nii.gz"),
        partial(write_displacement_nifti, inverse_warp, fixed_affine, f"{folder}/transform_1InverseWarp.nii.gz"),
        partial(
            write_itk_transform,
            f"{folder}/inverse_transform.h5",
            [("affine", np.linalg.inv(prepared.affine), None), ("field", inverse_warp, fixed_affine)],
        ),
    ]


def _write_all(writers: list) -> None:
    """Run ``writers`` on ``torch.get_num_threads()`` threads: gzip compression of the fields (zlib releases the
    GIL) was a third of a pair's time on 2 CPU cores (1.2 s of 4.3 s for MIDIR + 20 refinement steps). The first
    error is raised after every writer has finished (the folder is discarded whole by ``atomic_folder``)."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(writers), torch.get_num_threads()))) as pool:
        futures = [pool.submit(writer) for writer in writers]
    for future in futures:
        future.result()


def _title(pair: dict) -> str:
    def stem(path):
        return os.path.basename(path).removesuffix(".gz").removesuffix(".nii")

    return f"{stem(pair['fixed'])}  <-  {stem(pair['moving'])}"


def _report(prepared, moving, moving_image, fixed, fixed_image, outputs, voxel_ddf, pair, folder: str) -> None:
    from ..export.report import registration_report

    fixed_affine = fixed_image.affine
    before = warp_physical(moving, moving_image.affine, torch.zeros(3, *fixed_image.shape[:3]), fixed_affine)[0]
    registration_report(
        os.path.join(folder, "report.png"),
        fixed[0].numpy(),
        before.numpy(),
        outputs["warped"],
        voxel_ddf[0].numpy(),
        outputs["jacobian"],
        title=_title(pair),
    )
