"""Small helpers used everywhere: the one image-conversion helper, seeding, device choice, meters.

Value ranges are named by strings so that every conversion in the kit goes through one function:

    'pil'            a PIL RGB image (or a list of them for a batch)
    '[0,255]'        float tensor with values in [0, 255]
    '[0,1]'          float tensor in [0, 1]          <- what the networks take as LR input
    '[-1,1]'         float tensor in [-1, 1]         <- what the generators output and train against
    'imagenet-norm'  ImageNet mean/std normalised    <- what VGG19 expects (target only)
    'y-channel'      luma Y in [16, 235] as in BT.601, float, shape (..., 1, H, W) (target only)

Tensors are (3, H, W) for one image or (N, 3, H, W) for a batch.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import MissingFile, MissingWeights, SettingError

SOURCES = ("pil", "[0,255]", "[0,1]", "[-1,1]")
TARGETS = ("pil", "[0,255]", "[0,1]", "[-1,1]", "imagenet-norm", "y-channel")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# BT.601 luma for R, G, B in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B (the SR papers' rgb2ycbcr).
Y_WEIGHTS = (65.481, 128.553, 24.966)
# SSIM's Gaussian window (Wang et al. 2004): 11 x 11 pixels; test images smaller than it after the
# border crop cannot be scored, so the data lists leave them out.
SSIM_WINDOW = 11

_constants: dict[tuple, tuple[torch.Tensor, ...]] = {}


def _constant_tensors(device: torch.device, dtype: torch.dtype):
    """ImageNet mean/std and the Y weights as (3, 1, 1) tensors, made once per (device, dtype)."""
    key = (device, dtype)
    if key not in _constants:
        mean, std, yw = (
            torch.tensor(v, device=device, dtype=dtype).view(3, 1, 1)
            for v in (IMAGENET_MEAN, IMAGENET_STD, Y_WEIGHTS)
        )
        _constants[key] = (mean, std, yw)
    return _constants[key]


def convert_image(img, source: str, target: str):
    """Convert an image or a batch between value ranges (see the module docstring).

    img: a PIL image or a list of them (source 'pil'), or a float tensor (3, H, W) / (N, 3, H, W).
    Returns a tensor on the input's device, or PIL image(s) for target 'pil'. Values are clamped to
    the source range first, so a generator's slight overshoot never wraps around.
    """
    if source not in SOURCES:
        raise ValueError(
            f"convert_image: unknown source {source!r}; choose one of {', '.join(SOURCES)}"
        )
    if target not in TARGETS:
        raise ValueError(
            f"convert_image: unknown target {target!r}; choose one of {', '.join(TARGETS)}"
        )

    if source == "pil":
        if isinstance(img, (list, tuple)):
            return torch.stack([convert_image(im, "pil", target) for im in img])
        if not isinstance(img, Image.Image):
            raise TypeError(
                f"convert_image: source 'pil' needs a PIL image, got {type(img).__name__}"
            )
        if img.mode != "RGB":
            raise ValueError(
                f"convert_image: expected an RGB PIL image, got mode {img.mode!r}; use img.convert('RGB')"
            )
        x = torch.from_numpy(np.asarray(img, dtype=np.float32).transpose(2, 0, 1).copy()) / 255.0
        source = "[0,1]"
    else:
        if not torch.is_tensor(img):
            raise TypeError(
                f"convert_image: source {source!r} needs a tensor, got {type(img).__name__}"
            )
        if img.dim() not in (3, 4) or img.shape[-3] != 3:
            raise ValueError(
                "convert_image: expected a (3, H, W) image or an (N, 3, H, W) batch of RGB images, "
                f"got shape {tuple(img.shape)}"
            )
        if not img.is_floating_point():
            raise TypeError(
                f"convert_image: expected a float tensor, got {img.dtype}; use .float() first"
            )
        x = img

    # To [0, 1] first: one canonical intermediate keeps the table of conversions small.
    if source == "[0,255]":
        x = x.clamp(0.0, 255.0) / 255.0
    elif source == "[-1,1]":
        x = (x.clamp(-1.0, 1.0) + 1.0) / 2.0
    else:
        x = x.clamp(0.0, 1.0)

    if target == "[0,1]":
        return x
    if target == "[0,255]":
        return x * 255.0
    if target == "[-1,1]":
        return x * 2.0 - 1.0
    if target == "imagenet-norm":
        mean, std, _ = _constant_tensors(x.device, x.dtype)
        return (x - mean) / std
    if target == "y-channel":
        return rgb255_to_y(x * 255.0)
    # target == "pil"
    if x.dim() == 4:
        return [convert_image(im, "[0,1]", "pil") for im in x]
    arr = (x * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr)


def rgb255_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB in [0, 255]: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, not rounded.

    x: (..., 3, H, W) float -> (..., 1, H, W) in [16, 235]. The SR papers' (and MATLAB rgb2ycbcr's) Y.
    """
    _, _, yw = _constant_tensors(x.device, x.dtype)
    return 16.0 + (x * yw).sum(dim=-3, keepdim=True) / 255.0


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices). deterministic=True also picks deterministic kernels
    (slower; what the exact-resume guarantee needs)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def get_device(name: str | None = None) -> torch.device:
    """The device to use: `name` if given ('cuda', 'cuda:1', 'mps', 'cpu'), else the best available."""
    if name not in (None, "", "auto"):
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SettingError(
                f"device={name!r} was asked for but no CUDA GPU is visible; use device=cpu (or device=auto)"
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class AverageMeter:
    """Running average of a scalar (a loss, a time); update(value, n) adds n samples of value."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.val = 0.0
        self.sum = 0.0
        self.count = 0
        self.avg = 0.0

    def update(self, val: float, n: int = 1) -> None:
        self.val = float(val)
        self.sum += float(val) * n
        self.count += n
        self.avg = self.sum / self.count

    def __repr__(self) -> str:
        return f"AverageMeter(val={self.val:.4g}, avg={self.avg:.4g}, count={self.count})"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside `path` for writing; on success fsync it and rename it to `path`.

    A crash or kill at any moment leaves either the old file or the new one, never half a file.
        with atomic_write("x.pt") as f: torch.save(state, f)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def torchvision_state_dict(
    weights, enum, url: str, name: str, setting: str, purpose: str = "", otherwise: str = ""
) -> dict:
    """ImageNet weights of a torchvision network as a state_dict: 'imagenet' (torchvision's `enum`
    weights: its cache, else its download) or a path to a file in torchvision's key format.

    Offline without the cache: one RuntimeError naming `url`, where to put the file and the
    `setting` that takes a path (VGG19 for the content loss, AlexNet for LPIPS).
    """
    file = Path(url).name
    if isinstance(weights, (str, os.PathLike)) and str(weights) != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise MissingFile(
                f"{name} weights file {path} does not exist; download {url} and give its path"
            )
        return torch.load(path, map_location="cpu", weights_only=True)
    if weights != "imagenet":
        pattern = file.split("-")[0] + "-*.pth"
        raise SettingError(
            f"weights must be 'imagenet', a path to {pattern}, or None; got {weights!r}"
        )
    try:
        return enum.get_state_dict(progress=True)
    except (
        Exception
    ) as err:  # URLError, socket errors, HTTP errors: all mean "not available offline"
        cache = Path(torch.hub.get_dir()) / "checkpoints" / file
        raise MissingWeights(
            f"{name} ImageNet weights{purpose} are not in torchvision's cache and could not be "
            f"downloaded ({type(err).__name__}). On a machine with internet, download {url} and put "
            f"it at {cache} (or pass {setting}=/path/to/{file}{otherwise})."
        ) from None


def format_duration(seconds: float) -> str:
    """3725 -> '1 h 02 min'; 95 -> '1 min 35 s'; 7 -> '7 s'."""
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    return f"{m} min {s:02d} s" if m else f"{s} s"


def to_uint8(sr: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) in [-1, 1] -> uint8 (H, W, 3), rounded as a saved PNG would be."""
    if sr.dim() == 4:
        sr = sr[0]
    x = convert_image(sr.float(), "[-1,1]", "[0,255]")
    return torch.floor(x + 0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
