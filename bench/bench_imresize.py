"""imresize speed: a DIV2K-size uint8 image (2040x1356x3) at scale 1/4, and x4 upscaling of its LR.

    python bench/bench_imresize.py [--repeat 15]

Prints one JSON line per figure (median milliseconds after warm-up). Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine, median_ms  # noqa: E402

from sr_course.data.imresize import imresize, imresize_torch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (1356, 2040, 3), dtype=np.uint8)
    lr = imresize(hr, 0.25)
    hr_t = torch.from_numpy(hr).permute(2, 0, 1).contiguous()
    lr_t = torch.from_numpy(lr).permute(2, 0, 1).contiguous()
    where = machine()
    cases = [
        ("numpy uint8 2040x1356 x0.25", lambda: imresize(hr, 0.25), None),
        ("torch-cpu uint8 2040x1356 x0.25", lambda: imresize_torch(hr_t, 0.25), None),
        ("torch-cpu float32 2040x1356 x0.25", lambda: imresize_torch(hr_t.float(), 0.25), None),
        ("numpy uint8 510x339 x4", lambda: imresize(lr, 4), None),
        ("torch-cpu uint8 510x339 x4", lambda: imresize_torch(lr_t, 4), None),
    ]
    if torch.cuda.is_available():
        hr_g, lr_g = hr_t.cuda(), lr_t.cuda()
        sync = torch.cuda.synchronize
        cases += [
            ("torch-cuda uint8 2040x1356 x0.25", lambda: imresize_torch(hr_g, 0.25), sync),
            (
                "torch-cuda float32 2040x1356 x0.25",
                lambda: imresize_torch(hr_g.float(), 0.25),
                sync,
            ),
            ("torch-cuda uint8 510x339 x4", lambda: imresize_torch(lr_g, 4), sync),
        ]
    for name, fn, sync in cases:
        emit(
            bench="imresize",
            case=name,
            median_ms=round(median_ms(fn, args.repeat, sync=sync), 2),
            machine=where,
        )


if __name__ == "__main__":
    main()
