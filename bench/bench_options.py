"""The improvements beyond SRGAN, side by side on a CPU: parameters, training speed on the smoke
profile, and Sample-set PSNR after the demo's budget (1,500 iterations, demo profile) for the
PSNR-oriented generators.

    python bench/bench_options.py [--iterations 1500] [--only edsr rrdb ...] [--data-root data]

One JSON line per option. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

from sr_course.components.registry import build_generator
from sr_course.config import load_config
from sr_course.data.sample import build_sample
from sr_course.evaluation.evaluate import evaluate
from sr_course.models import count_parameters
from sr_course.train.trainer import Trainer

OPTIONS = {
    "srresnet": {"G": {"batch_norm": True}},
    "edsr": {"G": {"batch_norm": False}},
    "rrdb": {"model": {"arch": "rrdb"}},
    "vdsr": {
        "model": {"arch": "vdsr"},
        "srresnet": {"optimizer": "sgd", "lr": 0.05, "grad_clip_theta": 0.01},
    },
    "vdsr-adam": {"model": {"arch": "vdsr"}, "srresnet": {"lr": 1e-3}},
    "swinir": {"model": {"arch": "swinir"}},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--only", nargs="*", choices=list(OPTIONS))
    parser.add_argument("--data-root", default=None, help="where the sample is (built if missing)")
    args = parser.parse_args()
    where = machine()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root or f"{tmp}/data"
        if not (Path(data_root) / "lists" / "Sample.csv").exists():
            with contextlib.redirect_stdout(io.StringIO()):
                build_sample(data_root)
        for name in args.only or OPTIONS:
            changes = OPTIONS[name]
            paper = count_parameters(build_generator(load_config("paper", **changes)))
            smoke = load_config(
                "smoke",
                data_root=data_root,
                runs_dir=f"{tmp}/smoke",
                data={"val_split": None, "patches_per_image": 20},
                **changes,
            )
            t = Trainer(smoke, "srresnet", out_dir=f"{tmp}/smoke/{name}", progress=False)
            with contextlib.redirect_stdout(io.StringIO()):
                t0 = time.perf_counter()
                t.fit()
            smoke_speed = t.iteration / (time.perf_counter() - t0)
            demo = load_config(
                "demo",
                data_root=data_root,
                runs_dir=f"{tmp}/demo",
                train={"max_iterations": args.iterations},
                **changes,
            )
            t = Trainer(demo, "srresnet", out_dir=f"{tmp}/demo/{name}", progress=False)
            with contextlib.redirect_stdout(io.StringIO()):
                t0 = time.perf_counter()
                t.fit()
                seconds = time.perf_counter() - t0
                table = evaluate({name: t.G_raw}, ["Sample"], demo, verbose=False)["table"]
            emit(
                bench="options",
                option=name,
                params_paper_size=paper,
                params_demo_size=count_parameters(t.G_raw),
                smoke_it_per_s=round(smoke_speed, 1),
                demo_iterations=t.iteration,
                demo_seconds=round(seconds),
                sample_psnr=round(table[name]["Sample"]["psnr"], 2),
                sample_ssim=round(table[name]["Sample"]["ssim"], 4),
                bicubic_psnr=round(table["bicubic"]["Sample"]["psnr"], 2),
                machine=where,
            )


if __name__ == "__main__":
    main()
