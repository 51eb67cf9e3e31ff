"""`python -m sr_course convert-checkpoint`: a checkpoint of the course's old format, made safe."""

from __future__ import annotations

from ..checkpoint import convert_legacy_checkpoint


def register(sub) -> None:
    p = sub.add_parser(
        "convert-checkpoint",
        help="convert a checkpoint of the course's old format (pickled modules) that you trust",
        description="Unpickles OLD (this can run code: only for files you trust) and writes its weights in "
        "the kit's safe checkpoint format to NEW.",
    )
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=run)


def run(args) -> int:
    out = convert_legacy_checkpoint(args.old, args.new)
    print(f"converted {args.old} -> {out}")
    return 0
