"""The autograder (instructor-only: not part of the student kit).

    grade(submission)               one student: a score per TODO, the notebooks, a total, flags
    grade_many(submissions, out)    a class, on all cores: per student a JSON and a feedback page
                                    (Markdown and HTML), and gradebook.csv; a rerun regrades only
                                    the submissions that changed or were not graded

How a submission is graded, and why it cannot change its own score, stage by stage:

0. Isolation (isolation.py): the student's code runs only inside an operating-system sandbox
   (bubblewrap namespaces, or a separate unprivileged user in a container without them), with
   resource limits; the mode is in every report. Where neither works, grading refuses;
   isolation="none" (--no-isolation) is for grading the reference itself and marks the report.
1. TODOs, by behaviour (todos.py, with probes.py and sandbox.py).
2. Notebooks (notebooks.py), each kernel in a sandbox of its own.
3. Flags (scan.py, and what the audit hook inside the sandbox refused). Anything that looks like an
   attempt on the grader (a refused action, a process that ended early or ran out of time, imports
   and calls such as atexit, subprocess, exec or os._exit in the student's files) is listed in
   `flags`; a flagged submission's notebook points are withheld until an instructor has looked
   (inside a kernel, student code can still patch library code).

Score: points.py (what each TODO and the notebooks are worth, and how they add up).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .. import threads as thread_policy
from ..course import TODOS
from . import isolation
from .feedback import feedback_html, feedback_markdown
from .kit import EDITABLE, KIT_ROOT, ReleaseError, read_submission, reference_files, write_atomic
from .notebooks import grade_notebooks
from .points import NOTEBOOK_POINTS, TODO_POINTS, add_notebooks, points, status
from .scan import scan
from .todos import grade_todos, load_reference, reference_digest


def grade(
    submission: str | os.PathLike,
    notebooks: bool = True,
    timeout: float = 30,
    cell_timeout: float = 60,
    jobs: int = 1,
    json_out=None,
    verbose: bool = True,
    root: Path = KIT_ROOT,
    isolation_mode: str = "auto",
    seed: int | None = None,
    threads: int | None = None,
    reference_file: Path | None = None,
) -> dict:
    """Grade one submission folder (a kit with the student's sr_course files); the folder is only read.
    isolation_mode: 'auto' (the strongest sandbox that works here), 'bwrap', 'user', or 'none' (only
    for the reference: the report says "not isolated"). jobs: processes at once. 1 (the default):
    one sandbox box for the TODOs, one notebook kernel at a time; 2 splits the student files across
    two boxes and starts each notebook's kernel while the one before runs (no faster for the TODOs,
    whose box's start costs more than their probes, and twice their CPU). threads: the notebook
    kernels' threads (default: the thread policy's share for one job, sr_course/threads.py).
    reference_file: the reference's probe outputs saved for one seed (the autograder bundle, where
    `root` is a kit without solutions); the grading then uses that seed."""
    started = time.monotonic()
    # 'user' mode: the sandbox's uid must read neither the reference nor this submission's folder
    # (nor, through it, the class's other submissions).
    protected = [*reference_files(root), *(Path(submission) / rel for rel in EDITABLE)]
    if reference_file is not None:
        protected.append(Path(reference_file))
        seed = load_reference(Path(reference_file), root)
    mode = isolation.choose(isolation_mode, protected=protected)
    files = read_submission(submission)
    result = grade_todos(
        files, timeout=timeout, jobs=jobs, root=root, isolation_mode=mode, seed=seed
    )
    flags = scan(files, root) + result["flags"]
    report = {
        "submission": str(submission),
        "isolation": mode,
        "seed": result["seed"],
        "graded_with": graded_with(reference_digest(root), notebooks),
        "files_sha256": files_digest(files),
        "missing_files": [rel for rel, text in files.items() if text is None],
        "todos": result["todos"],
        "notebooks": None,
        "flags": flags,
    }
    if notebooks:
        scores = {t: e["score"] for t, e in result["todos"].items()}
        notebooks_entry = grade_notebooks(
            files,
            scores,
            cell_timeout=cell_timeout,
            root=root,
            threads=thread_policy.count(1, threads),
            isolation_mode=mode,
            # With one job (a class's grading, a Gradescope container): one kernel at a time.
            ahead=jobs > 1,
        )
        add_notebooks(report, notebooks_entry)
    report.update(points(report))
    report["status"] = status(report)
    report["seconds"] = round(time.monotonic() - started, 1)
    if verbose:
        print(format_report(report))
    if json_out:
        write_atomic(Path(json_out), json.dumps(report, indent=1))
    return report


def graded_with(grader_digest: str, notebooks: bool) -> dict:
    """What a report was graded by (the reference and probes' digest) and on (the notebooks or
    not): a later run keeps the report only while this is the same."""
    return {"grader": grader_digest, "notebooks": notebooks}


def files_digest(files: dict[str, str | None]) -> str:
    """What was graded: a hash of the student files' texts (a missing file counts as missing)."""
    h = hashlib.sha256()
    for rel in EDITABLE:
        text = files.get(rel)
        h.update(f"{rel}\0{'-' if text is None else 'y'}\0".encode())
        h.update((text or "").encode())
    return h.hexdigest()


