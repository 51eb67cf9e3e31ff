"""`python -m sr_course execute-notebooks`: re-execute the course notebooks, for committing or a hand-in."""

from __future__ import annotations

from ..notebook import execute_notebooks


def register(sub) -> None:
    p = sub.add_parser(
        "execute-notebooks",
        help="re-execute the course notebooks in course order and save them with their outputs "
        "(--in-place: with your own data and runs, for the hand-in)",
        description="Runs notebooks/*.ipynb in course order, then keeps outputs and execution counts "
        "but strips other metadata (nbstripout --keep-output --keep-count) and the progress bars' "
        "widgets. By default in a fresh copy of the kit (its own data and runs: what the committed "
        "notebooks are made with); with --in-place here, with the kit's data/ and "
        "runs/<profile>/, so training cells resume your runs instead of training again.",
    )
    p.add_argument(
        "names", nargs="*", help="notebook names without .ipynb (default: all, in course order)"
    )
    p.add_argument(
        "--profile",
        default="demo",
        help="profile to run them on (default demo: models that learn, about 5 min on 2 CPU cores)",
    )
    p.add_argument(
        "--in-place",
        action="store_true",
        help="run with this kit's data/ and runs/<profile>/ (your hand-in) instead of a fresh copy",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    for path in execute_notebooks(args.names or None, profile=args.profile, in_place=args.in_place):
        print(f"executed and stripped {path}")
    return 0
