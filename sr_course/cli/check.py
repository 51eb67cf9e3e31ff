"""`python -m sr_course check`: every self-check in course order, and the next TODO."""

from __future__ import annotations

from .. import checks


def register(sub) -> None:
    p = sub.add_parser(
        "check", help="run the self-checks of every TODO (models, losses, GAN step, imresize)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    return 1 if checks.run_all() else 0
