"""Figures for reports: comparison grids with zoomed insets and PSNR/SSIM, loss curves.

    comparison_grid(split, methods, config, out)   rows = images, columns = methods (PNG >= 200 dpi + PDF)
    single_comparison(split, image, methods, ...)  one image, large panels in rows
    plot_history(history_or_checkpoint)            each training loss on its own axes, validation PSNR
    training_patches(dataset)                      aligned LR / HR training patches

Every figure is at most MAX_WIDTH_INCHES wide with 9-point text, so that it is readable at the
width of a notebook as well as in a report.

A method is 'nearest' (LR enlarged by pixel repetition), 'bicubic' (our MATLAB-exact imresize),
'hr' (the ground truth), a model, or a checkpoint path. Default columns: LR (nearest), Bicubic,
then the models given, then HR.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ..checkpoint import load_checkpoint
from ..data.datasets import SRDataset
from ..data.imresize import imresize
from ..data.lists import PNG_COMPRESS_LEVEL, as_rgb
from ..errors import SettingError
from ..utils import atomic_write, convert_image
from .inference import interpolate_generators, load_generator, super_resolve
from .metrics import score_sr

# Shown at figure.dpi in a notebook, a figure at most MAX_WIDTH_INCHES wide is not scaled down by
# JupyterLab at a 1400-pixel window, so its text stays at least font.size (9 pt) on screen.
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.dpi": 100,
    "savefig.dpi": 220,
}
MAX_WIDTH_INCHES = 10.0
BUILT_IN = ("nearest", "bicubic", "hr")


def _resolve(methods: dict) -> dict:
    """Load each checkpoint once: {label: 'nearest' | 'bicubic' | 'hr' | model}."""

    return {
        label: load_generator(m) if isinstance(m, (str, Path)) and m not in BUILT_IN else m
        for label, m in methods.items()
    }


def _method_images(ds, image: int, methods: dict, scale: int, tile=None) -> tuple[dict, np.ndarray]:
    """{label: uint8 RGB (H, W, 3)} for image `image` of dataset `ds`, and its HR (as stored)."""

    lr, hr = ds.lr_uint8(image), ds.hr_uint8(image)
    out = {}
    for label, method in methods.items():
        if method == "nearest":
            out[label] = as_rgb(lr).repeat(scale, axis=0).repeat(scale, axis=1)
        elif method == "bicubic":
            out[label] = as_rgb(imresize(lr, scale))
        elif method == "hr":
            out[label] = as_rgb(hr)
        else:
            out[label] = super_resolve(method, lr, tile=tile)
    return out, hr


def default_methods(models: dict | None = None) -> dict:
    """LR (nearest), Bicubic, the given models in order, HR."""
    return {"LR (nearest)": "nearest", "Bicubic": "bicubic", **(models or {}), "HR": "hr"}


def _window_sums(a: np.ndarray, size: int) -> np.ndarray:
    """Sum of a (H, W) over every size x size window: (H - size + 1, W - size + 1)."""
    integral = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )


def pick_zoom_region(
    images: list[np.ndarray], size: int, hr: np.ndarray | None = None
) -> tuple[int, int, int]:
    """(top, left, size) of the size x size window to zoom into: where the HR image has detail
    (edges, texture) and the methods differ there. Windows with less HR detail than the median
    window are never chosen, so a flat area (sky, a dark coat) is not picked because weak models
    add noise to it. Without hr: where the images differ most."""
    gray = [
        im.astype(np.float32) if im.ndim == 2 else im.astype(np.float32).mean(2) for im in images
    ]
    spread = np.stack(gray).std(axis=0)
    h, w = spread.shape
    size = max(8, min(size, h, w))
    score = _window_sums(spread, size)
    if hr is not None:
        ref = hr.astype(np.float32) if hr.ndim == 2 else hr.astype(np.float32).mean(2)
        gy, gx = np.gradient(ref[:h, :w])
        detail = np.hypot(gx, gy)
        # the methods' differences where HR has edges, only in windows with a fair share of them
        score = _window_sums(spread * detail, size)
        window_detail = _window_sums(detail, size)
        score = np.where(window_detail >= np.median(window_detail), score, -1.0)
    top, left = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(top), int(left), size


def _panel(ax, img, region, caption, title=None, inset_color="#ff3b30"):
    top, left, size = region
    h, w = img.shape[:2]
    ax.imshow(img, interpolation="nearest")
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, lw=1.0, ec=inset_color))
    # The inset sits in the bottom-right corner, or bottom-left when the red box would be under it.
    under = left + size > 0.55 * w and top + size > 0.55 * h
    inset = ax.inset_axes([0.0 if under else 0.58, 0.0, 0.42, 0.42])
    inset.imshow(img[top : top + size, left : left + size], interpolation="nearest")
    inset.set_xticks([])
    inset.set_yticks([])
    for spine in inset.spines.values():
        spine.set_edgecolor(inset_color)
        spine.set_linewidth(1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    ax.set_xlabel(caption, labelpad=2)


def _caption(label, img, hr, scale):

    if label == "HR" or img is hr:
        return "PSNR / SSIM"
    p, s = score_sr(img, hr, scale)
    return f"{p:.2f} dB / {s:.4f}"


def comparison_grid(
    split: str,
    methods: dict | None,
    config,
    out: str | os.PathLike | None = None,
    images: list[int] | None = None,
    zoom: tuple[int, int, int] | None = None,
    panel_inches: float = 1.9,
    tile: int | None = None,
):
    """Rows = images of `split`, columns = methods; each panel has a zoomed inset (the red box;
    `zoom` = (top, left, size) in HR pixels, else pick_zoom_region's: HR detail where the methods
    differ) and PSNR / SSIM
    (Y channel, border = scale) below. out: 'path/name' writes name.png (220 dpi) and name.pdf.
    Returns the matplotlib Figure."""

    methods = _resolve(methods if methods is not None else default_methods())
    ds = SRDataset(split, config)
    images = list(range(len(ds))) if images is None else list(images)
    bad = [i for i in images if not 0 <= i < len(ds)]
    if bad:
        raise SettingError(
            f"images {bad}: {split} has {len(ds)} images, numbered 0 to {len(ds) - 1}"
        )
    scale = int(config.scale)
    rows = [_method_images(ds, i, methods, scale, tile) for i in images]
    if zoom is not None:
        top, left, size = zoom
        for i, (_, hr) in zip(images, rows):
            h, w = hr.shape[:2]
            if not (0 <= top <= h - size and 0 <= left <= w - size and size >= 1):
                raise SettingError(
                    f"zoom region (top {top}, left {left}, size {size}) does not fit image {i} of "
                    f"{split} ({ds.name(i)}, {w}x{h} HR pixels): choose one inside it"
                )
    # One image: its panels wrap into rows of the width; several: one row each, panels shrunk to fit.
    n = len(methods)
    if len(rows) == 1:
        per_row = max(1, min(n, int(MAX_WIDTH_INCHES // panel_inches)))
    else:
        per_row, panel_inches = n, min(panel_inches, MAX_WIDTH_INCHES / n)
    lines = -(-n // per_row)  # grid rows per image
    aspects = [hr.shape[0] / hr.shape[1] for _, hr in rows for _ in range(lines)]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(aspects),
            per_row,
            figsize=(
                panel_inches * per_row,
                sum(panel_inches * a + 0.4 for a in aspects) + 0.3,
            ),
            squeeze=False,
            layout="constrained",
            gridspec_kw={"height_ratios": aspects},
        )
        for ax in axes.flat[len(rows) * n :]:
            ax.set_axis_off()  # the last line's empty places (one image only)
        for r, (panels, hr) in enumerate(rows):
            # Where the reconstructions differ most; pixel-repeated LR differs at every edge, so skip it.
            compared = [
                img
                for label, m in zip(panels, methods.values())
                if m != "nearest"
                for img in [panels[label]]
            ]
            region = zoom or pick_zoom_region(
                compared or list(panels.values()), max(16, min(hr.shape[:2]) // 5), hr=hr
            )
            for c, (label, img) in enumerate(panels.items()):
                _panel(
                    axes[r * lines + c // per_row, c % per_row],
                    img,
                    region,
                    _caption(label, img, hr, scale),
                    title=label if r == 0 else None,
                )
        if out is not None:
            save_figure(fig, out)
    return fig


def single_comparison(
    split: str, image: int, methods: dict | None, config, out=None, zoom=None, tile=None
):
    """One test image, one large panel per method (for a report's close look); returns the Figure."""
    return comparison_grid(
        split, methods, config, out=out, images=[image], zoom=zoom, panel_inches=3.3, tile=tile
    )


def interpolation_sweep(
    psnr_ckpt,
    gan_ckpt,
    split: str,
    image: int,
    config,
    alphas=(0.0, 0.25, 0.5, 0.75, 1.0),
    out=None,
    zoom=None,
):
    """One test image super-resolved by interpolated networks (ESRGAN's network interpolation),
    alpha = 0 (PSNR model) ... 1 (GAN model), with PSNR / SSIM under each panel; returns the Figure."""

    methods = {f"alpha = {a:g}": interpolate_generators(psnr_ckpt, gan_ckpt, a) for a in alphas}
    methods["HR"] = "hr"
    return comparison_grid(
        split, methods, config, out=out, images=[image], zoom=zoom, panel_inches=2.4
    )


def save_figure(fig, out: str | os.PathLike) -> tuple[Path, Path]:
    """Save `fig` as out.png (220 dpi) and out.pdf (vector) and return both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = out.with_suffix(".png"), out.with_suffix(".pdf")
    with atomic_write(png) as f:
        fig.savefig(
            f,
            format="png",
            dpi=STYLE["savefig.dpi"],
            pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL},
        )
    with atomic_write(pdf) as f:
        fig.savefig(f, format="pdf")
    return png, pdf


HEALTHY_GAN = (
    "A healthy GAN run: D's loss falls as it learns to tell HR from SR while G's adversarial term "
    "rises; the content term stays near where SRResNet left it."
)


def plot_history(history, out=None, title: str | None = None):
    """Each training loss on its own axes (SRGAN: content, adversarial, discriminator), and the
    validation PSNR when present, from a history dict or a checkpoint path; returns the Figure."""
    if isinstance(history, (str, Path)):
        state = load_checkpoint(history)
        history, title = state["history"], title or state["stage"]
    train, val = history.get("train", []), history.get("val", [])
    keys = [
        k for k in (train[0] if train else {}) if k not in ("iteration", "epoch", "lr", "it_per_s")
    ]
    used = len(keys) + bool(val)
    panels = used or 1
    cols = min(3, panels) if panels != 4 else 2
    rows = -(-panels // cols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            rows, cols, figsize=(3.2 * cols, 2.5 * rows + 0.5), squeeze=False, layout="constrained"
        )
        flat = list(axes.flat)
        for ax in flat[used:]:
            ax.set_axis_off()
        for ax, k in zip(flat, keys):
            pts = [(r["iteration"], r[k]) for r in train if k in r]
            ax.plot(*zip(*pts), lw=1.2, marker="." if len(pts) < 30 else None)
            ax.set_xlabel("iteration")
            ax.set_title(k if len(keys) > 1 else "training loss")
            if all(v > 0 for _, v in pts) and max(v for _, v in pts) > 4 * min(v for _, v in pts):
                ax.set_yscale("log")
        if val:
            ax = flat[len(keys)]
            ax.plot([r["iteration"] for r in val], [r["psnr"] for r in val], "o-", lw=1.2, ms=3)
            ax.set_xlabel("iteration")
            ax.set_title(f"validation PSNR (dB), {val[-1].get('split', '')}".rstrip(", "))
        if title:
            fig.suptitle(title)
        if "discriminator" in keys:
            fig.supxlabel(HEALTHY_GAN, fontsize=STYLE["font.size"], wrap=True)
        if out is not None:
            save_figure(fig, out)
    return fig


def training_patches(dataset, n: int = 4, min_std: float = 0.1):
    """The first `n` training crops of `dataset` (an SRDataset on 'train') with some detail (HR
    standard deviation >= min_std in [-1, 1]), each LR patch (in [0, 1]) above its HR patch (in
    [-1, 1]), each mapped from its own range to the display; returns the Figure."""
    pairs = []
    for i in range(len(dataset)):
        lr, hr = dataset[i][:2]
        if float(hr.std()) >= min_std:
            pairs.append((convert_image(lr, "[0,1]", "pil"), convert_image(hr, "[-1,1]", "pil")))
        if len(pairs) == n:
            break
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            2, len(pairs), figsize=(2.0 * len(pairs), 4.4), squeeze=False, layout="constrained"
        )
        for c, (lr, hr) in enumerate(pairs):
            for r, (img, name) in enumerate(((lr, "LR"), (hr, "HR"))):
                ax = axes[r, c]
                ax.imshow(np.asarray(img), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{name} {img.width}x{img.height}")
    return fig
