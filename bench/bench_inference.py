"""Peak memory and time of 4x super-resolution of a DIV2K-valid-size image (510x339 LR -> 2040x1356)
with the full SRResNet on the CPU, untiled and tiled. Each case runs in its own process, so the
peak resident memory (ru_maxrss) of one does not hide the other.

    python bench/bench_inference.py

Results: bench/README.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from sr_course.models import SRResNet
from sr_course.inference import super_resolve
tile = json.loads(sys.argv[1])
torch.manual_seed(0)
model = SRResNet().eval()
lr = np.random.default_rng(0).integers(0, 256, (339, 510, 3), dtype=np.uint8)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
sr = None if tile == "skip" else super_resolve(model, lr, tile=tile)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": peak / 1024, "before_mib": base / 1024, "seconds": seconds, "shape": None if sr is None else list(sr.shape)}))
"""


def run(tile) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(tile)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    where = machine()
    base = run("skip")
    emit(
        bench="inference",
        case="process with torch + SRResNet loaded, no inference",
        peak_mib=round(base["peak_mib"]),
        machine=where,
    )
    for label, tile in (
        ("untiled (tile=0)", 0),
        ("automatic (tile=None -> 128)", None),
        ("tile=64", 64),
    ):
        r = run(tile)
        emit(
            bench="inference",
            case=f"SRResNet x4 510x339 -> 2040x1356 on CPU, {label}",
            peak_mib=round(r["peak_mib"]),
            peak_gib=round(r["peak_mib"] / 1024, 2),
            seconds=round(r["seconds"], 1),
            machine=where,
        )


if __name__ == "__main__":
    main()
