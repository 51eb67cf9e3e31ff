import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sr_course.evaluation.metrics import psnr, psnr_torch, rgb_to_y, ssim, ssim_torch


def _skimage(sr, hr, crop=4, y=True):
    if y and sr.ndim == 3:
        a, b = rgb_to_y(sr), rgb_to_y(hr)
    else:
        a, b = sr.astype(np.float64), hr.astype(np.float64)
    a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    if a.ndim == 3:
        kw["channel_axis"] = 2
    return peak_signal_noise_ratio(b, a, data_range=255), structural_similarity(a, b, **kw)


def _pairs():
    rng = np.random.default_rng(0)
    real = data.astronaut()[100:260, 150:330]
    noisy = np.clip(real.astype(int) + rng.integers(-25, 26, real.shape), 0, 255).astype(np.uint8)
    rand_a = rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)
    rand_b = rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)
    gray = data.camera()[:96, :120]
    gray_b = np.clip(gray.astype(int) + rng.integers(-9, 10, gray.shape), 0, 255).astype(np.uint8)
    return [(noisy, real), (rand_a, rand_b), (gray_b, gray)]


@pytest.mark.parametrize("y_channel", [True, False])
def test_metrics_equal_skimage(y_channel):
    for sr, hr in _pairs():
        p_ref, s_ref = _skimage(sr, hr, y=y_channel)
        assert psnr(sr, hr, y_channel=y_channel) == pytest.approx(p_ref, abs=1e-6)
        assert ssim(sr, hr, y_channel=y_channel) == pytest.approx(s_ref, abs=1e-6)


def test_rgb_to_y_formula_float_not_rounded():
    img = np.array([[[255, 255, 255], [0, 0, 0], [10, 200, 30]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64
    expected = (
        16
        + (
            65.481 * np.array([255, 0, 10])
            + 128.553 * np.array([255, 0, 200])
            + 24.966 * np.array([255, 0, 30])
        )
        / 255
    )
    np.testing.assert_allclose(y[0], expected, atol=1e-12)
    assert y[0, 2] != np.round(y[0, 2])
    gray = np.array([[3, 250]], dtype=np.uint8)
    assert np.array_equal(rgb_to_y(gray), gray.astype(np.float64))


def test_identical_images():
    img = data.astronaut()[:64, :64]
    assert psnr(img, img) == float("inf")
    assert ssim(img, img) == 1.0


def test_crop_border_matters():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:4] = 0  # damage only the border that the protocol removes
    assert psnr(sr, hr, crop_border=4) == float("inf")
    assert psnr(sr, hr, crop_border=0) < 30


def test_torch_batched_agrees_with_numpy():
    pairs = _pairs()[:1]
    sr, hr = pairs[0]
    rng = np.random.default_rng(2)
    sr2 = np.clip(hr.astype(int) + rng.integers(-5, 6, hr.shape), 0, 255).astype(np.uint8)
    batch_sr = torch.from_numpy(np.stack([sr, sr2]).transpose(0, 3, 1, 2)).float()
    batch_hr = torch.from_numpy(np.stack([hr, hr]).transpose(0, 3, 1, 2)).float()
    p = psnr_torch(batch_sr, batch_hr)
    s = ssim_torch(batch_sr, batch_hr)
    assert p.shape == (2,) and s.shape == (2,)
    for k, img in enumerate([sr, sr2]):
        assert p[k].item() == pytest.approx(psnr(img, hr), abs=1e-4)
        assert s[k].item() == pytest.approx(ssim(img, hr), abs=1e-5)


def test_bad_input_messages():
    a = np.zeros((32, 32, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match=r"sr must be uint8 .* got float32. Round and clip first"):
        psnr(a.astype(np.float32), a)
    with pytest.raises(
        ValueError,
        match=r"SR and HR sizes differ: \(1, 3, 32, 32\) vs \(1, 3, 32, 28\) \(crop the HR",
    ):
        ssim(a, a[:, :28])
    with pytest.raises(
        ValueError, match=r"must be \(H, W, 3\) RGB or \(H, W\) gray, got shape \(32, 32, 4\)"
    ):
        psnr(np.zeros((32, 32, 4), np.uint8), np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(ValueError, match="crop_border=16 leaves nothing of a 32x32 image"):
        psnr(a, a, crop_border=16)
