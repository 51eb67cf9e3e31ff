"""Data on disk, data lists, and SRDataset with fast patch sampling.

Layout under the data root (what data_prep/download.py and sr_course/data/sample.py write):

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
from pathlib import Path

import numpy as np
import torch

from ..course import SAMPLE_SPLITS, SPLITS
from ..errors import SettingError
from ..utils import atomic_write, convert_image
from .imresize import imresize
from .lists import (
    DOWNLOAD_HINT,
    LIST_SCALE,
    BadImage,
    DataError,
    as_rgb,
    create_data_lists,
    crop_to_multiple,
    image_to_tensor,
    list_path,
    read_image,
)
from .sample import build_sample


def read_data_list(data_root: str | os.PathLike, split: str) -> list[dict]:
    """The rows of lists/<split>.csv, making the list (and the sample) first when needed."""
    root = Path(data_root)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    path = list_path(root, split)
    if not path.exists():
        if split in SAMPLE_SPLITS:
            build_sample(root)
        elif not (root / SPLITS[split].hr).is_dir():
            raise DataError(
                f"split {split!r} is not under data root {root.resolve()} (no {SPLITS[split].hr}/): download "
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


def _gray(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> the same shape with R = G = B = its luma (ITU-R BT.601), rounded."""
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(np.rint(luma).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)


class SRDataset(torch.utils.data.Dataset):
    """LR/HR pairs of a split.

    split "train": the splits in config.data.train_splits; item i is a random aligned crop pair
        (lr (3, c/s, c/s) in [0, 1], hr (3, c, c) in [-1, 1]), c = config.data.crop_size, with a random
        flip/90-degree rotation, with probability config.data.gray_probability made gray (R = G = B,
        both patches) and with probability config.data.channel_shuffle its channels put in a random
        order (both patches alike); len = images x config.data.patches_per_image. Each epoch draws new
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
            else sum(len(list((self.root / SPLITS[n].hr).glob("*.png"))) for n in names)
        )
        self.crop = int(config.data.crop_size)
        if self.train:
            if self.crop % self.scale:
                raise SettingError(
                    f"data.crop_size ({self.crop}) must be a multiple of scale ({self.scale})"
                )
            too_small = [r["hr"] for r in self.rows if min(r["height"], r["width"]) < self.crop]
            if too_small:
                raise DataError(
                    f"{len(too_small)} training image(s) are smaller than data.crop_size={self.crop}, e.g. "
                    f"{too_small[0]}; lower crop_size or rebuild the lists with a matching --crop-size"
                )
        self.patches_per_image = int(config.data.patches_per_image)
        self.gray_probability = float(config.data.gray_probability)
        self.channel_shuffle = float(config.data.channel_shuffle)
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
                convert_image(image_to_tensor(lr), "[0,255]", "[0,1]"),
                convert_image(image_to_tensor(hr), "[0,255]", "[-1,1]"),
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
        # Drawn only when asked for, so that without them every crop stays what it was.
        if self.gray_probability and rng.random() < self.gray_probability:
            lr, hr = _gray(lr), _gray(hr)
        if self.channel_shuffle and rng.random() < self.channel_shuffle:
            order = rng.permutation(3)
            lr, hr = lr[..., order], hr[..., order]
        return (
            convert_image(image_to_tensor(lr), "[0,255]", "[0,1]"),
            convert_image(image_to_tensor(hr), "[0,255]", "[-1,1]"),
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
