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

import numpy as np
import torch
import torch.nn.functional as F

from .utils import rgb255_to_y

SSIM_WINDOW = 11
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


_windows: dict[torch.device, torch.Tensor] = {}


def _gaussian_window(device: torch.device) -> torch.Tensor:
    if device not in _windows:
        r = SSIM_WINDOW // 2
        k = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
        g = torch.exp(-(k**2) / (2 * SSIM_SIGMA**2))
        _windows[device] = g / g.sum()
    return _windows[device]


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
    g = _gaussian_window(x.device)
    # The five local statistics of every channel in one separable, 'valid' Gaussian filtering.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1).reshape(n * 5 * c, 1, *x.shape[-2:])
    stack = F.conv2d(stack, g.view(1, 1, -1, 1))
    stack = F.conv2d(stack, g.view(1, 1, 1, -1))
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
    """The `lpips` package's LPIPS (Zhang et al. 2018), AlexNet variant, version 0.1, in eval mode.

    Its calibrated linear layers ship with the package. The AlexNet backbone: 'imagenet'
    (torchvision's AlexNet_Weights.IMAGENET1K_V1: its cache, else its download), a path to
    alexnet-*.pth in torchvision's key format, or None (random, seeded: tests, offline checks).
    """
    import re
    import warnings

    import lpips

    # lpips still uses torchvision's deprecated `pretrained=`; the random backbone is seeded, so
    # that weights=None gives the same numbers every time (and leaves the caller's RNG alone)
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(0)
        model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    if weights is not None:
        import torchvision

        from .utils import torchvision_state_dict

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
    return model.to(device or "cpu").eval().requires_grad_(False)


@torch.no_grad()
def lpips_distance(
    model: torch.nn.Module, sr: np.ndarray, hr: np.ndarray, crop_border: int = 4
) -> float:
    """LPIPS between uint8 SR (H, W, 3) and HR (H, W[, 3]) images: the full RGB images (gray
    repeated to RGB), with the same border removed as for PSNR/SSIM, in [-1, 1] as LPIPS expects.
    Lower is more similar; identical images give 0."""
    from .datasets import _to_tensor, as_rgb
    from .utils import convert_image

    device = next(model.parameters()).device
    pair = []
    for img in (sr, hr):
        rgb = as_rgb(img)
        if crop_border:
            rgb = rgb[crop_border:-crop_border, crop_border:-crop_border]
        pair.append(convert_image(_to_tensor(rgb)[None].to(device), "[0,255]", "[-1,1]"))
    return float(model(*pair).item())


# --- evaluation of models over test sets ---------------------------------------------------------

# A model this far below bicubic is either barely trained or fed/read in the wrong value range; the
# warning fires only when reading it in another range closes the gap (see _range_mismatch).
FAR_BELOW_BICUBIC_DB = 3.0

# Other readings of a model (the mistakes students make with value ranges): (what it is called,
# input transform of LR in [0, 1], how the raw output is read into [0, 255]).
RANGE_READINGS = (
    ("its output read as [0, 1]", lambda x: x, lambda y: y * 255),
    ("its output read as [0, 255]", lambda x: x, lambda y: y),
    ("its input given in [-1, 1]", lambda x: x * 2 - 1, lambda y: (y + 1) * 127.5),
    ("its input given in [0, 255]", lambda x: x * 255, lambda y: (y + 1) * 127.5),
)


@torch.no_grad()
def _range_mismatch(net, ds, scale: int, tile, target_psnr: float, images: int = 2):
    """(reading, PSNR) of the first other value-range reading that scores at least `target_psnr` on
    the first `images` images of `ds`, else None: evidence that the model works, in another range."""
    from .inference import _lr_tensor, super_resolve_tensor

    pairs = [(_lr_tensor(ds.lr_uint8(i)), ds.hr_uint8(i)) for i in range(min(images, len(ds)))]
    for reading, given, read in RANGE_READINGS:
        scores = []
        for lr, hr in pairs:
            y = super_resolve_tensor(net, given(lr), tile=tile)
            sr = torch.floor(read(y[0].float()).clamp(0, 255) + 0.5).to(torch.uint8)
            scores.append(score_sr(sr.permute(1, 2, 0).cpu().numpy(), hr, scale)[0])
        if float(np.mean(scores)) >= target_psnr:
            return reading, float(np.mean(scores))
    return None


