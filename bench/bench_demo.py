"""The demo (`python -m sr_course demo`, from scratch): its time, alone and with copies at once, and
what its SRGAN looks like beside SRResNet on the sample's test images.

    python bench/bench_demo.py                 # one demo: time, then the quality lines
    python bench/bench_demo.py --copies 2      # two demos started together: each one's time

Quality, per method (bicubic, srresnet, srgan) from the demo's kept outputs (outputs/<method>/Sample):
    psnr, ssim, lpips      the demo's results.json (LPIPS with the offline random AlexNet backbone)
    gray_cast, border_ratio, texture    sr_course/evaluation/artefacts.py (what each one measures)
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

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

from sr_course.evaluation.artefacts import look


def quality(out: Path, data_root: Path) -> dict:
    """{method: figures} from a finished demo folder: its scores and the look of its outputs."""
    results = json.loads((out / "results.json").read_text())["sets"]["Sample"]
    hr_dir = data_root / "sample" / "Sample" / "HR"
    return {
        method: {
            **{k: round(v, 4) for k, v in scores.items()},
            **look(out / "outputs" / method / "Sample", hr_dir),
        }
        for method, scores in results.items()
    }


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
