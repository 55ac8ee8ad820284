import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.losses import LNCCLoss, ParzenNMILoss, normalized_mutual_information, parzen_joint_histogram


def numpy_parzen_nmi(x: np.ndarray, y: np.ndarray, num_bins: int, lo=0.0, hi=1.0, eps=1e-10) -> float:
    """Reference: full (untruncated) Gaussian Parzen window, FWHM = bin spacing, loops over bins."""
    x = np.clip(x.ravel().astype(np.float64), lo, hi)
    y = np.clip(y.ravel().astype(np.float64), lo, hi)
    centres = np.linspace(lo, hi, num_bins)
    sigma = (centres[1] - centres[0]) / (2 * math.sqrt(2 * math.log(2)))
    wx = np.stack([np.exp(-((x - c) ** 2) / (2 * sigma**2)) for c in centres], axis=1)
    wy = np.stack([np.exp(-((y - c) ** 2) / (2 * sigma**2)) for c in centres], axis=1)
    joint = np.zeros((num_bins, num_bins))
    for a in range(num_bins):
        for b in range(num_bins):
            joint[a, b] = np.sum(wx[:, a] * wy[:, b])
    p = joint / joint.sum()
    px, py = p.sum(1), p.sum(0)
    entropy = lambda q: -np.sum(q * np.log(q + eps))  # noqa: E731
    return (entropy(px) + entropy(py)) / entropy(p)


def smooth_image(size, seed, coarse=6):
    g = torch.Generator().manual_seed(seed)
    ndim = len(size)
    mode = "bicubic" if ndim == 2 else "trilinear"
    img = F.interpolate(torch.rand(1, 1, *([coarse] * ndim), generator=g), size=size, mode=mode, align_corners=True)
    return ((img - img.min()) / (img.max() - img.min())).clamp(0, 1)


@pytest.mark.parametrize("num_bins", [16, 64])
@pytest.mark.parametrize("size", [(40, 40), (12, 14, 10)])
def test_matches_numpy_reference(num_bins, size):
    x = smooth_image(size, 0)
    y = (0.7 * smooth_image(size, 1) + 0.3 * x).clamp(0, 1)
    ours = normalized_mutual_information(x, y, num_bins=num_bins).item()
    assert ours == pytest.approx(numpy_parzen_nmi(x.numpy(), y.numpy(), num_bins), abs=1e-4)


def test_joint_histogram_of_values_on_bin_centres():
    # a value exactly on a centre puts weight 1 there and exp(-4 ln2 k^2) on neighbours k bins away
    x = torch.tensor([0.5], dtype=torch.float64)
    h = parzen_joint_histogram(x, x, num_bins=5)
    w = torch.tensor([math.exp(-4 * math.log(2) * k**2) for k in (2, 1, 0, 1, 2)], dtype=torch.float64)
    torch.testing.assert_close(h, torch.outer(w, w))


def test_nmi_of_image_with_itself_is_maximal():
    x = smooth_image((48, 48), 2)
    loss = ParzenNMILoss(num_bins=32)
    self_loss = loss(x, x)
    for seed in range(3, 6):
        assert self_loss < loss(x, smooth_image((48, 48), seed)) - 0.05
    assert loss(x, torch.roll(x, 3, 2)) > self_loss


def test_non_monotone_map_nmi_peaks_at_alignment_lncc_does_not():
    """y = 4 (x - 0.5)^2 on an image whose values fold around 0.5 inside every LNCC window.

    x = 0.5 + a(p) n(p): a smooth amplitude, n a random +-1 texture, so y = 4 a^2 carries the structure
    of x only through the non-monotone map. NMI finds it; LNCC sees no better match at alignment than
    at any shift (a difference below 0.01, as between unrelated images).
    """
    g = torch.Generator().manual_seed(0)
    a = 0.1 + 0.35 * F.interpolate(
        torch.rand(1, 1, 6, 6, generator=g), size=(64, 64), mode="bicubic", align_corners=True
    ).clamp(0, 1)
    n = torch.where(torch.rand(1, 1, 64, 64, generator=g) < 0.5, -1.0, 1.0)
    x = 0.5 + a * n
    y = 4 * (x - 0.5) ** 2
    shifts = [t for t in range(-4, 5) if t != 0]
    nmi, lncc = ParzenNMILoss(num_bins=32), LNCCLoss(spatial_dims=2, window=7)
    nmi_aligned = -nmi(x, y).item()
    nmi_shifted = [-nmi(x, torch.roll(y, t, 2)).item() for t in shifts]
    assert nmi_aligned > max(nmi_shifted) + 0.05
    lncc_aligned = -lncc(x, y).item()
    lncc_shifted = [-lncc(x, torch.roll(y, t, 2)).item() for t in shifts]
    assert lncc_aligned < float(np.mean(lncc_shifted)) + 0.01
    # and with a monotone map both find the alignment: the test image itself is registrable
    assert -lncc(x, 1 - x).item() > max(-lncc(x, torch.roll(1 - x, t, 2)).item() for t in shifts) + 0.1


def test_gradcheck_double_precision():
    g = torch.Generator().manual_seed(0)
    x = (0.05 + 0.9 * torch.rand(1, 1, 9, 9, generator=g, dtype=torch.float64)).requires_grad_()
    y = (0.05 + 0.9 * torch.rand(1, 1, 9, 9, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: normalized_mutual_information(a, b, num_bins=12), (x, y))


def test_gradient_drives_towards_alignment():
    x = smooth_image((32, 32), 7)
    y = torch.roll(x, 1, 2).clone().requires_grad_()
    ParzenNMILoss(num_bins=32)(x, y).backward()
    step = y - 0.01 * y.grad / y.grad.abs().max()
    assert ParzenNMILoss(num_bins=32)(x, step) < ParzenNMILoss(num_bins=32)(x, y)


def test_sample_ratio_and_mask():
    x = smooth_image((64, 64), 8)
    y = (x**2).clamp(0, 1)
    full = ParzenNMILoss(num_bins=32)(x, y)
    torch.manual_seed(0)
    sampled = ParzenNMILoss(num_bins=32, sample_ratio=0.5)(x, y)
    assert abs(sampled.item() - full.item()) < 0.02
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32, :] = 1
    masked = ParzenNMILoss(num_bins=32)(x, y, mask=mask)
    expected = ParzenNMILoss(num_bins=32)(x[..., :32, :], y[..., :32, :])
    assert masked.item() == pytest.approx(expected.item(), abs=1e-5)


def test_batch_elements_are_independent():
    x = torch.cat([smooth_image((24, 24), 1), smooth_image((24, 24), 2)])
    y = torch.cat([smooth_image((24, 24), 3), smooth_image((24, 24), 4)])
    per_pair = normalized_mutual_information(x, y, num_bins=16)
    torch.testing.assert_close(per_pair[1], normalized_mutual_information(x[1:], y[1:], num_bins=16)[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_bins": 1}, "num_bins"),
        ({"sample_ratio": 0.0}, "sample_ratio"),
        ({"intensity_range": (1, 0)}, "intensity_range"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParzenNMILoss(**kwargs)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        ParzenNMILoss()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
