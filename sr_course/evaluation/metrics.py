"""PSNR and SSIM as SR papers compute them (the EDSR/RCAN MATLAB evaluation protocol).

    1. The SR output is an 8-bit RGB image (as a saved PNG would be); the HR is cropped to a multiple
       of the scale, so both have the same size.
    2. Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 with R, G, B in [0, 255], kept in float.
       Gray images: the gray values are Y.
    3. `crop_border` (= the scale) pixels are removed from every border.
    4. PSNR with peak 255: identical images give +inf (documented: no epsilon is added).
       SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255,
       'valid' filtering, mean of the map.

One implementation in torch (float64, batched, any device); the NumPy functions wrap it.
scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255) and peak_signal_noise_ratio agree to 1e-6 (the tests use them as an oracle).
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import torch

from ..data.lists import as_rgb, image_to_tensor
from ..utils import SSIM_WINDOW, convert_image, rgb255_to_y, torchvision_state_dict

SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
PEAK = 255.0


# --- torch: (N, C, H, W) tensors with values in [0, 255] (uint8 or float) -------------------------


def _prepare(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool, name: str):
    if not (torch.is_tensor(sr) and torch.is_tensor(hr)):
        raise TypeError(
            f"{name}: expected tensors, got {type(sr).__name__} and {type(hr).__name__}"
        )
    if sr.shape != hr.shape:
        raise ValueError(
            f"{name}: SR and HR sizes differ: {tuple(sr.shape)} vs {tuple(hr.shape)} "
            "(crop the HR to a multiple of the scale first)"
        )
    if sr.dim() != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected (N, 1 or 3, H, W) tensors, got shape {tuple(sr.shape)}")
    h, w = sr.shape[-2:]
    if crop_border < 0 or 2 * crop_border >= min(h, w):
        raise ValueError(f"{name}: crop_border={crop_border} leaves nothing of a {h}x{w} image")
    out = []
    for x in (sr, hr):
        x = x.to(torch.float64)
        if y_channel and x.shape[1] == 3:
            x = rgb255_to_y(x)
        if crop_border:
            x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        out.append(x)
    return out


def psnr_torch(
    sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 4, y_channel: bool = True
) -> torch.Tensor:
    """PSNR in dB of each image of a batch: (N, C, H, W) in [0, 255] -> (N,) float64 (inf if equal)."""
    x, y = _prepare(sr, hr, crop_border, y_channel, "psnr")
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(PEAK**2 / mse)


@functools.cache
def _gaussian_weights() -> tuple[float, ...]:
    """The SSIM window's 1-D Gaussian (float64, summing to 1), as numbers: the filter below scales
    shifted views by them, on any device."""
    r = SSIM_WINDOW // 2
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(k**2) / (2 * SSIM_SIGMA**2))
    return tuple((g / g.sum()).tolist())


def _gaussian_valid(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The SSIM window's 1-D Gaussian along `dim`, 'valid' (the size shrinks by SSIM_WINDOW - 1):
    a weighted sum of shifted views. In float64 on a CPU this is 5-7x faster than conv2d, which has
    no fast kernel for doubles."""
    g = _gaussian_weights()
    size = x.shape[dim] - len(g) + 1
    out = x.narrow(dim, 0, size) * g[0]
    for k in range(1, len(g)):
        out.add_(x.narrow(dim, k, size), alpha=g[k])
    return out


def ssim_torch(
    sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 4, y_channel: bool = True
) -> torch.Tensor:
    """Mean SSIM of each image of a batch: (N, C, H, W) in [0, 255] -> (N,) float64.

    With several channels (y_channel=False on RGB) the per-channel means are averaged.
    """
    x, y = _prepare(sr, hr, crop_border, y_channel, "ssim")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(
            f"ssim: the image (after cropping) is smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} window"
        )
    n, c = x.shape[:2]
    # The five local statistics of every channel in one separable, 'valid' Gaussian filtering.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    stack = _gaussian_valid(_gaussian_valid(stack, dim=-2), dim=-1)
    mu_x, mu_y, xx, yy, xy = stack.reshape(n, 5, c, *stack.shape[-2:]).unbind(1)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(-2, -1)).mean(dim=1)


# --- NumPy: uint8 (H, W, 3) RGB or (H, W) gray images ----------------------------------------------


