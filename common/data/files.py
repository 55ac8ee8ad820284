"""Checks on image files before and while they are read: errors name the file and the problem."""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections.abc import Sequence

import nibabel as nib
import numpy as np

__all__ = ["DataError", "check_image_file", "check_label_values", "read_header_shape", "read_json_list", "warn"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


class DataError(ValueError):
    """A data file or folder cannot be used; the message names it and says why."""


def warn(message: str) -> None:
    """One line on stderr, ``regzoo: warning: <message>``: something to look at that does not stop the run."""
    print(f"regzoo: warning: {message}", file=sys.stderr, flush=True)


def check_label_values(path: str, values: np.ndarray, what: str = "label image") -> None:
    """Refuse a label image whose voxels are not whole numbers (a probability map or an interpolated label
    would be truncated to a wrong segmentation)."""
    off = np.abs(values - np.round(values))
    if off.size and float(off.max()) > 1e-3:
        example = float(values.flat[int(np.argmax(off))])
        raise DataError(
            f"{path}: the {what} holds non-integer values (e.g. {example:.4g}); expected whole-number labels"
        )


def read_header_shape(path: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Shape and voxel spacing from a NIfTI header (cheap: no voxel data read)."""
    try:
        img = nib.load(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:  # nibabel raises several types for non-NIfTI or damaged headers
        raise DataError(f"{path}: not a readable NIfTI image ({err})") from None
    return tuple(int(n) for n in img.shape), tuple(float(z) for z in img.header.get_zooms())


def check_image_file(path: str, ndim: int | Sequence[int] | None = None, full: bool = False) -> tuple[int, ...]:
    """Check ``path`` is a NIfTI image with ``ndim`` dimensions (3, or 4 for a cine sequence); return its shape.

    ``full=True`` also decompresses the whole file, catching truncated archives before training starts.
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected a NIfTI image file")
    if not path.endswith(_NIFTI_SUFFIXES):
        raise DataError(f"{path}: not a NIfTI file (expected a name ending in .nii or .nii.gz)")
    shape, _ = read_header_shape(path)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None:
        squeezed = len(shape) - sum(1 for n in shape[3:] if n == 1)  # trailing singleton axes do not count
        if squeezed not in allowed:
            raise DataError(
                f"{path}: has {len(shape)} dimensions {shape}, expected a {' or '.join(map(str, allowed))}D image"
            )
    if full:
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as f:
                    while f.read(1 << 24):
                        pass
            np.asarray(nib.load(path).dataobj)
        except Exception as err:
            raise DataError(f"{path}: cannot read the voxel data, the file is truncated or damaged ({err})") from None
    return shape


def read_json_list(path: str, key: str, what: str = "JSON") -> list:
    """The list under ``key`` of the JSON file ``path`` (``what`` names the file's kind in errors)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: {what} not found")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get(key), list):
        raise DataError(f"{path}: no '{key}' list (keys: {sorted(spec) if isinstance(spec, dict) else type(spec)})")
    return spec[key]
