"""Physical displacement fields as ITK / ANTs / 3D Slicer transforms.

ITK's physical space is LPS; nibabel's affines are RAS. A displacement ``d`` (RAS mm) on a grid with a RAS affine
becomes, for ITK, an ``itk.Image[itk.Vector[itk.F, 3], 3]`` whose origin, spacing and direction are the grid's in
LPS and whose vectors are ``diag(-1, -1, 1) d``. As an ``itk.DisplacementFieldTransform`` it maps a point ``x`` of
the grid's space to ``x + d(x)``: for the forward transform (on the fixed grid) that is the fixed -> moving point
map ITK's resampling of the moving image needs, ANTs' "warp" convention.
"""

from __future__ import annotations

import numpy as np
import torch

from ..spatial.physical import RAS_TO_LPS

__all__ = ["itk_displacement_image", "write_itk_displacement", "itk_geometry"]


def itk_geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, spacing, direction) in ITK's LPS convention of a 3D RAS voxel-to-world ``affine``."""
    affine = np.asarray(affine, dtype=np.float64)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = RAS_TO_LPS @ (linear / spacing)
    origin = RAS_TO_LPS @ affine[:3, 3]
    return origin, spacing, direction


def itk_displacement_image(displacement: torch.Tensor | np.ndarray, affine: np.ndarray):
    """``itk.Image[itk.Vector[itk.F, 3], 3]`` of a RAS displacement ``(3, X, Y, Z)`` (mm) on the grid ``affine``."""
    import itk

    d = np.asarray(displacement.detach().cpu() if isinstance(displacement, torch.Tensor) else displacement)
    if d.ndim != 4 or d.shape[0] != 3:
        raise ValueError(f"an ITK displacement field needs a 3D field (3, X, Y, Z), got {d.shape}")
    lps = np.einsum("ij,j...->i...", RAS_TO_LPS, d.astype(np.float64))
    # ITK's numpy view is (z, y, x, component): reverse the voxel axes
    array = np.ascontiguousarray(np.transpose(lps, (3, 2, 1, 0)).astype(np.float32))
    image = itk.image_from_array(array, ttype=itk.Image[itk.Vector[itk.F, 3], 3])
    origin, spacing, direction = itk_geometry(affine)
    image.SetOrigin(origin.tolist())
    image.SetSpacing(spacing.tolist())
    image.SetDirection(itk.matrix_from_array(direction))
    return image


def write_itk_displacement(displacement, affine: np.ndarray, field_path: str, transform_path: str) -> None:
    """Write the field as an ITK vector image (``field_path``, e.g. ``.nii.gz``: ANTs' warp-file convention)
    and as an ITK transform file (``transform_path``, ``.h5`` or ``.tfm``: a ``DisplacementFieldTransform``)."""
    import itk

    image = itk_displacement_image(displacement, affine)
    itk.imwrite(image, field_path)
    transform = itk.DisplacementFieldTransform[itk.F, 3].New()
    transform.SetDisplacementField(image)
    itk.transformwrite([transform], transform_path)
