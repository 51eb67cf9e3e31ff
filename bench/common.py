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


def emit(**fields) -> None:
    """Print one benchmark figure as a JSON line."""
    print(json.dumps(fields), flush=True)