def _to_tensor(img: np.ndarray, name: str, which: str) -> torch.Tensor:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: {which} must be a NumPy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise TypeError(
            f"{name}: {which} must be uint8 (the protocol measures 8-bit images, as saved PNGs are); "
            f"got {img.dtype}. Round and clip first: np.clip(np.round(x), 0, 255).astype(np.uint8)"
        )
    if img.ndim == 2:
        return torch.from_numpy(img)[None, None]
    if img.ndim == 3 and img.shape[2] == 3:
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    raise ValueError(f"{name}: {which} must be (H, W, 3) RGB or (H, W) gray, got shape {img.shape}")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y channel (float64, not rounded) of a uint8 (H, W, 3) RGB image; a gray (H, W) image is its own Y."""
    x = _to_tensor(img, "rgb_to_y", "img").to(torch.float64)
    return (rgb255_to_y(x) if x.shape[1] == 3 else x)[0, 0].numpy()


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int = 4, y_channel: bool = True) -> float:
    """PSNR (dB) of two uint8 images under the SR protocol; +inf for identical images."""
    return float(
        psnr_torch(
            _to_tensor(sr, "psnr", "sr"), _to_tensor(hr, "psnr", "hr"), crop_border, y_channel
        )[0]
    )


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int = 4, y_channel: bool = True) -> float:
    """Mean SSIM of two uint8 images under the SR protocol; 1.0 for identical images."""
    return float(
        ssim_torch(
            _to_tensor(sr, "ssim", "sr"), _to_tensor(hr, "ssim", "hr"), crop_border, y_channel
        )[0]
    )


def score_sr(sr: np.ndarray, hr: np.ndarray, scale: int = 4) -> tuple[float, float]:
    """(PSNR, SSIM) of a uint8 (H, W, 3) SR image against its HR under the protocol (Y, `scale` border).

    A gray HR (H, W) is compared with the SR's gray values (the rounded mean of its three channels,
    the inverse of repeating the gray LR to RGB), as the protocol uses gray values as Y.
    """
    if hr.ndim == 2 and sr.ndim == 3:
        sr = np.floor(sr.astype(np.float64).mean(axis=2) + 0.5).astype(np.uint8)
    return psnr(sr, hr, crop_border=scale), ssim(sr, hr, crop_border=scale)


# --- LPIPS ---------------------------------------------------------------------------------------------

ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"


def lpips_model(weights="imagenet", device=None) -> torch.nn.Module:
    """See _lpips_model; built once per process and settings (a frozen network, never changed)."""
    return _lpips_model(weights if weights is None else str(weights), str(device or "cpu"))


@functools.lru_cache(maxsize=4)
def _lpips_model(weights, device: str) -> torch.nn.Module:
    """The `lpips` package's LPIPS (Zhang et al. 2018), AlexNet variant, version 0.1, in eval mode.

    Its calibrated linear layers ship with the package. The AlexNet backbone: 'imagenet'
    (torchvision's AlexNet_Weights.IMAGENET1K_V1: its cache, else its download), a path to
    alexnet-*.pth in torchvision's key format, or None (random, seeded: tests, offline checks).
    """
    # Both heavy (torchvision imports torch._dynamo, about 1.5 s of CPU; lpips loads torchvision's
    # backbones): only when LPIPS is asked for, not in every process that imports the metrics.
    import lpips
    import torchvision

    # lpips still uses torchvision's deprecated `pretrained=`; the random backbone is seeded, so
    # that weights=None gives the same numbers every time (and leaves the caller's RNG alone)
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(0)
        model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    if weights is not None:
        state = torchvision_state_dict(
            weights,
            torchvision.models.AlexNet_Weights.IMAGENET1K_V1,
            ALEXNET_URL,
            "AlexNet",
            "lpips.weights",
            purpose=" (for LPIPS)",
            otherwise=", or lpips.enabled=False",
        )
        # lpips keeps AlexNet's feature layers under their own indices: net.slice<k>.<index>.*
        own = model.net.state_dict()
        mapped = {k: state[f"features.{re.sub(r'^slice[0-9]+[.]', '', k)}"] for k in own}
        model.net.load_state_dict(mapped, strict=True)
    return model.to(device).eval().requires_grad_(False)


@torch.no_grad()
def lpips_distance(
    model: torch.nn.Module, sr: np.ndarray, hr: np.ndarray, crop_border: int = 4
) -> float:
    """LPIPS between uint8 SR (H, W, 3) and HR (H, W[, 3]) images: the full RGB images (gray
    repeated to RGB), with the same border removed as for PSNR/SSIM, in [-1, 1] as LPIPS expects.
    Lower is more similar; identical images give 0."""
    device = next(model.parameters()).device
    pair = []
    for img in (sr, hr):
        rgb = as_rgb(img)
        if crop_border:
            rgb = rgb[crop_border:-crop_border, crop_border:-crop_border]
        pair.append(convert_image(image_to_tensor(rgb)[None].to(device), "[0,255]", "[-1,1]"))
    return float(model(*pair).item())
