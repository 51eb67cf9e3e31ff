"""Data on disk, data lists, and SRDataset with fast patch sampling.

Layout under the data root (what data_prep/download.py and sr_course.sample write):

    DIV2K/DIV2K_train_HR/0001.png        DIV2K/DIV2K_train_LR_bicubic/X4/0001x4.png
    DIV2K/DIV2K_valid_HR/0801.png        DIV2K/DIV2K_valid_LR_bicubic/X4/0801x4.png
    benchmark/<Set>/HR/<name>.png        benchmark/<Set>/LR_bicubic/X4/<name>x4.png   (Set5, Set14, B100, Urban100)
    sample/<Sample_train|Sample>/HR/...  sample/<...>/LR_bicubic/X4/...                (built-in, offline)
    lists/<split>.csv                    one row per usable (HR, LR) pair: create_data_lists()
    cache/<split>/<name>.<hr|lr>.<key>.npy   decoded uint8 arrays for training, made on first use;
                                         <key> is the source file's size and mtime, so a replaced
                                         image is decoded again (and its old array deleted)

The LR folders hold x4 images (the benchmarks' and DIV2K's bicubic x4). Another `scale` (2, 8, ...)
uses LR made from the HR with the MATLAB-exact imresize (the standard protocol for those scales),
computed when needed and, for training, cached like the x4 LR.

Patch sampling. Decoding a 2K PNG costs about 50 ms, so cutting each 96-pixel patch from a freshly
decoded PNG (the course's old loader: 80,000 decodes an epoch) starves a GPU. Here each training image
is decoded once, the first time any worker needs it, and stored as a raw .npy array; after that a
patch is a slice of a memory-mapped array: a few kilobytes read from the page cache, no decode.
The first epoch pays one decode per image (not per patch), so it is barely slower than the rest.
Disk: a decoded 2040x1356 HR + LR pair takes 8.4 MB, so DIV2K's 800 training images take about
7 GB, on the data root's disk (or `data.cache_dir`); building it costs one PNG decode per image
(about 70-100 ms each, so about 1-2 minutes in all, spread over the first epoch's workers). RAM: none is held per worker; the OS page cache keeps what fits and
re-reads the rest, so a machine with little RAM works (slower when the cache cannot hold the set).

Every random choice of a training sample (image, crop, flip/rotation) is a function of
(seed, epoch, index), so results do not depend on the number of workers, and resuming mid-epoch
replays exactly the same samples.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .utils import atomic_write, convert_image

SPLITS = {
    "DIV2K_train": ("DIV2K/DIV2K_train_HR", "DIV2K/DIV2K_train_LR_bicubic/X4"),
    "DIV2K_valid": ("DIV2K/DIV2K_valid_HR", "DIV2K/DIV2K_valid_LR_bicubic/X4"),
    **{
        s: (f"benchmark/{s}/HR", f"benchmark/{s}/LR_bicubic/X4")
        for s in ("Set5", "Set14", "B100", "Urban100")
    },
    "Sample_train": ("sample/Sample_train/HR", "sample/Sample_train/LR_bicubic/X4"),
    "Sample": ("sample/Sample/HR", "sample/Sample/LR_bicubic/X4"),
}
SAMPLE_SPLITS = ("Sample_train", "Sample")
LIST_FIELDS = ("hr", "lr", "mode", "height", "width")
LIST_SCALE = 4  # the scale of the LR images in the LR folders and the lists
DOWNLOAD_HINT = "python data_prep/download.py --root {root}"


class DataError(RuntimeError):
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
        raise FileNotFoundError(f"image {path} does not exist") from None
    except Exception as err:  # PIL raises many types for broken files
        reason = str(err).replace(repr(str(path)), "").replace(str(path), "").strip()
        raise BadImage(f"cannot decode ({type(err).__name__}: {reason[:200]})") from None


def write_png(arr: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W[, 3]) array as PNG atomically (temporary file, then rename)."""
    with atomic_write(path) as f:
        Image.fromarray(arr).save(f, format="PNG")


