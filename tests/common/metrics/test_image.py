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