def format_report(report: dict) -> str:
    rows = [f"{'TODO':28} {'checks':>7} {'score':>6}  first failure"]
    for todo, e in report["todos"].items():
        rows.append(
            f"{todo:28} {e['passed']:>3}/{e['total']:<3} {e['score']:>6.2f}  {e['first_failure'] or ''}"
        )
    nb = report.get("notebooks")
    if nb:
        rows.append(
            f"{'notebooks':28} {nb['passed']:>3}/{nb['total']:<3} {nb['score']:>6.2f}  {nb['first_failure'] or ''}"
        )
    p = report["points"]
    rows.append(
        f"total: {p['total']:.2f} of {p['max']:g} points (TODOs {p['todos']:.2f} x {TODO_POINTS:g}"
        + (
            f", notebooks {p['notebooks']:.2f} of {NOTEBOOK_POINTS:g}"
            + (" withheld: see the flags" if p["notebooks_withheld"] else "")
            if nb
            else ", notebooks not graded"
        )
        + ")"
    )
    rows.append(
        f"isolation: {ISOLATION_WORDS.get(report.get('isolation'), report.get('isolation'))}"
    )
    for flag in report["flags"]:
        rows.append(f"flag: {flag}")
    return "\n".join(rows)


ISOLATION_WORDS = {
    "bwrap": "bwrap (namespaces, seccomp, resource limits)",
    "user": "user (a separate unprivileged user, resource limits)",
    "none": "NOT ISOLATED (--no-isolation): only for grading the reference itself",
}


