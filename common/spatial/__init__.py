"""Spatial transforms in voxel units (DESIGN.md): warping, composition, integration, B-splines, Jacobians."""

from .bspline import BSplineSVF, bspline_kernel, bspline_to_dense, control_grid_size
from .integrate import compose, integrate_svf, integrate_tvf, invert_displacement, invert_svf, tvf_step
from .jacobian import jacobian_determinant, jacobian_matrix
from .physical import (
    RAS_TO_LPS,
    apply_affine,
    grid_world,
    physical_displacement,
    resample_affine,
    sample_points,
    sample_world,
    warp_physical,
)
from .resize import resize_displacement
from .warp import ddf_from_grid, identity_grid, warp, warp_label

__all__ = [
    "ddf_from_grid",
    "RAS_TO_LPS",
    "apply_affine",
    "grid_world",
    "physical_displacement",
    "resample_affine",
    "sample_points",
    "sample_world",
    "warp_physical",
    "warp_label",
    "BSplineSVF",
    "bspline_kernel",
    "bspline_to_dense",
    "compose",
    "control_grid_size",
    "identity_grid",
    "integrate_svf",
    "integrate_tvf",
    "invert_displacement",
    "invert_svf",
    "jacobian_determinant",
    "jacobian_matrix",
    "resize_displacement",
    "tvf_step",
    "warp",
]
