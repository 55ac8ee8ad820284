import pytest
import torch
from monai.networks.blocks import Warp

from common.spatial import ddf_from_grid, identity_grid, warp


@pytest.mark.parametrize("size", [(12, 15), (9, 10, 11)])
def test_zero_ddf_returns_the_image(size):
    image = torch.rand(2, 3, *size)
    ddf = torch.zeros(2, len(size), *size)
    torch.testing.assert_close(warp(image, ddf), image, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "size, axis", [((16, 18), 0), ((16, 18), 1), ((10, 12, 14), 0), ((10, 12, 14), 1), ((10, 12, 14), 2)]
)
def test_integer_shift_equals_roll_away_from_border(size, axis):
    ndim = len(size)
    image = torch.rand(1, 1, *size)
    ddf = torch.zeros(1, ndim, *size)
    ddf[:, axis] = 2.0  # warped(p) = image(p + 2 e_axis)
    out = warp(image, ddf)
    expected = torch.roll(image, shifts=-2, dims=axis + 2)
    inner = [slice(None), slice(None)] + [slice(None)] * ndim
    inner[axis + 2] = slice(0, size[axis] - 2)
    torch.testing.assert_close(out[tuple(inner)], expected[tuple(inner)], atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(11, 13), (7, 9, 8)])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_matches_monai_warp(size, mode):
    torch.manual_seed(0)
    image = torch.rand(2, 2, *size)
    ddf = 2 * torch.randn(2, len(size), *size)
    expected = Warp(mode=mode, padding_mode="border")(image, ddf)
    torch.testing.assert_close(warp(image, ddf, mode=mode), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("threads, size", [(2, (12, 7, 9)), (3, (12, 7, 9)), (3, (10, 7, 9)), (2, (7, 6, 5))])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_single_volume_cut_into_slabs_for_threads_matches_monai_warp(threads, size, mode):
    """One volume on several CPU threads goes through grid_sample as slabs (also uneven counts: 10 rows on 3
    threads -> 2 slabs; 7 rows -> one call): same values and gradients as MONAI's Warp."""
    torch.manual_seed(0)
    image = torch.rand(1, 2, *size, requires_grad=True)
    ddf = (2 * torch.randn(1, 3, *size)).requires_grad_()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = warp(image, ddf, mode=mode)
        grads = torch.autograd.grad(out.square().sum(), (image, ddf), allow_unused=True)
    finally:
        torch.set_num_threads(previous)
    expected = Warp(mode=mode, padding_mode="border")(image, ddf)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    expected_grads = torch.autograd.grad(expected.square().sum(), (image, ddf), allow_unused=True)
    torch.testing.assert_close(grads[0], expected_grads[0], atol=1e-4, rtol=1e-5)


def test_nearest_keeps_label_values():
    labels = torch.randint(0, 5, (1, 1, 8, 8, 8)).float()
    out = warp(labels, 0.7 * torch.randn(1, 3, 8, 8, 8), mode="nearest")
    assert set(out.unique().tolist()) <= set(labels.unique().tolist())


def test_identity_grid_is_voxel_indices():
    grid = identity_grid((3, 4))
    assert grid.shape == (2, 3, 4)
    assert grid[0, 2, 1] == 2 and grid[1, 2, 1] == 1


@pytest.mark.parametrize(
    "image, ddf, match",
    [
        (torch.rand(1, 1, 8, 8), torch.zeros(1, 2, 8, 9), "share the spatial size"),
        (torch.rand(1, 1, 8, 8), torch.zeros(1, 3, 8, 8), "one channel per spatial axis"),
        (torch.rand(1, 1, 8), torch.zeros(1, 1, 8), "2 or 3 spatial axes"),
        (torch.rand(1, 1, 4, 4, 4, 4), torch.zeros(1, 4, 4, 4, 4, 4), "2 or 3 spatial axes"),
        (torch.rand(1, 1, 8, 8, 8), torch.zeros(1, 2, 8, 8), "same number of spatial axes"),
        (torch.rand(1, 1, 8, 8), torch.full((1, 2, 8, 8), float("nan")), "NaN"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(image, ddf, match):
    with pytest.raises(ValueError, match=match) as info:
        warp(image, ddf)
    assert "ddf" in str(info.value) or "image" in str(info.value)


def test_bad_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        warp(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), mode="cubic")


@pytest.mark.parametrize("size", [(7, 9), (5, 6, 8)])
def test_ddf_from_grid_warps_as_grid_sample_with_the_grid(size):
    """A ``grid_sample`` grid (normalised, corners aligned, last axis x, y, z) turned into a voxel DDF: warping with
    it gives what ``F.grid_sample`` gives with the grid itself; the identity grid gives a zero DDF."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    ndim = len(size)
    theta = torch.eye(ndim, ndim + 1)[None] + 0.05 * torch.randn(1, ndim, ndim + 1, generator=g)
    identity = F.affine_grid(torch.eye(ndim, ndim + 1)[None], (1, 1, *size), align_corners=True)
    grid = F.affine_grid(theta, (1, 1, *size), align_corners=True)
    image = torch.rand(1, 2, *size, generator=g)
    expected = F.grid_sample(image, grid, align_corners=True, padding_mode="border")
    ddf = ddf_from_grid(grid)
    assert ddf.shape == (1, ndim, *size) and ddf.abs().max() > 0.2
    torch.testing.assert_close(warp(image, ddf), expected, atol=1e-5, rtol=0)
    assert ddf_from_grid(identity).abs().max() < 1e-5
