"""The noise schedule and the reverse process, against closed forms: an oracle noise predictor must lead both
DDPM and DDIM back to the clean sample it knows."""

import pytest
import torch

from common.diffusion import check_eta, make_scheduler, q_sample, reverse_process, sampling_timesteps


def test_linear_schedule_has_the_papers_betas():
    scheduler = make_scheduler("ddpm")
    betas = scheduler.betas.double()
    assert scheduler.num_train_timesteps == 2000 and betas.numel() == 2000
    assert betas[0] == pytest.approx(1e-6) and betas[-1] == pytest.approx(1e-2)
    torch.testing.assert_close(betas.diff(), torch.full((1999,), (1e-2 - 1e-6) / 1999, dtype=torch.float64))
    expected = torch.cumprod(1 - betas, 0)
    torch.testing.assert_close(scheduler.alphas_cumprod.double(), expected, rtol=1e-12, atol=0)
    # the forward process: mean sqrt(a_t) x0, variance 1 - a_t
    x0, t = torch.full((1, 1, 200, 200), 0.5), torch.tensor([700])
    noisy = q_sample(scheduler, x0, torch.randn(1, 1, 200, 200, generator=torch.Generator().manual_seed(0)), t)
    a = float(expected[700])
    assert float(noisy.mean()) == pytest.approx(0.5 * a**0.5, abs=0.01)
    assert float(noisy.var()) == pytest.approx(1 - a, rel=0.03)
    assert noisy.dtype == torch.float32


@pytest.mark.parametrize("bad", [{"kind": "ddpn"}, {"beta_start": 0.1, "beta_end": 0.01}])
def test_bad_schedule_is_refused(bad):
    with pytest.raises(ValueError):
        make_scheduler(**bad)


@pytest.mark.parametrize("start, steps, count", [(None, 50, 50), (None, 10, 10), (200, 80, 67), (199, 20, 20)])
def test_ddim_timesteps_are_evenly_strided_and_match_the_schedulers_jump(start, steps, count):
    scheduler = make_scheduler("ddim")
    timesteps = sampling_timesteps(scheduler, start, steps)
    assert len(timesteps) == count and timesteps[0] == (1999 if start is None else start)
    jump = scheduler.num_train_timesteps // scheduler.num_inference_steps
    assert all(a - b == jump for a, b in zip(timesteps, timesteps[1:]))
    assert timesteps[-1] - jump < 0  # the last step lands on the clean sample


def test_ddpm_timesteps_are_every_step_down_to_zero():
    scheduler = make_scheduler("ddpm")
    assert sampling_timesteps(scheduler, 200) == list(range(200, -1, -1))
    with pytest.raises(ValueError, match="every timestep"):
        sampling_timesteps(scheduler, 200, 50)
    with pytest.raises(ValueError, match="start"):
        sampling_timesteps(scheduler, 2000)


def _oracle(scheduler, x0):
    """The exact noise of x_t given the clean sample x0: eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)."""

    def predict(x_t, t):
        a = scheduler.alphas_cumprod[t].view(-1, *([1] * (x_t.ndim - 1)))
        return ((x_t - a.sqrt() * x0) / (1 - a).sqrt()).to(x_t.dtype)

    return predict


@pytest.mark.parametrize("kind, start, steps", [("ddim", None, 10), ("ddim", 200, 80), ("ddpm", 60, None)])
def test_oracle_noise_leads_back_to_the_clean_sample(kind, start, steps):
    torch.manual_seed(0)
    x0 = torch.rand(2, 1, 8, 8) * 1.6 - 0.8
    scheduler = make_scheduler(kind)
    timesteps = sampling_timesteps(scheduler, start, steps)
    noise = torch.randn_like(x0)
    x_t = q_sample(scheduler, x0, noise, torch.full((2,), timesteps[0], dtype=torch.long))
    out = reverse_process(_oracle(scheduler, x0), x_t, scheduler, timesteps, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x0, atol=2e-4, rtol=0)
    assert (x_t - x0).abs().max() > 0.05  # the start really was noisy


def test_observer_sees_every_kth_step_and_can_stop_early():
    scheduler = make_scheduler("ddim")
    timesteps = sampling_timesteps(scheduler, None, 10)
    x0 = torch.zeros(1, 1, 4, 4)
    seen = []
    reverse_process(_oracle(scheduler, x0), torch.randn(1, 1, 4, 4), scheduler, timesteps, seen.append, every=3)
    assert [s.index for s in seen] == [2, 5, 8, 9] and all(s.total == 10 for s in seen)
    assert seen[-1].timestep == timesteps[-1]
    calls = []

    def stop_at_second(step):
        calls.append(step.index)
        return len(calls) == 2

    out = reverse_process(_oracle(scheduler, x0), torch.randn(1, 1, 4, 4), scheduler, timesteps, stop_at_second, 2)
    assert calls == [1, 3] and out.shape == x0.shape


def test_ddim_eta_adds_the_ancestral_noise_and_the_oracle_still_lands_on_the_clean_sample():
    scheduler = make_scheduler("ddim")
    timesteps = sampling_timesteps(scheduler, None, 10)  # 1999, 1799, ...
    x0 = torch.zeros(1, 1, 256, 256)
    x_t = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    a_t, a_prev = (float(scheduler.alphas_cumprod[t]) for t in timesteps[:2])
    # DDIM's sigma_t at eta = 1 (its eq. 16); with x0 = 0 the first step is sqrt(1 - a_prev - s2) eps + sigma z
    s2 = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    for eta, corr in ((0.0, 1.0), (1.0, (1 - s2 / (1 - a_prev)) ** 0.5)):
        seen = []
        out = reverse_process(
            _oracle(scheduler, x0), x_t, scheduler, timesteps, seen.append, 1, torch.Generator().manual_seed(1), eta
        )
        first = torch.stack([seen[0].sample.flatten(), x_t.flatten()])
        assert float(torch.corrcoef(first)[0, 1]) == pytest.approx(corr, abs=0.02)
        torch.testing.assert_close(out, x0, atol=2e-4, rtol=0)
    assert corr < 0.5  # the two cases really differ


def test_eta_is_checked_before_sampling():
    from common.engines import GenerationInferer

    assert check_eta("ddim", None) == 0.0 and check_eta("ddpm", None) == 1.0 and check_eta("ddim", 0.3) == 0.3
    with pytest.raises(ValueError, match="DDIM sampler"):
        GenerationInferer("ddpm", eta=0.0)  # refused when the config is parsed, before any data is read
    with pytest.raises(ValueError, match="'ddpm' or 'ddim'"):
        GenerationInferer("ddpn")


def test_eta_is_checked():
    x, predict = torch.zeros(1, 1, 4, 4), _oracle(make_scheduler("ddpm"), torch.zeros(1, 1, 4, 4))
    reverse_process(predict, x, make_scheduler("ddpm"), [1, 0], eta=1.0)  # DDPM's own steps
    with pytest.raises(ValueError, match="DDIM sampler"):
        reverse_process(predict, x, make_scheduler("ddpm"), [1, 0], eta=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reverse_process(predict, x, make_scheduler("ddim"), [1, 0], eta=1.5)
