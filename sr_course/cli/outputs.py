"""`python -m sr_course outputs`: every test image's x4 output per model and bicubic, as PNGs."""

from __future__ import annotations

import argparse

from ..evaluation.outputs import save_outputs
from .common import add_config_arguments, add_model_arguments, config_of, named_models, out_folder


def register(sub) -> None:
    p = sub.add_parser(
        "outputs",
        help="write every test image's x4 output per model and bicubic, for human evaluation",
        description="Lossless PNGs under OUT/<model>/<split>/ and an index (index.csv/.json: image, "
        "model, PSNR, SSIM). Running again keeps what a checkpoint already made; a changed checkpoint "
        "is written anew. Example:\n  python -m sr_course outputs --profile course --models "
        "srresnet=runs/course/srresnet/best.pt srgan=runs/course/srgan/best.pt --splits Set5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    add_model_arguments(p, "checkpoints, one folder each", "outputs")
    p.add_argument("--splits", nargs="+", default=["Set5"], help="test sets (default Set5)")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_of(args)
    models = named_models(args.models or [])
    save_outputs(models, args.splits, cfg, out_folder(args, cfg), device=cfg.device, tile=args.tile)
    return 0
