"""The demo (`python -m sr_course demo`, from scratch): its time, alone and with copies at once, and
what its SRGAN looks like beside SRResNet on the sample's test images.

    python bench/bench_demo.py                 # one demo: time, then the quality lines
    python bench/bench_demo.py --copies 2      # two demos started together: each one's time

Quality, per method (bicubic, srresnet, srgan) from the demo's kept outputs (outputs/<method>/Sample):
    psnr, ssim, lpips      the demo's results.json (LPIPS with the offline random AlexNet backbone)
    gray_cast              on the gray HR images (camera, coins), inside an 8-pixel border: the largest
                           gap between a channel's mean and another's or the HR's, in gray levels
    border_ratio           mean |SR - HR| on the outer 8 pixels / inside them (a bright or dark
                           frame raises it)
    texture                mean |horizontal difference| of SR / of HR (1: HR's texture; bicubic blurs)
Goals (issue 27): SRGAN gray_cast <= 1, border_ratio no higher than SRResNet's + 0.05, LPIPS at or
below SRResNet's, texture above SRResNet's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

BORDER = 8


def quality(out: Path, data_root: Path) -> dict:
    """{method: figures} from a finished demo folder."""
    results = json.loads((out / "results.json").read_text())["sets"]["Sample"]
    hr_dir = data_root / "sample" / "Sample" / "HR"
    figures = {}
    for method, scores in results.items():
        folder = out / "outputs" / method / "Sample"
        cast, ratios, texture = [], [], []
        for png in sorted(folder.glob("*.png")):
            sr = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
            hr_png = Image.open(hr_dir / f"{png.stem}.png")
            hr = np.asarray(hr_png.convert("RGB"), dtype=np.float64)
            diff = np.abs(sr - hr).mean(axis=2)
            inner = np.zeros(diff.shape, bool)
            inner[BORDER:-BORDER, BORDER:-BORDER] = True
            ratios.append(diff[~inner].mean() / diff[inner].mean())
            texture.append(
                np.abs(np.diff(sr.mean(2), axis=1)).mean()
                / np.abs(np.diff(hr.mean(2), axis=1)).mean()
            )
            if hr_png.mode == "L":  # the gray photographs (camera, coins)
                means = [*sr[inner].mean(axis=0), hr[inner].mean()]
                cast.append(max(means) - min(means))
        figures[method] = {
            **{k: round(v, 4) for k, v in scores.items()},
            "gray_cast": round(max(cast), 2),
            "border_ratio": round(float(np.mean(ratios)), 3),
            "texture": round(float(np.mean(texture)), 3),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        # The sample is built once, before the clock starts: the copies share it.
        subprocess.run(
            [sys.executable, "-c", f"from sr_course.data.sample import build_sample; build_sample({str(data)!r}, verbose=False)"],
            check=True,
        )  # fmt: skip
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sr_course",
                    "demo",
                    "--out",
                    str(tmp / f"demo{k}"),
                    "--data-root",
                    str(data),
                    "--fresh",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for k in range(args.copies)
        ]
        seconds = []
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise SystemExit(f"the demo failed: {err[-2000:]}")
            seconds.append(round(time.perf_counter() - started, 1))
        emit(
            bench="demo", copies=args.copies, seconds=seconds,
            loadavg=round(os.getloadavg()[0], 2), date=time.strftime("%Y-%m-%d"), machine=machine(),
        )  # fmt: skip
        for method, figures in quality(tmp / "demo0", data).items():
            emit(bench="demo quality", method=method, **figures)


if __name__ == "__main__":
    main()
