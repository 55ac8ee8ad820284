import math

import pytest
import torch

from common.metrics import (
    RegularityMetric,
    folding_ratio,
    mean_grad_jacobian,
    njd_percent,
    sdlogj,
    std_jacobian,
)
from common.metrics.pair import jacobian_row
from common.spatial import identity_grid, jacobian_determinant


@pytest.mark.parametrize("size", [(16, 16), (8, 9, 10)])
def test_identity_is_perfectly_regular(size):
    det = jacobian_determinant(torch.zeros(2, len(size), *size))
    for b in range(2):
        figures = jacobian_row(det[b : b + 1])
        assert len(figures) == 6
        for name, value in figures.items():
            assert value == 0.0, name


def test_counts_on_a_known_determinant_map():
    det = torch.tensor([1.0, 0.0, -0.5, 2.0]).view(1, 1, 2, 2)
    assert njd_percent(det).item() == pytest.approx(50.0)
    assert folding_ratio(det).item() == pytest.approx(0.25)
    assert std_jacobian(det).item() == pytest.approx(torch.tensor([1.0, 0.0, -0.5, 2.0]).std(unbiased=False).item())


def test_sdlogj_of_uniform_scaling_is_zero_and_of_two_values_is_half_log_ratio():
    det = torch.full((1, 1, 6, 6, 6), 1.7)
    assert sdlogj(det).item() == pytest.approx(0.0, abs=1e-12)
    det[..., :3] = 0.5
    # half the voxels at log 1.7, half at log 0.5: std = |log 1.7 - log 0.5| / 2
    assert sdlogj(det).item() == pytest.approx(abs(math.log(1.7) - math.log(0.5)) / 2)
    expected_l2r = abs(math.log(4.7) - math.log(3.5)) / 2  # cropped interior (2 voxels) keeps both halves
    assert sdlogj(det, "l2r2021").item() == pytest.approx(expected_l2r)


def test_mean_grad_jacobian_of_linear_determinant():
    # u_0 = 0.05 i^2 gives det J = 1 + 0.1 i: gradient 0.1 along axis 0 wherever differences are exact
    size = (12, 6, 6)
    u = torch.zeros(1, 3, *size, dtype=torch.float64)
    u[:, 0] = 0.05 * identity_grid(size, dtype=torch.float64)[0] ** 2
    det = jacobian_determinant(u)
    assert mean_grad_jacobian(det[:, :, 2:-2]).item() == pytest.approx(0.1)


def test_regularity_metric_for_ignite():
    size = (8, 8, 8)
    u = torch.zeros(1, 3, *size)
    u[:, 0] = -1.5 * identity_grid(size)[0]  # det J = -0.5 everywhere
    metric = RegularityMetric("njd_percent")
    metric(u)
    metric(torch.zeros(1, 3, *size))
    assert metric.aggregate().item() == pytest.approx(50.0)
    with pytest.raises(ValueError, match="name"):
        RegularityMetric("jacobian")


def test_bad_det_shape():
    with pytest.raises(ValueError, match="det"):
        njd_percent(torch.zeros(1, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="variant"):
        sdlogj(torch.ones(1, 1, 4, 4), "l2r2020")
