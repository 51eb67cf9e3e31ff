"""Command line: python -m sr_course <command> [options]. `python -m sr_course --help` lists them."""

from __future__ import annotations

import argparse
import sys


def _cmd_check(args: argparse.Namespace) -> int:
    from . import checks

    checks.run_all()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sr_course",
        description="sr_course: 4x super-resolution with SRResNet and SRGAN, a notebook course kit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    p = sub.add_parser(
        "check", help="run the self-checks of every TODO (models, VGG truncation, imresize)"
    )
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
