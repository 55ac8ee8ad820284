import pytest
import torch

from common.spatial import BSplineSVF, bspline_kernel, bspline_to_dense, control_grid_size


def test_control_grid_size_matches_midir():
    assert control_grid_size((176, 192, 176), 4) == (47, 51, 47)
    assert control_grid_size((160, 160), (2, 3)) == (83, 56)


@pytest.mark.parametrize("spacing", range(1, 9))
def test_kernel_is_partition_of_unity(spacing):
    k = bspline_kernel(spacing, dtype=torch.float64)
    assert k.numel() == 4 * spacing - 1
    # the stride-s polyphase components each sum to 1
    for phase in range(spacing):
        assert abs(k[phase::spacing].sum().item() - 1.0) < 1e-12


@pytest.mark.parametrize("spacing", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("size", [(31, 45), (17, 23, 13)])
def test_constant_control_points_give_constant_field_of_image_size(spacing, size):
    grid = control_grid_size(size, spacing)
    out = bspline_to_dense(torch.full((1, len(size), *grid), 0.7), spacing, size)
    assert out.shape == (1, len(size), *size)
    torch.testing.assert_close(out, torch.full_like(out, 0.7), atol=1e-5, rtol=0)


@pytest.mark.parametrize("spacing", [(1, 2), (3, 5), (8, 4)])
def test_linear_control_points_give_linear_field(spacing):
    size = (29, 37)
    grid = control_grid_size(size, spacing)
    # control point j sits at voxel (j - 1) * s: sample the linear function 0.3 i - 0.2 j + 1 there
    ci = (torch.arange(grid[0]) - 1.0) * spacing[0]
    cj = (torch.arange(grid[1]) - 1.0) * spacing[1]
    cp = (0.3 * ci[:, None] - 0.2 * cj[None, :] + 1.0).expand(1, 1, *grid)
    out = bspline_to_dense(cp.contiguous(), spacing, size)
    i, j = torch.meshgrid(torch.arange(size[0]) * 1.0, torch.arange(size[1]) * 1.0, indexing="ij")
    torch.testing.assert_close(out[0, 0], 0.3 * i - 0.2 * j + 1.0, atol=1e-4, rtol=0)


def test_interpolates_a_single_control_point_with_the_bspline():
    spacing = 4
    grid = control_grid_size((33, 33), spacing)
    cp = torch.zeros(1, 1, *grid)
    cp[0, 0, 3, 3] = 1.0  # control point (3, 3) sits at voxel (8, 8)
    out = bspline_to_dense(cp, spacing, (33, 33))
    assert out[0, 0, 8, 8].item() == pytest.approx((2 / 3) ** 2, abs=1e-6)
    assert out[0, 0, 12, 8].item() == pytest.approx((1 / 6) * (2 / 3), abs=1e-6)
    assert out[0, 0, 16, 8].item() == pytest.approx(0.0, abs=1e-7)


def test_bspline_svf_module_translation_and_variants():
    size = (24, 20, 16)
    model = BSplineSVF(size, spacing=(4, 4, 2))
    cp = torch.zeros(1, 3, *model.grid_size)
    cp[:, 1] = 1.25
    ddf = model(cp)
    torch.testing.assert_close(ddf, torch.zeros(1, 3, *size).index_fill_(1, torch.tensor([1]), 1.25), atol=1e-5, rtol=0)
    direct = BSplineSVF(size, spacing=(4, 4, 2), diffeomorphic=False)(cp)
    torch.testing.assert_close(direct, ddf, atol=1e-5, rtol=0)
    assert len(model.state_dict()) == 0


@pytest.mark.parametrize("spacing", [0, 9, 2.5])
def test_bad_spacing(spacing):
    with pytest.raises(ValueError, match="spacing"):
        control_grid_size((16, 16), spacing)


def test_wrong_grid_raises():
    with pytest.raises(ValueError, match="expected"):
        bspline_to_dense(torch.zeros(1, 2, 5, 5), 4, (32, 32))
    with pytest.raises(ValueError, match="control_points"):
        BSplineSVF((32, 32), 4)(torch.zeros(1, 2, 5, 5))
