"""Test-time refinement: from an identity prediction on a pair related by a known smooth deformation, every
parameterisation recovers it (the field error falls), and the diffeomorphic ones stay fold-free."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.engines import RegistrationLoss
from common.losses import GradientRegulariser
from common.networks import MIDIR, VoxelMorph
from common.realscan import Refinement, refinement_kind
from common.spatial import compose, integrate_svf, jacobian_determinant, warp

SIZE = (32, 32, 32)


def _smooth(seed, channels, coarse, amplitude):
    g = torch.Generator().manual_seed(seed)
    field = torch.rand(1, channels, *[coarse] * 3, generator=g) * 2 - 1
    return amplitude * F.interpolate(field, size=SIZE, mode="trilinear", align_corners=True)


@pytest.fixture(scope="module")
def pair():
    """``fixed`` (smooth blobs) and ``moving`` = fixed warped by ``exp(-v)``: the true DDF is ``exp(v)``."""
    fixed = _smooth(0, 1, 6, 0.5) + 0.5
    velocity = _smooth(1, 3, 4, 2.0)
    moving = warp(fixed, integrate_svf(-velocity))
    return torch.cat([moving, fixed], 1), integrate_svf(velocity)[0]


class ZeroDisplacement(nn.Module):
    """A plain-displacement method predicting the identity."""

    def forward(self, x):
        return torch.zeros(x.shape[0], 3, *x.shape[2:])


class ZeroWithInverse(ZeroDisplacement):
    """A method with a true inverse (as TransMorph-TVF) predicting the identity."""

    def ddf_and_inverse(self, x):
        return self(x), self(x)


def _zero_head(network, head):
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    return network.eval()


def _networks():
    midir = MIDIR(SIZE, spacing=4)
    vm_diff = VoxelMorph(3, mode="velocity")
    return {
        "control_points": (_zero_head(midir, midir.out), "velocity"),
        "velocity": (_zero_head(vm_diff, vm_diff.flow), "velocity"),
        "residual_svf": (ZeroWithInverse(), "ddf"),
        "residual": (ZeroDisplacement(), "ddf"),
    }


@pytest.mark.parametrize(  # the velocity parameterisation runs on the network grid only (refine.py)
    "kind, levels, int_downsize",
    [
        *(
            (k, n, None)
            for k in ("control_points", "velocity", "residual_svf", "residual")
            for n in (1, 2)
            if (k, n) != ("velocity", 2)
        ),
        ("control_points", 1, 1),  # the other integration grid of each kind (default 2 and 1)
        ("residual_svf", 1, 2),
    ],
)
def test_refinement_recovers_a_known_smooth_deformation(pair, kind, levels, int_downsize):
    inputs, truth = pair
    network, reg_on = _networks()[kind]
    assert refinement_kind(network) == kind
    with torch.no_grad():
        ddf = network(inputs)[0]
        inverse = ddf.clone() if kind == "residual_svf" else None
    loss = RegistrationLoss(nn.MSELoss(), regulariser=GradientRegulariser(), reg_weight=0.01, reg_on=reg_on)
    refine = Refinement(loss, steps=80, lr=0.15, coarse=2, levels=levels, int_downsize=int_downsize)  # levels 2:
    # 60 steps at half size
    refined, refined_inverse = refine(network, inputs, ddf, inverse)
    inner = (slice(None), slice(4, -4), slice(4, -4), slice(4, -4))
    before = (ddf - truth)[inner].norm(dim=0).mean()
    after = (refined - truth)[inner].norm(dim=0).mean()
    assert refine.losses[-1] < refine.losses[0]
    assert after < 0.5 * before, (float(before), float(after))  # voxels: the field error at least halves
    if kind != "residual":  # diffeomorphic parameterisations: no folds, and an inverse that undoes the map
        assert float(jacobian_determinant(refined[None]).min()) > 0
        assert refined_inverse is not None
        round_trip = compose(refined_inverse[None], refined[None])[0][inner].norm(dim=0).mean()
        assert round_trip < 0.2 * float(refined[inner].norm(dim=0).mean())


def test_coarse_to_fine_splits_the_steps_and_halves_the_grids():
    from common.realscan.refine import downsample, level_size, level_steps

    assert level_steps(20, 1) == [20] and level_steps(20, 2) == [15, 5] and level_steps(20, 3) == [8, 7, 5]
    assert sum(level_steps(7, 3)) == 7 and level_steps(1, 3) == [1]
    assert level_size((80, 96, 112), 1) == (40, 48, 56) and level_size((81, 9, 4), 1) == (41, 8, 4)
    ramp = torch.linspace(0, 1, 33).view(1, 1, 33, 1).expand(1, 1, 33, 9).clone()
    half = downsample(ramp, (17, 5))  # a linear ramp stays the same ramp on the corner-aligned half grid
    torch.testing.assert_close(half[0, 0, 1:-1, 2], torch.linspace(0, 1, 17)[1:-1], atol=1e-6, rtol=0)


def test_zero_steps_return_the_prediction_unchanged(pair):
    inputs, _ = pair
    ddf = torch.randn(3, *SIZE)
    loss = RegistrationLoss(nn.MSELoss())
    out, inverse = Refinement(loss, steps=0)(ZeroDisplacement(), inputs, ddf)
    assert out is ddf and inverse is None
    with pytest.raises(ValueError, match="non-negative integer"):
        Refinement(loss, steps=-1)
    with pytest.raises(ValueError, match="int_downsize must be 1 or 2"):
        Refinement(loss, int_downsize=4)


def test_the_evaluators_refining_inferer_gives_refined_fields_and_their_inverses(pair):
    """``RefiningInferer`` (the ``refine.json`` overlay of ``evaluate.json``) runs the network and the same
    refinement per pair of a batch; ``WarpOutputs`` takes its refined inverses instead of the network's."""
    from common.engines import WarpOutputs
    from common.realscan import RefiningInferer

    inputs, truth = pair
    batch = torch.cat([inputs, inputs], 0)
    loss = RegistrationLoss(nn.MSELoss(), regulariser=GradientRegulariser(), reg_weight=0.01, reg_on="ddf")
    network = ZeroWithInverse()
    network.invert = lambda x: torch.zeros(x.shape[0], 3, *x.shape[2:])  # the unrefined inverse: identity
    inferer = RefiningInferer(Refinement(loss, steps=40, lr=0.15))
    pred = inferer(batch, network)
    assert pred.shape == (2, 3, *SIZE) and inferer.inverse.shape == (2, 3, *SIZE) and inferer.seconds > 0
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4), slice(4, -4))
    assert float((pred - truth)[inner].norm(dim=1).mean()) < 0.5 * float(truth[inner[1:]].norm(dim=0).mean())
    data = {"pred": pred, "label": {"moving": batch[:, :1]}, "image": batch}
    out = WarpOutputs(inferer, inverse="network", network=network)(data)
    assert torch.equal(out["inverse_ddf"], inferer.inverse)
    assert float(out["inverse_error"].max()) < 0.2 * float(pred[inner].norm(dim=1).mean())
