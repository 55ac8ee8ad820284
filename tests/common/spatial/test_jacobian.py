import pytest
import torch

from common.spatial import identity_grid, jacobian_determinant


@pytest.mark.parametrize(
    "matrix",
    [
        [[1.2, 0.1], [-0.3, 0.9]],
        [[1.1, 0.2, 0.0], [0.1, 0.8, -0.2], [0.05, 0.3, 1.3]],
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],  # axis swap: det -1
    ],
)
def test_affine_field_gives_det_a_everywhere(matrix):
    a = torch.tensor(matrix, dtype=torch.float64)
    ndim = a.shape[0]
    size = (9, 10, 11)[:ndim]
    p = identity_grid(size, dtype=torch.float64)
    u = torch.einsum("ij,j...->i...", a - torch.eye(ndim, dtype=torch.float64), p).unsqueeze(0)
    det = jacobian_determinant(u)
    assert det.shape == (1, 1, *size)
    torch.testing.assert_close(det, torch.full_like(det, torch.linalg.det(a).item()))


def test_compression_along_first_axis_is_negative_half():
    # u_0(p) = -1.5 p_0: det J = 1 - 1.5 = -0.5 (MIDIR's published metric reports +1.0 here)
    size = (8, 9, 10)
    u = torch.zeros(1, 3, *size)
    u[:, 0] = -1.5 * identity_grid(size)[0]
    torch.testing.assert_close(jacobian_determinant(u), torch.full((1, 1, *size), -0.5))


def test_spacing_for_physical_fields():
    # a field in mm with spacing (2, 1, 3) mm: u = (A - I) x with x in mm
    spacing = (2.0, 1.0, 3.0)
    a = torch.tensor([[1.3, 0.0, 0.1], [0.0, 0.7, 0.0], [0.2, 0.0, 1.0]])
    size = (6, 7, 8)
    x = identity_grid(size) * torch.tensor(spacing).view(3, 1, 1, 1)
    u = torch.einsum("ij,j...->i...", a - torch.eye(3), x).unsqueeze(0)
    det = jacobian_determinant(u, spacing=spacing)
    torch.testing.assert_close(det, torch.full_like(det, torch.linalg.det(a).item()), atol=1e-5, rtol=1e-5)


def test_quadratic_field_central_inside_one_sided_at_border():
    size = (7, 5)
    i = identity_grid(size)[0]
    u = torch.zeros(1, 2, *size)
    u[:, 0] = 0.05 * i**2  # du0/di = 0.1 i exactly by central differences inside
    det = jacobian_determinant(u)[0, 0]
    torch.testing.assert_close(det[1:-1, :], (1 + 0.1 * i)[1:-1, :])
    torch.testing.assert_close(det[0, :], torch.full((5,), 1 + 0.05))  # forward difference (0.05 - 0) / 1
    torch.testing.assert_close(det[-1, :], torch.full((5,), 1 + 0.05 * (36 - 25)))


def test_bad_input():
    with pytest.raises(ValueError, match="ddf"):
        jacobian_determinant(torch.zeros(1, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        jacobian_determinant(torch.full((1, 2, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="spacing"):
        jacobian_determinant(torch.zeros(1, 2, 4, 4), spacing=(1.0, 0.0))
