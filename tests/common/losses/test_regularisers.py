import math

import pytest
import torch

from common.losses import BendingEnergy, GradientRegulariser, LDDMMRegulariser, laplacian, lddmm_operator
from common.spatial import identity_grid


def test_gradient_of_linear_field():
    # u_0 = 0.3 i: forward differences 0.3 along axis 0, 0 elsewhere
    size = (6, 7, 8)
    u = torch.zeros(1, 3, *size)
    u[:, 0] = 0.3 * identity_grid(size)[0]
    # per axis: mean over all components of the squared differences; only component 0 of axis 0 is non-zero
    axis0 = 0.09 / 3
    assert GradientRegulariser()(u).item() == pytest.approx(axis0 / 3, rel=1e-5)
    assert GradientRegulariser(axis_reduction="sum")(u).item() == pytest.approx(axis0, rel=1e-5)
    assert GradientRegulariser(penalty="l1", axis_reduction="sum")(u).item() == pytest.approx(0.3 / 3, rel=1e-5)


def test_gradient_of_constant_is_zero():
    assert GradientRegulariser()(torch.full((1, 2, 5, 5), 3.0)).item() == 0.0


def test_bending_energy_zero_for_affine_positive_for_curved():
    size = (10, 10, 10)
    p = identity_grid(size)
    affine = torch.stack([0.2 * p[1] + 0.1, -0.3 * p[0], 0.05 * p[2]]).unsqueeze(0)
    assert BendingEnergy()(affine).item() == pytest.approx(0.0, abs=1e-8)
    curved = torch.stack([0.01 * p[0] ** 2, 0 * p[0], 0 * p[0]]).unsqueeze(0)
    # d2u0/di2 = 0.02 wherever two central differences apply (i = 2..7): contributes 0.02^2 / 3 channels
    assert BendingEnergy()(curved).item() > 0.6 * 0.02**2 / 3


def test_laplacian_of_quadratic():
    size = (9, 9)
    p = identity_grid(size)
    v = (p[0] ** 2 + 2 * p[1] ** 2).view(1, 1, *size)
    torch.testing.assert_close(laplacian(v)[0, 0, 1:-1, 1:-1], torch.full((7, 7), 6.0))


@pytest.mark.parametrize("beta", [1, 2])
def test_lddmm_on_sine_matches_closed_form(beta):
    # v = sin(k x): the discrete Laplacian gives -2 (1 - cos k) sin(k x) exactly, so
    # L v = (2 alpha (1 - cos k) + gamma)^beta sin(k x) away from the border (beta voxels)
    alpha, gamma, k = 0.5, 0.1, 0.4
    size = (40, 12, 10)
    x = identity_grid(size, dtype=torch.float64)[0]
    v = torch.zeros(1, 3, *size, dtype=torch.float64)
    v[:, 1] = torch.sin(k * x)
    eig = 2 * alpha * (1 - math.cos(k)) + gamma
    lv = lddmm_operator(v, alpha, gamma, beta)
    inner = (slice(None), 1, slice(beta, -beta), slice(beta, -beta), slice(beta, -beta))
    torch.testing.assert_close(lv[inner], eig**beta * v[inner])
    # the continuous closed form alpha k^2 + gamma is close for small k
    assert eig == pytest.approx(alpha * k * k + gamma, rel=0.02)
    loss = LDDMMRegulariser(alpha, gamma, beta)(v)
    assert loss.item() == pytest.approx((lv**2).sum(1).mean().item())


def test_lddmm_sums_over_time_steps():
    v = torch.randn(1, 2, 8, 8)
    reg = LDDMMRegulariser()
    assert reg([v, 2 * v]).item() == pytest.approx(5 * reg(v).item(), rel=1e-5)


@pytest.mark.parametrize("kwargs", [{"beta": 0}, {"alpha": -1.0}, {"beta": 1.5}])
def test_lddmm_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        LDDMMRegulariser(**kwargs)


def test_regulariser_rejects_non_field():
    with pytest.raises(ValueError, match="one channel per spatial axis"):
        GradientRegulariser()(torch.zeros(1, 1, 8, 8, 8))
