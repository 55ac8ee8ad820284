"""The registration report: one PNG, folds marked in pure red exactly when the field folds."""

import numpy as np
import pytest
from PIL import Image

from common.export import FOLD_COLOUR, registration_report
from common.spatial import jacobian_determinant


def _case(fold: bool):
    shape = (40, 36, 12)
    i, j, _ = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    fixed = np.exp(-((i - 20) ** 2 + (j - 18) ** 2) / 80.0)
    ddf = np.zeros((3, *shape))
    ddf[0] = 2.0 * np.sin(j / 6.0)
    if fold:  # a compression stronger than the voxel spacing: u_0 = -1.5 (i - 20) near the centre
        ddf[0] += -1.5 * (i - 20) * np.exp(-((i - 20) ** 2 + (j - 18) ** 2) / 30.0)
    import torch

    det = jacobian_determinant(torch.from_numpy(ddf)[None])[0, 0].numpy()
    return fixed, np.roll(fixed, 3, axis=0), fixed, ddf, det


def _red_pixels(path):
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return int(np.all(rgb == np.array(FOLD_COLOUR) * 255, axis=-1).sum()), rgb.shape


@pytest.mark.parametrize("fold", [False, True])
def test_report_marks_folds_exactly_when_present(tmp_path, fold):
    fixed, moving, warped, ddf, det = _case(fold)
    assert (det <= 0).any() == fold
    path = registration_report(str(tmp_path / "r.png"), fixed, moving, warped, ddf, det, title="test")
    red, shape = _red_pixels(path)
    assert shape[0] > 400 and shape[1] > 800 and shape[2] == 3
    assert (red > 0) == fold


def test_report_rejects_mismatched_inputs(tmp_path):
    fixed, moving, warped, ddf, det = _case(False)
    with pytest.raises(ValueError, match="share one 2D/3D grid"):
        registration_report(str(tmp_path / "r.png"), fixed, moving[:-1], warped, ddf, det)
