"""Trajectory metrics against a sequence whose intermediate frames are known exactly (a growing translation)."""

import numpy as np
import pytest
import torch
from torch import nn

from common.engines import TrajectoryOutputs
from common.export import frame_gif, frame_strip
from common.spatial.warp import sample_displaced


class Shift(nn.Module):
    """A model whose trajectory is gamma times a constant shift along the first axis."""

    def __init__(self, voxels: float) -> None:
        super().__init__()
        self.voxels = voxels

    def trajectory(self, x, gammas):
        ddf = torch.zeros(x.shape[0], 2, *x.shape[2:])
        ddf[:, 0] = self.voxels
        return [g * ddf for g in gammas]


def _case(ed=2, es=6, nb=8, shift=3.0):
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    moving = (torch.exp(-((yy - 14) ** 2 + (xx - 16) ** 2) / 30.0) * 0.8 + 0.1)[None, None]
    n = es - ed + 1
    frames = [moving[0, 0]] * nb
    for k, g in enumerate(np.linspace(0, 1, n)):
        frames[ed - 1 + k] = sample_displaced(moving, Shift(shift).trajectory(moving, [g])[0])[0, 0]
    sequence = torch.stack(frames)[None]
    labels = (moving > 0.5).float()
    fixed_label = (sequence[:, es - 1 : es] > 0.5).float()
    targets = {
        "moving": moving,
        "fixed": sequence[:, es - 1 : es],
        "sequence": sequence,
        "moving_label": labels,
        "fixed_label": fixed_label,
        "ed": torch.tensor([ed]),
        "es": torch.tensor([es]),
    }
    return {"image": torch.cat([moving, targets["fixed"]], 1), "label": targets, "pred": None}


def test_the_true_motion_reproduces_every_real_frame_and_beats_the_baselines():
    data = TrajectoryOutputs(Shift(3.0), baselines={"half": Shift(1.5)}, name="true")(_case())
    row = data["extra_metrics"][0]
    assert data["trajectory"].shape == (1, 5, 32, 32)  # ES - ED + 1 frames
    assert data["trajectory_ddf"].shape == (1, 5, 2, 32, 32) and data["gammas"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert row["nmse_true"] < 1e-12 and row["psnr_true"] > 100
    assert row["dice_es_true"] == pytest.approx(1.0)
    assert 0 < row["nmse_half"] < row["nmse_identity"] and row["psnr_identity"] < row["psnr_half"]
    assert row["dice_es_half"] < 1.0
    assert row["trajectory_seconds_true"] >= 0


def test_frame_count_comes_from_the_config_or_the_sequence():
    data = TrajectoryOutputs(Shift(3.0), frames=3)(_case())
    assert data["trajectory"].shape[1] == 3
    case = _case(ed=5, es=5)
    with pytest.raises(ValueError, match="ES must follow ED"):
        TrajectoryOutputs(Shift(3.0))(case)
    with pytest.raises(ValueError, match="trajectory"):
        TrajectoryOutputs(nn.Identity())


def test_frame_strip_and_gif_are_written(tmp_path):
    frames = np.random.default_rng(0).random((4, 16, 12, 6))
    strip = frame_strip(str(tmp_path / "s.png"), frames, ["a", "b", "c", "d"], title="t")
    gif = frame_gif(str(tmp_path / "s.gif"), frames)
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 4 and image.size == (16, 12)
    with Image.open(strip) as image:
        assert image.size[0] > image.size[1]
    with pytest.raises(ValueError, match="labels"):
        frame_strip(str(tmp_path / "x.png"), frames, ["a"])
