"""Field-diffusion engine pieces: training-set field statistics against numpy, and the observable sampling
inferer / outputs with an oracle model (snapshots, early stop, per-snapshot Dice and NJD%)."""

import numpy as np
import pytest
import torch
from torch import nn

from common.engines import FieldStatistics, PairBatch, SamplingInferer, SamplingOutputs
from common.networks import DiffuseReg

from ..networks.test_diffusereg import _oracle


class _Shift(nn.Module):
    """A 'bootstrap' whose DDF is known: channel c = (c + 1) * mean intensity of the pair + a ramp."""

    def forward(self, x):
        ramp = torch.linspace(-1, 1, x.shape[-1]).view(1, 1, 1, -1)
        scale = x.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)
        return torch.cat([scale + ramp, 2 * scale - ramp], dim=1)


def _model(bootstrap=None):
    return DiffuseReg(2, feature_size=8, depths=(1, 1), num_heads=(1, 2), window_size=(4, 4), bootstrap=bootstrap)


def test_field_statistics_match_numpy():
    torch.manual_seed(0)
    batches = [{"moving": torch.rand(2, 1, 8, 8), "fixed": torch.rand(2, 1, 8, 8)} for _ in range(3)]
    model = _model(_Shift())
    FieldStatistics(model, batches, PairBatch())()
    fields = np.concatenate(
        [_Shift()(torch.cat([b["moving"], b["fixed"]], 1)).numpy() for b in batches], axis=0
    )  # (6, 2, 8, 8)
    per_channel = fields.transpose(1, 0, 2, 3).reshape(2, -1)
    assert np.allclose(model.field_mean.numpy(), per_channel.mean(1), atol=1e-6)
    assert np.allclose(model.field_std.numpy(), per_channel.std(1), atol=1e-6)
    assert np.allclose(model.field_min.numpy(), per_channel.min(1)) and np.allclose(
        model.field_max.numpy(), per_channel.max(1)
    )
    assert int(model.field_count) == per_channel.shape[1]
    model.field_mean.fill_(7.0)
    FieldStatistics(model, batches, PairBatch())()  # already set (a resumed run): left alone
    assert float(model.field_mean[0]) == 7.0


def test_sampling_inferer_snapshots_stop_and_frame_metrics():
    torch.manual_seed(0)
    target = torch.zeros(1, 2, 16, 16)
    target[:, 0] = 2.0  # a shift by two voxels along axis 0
    model = _model()
    model.set_field_statistics([0.0, 0.0], [1.0, 1.0], 1)
    model = _oracle(model.eval(), target)
    label = torch.zeros(1, 1, 16, 16)
    label[..., 4:10, 4:10] = 1
    moving_label = torch.roll(label, 2, dims=2)  # warping it by the target field gives `label` back
    targets = {
        "moving": torch.rand(1, 1, 16, 16),
        "fixed": torch.rand(1, 1, 16, 16),
        "moving_label": moving_label,
        "fixed_label": label,
    }
    inferer = SamplingInferer("ddim", 20, every=5, progress=False)
    ddf = inferer(torch.cat([targets["moving"], targets["fixed"]], 1), model)
    assert inferer.snapshot_steps == [5, 10, 15, 20] and inferer.steps_run == 20
    out = SamplingOutputs(inferer, labels=[1])({"pred": ddf, "label": targets, "image": None})
    rows = out["frame_metrics"][0]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert rows[-1]["dice_mean"] == pytest.approx(1.0) and rows[-1]["njd_percent"] == 0.0
    assert out["trajectory"].shape == (1, 4, 16, 16) and out["trajectory_ddf"].shape == (1, 4, 2, 16, 16)
    stopping = SamplingInferer("ddim", 20, every=1, stop_tolerance=1e-3, stop_window=2, progress=False)
    stopping(torch.cat([targets["moving"], targets["fixed"]], 1), model)
    assert stopping.steps_run == 3  # the oracle's estimate is stable from the first step
