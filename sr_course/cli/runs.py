"""`python -m sr_course runs`: the training runs under a folder side by side, best first."""

from __future__ import annotations

import os

from ..evaluation.runs import runs_table


def register(sub) -> None:
    p = sub.add_parser(
        "runs",
        help="list the training runs under a folder side by side, best first",
        description="Reads each run's run.json: what changed from the paper's recipe, iterations, "
        "training time and the PSNR/SSIM on a test set (from `test`, else from validation).",
    )
    p.add_argument(
        "folder",
        nargs="?",
        help="where the runs are (default: $SR_RUNS_DIR, as for every command, else runs/: "
        "every profile's)",
    )
    p.add_argument("--split", default="Set5", help="the test set to rank by (default Set5)")
    p.set_defaults(func=run)


def run(args) -> int:
    folder = args.folder or os.environ.get("SR_RUNS_DIR") or "runs"
    table = runs_table(folder, args.split)
    if not table.startswith("no runs"):  # that sentence names the folder itself
        print(f"runs under {folder}, best PSNR on {args.split} first:")
    print(table)
    return 0
