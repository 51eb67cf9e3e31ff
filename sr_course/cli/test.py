"""`python -m sr_course test`: PSNR/SSIM (and LPIPS) of checkpoints on the test sets, beside bicubic."""

from __future__ import annotations

import argparse

from ..evaluation.evaluate import evaluate
from .common import add_config_arguments, add_model_arguments, config_of, named_models, out_folder


def register(sub) -> None:
    p = sub.add_parser(
        "test",
        help="PSNR/SSIM of trained models on the test sets, with a bicubic row",
        description="Evaluate checkpoints under the SR papers' protocol (Y channel, 4-pixel border, 8-bit "
        "output) on the test sets, always beside bicubic. Example:\n  python -m sr_course test --profile course --models "
        "srresnet=runs/course/srresnet/best.pt srgan=runs/course/srgan/last.pt --splits Set5 Set14",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    add_model_arguments(p, "checkpoints to evaluate (none: bicubic only)", "test")
    p.add_argument(
        "--splits", nargs="+", help="test sets (default: data.test_splits of the profile)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_of(args)
    splits = args.splits or list(cfg.data.test_splits)
    evaluate(named_models(args.models), splits, cfg, out_dir=out_folder(args, cfg), tile=args.tile)
    return 0
