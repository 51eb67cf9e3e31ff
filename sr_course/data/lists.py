"""Images on disk and the data lists: reading and writing 8-bit images, and lists/<split>.csv.

    read_image(path) / write_png(arr, path)   uint8 (H, W, 3) RGB or (H, W) gray, one clear error
    create_data_lists(root, splits)           pair each HR with its x4 LR (made when missing),
                                              validate every image, write lists/<split>.csv

The folders of each split are the course manifest's (sr_course/course.py, SPLITS); the layout under
the data root is described in sr_course/data/datasets.py.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..course import SPLITS
from ..errors import MissingFile, UserError
from ..utils import SSIM_WINDOW, atomic_write
from .imresize import imresize

LIST_FIELDS = ("hr", "lr", "mode", "height", "width")
LIST_SCALE = 4  # the scale of the LR images in the LR folders and the lists
DOWNLOAD_HINT = "python data_prep/download.py --root {root}"


class DataError(UserError, RuntimeError):
    """Missing or unusable data; the message names the path and the fix."""


# --- images --------------------------------------------------------------------------------------


class BadImage(ValueError):
    """An image that cannot be used; str() is the reason shown in the summary."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an 8-bit image as uint8 (H, W, 3) RGB or (H, W) gray.

    Palette images become RGB; RGBA/LA lose an alpha channel that is fully opaque. Refused with
    BadImage: undecodable files, transparency, 16-bit or float images, other modes.
    """
    try:
        with Image.open(path) as im:
            # Pillow decodes a 48-bit RGB PNG as 8-bit RGB by dropping the low bytes: refuse it
            # like a 16-bit gray image, rather than scoring pixels that are not the file's.
            raw_modes = [
                str(getattr(t, "args", t[-1] if isinstance(t, tuple) else "")) for t in im.tile
            ]
            if im.mode in ("RGB", "RGBA") and any(";16" in r for r in raw_modes):
                raise BadImage(f"16-bit {im.mode} image: convert it to 8-bit")
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise BadImage(
                    f"{mode} ({'16-bit' if mode.startswith('I') else 'float'}) image: convert it to 8-bit"
                )
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA" if mode != "LA" else "LA")
                alpha = np.asarray(rgba)[..., -1]
                if alpha.min() < 255:
                    raise BadImage(
                        f"{mode} image with transparent pixels: flatten it onto a background first"
                    )
                im = rgba.convert("L" if mode == "LA" else "RGB")
            elif mode == "P":
                im = im.convert("RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode not in ("RGB", "L"):
                raise BadImage(f"unsupported image mode {mode}: save it as 8-bit RGB or gray PNG")
            return np.asarray(im).copy()
    except BadImage:
        raise
    except FileNotFoundError:
        raise MissingFile(f"image {path} does not exist") from None
    except Exception as err:  # PIL raises many types for broken files
        reason = str(err).replace(repr(str(path)), "").replace(str(path), "").strip()
        raise BadImage(f"cannot decode ({type(err).__name__}: {reason[:200]})") from None


# zlib's fastest level: about 3x faster than Pillow's default (6) on photographs, for files 5-10%
# larger (the pixels are the same: PNG is lossless at every level). OpenCV writes at this level too.
PNG_COMPRESS_LEVEL = 1


def write_png(arr: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W[, 3]) array as PNG atomically (temporary file, then rename)."""
    with atomic_write(path) as f:
        Image.fromarray(arr).save(f, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def crop_to_multiple(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of `scale` (the SR convention)."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]


def as_rgb(img: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) gray image repeated to (H, W, 3); an RGB image unchanged."""
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 255]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()


def lr_name(hr_path: Path, scale: int = 4) -> str:
    return f"{hr_path.stem}x{scale}.png"


# --- data lists ----------------------------------------------------------------------------------


@dataclass
class ListSummary:
    """What create_data_lists found in one split."""

    split: str
    found: int = 0
    made: list[str] = field(default_factory=list)  # LR images generated with our imresize
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    written: Path | None = None
    note: str = ""

    def __str__(self) -> str:
        head = f"{self.split}: {self.found} found, {len(self.made)} LR made, {len(self.skipped)} skipped"
        lines = [
            head
            + (f" -> {self.written}" if self.written else "")
            + (f" ({self.note})" if self.note else "")
        ]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


def list_path(data_root: str | os.PathLike, split: str) -> Path:
    return Path(data_root) / "lists" / f"{split}.csv"


def create_data_lists(
    data_root: str | os.PathLike,
    splits: list[str] | None = None,
    scale: int = 4,
    crop_size: int = 96,
    force: bool = False,
    verbose: bool = True,
) -> list[ListSummary]:
    """Scan the layout, pair each HR with its LR, make missing LR images (MATLAB bicubic of the HR
    cropped to a multiple of `scale`), validate every image, and write lists/<split>.csv.

    splits: the splits to list (default: every split whose HR folder exists). Training splits
    (names ending in '_train') also need HR at least `crop_size` on each side. An existing list is
    kept unless force=True. Test splits skip images too small to score (SSIM's window must fit
    after the border crop). Returns one ListSummary per split (also printed when verbose).
    """
    root = Path(data_root)
    if splits is None:
        splits = [s for s, info in SPLITS.items() if (root / info.hr).is_dir()]
        if not splits:
            raise DataError(
                f"no data found under {root}: download it with `{DOWNLOAD_HINT.format(root=root)}` "
                "(or build the offline sample: python data_prep/make_sample.py)"
            )
    summaries = []
    for split in splits:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
        hr_dir, lr_dir = root / SPLITS[split].hr, root / SPLITS[split].lr
        training = SPLITS[split].role.endswith("train")
        summary = ListSummary(split)
        out = list_path(root, split)
        if not hr_dir.is_dir():
            raise DataError(
                f"{split}: HR folder {hr_dir} does not exist; download it with `{DOWNLOAD_HINT.format(root=root)}`"
            )
        if out.exists() and not force:
            summary.note = f"{out} exists; use --force to rewrite it"
            summary.written = None
            summaries.append(summary)
            if verbose:
                print(summary)
            continue
        rows = []
        for hr_path in sorted(hr_dir.glob("*.png")):
            summary.found += 1
            try:
                hr = read_image(hr_path)
            except BadImage as err:
                summary.skipped.append((hr_path.name, str(err)))
                continue
            hr = crop_to_multiple(hr, scale)
            h, w = hr.shape[:2]
            if training and min(h, w) < crop_size:
                summary.skipped.append(
                    (hr_path.name, f"{w}x{h} is smaller than the {crop_size}-pixel training crop")
                )
                continue
            smallest = SSIM_WINDOW + 2 * scale
            if not training and min(h, w) < smallest:
                summary.skipped.append(
                    (
                        hr_path.name,
                        f"{w}x{h} is too small to score: SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window needs "
                        f"at least {smallest}x{smallest} pixels with the {scale}-pixel border removed",
                    )
                )
                continue
            lr_path = lr_dir / lr_name(hr_path, scale)
            if lr_path.exists():
                try:
                    lr = read_image(lr_path)
                except BadImage as err:
                    summary.skipped.append((lr_path.name, str(err)))
                    continue
                if lr.shape[:2] != (h // scale, w // scale):
                    summary.skipped.append(
                        (
                            lr_path.name,
                            f"LR is {lr.shape[1]}x{lr.shape[0]}, expected {w // scale}x{h // scale} "
                            f"(HR {w}x{h} / {scale})",
                        )
                    )
                    continue
                if lr.ndim != hr.ndim:
                    summary.skipped.append(
                        (lr_path.name, "LR and HR differ in colour (one gray, one RGB)")
                    )
                    continue
            else:
                write_png(imresize(hr, 1 / scale), lr_path)
                summary.made.append(lr_path.name)
            rows.append(
                {
                    "hr": hr_path.relative_to(root).as_posix(),
                    "lr": lr_path.relative_to(root).as_posix(),
                    "mode": "L" if hr.ndim == 2 else "RGB",
                    "height": h,
                    "width": w,
                }
            )
        if not rows:
            raise DataError(f"{split}: no usable image pairs in {hr_dir}\n{summary}")
        with atomic_write(out, "w") as f:
            writer = csv.DictWriter(f, fieldnames=LIST_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        summary.written = out
        summaries.append(summary)
        if verbose:
            print(summary)
    return summaries
