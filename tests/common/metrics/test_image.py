import math

import pytest
import torch

from common.metrics import nmse, psnr, ssim


def test_psnr_of_known_mse():
    x = torch.zeros(2, 1, 8, 8)
    y = torch.full_like(x, 0.1)  # MSE 0.01: PSNR 20 dB
    torch.testing.assert_close(psnr(y, x), torch.full((2,), 20.0, dtype=torch.float64))


def test_nmse_of_known_images():
    target = torch.full((1, 1, 4, 4), 0.5)
    pred = torch.full((1, 1, 4, 4), 0.4)
    assert nmse(pred, target).item() == pytest.approx(0.01 / 0.25)


def test_ssim_identical_is_one():
    x = torch.rand(1, 1, 16, 16, 16)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert math.isinf(psnr(x, x).item())


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        nmse(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_image_similarity_metric_is_one_per_pair_for_identical_images_and_orders_alignment():
    """Per pair ``-LNCC``: squared NCC is 1 for an image against itself and against a scaled copy, lower for a
    shifted copy; ``aggregate`` averages the pairs."""
    from common.losses import LNCCLoss
    from common.metrics import ImageSimilarityMetric

    torch.manual_seed(0)
    fixed = torch.nn.functional.avg_pool3d(torch.rand(2, 1, 24, 24, 24), 3, 1, 1)
    metric = ImageSimilarityMetric(LNCCLoss(3, window=5))
    metric(y_pred=fixed, y=fixed)
    metric(y_pred=fixed * 3, y=fixed)
    assert torch.allclose(metric.get_buffer().squeeze(1).double(), torch.ones(4, dtype=torch.float64), atol=1e-4)
    shifted = torch.roll(fixed, 2, dims=2)
    metric.reset()
    metric(y_pred=torch.cat([fixed[:1], shifted[1:]]), y=fixed)
    rows = metric.get_buffer().squeeze(1)
    assert rows[0] > 0.999 and rows[1] < 0.9 and abs(float(metric.aggregate()) - float(rows.mean())) < 1e-6
