"""`python -m sr_course report`: the report folder a student hands in."""

from __future__ import annotations

from ..evaluation.report import write_report
from .common import add_config_arguments, config_of


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write the report folder: report.md with the best recipes, tables and figures",
        description="From the runs' run.json records, the test results (<runs>/test/results.json) and "
        "the checkpoints: report.md with the recipe of the best SRResNet and SRGAN, the test table beside "
        "bicubic and the paper, the attempts table, loss curves and the comparison figure (PNG + PDF). "
        "What is missing is said in the report.",
    )
    add_config_arguments(p)
    p.add_argument("--runs", help="where the runs are (default: the profile's runs_dir)")
    p.add_argument("--out", help="the report folder (default <runs>/report)")
    p.add_argument("--split", help="the test set of the figure and the ranking (default Set5)")
    p.set_defaults(func=run)


def run(args) -> int:
    write_report(config_of(args), args.out, args.runs, args.split)
    return 0
