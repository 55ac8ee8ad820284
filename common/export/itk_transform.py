"""Transforms as files ITK, ANTs and 3D Slicer read: displacement-field NIfTI, ANTs affine ``.mat``, ITK ``.h5``.

ITK's physical space is LPS; nibabel's affines are RAS (``P = diag(-1, -1, 1)`` converts either way). Every
transform here maps points of the fixed space to points of the moving space (what ITK's resampling of the moving
image needs; ANTs' "warp" convention):

- a displacement ``d`` (RAS mm, ``(3, X, Y, Z)``) on a grid with a RAS affine becomes LPS vectors ``P d`` on the
  grid's LPS origin, spacing and direction;
- a world affine ``x -> L x + t`` (RAS) becomes ``P L P`` and ``P t`` (ITK ``AffineTransform`` with centre 0).

The files are written directly (nibabel, scipy's MATLAB v4 writer, h5py) in the layouts ITK's own writers
produce, because loading ITK's wrapped modules to write them took 10-16 s per command; the tests read every file
back with ITK itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..spatial.physical import RAS_TO_LPS

__all__ = [
    "itk_geometry",
    "write_ants_affine",
    "write_displacement_nifti",
    "write_itk_transform",
]


def itk_geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, spacing, direction) in ITK's LPS convention of a 3D RAS voxel-to-world ``affine``."""
    affine = np.asarray(affine, dtype=np.float64)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = RAS_TO_LPS @ (linear / spacing)
    origin = RAS_TO_LPS @ affine[:3, 3]
    return origin, spacing, direction


def _lps_field(displacement) -> np.ndarray:
    d = np.asarray(displacement.detach().cpu() if isinstance(displacement, torch.Tensor) else displacement)
    if d.ndim != 4 or d.shape[0] != 3:
        raise ValueError(f"a displacement field must be 3D, (3, X, Y, Z), got shape {d.shape}")
    return np.einsum("ij,j...->i...", RAS_TO_LPS, d.astype(np.float64))


def _lps_affine(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"an affine transform must be a 4 x 4 matrix, got shape {matrix.shape}")
    return RAS_TO_LPS @ matrix[:3, :3] @ RAS_TO_LPS, RAS_TO_LPS @ matrix[:3, 3]


def write_displacement_nifti(displacement, affine: np.ndarray, path: str) -> None:
    """The field as ANTs writes warps: a 5D NIfTI ``(X, Y, Z, 1, 3)`` of LPS vectors (mm), intent vector (1007),
    on the grid ``affine`` (RAS). ITK reads it as a vector image, ANTs and 3D Slicer as a displacement field."""
    import nibabel as nib

    lps = _lps_field(displacement).astype(np.float32)
    image = nib.Nifti1Image(np.moveaxis(lps, 0, -1)[:, :, :, None, :], np.asarray(affine, dtype=np.float64))
    image.header.set_intent("vector")
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def write_ants_affine(matrix: np.ndarray, path: str) -> None:
    """A world affine (4 x 4, RAS, fixed -> moving points) as ANTs' ``*GenericAffine.mat``: ITK's MATLAB v4
    transform file, ``AffineTransform_double_3_3`` (row-major matrix then translation, LPS) and ``fixed`` (centre 0)."""
    from scipy.io import savemat

    linear, translation = _lps_affine(matrix)
    parameters = np.concatenate([linear.reshape(-1), translation])[:, None]
    savemat(path, {"AffineTransform_double_3_3": parameters, "fixed": np.zeros((3, 1))}, format="4")


def write_itk_transform(path: str, parts: Sequence[tuple[str, object, np.ndarray | None]]) -> None:
    """An ITK HDF5 transform file (``.h5``). ``parts`` lists ``("affine", matrix 4 x 4, None)`` and
    ``("field", displacement (3, X, Y, Z) RAS mm, grid affine)`` in the order they are applied to a point; more
    than one part is written as a ``CompositeTransform`` (ITK applies the last-queued transform first, so the
    queue is ``parts`` reversed)."""
    import h5py

    entries = []
    for kind, value, grid in reversed(list(parts)):
        if kind == "affine":
            linear, translation = _lps_affine(value)
            entries.append(
                ("AffineTransform_double_3_3", np.concatenate([linear.reshape(-1), translation]), np.zeros(3))
            )
        elif kind == "field":
            lps = _lps_field(value)
            origin, spacing, direction = itk_geometry(grid)
            # ITK's buffer order: x fastest, the three components of a voxel together
            parameters = np.ascontiguousarray(np.transpose(lps, (3, 2, 1, 0))).reshape(-1)
            fixed = np.concatenate([np.array(lps.shape[1:], dtype=np.float64), origin, spacing, direction.reshape(-1)])
            entries.append(("DisplacementFieldTransform_double_3_3", parameters, fixed))
        else:
            raise ValueError(f"transform part must be 'affine' or 'field', got {kind!r}")
    if len(entries) > 1:
        entries.insert(0, ("CompositeTransform_double_3_3", None, None))
    string = h5py.string_dtype("ascii")
    with h5py.File(path, "w") as f:
        f.create_dataset("ITKVersion", data=np.array([b"5.4.0"], dtype=object), dtype=string)
        f.create_dataset("HDFVersion", data=np.array([h5py.version.hdf5_version.encode()], dtype=object), dtype=string)
        group = f.create_group("TransformGroup")
        for index, (name, parameters, fixed) in enumerate(entries):
            entry = group.create_group(str(index))
            entry.create_dataset("TransformType", data=np.array([name.encode()], dtype=object), dtype=string)
            if parameters is not None:
                entry.create_dataset("TransformParameters", data=np.asarray(parameters, dtype=np.float64))
                entry.create_dataset("TransformFixedParameters", data=np.asarray(fixed, dtype=np.float64))
