"""imresize speed: a DIV2K-size uint8 image (2040x1356x3) at scale 1/4, and x4 upscaling of its LR.

    python bench/bench_imresize.py [--repeat 15]
    python bench/bench_imresize.py --load 3      # with 3 busy processes beside it (a shared machine)

Beside ours, the same 1/4 resize the way BasicSR's torch port does it (basicsr/utils/
matlab_functions.py, re-implemented here from its published algorithm: float32, one matrix-vector
product per output row and channel, H then W, no rounding between the passes), in the same run and
under the same load: the two are timed in turn, round by round, and the speed-up is the median of
the rounds' ratios (a load that comes and goes then weighs on both alike). `--load N` starts N
processes that multiply matrices with torch's default threads for the whole run, as other users'
notebooks do on a shared machine.

Prints one JSON line per figure (median milliseconds after warm-up). Results: bench/README.md.
"""

# ruff: noqa: I001 (sr_course is imported before torch on purpose: see below)
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

# sr_course before torch, as the kit's command line and notebooks import them: its thread policy
# makes OpenMP's waiting threads sleep, which OpenMP reads once, when torch loads it. (With torch
# imported first, imresize measured 19-26 ms here instead of 15.5-17: torch's idle pool threads
# spin beside it on the 2-core machine.)
import sr_course  # noqa: F401

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine, median_ms, paired_ms  # noqa: E402

from sr_course.data.imresize import imresize, imresize_torch


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (
        -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    ) * ((ax > 1) & (ax <= 2))


def _basicsr_weights(in_len: int, out_len: int, scale: float):
    """Per output index: its taps' weights and first (mirror-padded) input index, and the padding."""
    width = 4.0 / scale if scale < 1 else 4.0
    u = torch.arange(1, out_len + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None]
    d = u[:, None] - idx
    w = scale * _cubic(d * scale) if scale < 1 else _cubic(d)
    w = w / w.sum(1, keepdim=True)
    keep = (w != 0).any(0)  # drop tap columns that are zero for every output
    w, idx = w[:, keep], idx[:, keep]
    pad_start, pad_end = int(-idx.min() + 1), int(idx.max() - in_len)
    return w.float(), (idx[:, 0] + pad_start - 1).long(), max(pad_start, 0), max(pad_end, 0)


def _mirror_pad(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    n = x.shape[dim]
    parts = [x.narrow(dim, 0, before).flip(dim)] if before else []
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, n - after, after).flip(dim))
    return torch.cat(parts, dim)


def basicsr_style_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """BasicSR's torch imresize (see the module docstring): (H, W, C) float in, float32 out."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()
    c, h, w = x.shape
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    wh, ih, ph0, ph1 = _basicsr_weights(h, out_h, scale)
    ww, iw, pw0, pw1 = _basicsr_weights(w, out_w, scale)
    aug = _mirror_pad(x, 1, ph0, ph1)
    mid = torch.empty(c, out_h, w)
    k = wh.shape[1]
    for i in range(out_h):
        for j in range(c):
            mid[j, i] = aug[j, ih[i] : ih[i] + k].t().mv(wh[i])
    aug = _mirror_pad(mid, 2, pw0, pw1)
    out = torch.empty(c, out_h, out_w)
    k = ww.shape[1]
    for i in range(out_w):
        for j in range(c):
            out[j, :, i] = aug[j, :, iw[i] : iw[i] + k].mv(ww[i])
    return out.numpy().transpose(1, 2, 0)


def _busy() -> None:  # pragma: no cover - a load process
    a = torch.randn(256, 256)
    while True:
        a = torch.tanh(a @ a)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the bench")
    args = parser.parse_args()
    load = [
        multiprocessing.get_context("spawn").Process(target=_busy, daemon=True)
        for _ in range(args.load)
    ]
    for proc in load:
        proc.start()
    if load:
        time.sleep(5)  # let the load start
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (1356, 2040, 3), dtype=np.uint8)
    lr = imresize(hr, 0.25)
    hr_t = torch.from_numpy(hr).permute(2, 0, 1).contiguous()
    lr_t = torch.from_numpy(lr).permute(2, 0, 1).contiguous()
    where = machine()
    hr_float = hr.astype(np.float32) / 255
    # Round by round, side by side: ours, then BasicSR's, under the same moment's load.
    ours, basicsr = paired_ms(
        [lambda: imresize(hr, 0.25), lambda: basicsr_style_imresize(hr_float, 0.25)], args.repeat
    )
    ratios = [b / o for o, b in zip(ours, basicsr)]
    diff = np.abs(
        basicsr_style_imresize(hr_float, 0.25) * 255 - imresize(hr.astype(np.float64), 0.25)
    )
    emit(
        bench="imresize vs BasicSR",
        case="2040x1356x3 x0.25: ours (numpy uint8, MATLAB-exact) against BasicSR's algorithm (float32)",
        load=args.load,
        loadavg=round(os.getloadavg()[0], 2),
        rounds=args.repeat,
        ours_ms=round(statistics.median(ours), 2),
        basicsr_ms=round(statistics.median(basicsr), 2),
        speedup=round(statistics.median(ratios), 2),  # the median of the rounds' ratios
        speedup_quartiles=[round(q, 2) for q in statistics.quantiles(ratios, n=4)[::2]],
        basicsr_max_abs_diff_from_double=round(float(diff.max()), 4),
        date=time.strftime("%Y-%m-%d"),
        machine=where,
    )
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
            load=args.load,
            median_ms=round(median_ms(fn, args.repeat, sync=sync), 2),
            machine=where,
        )


if __name__ == "__main__":
    main()
