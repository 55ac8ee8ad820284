"""DiffuseMorph / DDM model: the inference contract, training draws, trajectories (also VoxelMorph's, against
the flow property of exp), and conditional generation."""

import pytest
import torch

from common.networks import DiffuseMorph, VoxelMorph
from common.spatial import compose

SMALL_2D = dict(
    spatial_dims=2,
    channels=(16, 16, 32, 32),
    norm_num_groups=8,
    num_head_channels=16,
    deformation_encoder=(8, 16, 16, 16, 16),
    deformation_decoder=(16, 16, 16, 8, 8),
)


@pytest.fixture(scope="module")
def model3d():
    torch.manual_seed(0)
    return DiffuseMorph(3).eval()


def test_published_3d_preset_registers_with_the_contract(model3d):
    x = torch.rand(2, 2, 32, 32, 16)
    with torch.no_grad():
        ddf = model3d(x)
    assert ddf.shape == (2, 3, 32, 32, 16) and ddf.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(model3d(x), ddf)  # registration is deterministic (t = 0, no noise)
    denoiser = model3d.denoiser
    assert [b.resnets[0].out_channels for b in denoiser.down_blocks] == [8, 16, 32, 32]
    assert [len(b.resnets) for b in denoiser.down_blocks] == [1] * 4 and [
        len(b.resnets) for b in denoiser.up_blocks
    ] == [2] * 4
    assert not any(getattr(b, "attentions", None) for b in (*denoiser.down_blocks, *denoiser.up_blocks))
    with pytest.raises(ValueError, match=r"\(B, 2, \*spatial\)"):
        model3d(torch.rand(1, 3, 32, 32, 16))


def test_training_draw_returns_noise_and_its_estimate(model3d):
    x = torch.rand(1, 2, 32, 32, 16)
    torch.manual_seed(1)
    out = model3d(x, outputs=True)
    assert set(out) == {"ddf", "noise", "noise_pred"}
    assert out["noise"].shape == out["noise_pred"].shape == (1, 1, 32, 32, 16)
    torch.manual_seed(2)
    assert not torch.equal(model3d(x, outputs=True)["noise"], out["noise"])  # a new draw each call


def test_trajectory_ends_at_the_registration_and_scales_the_latent(model3d):
    x = torch.rand(1, 2, 32, 32, 16)
    with torch.no_grad():
        frames = model3d.trajectory(x, [0.0, 0.5, 1.0])
        torch.testing.assert_close(frames[-1], model3d(x))
        moving = x[:, :1] * 2 - 1
        torch.testing.assert_close(frames[1], model3d.deform(moving, 0.5 * model3d.latent(x)))
        torch.testing.assert_close(frames[0], model3d.deform(moving, torch.zeros_like(moving)))


def test_2d_model_and_generation_is_seeded_and_observable():
    torch.manual_seed(0)
    model = DiffuseMorph(**SMALL_2D).eval()
    x = torch.rand(1, 2, 32, 32)
    assert model(x).shape == (1, 2, 32, 32)
    seen = []
    a = model.generate(x, "ddim", start=200, steps=20, observer=seen.append, every=5)
    b = model.generate(x, "ddim", start=200, steps=20)
    assert a.shape == (1, 1, 32, 32) and 0 <= float(a.min()) and float(a.max()) <= 1
    torch.testing.assert_close(a, b)  # same seed, same image
    assert len(seen) == 5 and seen[-1].total == 21 and seen[-1].timestep == 0
    c = model.generate(x, "ddim", start=200, steps=20, seed=1)
    assert not torch.equal(a, c)
    stochastic = model.generate(x, "ddim", start=200, steps=20, eta=1.0)
    assert not torch.equal(stochastic, a)  # eta reaches the sampler
    torch.testing.assert_close(stochastic, model.generate(x, "ddim", start=200, steps=20, eta=1.0))
    ddpm = []
    model.generate(x, "ddpm", start=30, observer=ddpm.append, every=10)
    assert [s.index for s in ddpm] == [9, 19, 29, 30]


@pytest.mark.parametrize(
    "sampler, steps, eta", [("ddpm", None, None), ("ddpm", None, 1.0), ("ddim", 80, 0.0), ("ddim", 80, 1.0)]
)
def test_generation_with_the_exact_conditional_denoiser_returns_the_fixed_image(sampler, steps, eta):
    """The denoiser DiffuseMorph's training targets, eps = (x_t - sqrt(a_t) F) / sqrt(1 - a_t) (x_t the noised
    fixed image F), must turn the noised moving image into F exactly: checks which image conditions the
    denoiser and the [0, 1] <-> [-1, 1] scaling of generate()."""
    torch.manual_seed(0)
    model = DiffuseMorph(**SMALL_2D).eval()
    x = torch.rand(1, 2, 32, 32) * 0.8 + 0.1

    def exact(moving, fixed, x_t, t):
        a = model.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        return ((x_t - a.sqrt() * fixed) / (1 - a).sqrt()).float()

    model.predict_noise = exact
    generated = model.generate(x, sampler, start=200, steps=steps, eta=eta)
    torch.testing.assert_close(generated, x[:, 1:], atol=1e-4, rtol=0)
    assert float((generated - x[:, :1]).abs().mean()) > 0.1  # not the moving image


def test_voxelmorph_trajectories_scale_the_field_or_integrate_the_velocity():
    torch.manual_seed(0)
    x = torch.rand(1, 2, 32, 32)
    vm = VoxelMorph(2, mode="displacement").eval()
    with torch.no_grad():
        for layer in (vm.flow,):
            torch.nn.init.normal_(layer.weight, 0, 0.05)
        half, full = vm.trajectory(x, [0.5, 1.0])
        torch.testing.assert_close(full, vm(x))
        torch.testing.assert_close(half, 0.5 * full)
    diff = VoxelMorph(2, mode="velocity").eval()
    with torch.no_grad():
        torch.nn.init.normal_(diff.flow.weight, 0, 0.05)
        half, full = diff.trajectory(x, [0.5, 1.0])
        torch.testing.assert_close(full, diff(x))
        # exp(v/2) o exp(v/2) = exp(v): the integrated path is a one-parameter group
        assert float(full.abs().max()) > 0.5
        assert float((compose(half, half) - full).abs().mean()) < 0.02 * float(full.abs().mean())
        assert float((2 * half - full).abs().mean()) > 0.01 * float(full.abs().mean())  # and not just scaling
