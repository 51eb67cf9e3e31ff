"""Super-resolve whole images, tiled when they are too big for the memory at hand.

    super_resolve(model, lr, tile=None) -> uint8 (s*H, s*W, 3) RGB

`model` maps (N, 3, h, w) in [0, 1] to (N, 3, s*h, s*w) in [-1, 1] (SRResNet, Generator, ...).
Tiling: the output is cut into tiles of `tile` x `tile` LR pixels; each is computed from an LR crop
with `overlap` extra pixels on every side (clamped at the image border) and only its centre is kept,
so tile seams see the same context as the untiled network up to `overlap` pixels away.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from ..checkpoint import CheckpointError, load_checkpoint
from ..components.registry import build_generator
from ..config import load_config
from ..data.lists import as_rgb
from ..errors import SettingError
from ..models import Generator
from ..utils import convert_image, get_device, to_uint8

DEFAULT_TILE = 128
DEFAULT_OVERLAP = 24
MIN_TILE = 16  # smaller tiles are mostly overlap; the OOM fallback stops halving here too
# Above this estimated activation memory, CPU inference is tiled automatically.
CPU_AUTO_TILE_BYTES = 1 << 30


def lr_tensor(lr) -> torch.Tensor:
    """PIL image or uint8 (H, W, 3) / (H, W) array -> (1, 3, H, W) float in [0, 1]."""
    if isinstance(lr, Image.Image):
        lr = np.asarray(lr.convert("RGB"))
    if not isinstance(lr, np.ndarray) or lr.dtype != np.uint8:
        raise TypeError(
            f"super_resolve: lr must be a PIL image or a uint8 numpy array, got "
            f"{type(lr).__name__}{'' if not isinstance(lr, np.ndarray) else ' of ' + str(lr.dtype)}"
        )
    lr = as_rgb(lr)
    if lr.ndim != 3 or lr.shape[2] != 3:
        raise ValueError(
            f"super_resolve: lr must be (H, W, 3) RGB or (H, W) gray, got shape {lr.shape}"
        )
    x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).float()[None]
    return convert_image(x, "[0,255]", "[0,1]")


def _scale_of(model) -> int:
    return int(getattr(model, "scaling_factor", 4))


def _estimated_bytes(model, h: int, w: int) -> int:
    """Rough peak activation memory of one forward pass: a few feature maps at the output size."""
    channels = max(
        (m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)), default=64
    )
    s = _scale_of(model)
    return 4 * 3 * channels * h * w * s * s // 4


def _tiles(h: int, w: int, tile: int, overlap: int):
    """(top, bottom, left, right) of each output tile and (t0, t1, l0, l1) of the LR crop it needs."""
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(h, top + tile), min(w, left + tile)
            t0, l0 = max(0, top - overlap), max(0, left - overlap)
            t1, l1 = min(h, bottom + overlap), min(w, right + overlap)
            yield (top, bottom, left, right), (t0, t1, l0, l1)


@torch.no_grad()
def _forward_tiled(model, x: torch.Tensor, tile: int, overlap: int, into=None):
    """The model's output for x, computed tile by tile. into=None: returned as a tensor like the
    model's; into=a uint8 (N, s*h, s*w, 3) array: each tile is rounded into it and `into` is
    returned, so the full-size float output never exists (a 3000x3000 LR is 1.7 GB as float x4)."""
    s = _scale_of(model)
    _, _, h, w = x.shape
    out = into
    for (top, bottom, left, right), (t0, t1, l0, l1) in _tiles(h, w, tile, overlap):
        y = model(x[:, :, t0:t1, l0:l1])
        y = y[:, :, (top - t0) * s : (bottom - t0) * s, (left - l0) * s : (right - l0) * s]
        if into is not None:
            for n in range(y.shape[0]):
                into[n, top * s : bottom * s, left * s : right * s] = to_uint8(y[n])
            continue
        if out is None:
            out = torch.empty(
                (x.shape[0], y.shape[1], h * s, w * s), dtype=y.dtype, device=y.device
            )
        out[:, :, top * s : bottom * s, left * s : right * s] = y
    return out


def _check_tile(tile) -> None:
    if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 0):
        raise SettingError(
            f"tile={tile!r} is not valid: give a tile size in LR pixels (at least {MIN_TILE}), 0 "
            "for no tiling, or None for automatic"
        )
    if tile is not None and 0 < tile < MIN_TILE:
        raise SettingError(
            f"tile={tile} is too small: tiles need at least {MIN_TILE} LR pixels a side"
        )


@torch.no_grad()
def _run(model, x: torch.Tensor, tile: int | None, overlap: int, into=None):
    """Untiled when it fits, else tiled (see super_resolve_tensor); into: see _forward_tiled."""
    _check_tile(tile)
    device = next(model.parameters()).device
    x = x.to(device)
    if tile == 0:
        return model(x)
    if tile is None:
        if device.type == "cpu" and _estimated_bytes(model, *x.shape[-2:]) > CPU_AUTO_TILE_BYTES:
            tile = DEFAULT_TILE
        else:
            try:
                return model(x)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                tile = DEFAULT_TILE
    while True:
        try:
            return _forward_tiled(model, x, tile, overlap, into)
        except torch.OutOfMemoryError:
            if tile <= MIN_TILE:
                raise
            torch.cuda.empty_cache()
            tile //= 2


def super_resolve_tensor(
    model, x: torch.Tensor, tile: int | None = None, overlap: int = DEFAULT_OVERLAP
) -> torch.Tensor:
    """(N, 3, h, w) in [0, 1] on any device -> (N, 3, s*h, s*w) in [-1, 1] on the model's device.

    tile=None: untiled, unless it does not fit (CUDA out of memory, or a CPU estimate above 1 GiB),
    then tiles of 128, halved until they fit. tile=k: tiles of k x k LR pixels. tile=0: never tile.
    """
    return _run(model, x, tile, overlap)


def super_resolve(model, lr, tile: int | None = None, overlap: int = DEFAULT_OVERLAP) -> np.ndarray:
    """Super-resolve one image: PIL image or uint8 (H, W, 3) / (H, W) array -> uint8 (s*H, s*W, 3) RGB.

    The model is put in eval mode for the call (and put back). See super_resolve_tensor for tiling;
    tiled, each tile is rounded straight into the uint8 output, so peak memory stays near the output
    image's own size (s*H x s*W x 3 bytes) plus one tile's activations.
    """
    was_training = model.training
    model.eval()
    try:
        x = lr_tensor(lr)
        s = _scale_of(model)
        into = np.empty((1, x.shape[2] * s, x.shape[3] * s, 3), dtype=np.uint8)
        out = _run(model, x, tile, overlap, into)
        return into[0] if out is into else to_uint8(out)
    finally:
        model.train(was_training)


def load_generator(path, device=None) -> torch.nn.Module:
    """The generator of checkpoint `path` (any architecture: the checkpoint's config says which),
    weights loaded, in eval mode on `device` (default: the best available)."""
    state = load_checkpoint(path)
    saved = state.get("config") or {}
    if saved.get("G"):
        keys = ("G", "model", "scale")
        model = build_generator(
            load_config(saved.get("profile", "paper"), **{k: saved[k] for k in keys if k in saved})
        )
    else:  # converted from the course's old format: the default SRResNet
        model = Generator()
    try:
        model.load_state_dict(state["models"]["generator"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: generator weights do not fit the network its config describes ({str(err).splitlines()[0]})"
        ) from None
    return model.to(get_device(device) if not isinstance(device, torch.device) else device).eval()


def as_generator(model, device) -> torch.nn.Module:
    """A checkpoint path loaded with load_generator, or a model moved to `device`, in eval mode."""
    if isinstance(model, (str, os.PathLike)):
        return load_generator(model, device)
    return model.to(device).eval()


def interpolate_generators(psnr_ckpt, gan_ckpt, alpha: float, device=None) -> torch.nn.Module:
    """ESRGAN's network interpolation: weights (1 - alpha) * PSNR-oriented + alpha * GAN-trained.

    alpha = 0 gives the PSNR model exactly, 1 the GAN model exactly; in between trades distortion
    (PSNR) for perceptual quality without retraining. Both checkpoints must hold the same network.
    """
    a, b = load_generator(psnr_ckpt, "cpu"), load_generator(gan_ckpt, "cpu")
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise CheckpointError(
            f"{psnr_ckpt} and {gan_ckpt} hold different networks; interpolation needs the same one"
        )
    mixed = {
        k: (1 - alpha) * sa[k] + alpha * sb[k] if sa[k].is_floating_point() else sb[k] for k in sa
    }
    a.load_state_dict(mixed)
    return a.to(get_device(device) if not isinstance(device, torch.device) else device).eval()
