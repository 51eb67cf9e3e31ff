"""`python -m sr_course rate`: a blind 1-5 rating page (MOS study), or --score the raters' files."""

from __future__ import annotations

import argparse

from ..evaluation import rating
from .common import add_config_arguments, add_model_arguments, config_of, named_models, out_folder


def register(sub) -> None:
    p = sub.add_parser(
        "rate",
        help="a blind 1-5 rating page of SR images (MOS study), or --score the raters' files",
        description="Writes OUT/page/index.html (open it from disk, or publish OUT/page/ on any static "
        "host; nothing is sent anywhere) and the answer key OUT/key.json beside it, never inside it, with the images of bicubic, the models and the HR (a hidden anchor), one at a time "
        "in a random order per rater, without method names; each rater saves a JSON file. Then "
        "--score checks the files and writes the MOS per method with 95% confidence intervals. "
        "Example:\n  python -m sr_course rate --profile course --split Set5 --models "
        "srresnet=runs/course/srresnet/best.pt srgan=runs/course/srgan/best.pt\n  "
        "python -m sr_course rate --profile course --score ratings/*.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    add_model_arguments(p, "checkpoints to rate beside bicubic and HR", "rating")
    p.add_argument("--split", default="Set5", help="test set (default Set5)")
    p.add_argument("--images", nargs="*", type=int, help="image indices (default: all)")
    p.add_argument(
        "--score", nargs="+", metavar="RATINGS.json", help="score the study in OUT with these files"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_of(args)
    out = out_folder(args, cfg)
    if args.score:
        rating.score_study(out / rating.KEY, args.score, out)
        return 0
    page = rating.make_study(
        named_models(args.models or []), args.split, cfg, out, args.images, tile=args.tile
    )
    print(
        f"rating page written: {page} (open it in a browser, or publish the folder {page.parent} "
        f"as it is; each rater saves a JSON file). The answer key, {out / rating.KEY}, stays "
        "with you: --score reads it there"
    )
    return 0
