"""`python -m sr_course runs`: the training runs under a folder side by side, best first."""

from __future__ import annotations

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
        default="runs",
        help="where the runs are (default runs: every profile's)",
    )
    p.add_argument("--split", default="Set5", help="the test set to rank by (default Set5)")
    p.set_defaults(func=run)


def run(args) -> int:
    print(runs_table(args.folder, args.split))
    return 0
