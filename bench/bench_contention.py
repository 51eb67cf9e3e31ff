"""CPU work on a shared machine: each copy's throughput with 1, 2 and 4 copies running at once.

    python bench/bench_contention.py                  # the thread policy (sr_course/threads.py)
    python bench/bench_contention.py --policy off     # torch's and OpenMP's defaults, for comparison
    python bench/bench_contention.py --work imresize --copies 1 2 4 --seconds 8

Three kinds of work, each run as k separate processes that start together (after their warm-up)
and work for the same window: MATLAB imresize of a DIV2K-size uint8 image by 1/4, one SRResNet
training step (the demo profile's network and batch: 16 crops of 48 pixels), and one TODO-only grading
of the reference (sandboxed, jobs=1). Each copy's throughput is divided by one copy's alone.
Goal: with k copies on c cores each keeps at least 0.7 x min(1, c / k) of its solo throughput.
One JSON line per (work, k).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

WORKS = ("imresize", "train step", "grade todos")
if importlib.util.find_spec("sr_course.grading") is None:  # the student kit
    WORKS = WORKS[:2]


def _imresize():
    import numpy as np

    from sr_course.data.imresize import imresize

    hr = np.random.default_rng(0).integers(0, 256, (1356, 2040, 3), dtype=np.uint8)
    return lambda: imresize(hr, 0.25)


def _train_step():
    import torch

    from sr_course.config import load_config
    from sr_course.models import SRResNet

    g = load_config("demo").G
    net = SRResNet(
        large_kernel_size=g.large_kernel_size,
        small_kernel_size=g.small_kernel_size,
        n_channels=g.n_channels,
        n_blocks=g.n_blocks,
        scaling_factor=g.scaling_factor,
        batch_norm=g.batch_norm,
    )
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    lr, hr = torch.rand(16, 3, 12, 12), torch.rand(16, 3, 48, 48) * 2 - 1

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(net(lr), hr).backward()
        opt.step()

    return step


def _grade_todos():
    # The instructors' grading package is not in the student kit: there this work is left out.
    todos = importlib.import_module("sr_course.grading.todos")
    from sr_course.course import STUDENT_FILES

    root = todos.KIT_ROOT
    files = {f"sr_course/{f}": (root / "sr_course" / f).read_text() for f in STUDENT_FILES}
    return lambda: todos.grade_todos(files, jobs=1, seed=1)


MAKE = {"imresize": _imresize, "train step": _train_step, "grade todos": _grade_todos}


def worker(work: str, start_at: float, seconds: float) -> None:
    """One copy: warm up, wait for the common start, count operations for `seconds`."""
    from sr_course import threads

    threads.apply()
    op = MAKE[work]()
    op()  # warm-up (and, for grading, the reference's outputs)
    while time.time() < start_at:
        time.sleep(0.01)
    t0, n = time.perf_counter(), 0
    while True:
        op()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    print(json.dumps({"ops_per_s": n / elapsed, "ops": n}), flush=True)


def run_copies(work: str, k: int, seconds: float, policy: str) -> list[float]:
    env = dict(os.environ)
    if policy == "off":
        env["SR_THREAD_POLICY"] = "off"
        env.pop("SR_THREADS", None)
    else:
        env.pop("SR_THREAD_POLICY", None)
        # k of our processes share the machine: each takes its share (what grade_many does).
        from sr_course import threads

        env["SR_THREADS"] = str(threads.count(jobs=k))
    warmup = {"imresize": 15, "train step": 20, "grade todos": 60}[work] + 5 * k
    start_at = time.time() + warmup
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", work, str(start_at), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(k)
    ]
    rates = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a {work} copy failed (exit {p.returncode})")
        rates.append(json.loads(out.strip().splitlines()[-1])["ops_per_s"])
    return rates


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", nargs="+", choices=WORKS, default=list(WORKS))
    parser.add_argument("--copies", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--policy", choices=("on", "off"), default="on")
    args = parser.parse_args()
    from sr_course import threads

    cores = threads.cores()
    for work in args.work:
        seconds = args.seconds * (3 if work == "grade todos" else 1)
        solo = None
        for k in sorted(set(args.copies)):
            rates = run_copies(work, k, seconds, args.policy)
            if k == 1 or solo is None:
                solo = statistics.mean(rates) if k == 1 else None
            kept = [round(r / solo, 3) for r in rates] if solo else None
            emit(
                bench="contention",
                work=work,
                policy=args.policy,
                copies=k,
                cores=cores,
                ops_per_s=[round(r, 3) for r in rates],
                kept_of_solo=kept,
                goal=round(0.7 * min(1.0, cores / k), 3),
                met=bool(kept) and min(kept) >= 0.7 * min(1.0, cores / k),
                load=round(os.getloadavg()[0], 2),
                date=time.strftime("%Y-%m-%d"),
                machine=machine(),
            )


if __name__ == "__main__":
    main()
