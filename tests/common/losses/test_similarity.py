import pytest
import torch

from common.losses import LNCCLoss, SSIMLoss, ssim_map


@pytest.mark.parametrize("spatial_dims, window", [(2, 7), (3, 9)])
def test_lncc_of_linear_intensity_map_is_minus_one(spatial_dims, window):
    torch.manual_seed(0)
    x = torch.rand(2, 1, *([16] * spatial_dims))
    assert LNCCLoss(spatial_dims, window)(x, 0.5 * x).item() == pytest.approx(-1.0, abs=1e-3)
    assert LNCCLoss(spatial_dims, window)(x, torch.rand_like(x)).item() > -0.3


def test_lncc_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        LNCCLoss(3, 8)
    with pytest.raises(ValueError, match="spatial_dims"):
        LNCCLoss(4, 9)


@pytest.mark.parametrize("a, b", [(0.2, 0.2), (0.2, 0.6), (0.9, 0.1)])
def test_ssim_of_constant_images_matches_closed_form(a, b):
    # constant images: variances 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    x, y = torch.full((1, 1, 12, 12, 12), a), torch.full((1, 1, 12, 12, 12), b)
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    torch.testing.assert_close(ssim_map(x, y), torch.full_like(x, expected), atol=1e-4, rtol=0)
    assert SSIMLoss()(x, y).item() == pytest.approx(1 - expected, abs=1e-4)


def test_ssim_identical_is_one_and_noise_lowers_it():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 32, 32)
    assert SSIMLoss()(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert SSIMLoss()(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)).item() > 0.1


def test_ssim_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        SSIMLoss(window=4)
    with pytest.raises(ValueError, match="same shape"):
        ssim_map(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