def evaluate(
    models: dict,
    splits,
    config,
    out_dir=None,
    device=None,
    tile: int | None = None,
    verbose: bool = True,
) -> dict:
    """PSNR/SSIM of each model on each test split under the SR protocol, with a bicubic row.

    models: {name: model or checkpoint path}; a model maps (N, 3, h, w) in [0, 1] to [-1, 1].
    splits: test split names (Set5, Set14, B100, Urban100, DIV2K_valid, Sample, ...).
    The 'bicubic' row is our MATLAB-exact imresize x scale of the LR. Returns
        {"table": {method: {split: {"psnr", "ssim"}}}, "per_image": {split: {method: [{name, psnr, ssim}]}}}
    "images": {split: {"scored", "found"}} and "notes" (what a reader of the table must know: skipped
    images, a random LPIPS backbone); with out_dir, writes results.csv (per image),
    results.md (the table, with a note for each split whose data list skipped images) and
    results.json, each atomically. Warns when a model scores far below bicubic (the classic
    input/output range mismatch).
    """
    import csv
    import io
    import json
    import warnings
    from pathlib import Path

    from .datasets import SRDataset
    from .imresize import imresize
    from .inference import as_generator, super_resolve
    from .utils import atomic_write, get_device

    device = get_device(device) if not isinstance(device, torch.device) else device
    nets = {"bicubic": None}
    for name, model in models.items():
        if name == "bicubic":
            raise ValueError(
                "the name 'bicubic' is reserved for the bicubic row; name your model otherwise"
            )
        nets[name] = as_generator(model, device)
    scale = int(config.scale)
    settings = config.get("lpips", {})
    lpips_weights = settings.get("weights", "imagenet")
    perceptual = lpips_model(lpips_weights, device) if settings.get("enabled", True) else None
    per_image: dict = {}
    images: dict = {}
    table: dict = {name: {} for name in nets}
    for split in splits:
        ds = SRDataset(split, config)
        images[split] = {"scored": len(ds), "found": max(ds.images_found, len(ds))}
        rows = per_image[split] = {name: [] for name in nets}
        for i in range(len(ds)):
            lr, hr = ds.lr_uint8(i), ds.hr_uint8(i)
            for name, net in nets.items():
                sr = imresize(lr, scale) if net is None else super_resolve(net, lr, tile=tile)
                p, s = score_sr(sr, hr, scale)
                row = {"name": ds.name(i), "psnr": p, "ssim": s}
                if perceptual is not None:
                    row["lpips"] = lpips_distance(perceptual, sr, hr, scale)
                rows[name].append(row)
        for name in nets:
            table[name][split] = {
                key: float(np.mean([r[key] for r in rows[name]]))
                for key in ("psnr", "ssim", "lpips")
                if key in rows[name][0]
            }
            bicubic = table["bicubic"][split]["psnr"]
            gap = bicubic - table[name][split]["psnr"]
            if name == "bicubic" or gap <= FAR_BELOW_BICUBIC_DB:
                continue
            found = _range_mismatch(nets[name], ds, scale, tile, bicubic - FAR_BELOW_BICUBIC_DB)
            if found:
                warnings.warn(
                    f"{name} scores {gap:.1f} dB below bicubic on {split} ({table[name][split]['psnr']:.2f} vs "
                    f"{bicubic:.2f} dB), but with {found[0]} it scores {found[1]:.2f} dB on the first images: a value-range "
                    "mismatch between training and testing. The networks take LR in [0, 1] and output "
                    "[-1, 1]; convert with sr_course.utils.convert_image, the same way in both.",
                    stacklevel=2,
                )
    from .runs import record_test

    # a run's own record (run.json) keeps the test scores of its checkpoints
    for name, model in models.items():
        if isinstance(model, (str, Path)):
            record_test(model, table[name])
    markdown = format_table(table, splits)
    notes = [
        f"{split}: {n['scored']} of {n['found']} images scored; the data list skipped "
        f"{n['found'] - n['scored']} (see lists/{split}.csv and create_data_lists' summary)"
        for split, n in images.items()
        if n["scored"] < n["found"]
    ]
    if perceptual is not None and lpips_weights is None:
        notes.append(
            "LPIPS here uses a random AlexNet (lpips.weights=None, offline): it checks the pipeline, "
            "its numbers are not LPIPS"
        )
    if notes:
        markdown += "\n\n" + "\n".join(f"Note: {n}." for n in notes)
    result = {"table": table, "per_image": per_image, "images": images, "notes": notes}
    if verbose:
        print(markdown)
    if out_dir is not None:
        out = Path(out_dir)
        table_csv = io.StringIO(newline="")
        writer = csv.writer(table_csv)
        writer.writerow(["split", "method", "image", "psnr", "ssim", "lpips"])
        for split, methods in per_image.items():
            for name, rows in methods.items():
                for r in rows:
                    lp = f"{r['lpips']:.4f}" if "lpips" in r else ""
                    writer.writerow(
                        [split, name, r["name"], f"{r['psnr']:.4f}", f"{r['ssim']:.6f}", lp]
                    )
        for name, text in (
            ("results.md", markdown + "\n"),
            ("results.json", json.dumps(result, indent=1)),
            ("results.csv", table_csv.getvalue()),
        ):
            with atomic_write(out / name, "w") as f:
                f.write(text)
        if verbose:
            print(f"saved {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.json'}")
    return result


def format_cell(scores: dict | None) -> str:
    """'PSNR / SSIM' or 'PSNR / SSIM / LPIPS' of one method on one split; '-' when missing."""
    if not scores:
        return "-"
    cell = f"{scores['psnr']:.2f} / {scores['ssim']:.4f}"
    return cell + (f" / {scores['lpips']:.3f}" if "lpips" in scores else "")


def format_table(table: dict, splits) -> str:
    """A Markdown table: one row per method, 'PSNR / SSIM' per split (Y channel, border = scale),
    with '/ LPIPS' (lower is better) when the table has it."""
    lpips = any("lpips" in v for scores in table.values() for v in scores.values())
    what = "PSNR / SSIM / LPIPS" if lpips else "PSNR / SSIM"
    head = "| method | " + " | ".join(f"{s} {what}" for s in splits) + " |"
    rule = "|---|" + "---|" * len(splits)
    lines = [head, rule]
    for name, scores in table.items():
        cells = [format_cell(scores.get(s)) for s in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
