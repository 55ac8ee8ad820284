import pytest
import torch

from common.spatial import identity_grid, resize_displacement


@pytest.mark.parametrize("old, new", [((17, 21), (33, 11)), ((9, 13, 17), (17, 25, 9))])
def test_affine_field_stays_the_same_physical_transform(old, new):
    # the grids span the same physical box (corners aligned); a physical affine map u(x) = A x + b
    ndim = len(old)
    a = torch.tensor([[0.1, -0.05, 0.02][:ndim], [0.03, 0.08, -0.04][:ndim], [0.0, 0.02, -0.06][:ndim]][:ndim])
    b = torch.tensor([0.5, -0.3, 0.2][:ndim])

    def field(size):
        x = identity_grid(size) / torch.tensor([n - 1 for n in size]).view(ndim, *([1] * ndim))  # in [0, 1]
        disp = torch.einsum("ij,j...->i...", a, x) + b.view(ndim, *([1] * ndim))  # in box units
        return (disp * torch.tensor([n - 1 for n in size]).view(ndim, *([1] * ndim))).unsqueeze(0)  # voxels

    torch.testing.assert_close(resize_displacement(field(old), new), field(new), atol=1e-4, rtol=0)


def test_doubling_scales_values():
    ddf = torch.ones(1, 2, 5, 9)
    out = resize_displacement(ddf, (9, 17))
    torch.testing.assert_close(out, torch.full((1, 2, 9, 17), 2.0))


def test_bad_size():
    with pytest.raises(ValueError, match="size"):
        resize_displacement(torch.zeros(1, 3, 4, 4, 4), (8, 8))