def find_submissions(paths) -> list[Path]:
    """Submission folders: each path is one (it holds sr_course/), or a folder of them."""
    found = []
    for p in map(Path, paths):
        if (p / "sr_course").is_dir():
            found.append(p)
        elif p.is_dir():
            subs = sorted(q for q in p.iterdir() if (q / "sr_course").is_dir())
            if not subs:
                raise ReleaseError(
                    f"{p} holds no submission (no sr_course/ folder in it or below it)"
                )
            found += subs
        else:
            raise ReleaseError(f"submission {p} is not a folder; unpack it first")
    names = [s.name for s in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ReleaseError(f"two submissions share the name {dupes[0]}; rename one folder")
    return found


def _grade_one(args) -> dict:
    submission, out_dir, kwargs = args
    thread_policy.apply(threads=1)  # this process only judges; its kernels get kwargs["threads"]
    try:
        report = grade(
            submission,
            json_out=Path(out_dir) / f"{Path(submission).name}.json",
            verbose=False,
            **kwargs,
        )
    except Exception as err:  # noqa: BLE001 - one broken submission must not stop the class
        return {"submission": str(submission), "error": f"{type(err).__name__}: {err}"}
    write_feedback(report, Path(out_dir))
    return report


def write_feedback(report: dict, out_dir: Path) -> None:
    """The student's feedback page beside their JSON: <name>.feedback.md and .html."""
    name = Path(report["submission"]).name
    write_atomic(out_dir / f"{name}.feedback.md", feedback_markdown(report))
    write_atomic(out_dir / f"{name}.feedback.html", feedback_html(report))


def _earlier(submission: Path, out_dir: Path, wanted: dict) -> dict | None:
    """The report an earlier run wrote for this submission, if it still holds: graded (not an
    error or a timeout), of the same files, graded_with `wanted` (the same grader, the same parts)."""
    path = out_dir / f"{submission.name}.json"
    try:
        report = json.loads(path.read_text())
        files = read_submission(submission)
    except (OSError, ValueError, ReleaseError):
        return None
    same = report.get("graded_with") == wanted
    if (
        report.get("status") == "graded"
        and same
        and report.get("files_sha256") == files_digest(files)
    ):
        report["submission"] = str(submission)
        return report
    return None


def grade_many(
    submissions,
    out_dir: str | os.PathLike,
    jobs: int | None = None,
    verbose: bool = True,
    regrade: bool = False,
    **kwargs,
) -> list[dict]:
    """Grade a class: every submission on its own, `jobs` at a time (default: the machine's cores);
    writes OUT/<name>.json and OUT/<name>.feedback.md/.html per student and OUT/gradebook.csv;
    returns the reports. A submission whose report in OUT still holds (the same files, grader and
    parts, and graded: not an error or a timeout) is not graded again unless `regrade`."""
    subs = find_submissions(submissions)
    # Refuse before anything runs; one mode and one seed for the class (each worker process then
    # computes the reference's outputs once).
    kwargs["isolation_mode"] = isolation.choose(kwargs.get("isolation_mode", "auto"))
    kwargs.setdefault("seed", secrets.randbelow(2**31))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    kwargs.setdefault("jobs", 1)
    kwargs.setdefault("threads", thread_policy.count(jobs))  # each grading's share of the cores
    started = time.monotonic()
    wanted = graded_with(
        reference_digest(kwargs.get("root", KIT_ROOT)), kwargs.get("notebooks", True)
    )
    kept = (
        {} if regrade else {s: r for s in subs if (r := _earlier(s, out_dir, wanted)) is not None}
    )
    todo = [s for s in subs if s not in kept]
    if verbose and kept:
        print(
            f"{len(kept)} submissions unchanged since they were graded: kept ({len(todo)} to grade)"
        )
    by_sub = dict(kept)
    if todo:
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            for sub, report in zip(
                todo, pool.map(_grade_one, [(s, out_dir, kwargs) for s in todo]), strict=True
            ):
                by_sub[sub] = report
                if verbose:
                    line = (
                        report.get("error")
                        or f"{report['points']['total']:.2f} of {report['points']['max']:g}"
                    )
                    flagged = " (flagged)" if report.get("flags") else ""
                    print(f"{sub.name}: {line}{flagged}", flush=True)
    reports = [by_sub[s] for s in subs]
    write_atomic(out_dir / "gradebook.csv", gradebook_csv(reports))
    if verbose:
        print(
            f"{len(todo)} submissions graded in {time.monotonic() - started:.0f} s; gradebook: {out_dir / 'gradebook.csv'}"
        )
    return reports


def gradebook_csv(reports: list[dict]) -> str:
    """One row per student: a column per TODO, the notebooks, the total, the status, the flags."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        ["student", *TODOS, "todos", "notebooks", "total", "max", "status", "isolation", "flags"]
    )
    for r in reports:
        name = Path(r["submission"]).name
        if "error" in r:
            writer.writerow(
                [name, *[""] * (len(TODOS) + 4), "error", "", f"not graded: {r['error']}"]
            )
            continue
        p = r["points"]
        writer.writerow(
            [
                name,
                *[r["todos"][t]["score"] for t in TODOS],
                p["todos"],
                p["notebooks"],
                p["total"],
                p["max"],
                r["status"],
                r.get("isolation", ""),
                "; ".join(r["flags"]),
            ]
        )
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """`python -m sr_course.grading.grader SUBMISSION REFERENCE_OUTPUTS OUT`: the TODO stage of
    one grading (one sandbox box, against reference outputs saved in an autograder bundle), its
    report written to OUT. The bundle's side on Gradescope (gradescope.py) runs it in a child
    process: lighter than the whole command line, and gone before the notebooks' kernels start."""
    submission, reference, out = (Path(a) for a in (argv or sys.argv[1:]))
    thread_policy.apply(threads=1)
    grade(
        submission,
        notebooks=False,
        jobs=1,
        verbose=False,
        reference_file=reference,
        json_out=out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
