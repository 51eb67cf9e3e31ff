"""The instructors' commands, `python -m sr_course release`, `grade` and `autograder` (the student kit
has none of them: the release leaves this folder out, so the kit's command line lists only the
student's commands)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import autograder, grader, isolation, lms, release, similarity
from .formats import FORMATS
from .kit import write_atomic


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
    p.add_argument(
        "--jobs",
        type=int,
        help="a class: submissions graded at once (default: the CPU cores); one submission: "
        "sandbox boxes at once (default 2)",
    )
    p.add_argument(
        "--reference-outputs",
        help="one submission: grade against the reference's probe outputs saved in an "
        "autograder bundle (its reference.pt) instead of this reference's files",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30,
        help="CPU seconds for each TODO's checks (default 30; 4 times that of wall-clock time)",
    )
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=60,
        help="CPU seconds per notebook cell (default 60; 4 times that of wall-clock time)",
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
    p.add_argument(
        "--format",
        choices=("report", *FORMATS),
        default="report",
        help="one submission: the JSON written by --json (or printed): the grader's report "
        "(default), Gradescope's results.json or PrairieLearn's",
    )
    p.add_argument(
        "--regrade",
        action="store_true",
        help="a class: grade every submission again (default: keep the reports in --out of "
        "submissions unchanged since they were graded)",
    )
    p.add_argument(
        "--lms",
        choices=lms.LAYOUTS,
        help="a class: also write OUT/gradebook-<lms>.csv in the layout that LMS imports",
    )
    p.add_argument(
        "--roster",
        help="a class: the LMS's class list (CSV, e.g. its own gradebook or participants export); "
        "submission folders are matched against its column that holds their names",
    )
    p.add_argument(
        "--assignment", default="sr_course", help="the assignment's column name in the LMS file"
    )
    p.add_argument(
        "--similarity",
        action="store_true",
        help="a class: also write OUT/similarity.md, the most alike pairs of filled-in TODOs "
        "(for the instructor to read)",
    )
    p.set_defaults(func=run_grade)

    p = sub.add_parser(
        "autograder",
        help="build (and rehearse) the Gradescope autograder bundle (instructors)",
        description="Writes a Gradescope autograder zip: setup.sh (CPU torch, bubblewrap), "
        "run_autograder, the student kit with the grader, the reference's probe outputs (no "
        "solution code: the release's leak check runs on it). --check unpacks it into an "
        "/autograder-like folder and grades the reference (full marks), the kit (0) and one bug "
        "with it, checking each results.json against Gradescope's format.",
    )
    p.add_argument("--out", default="autograder.zip", help="the bundle (default autograder.zip)")
    p.add_argument(
        "--check",
        action="store_true",
        help="rehearse the bundle at --out (built first if it does not exist)",
    )
    p.set_defaults(func=run_autograder)


def run_release(args) -> int:
    release.build_release(args.out)
    if args.git_branch:
        commit = release.commit_to_branch(Path(args.out), args.git_branch)
        print(f"committed the student kit to branch {args.git_branch} ({commit[:12]})")
    return 0


def run_grade(args) -> int:
    options = dict(
        notebooks=not args.no_notebooks,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        isolation_mode="none" if args.no_isolation else args.isolation,
    )
    subs = grader.find_submissions(args.submissions)
    if len(subs) == 1 and not args.out:
        _grade_one(subs[0], args, options)
        return 0
    out = Path(args.out or "grades")
    roster = lms.read_roster(args.roster) if args.roster else None  # refused before grading
    reports = grader.grade_many(subs, out, jobs=args.jobs, regrade=args.regrade, **options)
    if args.lms:
        text, matching = lms.export(reports, args.lms, args.assignment, roster)
        write_atomic(out / f"gradebook-{args.lms}.csv", text)
        print(f"{args.lms} import file: {out / f'gradebook-{args.lms}.csv'}")
        for line in matching.lines():
            print(line)
    if args.similarity:
        pairs = similarity.compare(subs)
        write_atomic(out / "similarity.md", similarity.similarity_report(pairs))
        top = f" (most alike: {pairs[0].a} / {pairs[0].b}, {pairs[0].similarity:.2f})"
        print(f"similarity: {out / 'similarity.md'}{top if pairs else ''}")
    return 0


def _grade_one(sub: Path, args, options: dict) -> None:
    options = {**options, "jobs": args.jobs or 2}
    if args.reference_outputs:
        options["reference_file"] = Path(args.reference_outputs)
    if args.format == "report":
        grader.grade(sub, json_out=args.json, **options)
        return
    report = grader.grade(sub, verbose=False, **options)
    data = FORMATS[args.format][0](report)
    text = json.dumps(data, indent=1)
    if args.json:
        write_atomic(Path(args.json), text)
        print(f"{args.format} results: {args.json} ({data['score']:g})")
    else:
        print(text)


def run_autograder(args) -> int:
    bundle = Path(args.out)
    if not (args.check and bundle.is_file()):
        autograder.build_bundle(bundle)
    if args.check:
        print(f"rehearsing {bundle} in an /autograder-like folder")
        problems = autograder.rehearse(bundle)
        for line in problems:
            print(f"problem: {line}", file=sys.stderr)
        if problems:
            return 1
        print("the bundle grades as it should")
    return 0
