"""`python -m sr_course execute-notebooks`: re-execute the course notebooks for committing."""

from __future__ import annotations

from ..notebook import execute_notebooks


def register(sub) -> None:
    p = sub.add_parser(
        "execute-notebooks",
        help="re-execute the course notebooks in place (demo profile) and strip them, for committing",
        description="Runs notebooks/*.ipynb in course order with fresh data and run folders, then keeps "
        "outputs and execution counts but strips other metadata (nbstripout --keep-output --keep-count).",
    )
    p.add_argument(
        "names", nargs="*", help="notebook names without .ipynb (default: all, in course order)"
    )
    p.add_argument(
        "--profile",
        default="demo",
        help="profile to run them on (default demo: models that learn, about 3 min on 2 CPU cores)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    for path in execute_notebooks(args.names or None, profile=args.profile):
        print(f"executed and stripped {path}")
    return 0