def crop_to_multiple(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of `scale` (the SR convention)."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]


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
    from .imresize import imresize
    from .metrics import SSIM_WINDOW

    root = Path(data_root)
    if splits is None:
        splits = [s for s, (hr_dir, _) in SPLITS.items() if (root / hr_dir).is_dir()]
        if not splits:
            raise DataError(
                f"no data found under {root}: download it with `{DOWNLOAD_HINT.format(root=root)}` "
                "(or build the offline sample: python data_prep/make_sample.py)"
            )
    summaries = []
    for split in splits:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
        hr_dir, lr_dir = (root / d for d in SPLITS[split])
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
            if split.endswith("_train") and min(h, w) < crop_size:
                summary.skipped.append(
                    (hr_path.name, f"{w}x{h} is smaller than the {crop_size}-pixel training crop")
                )
                continue
            smallest = SSIM_WINDOW + 2 * scale
            if not split.endswith("_train") and min(h, w) < smallest:
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


def read_data_list(data_root: str | os.PathLike, split: str) -> list[dict]:
    """The rows of lists/<split>.csv, making the list (and the sample) first when needed."""
    root = Path(data_root)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    path = list_path(root, split)
    if not path.exists():
        if split in SAMPLE_SPLITS:
            from .sample import build_sample

            build_sample(root)
        elif not (root / SPLITS[split][0]).is_dir():
            raise DataError(
                f"split {split!r} is not under data root {root.resolve()} (no {SPLITS[split][0]}/): download "
                f"it with `{DOWNLOAD_HINT.format(root=root)}`, or set data_root to where it is"
            )
        if not path.exists():
            create_data_lists(root, [split], verbose=False)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["height"], row["width"] = int(row["height"]), int(row["width"])
    return rows


# --- datasets ------------------------------------------------------------------------------------


def as_rgb(img: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) gray image repeated to (H, W, 3); an RGB image unchanged."""
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 255]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()


class SRDataset(torch.utils.data.Dataset):
    """LR/HR pairs of a split.

    split "train": the splits in config.data.train_splits; item i is a random aligned crop pair
        (lr (3, c/s, c/s) in [0, 1], hr (3, c, c) in [-1, 1]), c = config.data.crop_size, with a random
        flip/90-degree rotation; len = images x config.data.patches_per_image. Each epoch draws new
        crops: call set_epoch(e), or pass index + e * len (what EpochSampler(epoch_in_index=True) yields).
    a test split (Set5, Set14, B100, Urban100, DIV2K_valid, Sample, ...): item i is the whole image
        (lr (3, h, w) in [0, 1], hr (3, s*h, s*w) in [-1, 1], name); gray images are repeated to 3
        channels (`is_gray(i)` tells; metrics then use the gray values as Y).
    """

    def __init__(self, split: str, config):
        self.split = split
        self.config = config
        self.scale = int(config.scale)
        self.root = Path(config.data_root)
        self.train = split == "train"
        names = list(config.data.train_splits) if self.train else [split]
        self.rows = []
        self.row_split = []
        for name in names:
            rows = read_data_list(self.root, name)
            self.rows += rows
            self.row_split += [name] * len(rows)
        # A test split's PNGs, usable or not: evaluation says "n of N images" when its list skipped some.
        self.images_found = (
            len(self.rows)
            if self.train
            else sum(len(list((self.root / SPLITS[n][0]).glob("*.png"))) for n in names)
        )
        self.crop = int(config.data.crop_size)
        if self.train:
            if self.crop % self.scale:
                raise ValueError(
                    f"data.crop_size ({self.crop}) must be a multiple of scale ({self.scale})"
                )
            too_small = [r["hr"] for r in self.rows if min(r["height"], r["width"]) < self.crop]
            if too_small:
                raise DataError(
                    f"{len(too_small)} training image(s) are smaller than data.crop_size={self.crop}, e.g. "
                    f"{too_small[0]}; lower crop_size or rebuild the lists with a matching --crop-size"
                )
        self.patches_per_image = int(config.data.patches_per_image)
        self.seed = int(config.seed)
        self.epoch = 0
        cache = config.data.get("cache_dir") or self.root / "cache"
        self.cache_dir = Path(cache)
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rows) * (self.patches_per_image if self.train else 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def is_gray(self, i: int) -> bool:
        return self.rows[i]["mode"] == "L"

    def name(self, i: int) -> str:
        return Path(self.rows[i]["hr"]).stem

    def hr_uint8(self, i: int) -> np.ndarray:
        """The HR image i as uint8, cropped to a multiple of the scale, (H, W, 3) or (H, W) if gray."""
        return crop_to_multiple(self._read(self.root / self.rows[i]["hr"]), self.scale)

    def lr_uint8(self, i: int) -> np.ndarray:
        """The LR image i as uint8: the LR file at scale 4, else MATLAB bicubic of the HR."""
        if self.scale == LIST_SCALE:
            return self._read(self.root / self.rows[i]["lr"])
        from .imresize import imresize

        return imresize(self.hr_uint8(i), 1 / self.scale)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        try:
            return read_image(path)
        except BadImage as err:
            raise DataError(
                f"{path}: {err}; it changed since the data list was made: replace it, or rebuild the "
                "lists (sr_course.datasets.create_data_lists(root, force=True))"
            ) from None
        except FileNotFoundError:
            raise DataError(
                f"{path} is in the data list but not on disk: restore it, or rebuild the lists "
                "(sr_course.datasets.create_data_lists(root, force=True))"
            ) from None

    def _array(self, i: int, which: str) -> np.ndarray:
        """Image i ('hr' or 'lr') as a memory-mapped uint8 (H, W, 3) array, decoded once on first use.

        The cache file is named after its source's size and modification time, so an image replaced
        on disk is decoded again rather than served from its old pixels.
        """
        key = (i, which)
        arr = self._arrays.get(key)
        if arr is None:
            row = self.rows[i]
            own_lr = which == "lr" and self.scale == LIST_SCALE
            source = self.root / row["lr" if own_lr else "hr"]
            try:
                st = source.stat()
            except FileNotFoundError:
                self._read(source)  # raises the DataError that names the file
            tag = which if which == "hr" or own_lr else f"lr_x{self.scale}"
            folder, stem = self.cache_dir / self.row_split[i], Path(row["hr"]).stem
            path = folder / f"{stem}.{tag}.{st.st_size:x}-{st.st_mtime_ns:x}.npy"
            if not path.exists():
                img = as_rgb(self.hr_uint8(i) if which == "hr" else self.lr_uint8(i))
                with atomic_write(path) as f:  # workers may race here: both write the same bytes
                    np.save(f, np.ascontiguousarray(img))
                for old in [*folder.glob(f"{stem}.{tag}.*.npy"), folder / f"{stem}.{tag}.npy"]:
                    if old != path:  # a replaced image's old pixels
                        old.unlink(missing_ok=True)
            arr = np.load(path, mmap_mode="r")
            self._arrays[key] = arr
        return arr

    def __getitem__(self, index: int):
        if not self.train:
            lr, hr = as_rgb(self.lr_uint8(index)), as_rgb(self.hr_uint8(index))
            return (
                convert_image(_to_tensor(lr), "[0,255]", "[0,1]"),
                convert_image(_to_tensor(hr), "[0,255]", "[-1,1]"),
                self.name(index),
            )
        epoch, index = divmod(index, len(self)) if index >= len(self) else (self.epoch, index)
        i = index % len(self.rows)
        rng = np.random.default_rng((self.seed, epoch, index))
        lr_full, hr_full = self._array(i, "lr"), self._array(i, "hr")
        c = self.crop // self.scale
        y = int(rng.integers(0, lr_full.shape[0] - c + 1))
        x = int(rng.integers(0, lr_full.shape[1] - c + 1))
        s = self.scale
        lr = np.asarray(lr_full[y : y + c, x : x + c])
        hr = np.asarray(hr_full[s * y : s * (y + c), s * x : s * (x + c)])
        k = int(rng.integers(0, 8))  # one of the 8 flips/rotations of the square
        if k & 4:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        lr, hr = np.rot90(lr, k & 3), np.rot90(hr, k & 3)
        return (
            convert_image(_to_tensor(lr), "[0,255]", "[0,1]"),
            convert_image(_to_tensor(hr), "[0,255]", "[-1,1]"),
        )


class EpochSampler(torch.utils.data.Sampler):
    """A shuffling sampler that can start mid-epoch (exact resume) and shard across DDP ranks.

    The order of epoch e is a permutation seeded by (seed, e); rank r of w takes every w-th index
    (padded so all ranks get the same count). set_epoch(e, start) skips the first `start` samples
    of this rank, which the resumed run has already consumed. With epoch_in_index=True the indices
    carry the epoch (index + e * length, which SRDataset understands), so DataLoader workers that
    persist across epochs still draw each epoch's own crops.
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        epoch_in_index: bool = False,
    ):
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.epoch_in_index = epoch_in_index
        self.rank, self.world_size = rank, world_size
        self.per_rank = -(-length // world_size)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        order += order[: self.per_rank * self.world_size - self.length]  # pad to divide evenly
        offset = self.epoch * self.length if self.epoch_in_index else 0
        return [i + offset for i in order[self.rank :: self.world_size]]

    def __iter__(self):
        return iter(self._order()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start
