"""Training-patch loader throughput: SRDataset (decoded-once memory-mapped cache) against a
re-creation of the course's old design (decode both PNGs for every sample), in the same run.

    python bench/bench_loader.py [--images 20] [--batches 300] [--workers 2]

Makes DIV2K-size synthetic PNG pairs (2040x1356 HR, MATLAB-bicubic LR) in a temporary folder and
prints JSON lines: patch pairs per second (batch 16, crop 96), the one-time cache build, its size.
Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

from sr_course.config import load_config
from sr_course.data.datasets import SRDataset
from sr_course.data.imresize import imresize
from sr_course.data.lists import read_image, write_png


def make_images(root: Path, n: int) -> None:
    """n photo-like 2040x1356 PNG pairs (smooth gradients + texture + noise: PNG sizes like DIV2K's)."""
    rng = np.random.default_rng(0)
    hr_dir, lr_dir = root / "DIV2K/DIV2K_train_HR", root / "DIV2K/DIV2K_train_LR_bicubic/X4"
    yy, xx = np.mgrid[0:1356, 0:2040].astype(np.float32)
    for i in range(n):
        f = rng.uniform(0.002, 0.02, 3)
        img = np.stack(
            [127 + 100 * np.sin(xx * f[c] + yy * f[(c + 1) % 3] + c) for c in range(3)], axis=2
        )
        img += rng.normal(0, 12, img.shape).astype(np.float32)
        hr = np.clip(img, 0, 255).astype(np.uint8)
        write_png(hr, hr_dir / f"{i + 1:04d}.png")
        write_png(imresize(hr, 0.25), lr_dir / f"{i + 1:04d}x4.png")


class CourseDataset(torch.utils.data.Dataset):
    """The old design: every sample decodes the whole HR and LR PNGs to cut one patch."""

    def __init__(self, rows, root, crop=96, patches_per_image=100):
        self.rows, self.root, self.crop, self.ppi = rows, root, crop, patches_per_image

    def __len__(self):
        return len(self.rows) * self.ppi

    def __getitem__(self, index):
        row = self.rows[index % len(self.rows)]
        hr = np.asarray(Image.open(self.root / row["hr"]).convert("RGB"))
        lr = np.asarray(Image.open(self.root / row["lr"]).convert("RGB"))
        c = self.crop // 4
        rng = np.random.default_rng(index)
        y, x = int(rng.integers(0, lr.shape[0] - c)), int(rng.integers(0, lr.shape[1] - c))
        lr_p = torch.from_numpy(lr[y : y + c, x : x + c].transpose(2, 0, 1).copy()).float() / 255
        hr_p = (
            torch.from_numpy(
                hr[4 * y : 4 * y + self.crop, 4 * x : 4 * x + self.crop].transpose(2, 0, 1).copy()
            ).float()
            / 127.5
            - 1
        )
        return lr_p, hr_p


def pairs_per_second(dataset, batches: int, workers: int, warmup: int = 5) -> float:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=16, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )

    def forever():
        while True:
            yield from loader

    it = forever()
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        lr, _ = next(it)
        n += lr.shape[0]
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--course-batches", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    where = machine()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_images(root, args.images)
        emit(
            bench="loader",
            case="make synthetic DIV2K-size PNG pairs",
            images=args.images,
            seconds=round(time.perf_counter() - t0, 1),
            machine=where,
        )
        cfg = load_config("paper", data_root=str(root), data={"num_workers": args.workers})
        ds = SRDataset("train", cfg)
        t0 = time.perf_counter()
        for i in range(len(ds.rows)):
            ds._array(i, "hr"), ds._array(i, "lr")
        build = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (root / "cache").rglob("*.npy"))
        emit(
            bench="loader",
            case="one-time cache build (decode + write .npy)",
            images=args.images,
            seconds=round(build, 2),
            ms_per_image=round(1e3 * build / args.images, 1),
            cache_mb=round(size / 2**20, 1),
            mb_per_image=round(size / 2**20 / args.images, 2),
            machine=where,
        )
        t0 = time.perf_counter()
        read_image(root / ds.rows[0]["hr"])
        emit(
            bench="loader",
            case="decode one 2040x1356 PNG",
            ms=round(1e3 * (time.perf_counter() - t0), 1),
            machine=where,
        )
        ours = pairs_per_second(SRDataset("train", cfg), args.batches, args.workers)
        emit(
            bench="loader",
            case=f"SRDataset (memory-mapped cache), batch 16, crop 96, {args.workers} workers",
            pairs_per_s=round(ours),
            machine=where,
        )
        course = pairs_per_second(
            CourseDataset(ds.rows, root), args.course_batches, args.workers, warmup=1
        )
        emit(
            bench="loader",
            case=f"course design (decode both PNGs per sample), {args.workers} workers",
            pairs_per_s=round(course, 1),
            machine=where,
        )
        emit(
            bench="loader",
            case="speed-up over the course design",
            ratio=round(ours / course, 1),
            machine=where,
        )


if __name__ == "__main__":
    main()
