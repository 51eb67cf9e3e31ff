"""The instructors' commands, `python -m sr_course release` and `grade` (the student kit has neither:
the release leaves this folder out, so the kit's command line lists only the student's commands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import grader, isolation, release
from .kit import ReleaseError


def register(sub) -> None:
    p = sub.add_parser(
        "release",
        help="build the student kit from this reference (instructors)",
        description="Writes the student kit to --out: solution regions become NotImplementedError stubs, "
        "notebook outputs are cleared, hidden tests and grading tools are left out; then checks the kit.",
    )
    p.add_argument("--out", required=True, help="a new (or empty) folder for the kit")
    p.add_argument(
        "--git-branch", help="also commit the kit as the tip of this branch of this repository"
    )
    p.set_defaults(func=run_release)

    p = sub.add_parser(
        "grade",
        help="grade submissions: one student, or a whole class (instructors)",
        description="Reads each submission's sr_course/models.py, losses.py and solver.py (and nothing else). "
        "Each TODO is graded by behaviour in an operating-system sandbox (bubblewrap, or a separate user), against the reference, on its own; then the notebooks "
        "run with the student's files (smoke profile). Prints a score per TODO, the notebooks and the total. "
        "Several submissions (or a folder of them) are graded in parallel into --out: one JSON per student "
        "and gradebook.csv. Submission folders are only read.",
        epilog="examples:\n  python -m sr_course grade submissions/alice\n"
        "  python -m sr_course grade submissions/ --out grades --jobs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="+", help="student kit folders, or folders that hold them")
    p.add_argument("--out", help="folder for the gradebook and one JSON per student (a class)")
    p.add_argument("--json", help="one submission: also write its report as JSON here")
    p.add_argument("--jobs", type=int, help="submissions graded at once (default: the CPU cores)")
    p.add_argument(
        "--timeout", type=float, default=30, help="seconds for each TODO's checks (default 30)"
    )
    p.add_argument(
        "--cell-timeout", type=float, default=60, help="seconds per notebook cell (default 60)"
    )
    p.add_argument("--no-notebooks", action="store_true", help="grade the TODOs only")
    p.add_argument(
        "--isolation",
        choices=("auto", *isolation.MODES),
        default="auto",
        help="the sandbox for the students' code: auto (default: the strongest that works here), "
        "bwrap (namespaces; needs bubblewrap) or user (a separate user; needs root)",
    )
    p.add_argument(
        "--no-isolation",
        action="store_true",
        help="run the code unsandboxed: only for grading the reference itself (reports say so)",
    )
    p.set_defaults(func=run_grade)


def run_release(args) -> int:
    try:
        release.build_release(args.out)
        if args.git_branch:
            commit = release.commit_to_branch(Path(args.out), args.git_branch)
            print(f"committed the student kit to branch {args.git_branch} ({commit[:12]})")
    except (ReleaseError, isolation.IsolationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def run_grade(args) -> int:
    options = dict(
        notebooks=not args.no_notebooks,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        isolation_mode="none" if args.no_isolation else args.isolation,
    )
    try:
        subs = grader.find_submissions(args.submissions)
        if len(subs) == 1 and not args.out:
            grader.grade(subs[0], json_out=args.json, **options)
        else:
            grader.grade_many(subs, args.out or "grades", jobs=args.jobs, **options)
    except (ReleaseError, isolation.IsolationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
