"""Peak memory and time of 4x super-resolution on the CPU: a DIV2K-valid-size image (510x339 LR ->
2040x1356) with the full SRResNet, untiled and tiled; and a 3000x3000 LR (-> 12000x12000, a 432 MB
uint8 output) with a small SRResNet, where the output itself dominates memory. Each case runs in its
own process, so the peak resident memory (ru_maxrss) of one does not hide the other.

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
from sr_course.evaluation.inference import super_resolve
args = json.loads(sys.argv[1])
tile = args["tile"]
torch.manual_seed(0)
model = SRResNet(**args.get("G", {})).eval()
lr = np.random.default_rng(0).integers(0, 256, (*args.get("lr", (339, 510)), 3), dtype=np.uint8)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
sr = None if tile == "skip" else super_resolve(model, lr, tile=tile)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": peak / 1024, "before_mib": base / 1024, "seconds": seconds, "shape": None if sr is None else list(sr.shape)}))
"""


def run(tile, **more) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps({"tile": tile, **more})],
        capture_output=True,
        text=True,
        check=True,
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
    small = {"n_channels": 16, "n_blocks": 2}
    r = run(None, G=small, lr=(3000, 3000))
    emit(
        bench="inference",
        case="SRResNet(n_channels=16, n_blocks=2) x4 3000x3000 -> 12000x12000 on CPU, automatic tiles",
        peak_mib=round(r["peak_mib"]),
        peak_gib=round(r["peak_mib"] / 1024, 2),
        seconds=round(r["seconds"], 1),
        machine=where,
    )


if __name__ == "__main__":
    main()
