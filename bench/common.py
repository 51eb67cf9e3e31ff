"""Helpers for the benchmarks: timing with warm-up and one JSON line per figure."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    text = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name()}"
    return text


def median_ms(fn, repeat: int = 15, warmup: int = 3, sync=None) -> float:
    """Median wall time of fn() in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def paired_ms(fns, repeat: int = 15, warmup: int = 2) -> list[list[float]]:
    """Wall times in milliseconds of each of `fns`, called in turn in every round: [fn][round].
    On a loaded machine the load changes from second to second, so figures meant to be compared
    (a speed-up) are timed side by side, round by round, rather than one after the other."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return times


def emit(**fields) -> None:
    """Print one benchmark figure as a JSON line."""
    print(json.dumps(fields), flush=True)
