"""Network-grid DDFs as physical transforms (``common.spatial.physical``), against hand-computed world maps and
numpy resampling."""

import numpy as np
import pytest
import torch

from common.spatial.physical import RAS_TO_LPS, physical_displacement, resample_affine, sample_world, warp_physical


def _affine(spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0)):
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return affine


def test_a_zero_ddf_between_grids_is_the_change_of_grid_in_millimetres():
    source, target = _affine(origin=(0, 0, 0)), _affine(origin=(5.0, -3.0, 1.0))
    d = physical_displacement(torch.zeros(3, 4, 4, 4), source, target, source, (4, 4, 4))
    # x -> T S^-1 x: a translation by the origins' difference everywhere
    np.testing.assert_allclose(d.numpy(), np.broadcast_to(np.array([5.0, -3.0, 1.0])[:, None, None, None], d.shape))


def test_a_one_voxel_ddf_is_one_spacing_in_world_units_on_any_output_grid():
    net = _affine(spacing=(2.0, 3.0, 4.0))
    ddf = torch.zeros(3, 5, 5, 5)
    ddf[1] = 1.0  # one voxel along the second axis
    out = _affine(spacing=(1.0, 1.0, 1.0), origin=(1.0, 1.0, 1.0))  # a finer grid inside the network grid
    d = physical_displacement(ddf, net, net, out, (6, 6, 6))
    np.testing.assert_allclose(d[1].numpy(), 3.0, atol=1e-9)
    np.testing.assert_allclose(d[[0, 2]].numpy(), 0.0, atol=1e-9)


def test_warp_physical_shifts_an_image_by_whole_voxels_as_numpy_does():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 6, 7, 8)).astype(np.float32))
    affine = _affine(spacing=(1.5, 1.5, 1.5), origin=(10.0, 0.0, -4.0))
    displacement = torch.zeros(3, 6, 7, 8, dtype=torch.float64)
    displacement[2] = 1.5  # one voxel along the third axis
    warped = warp_physical(image, affine, displacement, affine)[0].numpy()
    np.testing.assert_allclose(warped[..., :-1], image[0].numpy()[..., 1:], atol=1e-6)


def test_resample_affine_through_a_world_map_and_zero_outside_the_image():
    image = torch.arange(4 * 4 * 4, dtype=torch.float32).reshape(1, 4, 4, 4)
    affine = _affine(spacing=(1.0, 1.0, 1.0))
    shift = np.eye(4)
    shift[0, 3] = 1.0  # output point x samples the image at x + 1 mm along the first axis
    out = resample_affine(image, affine, affine, (4, 4, 4), world_map=shift)[0].numpy()
    np.testing.assert_allclose(out[:3], image[0, 1:].numpy(), atol=1e-5)
    far = torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1, 1)
    assert float(sample_world(image, affine, far).sum()) == 0.0


def test_ras_to_lps_negates_the_first_two_axes():
    assert RAS_TO_LPS @ np.array([1.0, 2.0, 3.0]) == pytest.approx([-1.0, -2.0, 3.0])
