"""`python -m sr_course grid`: the comparison figure of a report, with zoomed insets."""

from __future__ import annotations

import argparse

from ..evaluation.visualize import comparison_grid, default_methods
from .common import add_config_arguments, add_model_arguments, config_of, named_models, out_folder


def register(sub) -> None:
    p = sub.add_parser(
        "grid",
        help="comparison figure for a report: LR, bicubic, your models and HR with zoomed insets",
        description="Rows are the images of a test set, columns LR (nearest), Bicubic, the models and HR, with "
        "PSNR/SSIM under each panel. Writes a 220-dpi PNG and a vector PDF. Example:\n  python -m sr_course "
        "grid --profile course --split Set5 --models SRResNet=runs/course/srresnet/best.pt "
        "SRGAN=runs/course/srgan/last.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--split", default="Set5", help="test set (default Set5)")
    add_model_arguments(p, "checkpoints, one column each", "figures")
    p.add_argument("--images", nargs="*", type=int, help="image indices (default: all)")
    p.add_argument(
        "--zoom",
        nargs=3,
        type=int,
        metavar=("TOP", "LEFT", "SIZE"),
        help="a fixed inset, in HR pixels, for every image shown (default: chosen where the HR "
        "image has detail and the methods differ)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_of(args)
    out = out_folder(args, cfg) / f"grid_{args.split}"
    comparison_grid(
        args.split,
        default_methods(named_models(args.models)),
        cfg,
        out=out,
        images=args.images,
        zoom=tuple(args.zoom) if args.zoom else None,
        tile=args.tile,
    )
    print(f"saved {out.with_suffix('.png')} and {out.with_suffix('.pdf')}")
    return 0
