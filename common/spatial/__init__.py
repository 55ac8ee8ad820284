"""Spatial transforms in voxel units (DESIGN.md): warping, composition, integration, B-splines, Jacobians."""

from .bspline import BSplineSVF, bspline_kernel, bspline_to_dense, control_grid_size
from .integrate import compose, integrate_svf, integrate_tvf, invert_displacement, invert_svf, tvf_step
from .jacobian import jacobian_determinant, jacobian_matrix
from .physical import RAS_TO_LPS, physical_displacement, sample_points, warp_physical
from .resize import resize_displacement
from .warp import identity_grid, warp

__all__ = [
    "RAS_TO_LPS",
    "physical_displacement",
    "sample_points",
    "warp_physical",
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
