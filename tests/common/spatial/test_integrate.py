import math

import pytest
import torch
import torch.nn.functional as F

from common.spatial import compose, identity_grid, integrate_svf, integrate_tvf, invert_svf, warp


def smooth_random_field(size, magnitude, seed=0, coarse=4):
    """A smooth random field: coarse Gaussian noise upsampled (cubic-like), scaled to ``magnitude`` voxels max."""
    g = torch.Generator().manual_seed(seed)
    ndim = len(size)
    coarse_field = torch.randn(1, ndim, *([coarse] * ndim), generator=g)
    mode = "bicubic" if ndim == 2 else "trilinear"
    field = F.interpolate(coarse_field, size=size, mode=mode, align_corners=True)
    return field * (magnitude / field.abs().max())


@pytest.mark.parametrize("size", [(20, 24), (12, 14, 16)])
def test_constant_velocity_integrates_to_that_translation(size):
    v = torch.zeros(1, len(size), *size)
    v[:, 0] = 1.7
    v[:, -1] = -0.6
    torch.testing.assert_close(integrate_svf(v), v, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(48, 48), (32, 32, 32)])
def test_exp_v_after_exp_minus_v_is_identity(size):
    v = smooth_random_field(size, magnitude=2.0, coarse=3)
    forward, backward = integrate_svf(v), invert_svf(v)
    inner = (0,) + (slice(4, -4),) * len(size)  # the border lacks the outside information an inverse needs
    for residual in (compose(forward, backward), compose(backward, forward)):
        error = residual.norm(dim=1)
        assert error[inner].max() < 0.05
        assert error.mean() < 0.01


def test_compose_matches_analytic_composition():
    # u and v analytic: (u after v)(p) = v(p) + u(p + v(p)) evaluated exactly; the grid version
    # only interpolates u bilinearly between voxels
    size = (48, 40)
    p = identity_grid(size, dtype=torch.float64)

    def u_at(q):
        return torch.stack([1.5 * torch.sin(q[1] / 7.0), -torch.cos(q[0] / 9.0)])

    def v_at(q):
        return torch.stack([0.8 * torch.cos(q[0] / 6.0 + q[1] / 11.0), 1.2 * torch.sin(q[0] / 8.0)])

    expected = v_at(p) + u_at(p + v_at(p))
    got = compose(u_at(p).unsqueeze(0), v_at(p).unsqueeze(0))[0]
    inner = (slice(None), slice(3, -3), slice(3, -3))
    torch.testing.assert_close(got[inner], expected[inner], atol=0.01, rtol=0)


def test_compose_of_translations_adds_them():
    u = torch.zeros(1, 2, 16, 16)
    v = torch.zeros(1, 2, 16, 16)
    u[:, 0], v[:, 1] = 1.5, -2.0
    torch.testing.assert_close(compose(u, v), u + v, atol=1e-5, rtol=0)


def test_tvf_compose_of_constant_fields_sums_them():
    fields = [torch.full((1, 3, 8, 8, 8), 0.25 * (t + 1)) for t in range(4)]
    torch.testing.assert_close(integrate_tvf(fields), sum(fields), atol=1e-5, rtol=0)


def test_tvf_compose_equals_sequential_composition_and_self_mode_formula():
    size = (32, 32)
    vs = [smooth_random_field(size, 1.0, seed=s) for s in range(3)]
    expected = compose(compose(vs[0], vs[1]), vs[2])
    torch.testing.assert_close(integrate_tvf(vs), expected, atol=1e-5, rtol=0)
    # published TransMorph-TVF update: u <- u + v_t(p + v_t(p))
    expected_self = sum(warp(v, v) for v in vs)
    torch.testing.assert_close(integrate_tvf(vs, mode="self"), expected_self, atol=1e-5, rtol=0)
    stacked = torch.stack(vs, dim=1)
    torch.testing.assert_close(integrate_tvf(stacked), expected, atol=1e-6, rtol=0)


def test_tvf_inverse_from_negated_reversed_fields():
    size = (40, 40)
    vs = [smooth_random_field(size, 0.5, seed=s) for s in range(8)]
    forward = integrate_tvf(vs)
    inverse = integrate_tvf([-v for v in reversed(vs)])
    assert compose(forward, inverse).norm(dim=1).mean() < 0.05


def test_rotation_svf_gives_rotation():
    # v(p) = W (p - c) with W skew-symmetric: exp(v) is a rotation by theta about c
    theta = 0.2
    c = 20.0
    i, j = torch.meshgrid(torch.arange(41.0), torch.arange(41.0), indexing="ij")
    v = torch.stack([-theta * (j - c), theta * (i - c)]).unsqueeze(0)
    ddf = integrate_svf(v, steps=10)
    ri = c + math.cos(theta) * (i - c) - math.sin(theta) * (j - c)
    rj = c + math.sin(theta) * (i - c) + math.cos(theta) * (j - c)
    expected = torch.stack([ri - i, rj - j]).unsqueeze(0)
    inner = (slice(None), slice(None), slice(12, 29), slice(12, 29))
    torch.testing.assert_close(ddf[inner], expected[inner], atol=0.02, rtol=0)


@pytest.mark.parametrize("bad", [[], [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 5, 4)]])
def test_tvf_bad_input(bad):
    with pytest.raises(ValueError, match="velocit"):
        integrate_tvf(bad)


def test_bad_mode_and_steps():
    with pytest.raises(ValueError, match="mode"):
        integrate_tvf([torch.zeros(1, 2, 4, 4)], mode="euler")
    with pytest.raises(ValueError, match="steps"):
        integrate_svf(torch.zeros(1, 2, 4, 4), steps=-1)
    with pytest.raises(ValueError, match="u .* and v"):
        compose(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))


def test_invert_displacement_of_an_affine_map():
    """p -> A p + t (a mild shear-scale about the centre): the inverse displacement is analytic."""
    from common.spatial import identity_grid, invert_displacement

    size = (21, 23, 19)
    grid = identity_grid(size).unsqueeze(0)
    centre = torch.tensor([(n - 1) / 2 for n in size]).view(1, 3, 1, 1, 1)
    a = torch.tensor([[1.05, 0.08, 0.0], [0.0, 0.95, 0.05], [0.03, 0.0, 1.02]])
    q = grid - centre
    ddf = torch.einsum("ij,bj...->bi...", a - torch.eye(3), q)
    truth = torch.einsum("ij,bj...->bi...", torch.linalg.inv(a) - torch.eye(3), q)
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3), slice(3, -3))
    inverse = invert_displacement(ddf, iterations=10)
    assert (inverse - truth)[inner].abs().max() < 1e-3
    assert (invert_displacement(ddf, iterations=0) - truth)[inner].abs().max() > 0.02  # -u alone: first order (0.041)
