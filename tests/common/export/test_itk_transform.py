"""Independent truth: ITK itself applies our exported transform and matches our own resampling."""

import math

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.export import itk_geometry, write_ants_affine, write_displacement_nifti, write_itk_transform
from common.spatial import physical_displacement, warp_physical

itk = pytest.importorskip("itk")


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _affine(rotation, spacing, origin):
    a = np.eye(4)
    a[:3, :3] = rotation @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def _smooth(shape, seed, coarse=4):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(1, 1, *[coarse] * len(shape), generator=g)
    return F.interpolate(c, size=tuple(shape), mode="trilinear", align_corners=True)[0]


def test_geometry_is_lps():
    affine = _affine(_rotation(0.1, -0.2, 0.3), (1.2, 0.9, 2.0), (-30.0, 12.0, 7.5))
    origin, spacing, direction = itk_geometry(affine)
    assert np.allclose(spacing, [1.2, 0.9, 2.0])
    assert np.allclose(origin, [30.0, -12.0, 7.5])
    assert np.allclose(direction @ direction.T, np.eye(3))


def test_itk_resampling_with_our_transform_matches_our_warp(tmp_path):
    """Anisotropic spacing, non-zero origins, non-identity directions, different fixed / moving / network grids."""
    fixed_shape, moving_shape = (22, 26, 18), (30, 28, 24)
    fixed_affine = _affine(_rotation(0.15, -0.1, 0.25), (1.2, 0.9, 2.0), (-14.0, -9.0, 6.0))
    moving_affine = _affine(_rotation(-0.1, 0.2, 0.05), (1.0, 1.0, 1.5), (-16.0, -14.0, 3.0))
    net_fixed = _affine(_rotation(0.15, -0.1, 0.25), (1.5, 1.5, 1.5), (-13.0, -8.5, 5.0))
    net_moving = net_fixed.copy()
    net_moving[:3, 3] += [1.0, -2.0, 0.5]  # the moving image's network grid sits elsewhere
    net_shape = (20, 18, 22)
    ddf = (_smooth(net_shape, 1).repeat(3, 1, 1, 1) - 0.5) * torch.tensor([4.0, -3.0, 2.0]).view(3, 1, 1, 1)
    moving = _smooth(moving_shape, 2, coarse=6) * 100

    d = physical_displacement(ddf, net_fixed, net_moving, fixed_affine, fixed_shape)
    ours = warp_physical(moving, moving_affine, d, fixed_affine)[0].numpy()
    # compare where every interpolation neighbour lies inside the moving image (ITK and torch differ at the edge)
    inside = warp_physical(torch.ones_like(moving), moving_affine, d, fixed_affine)[0].numpy() > 1 - 1e-5
    assert inside.mean() > 0.5

    nib.save(nib.Nifti1Image(moving[0].numpy().astype(np.float32), moving_affine), tmp_path / "moving.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(fixed_shape, np.float32), fixed_affine), tmp_path / "fixed.nii.gz")
    write_displacement_nifti(d, fixed_affine, str(tmp_path / "ddf.nii.gz"))
    write_itk_transform(str(tmp_path / "transform.h5"), [("field", d, fixed_affine)])
    moving_itk = itk.imread(str(tmp_path / "moving.nii.gz"), itk.F)
    fixed_itk = itk.imread(str(tmp_path / "fixed.nii.gz"), itk.F)
    transform = itk.transformread(str(tmp_path / "transform.h5"))[0]
    resampled = itk.resample_image_filter(
        moving_itk,
        transform=transform,
        use_reference_image=True,
        reference_image=fixed_itk,
        interpolator=itk.LinearInterpolateImageFunction.New(moving_itk),
    )
    theirs = np.transpose(itk.array_from_image(resampled), (2, 1, 0))
    assert np.corrcoef(ours[inside], theirs[inside])[0, 1] > 0.999
    assert np.abs(ours[inside] - theirs[inside]).max() < 0.05  # intensities 0..100
    # the vector image (ANTs' warp file) holds the same transform
    field = _field_transform(itk.imread(str(tmp_path / "ddf.nii.gz")))
    for index in ([0, 0, 0], [5, 7, 3], [21, 25, 17]):
        point = fixed_itk.TransformIndexToPhysicalPoint(index)
        assert np.allclose(field.TransformPoint(point), transform.TransformPoint(point), atol=1e-4)


def _field_transform(field):
    transform = itk.DisplacementFieldTransform[itk.F, 3].New()
    transform.SetDisplacementField(field)
    return transform


def test_affine_files_map_points_as_the_matrix_says(tmp_path):
    """ITK reads our ANTs ``.mat`` and a composite ``.h5`` (field applied first, then the affine) with the
    meaning we give them, in LPS."""
    rng = np.random.default_rng(0)
    grid = _affine(_rotation(0.1, 0.2, -0.1), (2.0, 1.5, 3.0), (-5.0, -6.0, -7.0))
    d = rng.normal(size=(3, 6, 7, 8))
    matrix = np.eye(4)
    matrix[:3, :3] += 0.1 * rng.normal(size=(3, 3))
    matrix[:3, 3] = [3.0, -2.0, 5.0]
    write_ants_affine(matrix, str(tmp_path / "a.mat"))
    write_itk_transform(str(tmp_path / "c.h5"), [("field", d, grid), ("affine", matrix, None)])
    lps = np.diag([-1.0, -1.0, 1.0])
    x = (grid @ np.array([2, 3, 4, 1.0]))[:3]  # a voxel centre: the field needs no interpolation there
    affine = itk.transformread(str(tmp_path / "a.mat"))[0]
    composite = itk.transformread(str(tmp_path / "c.h5"))[0]
    assert np.allclose(affine.TransformPoint((lps @ x).tolist()), lps @ (matrix[:3, :3] @ x + matrix[:3, 3]))
    moved = matrix[:3, :3] @ (x + d[:, 2, 3, 4]) + matrix[:3, 3]
    assert np.allclose(composite.TransformPoint((lps @ x).tolist()), lps @ moved)


def test_bad_field_shape():
    with pytest.raises(ValueError, match=r"\(3, X, Y, Z\)"):
        write_displacement_nifti(np.zeros((2, 4, 4)), np.eye(4), "x.nii.gz")
