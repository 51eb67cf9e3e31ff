"""The autograder (instructor-only: not part of the student kit).

    grade(submission)               one student: a score per TODO, the notebooks, a total, flags
    grade_many(submissions, out)    a class, on all cores: one JSON per student and gradebook.csv

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

Score: each TODO is worth TODO_POINTS (the fraction of its probes passed), the notebooks NOTEBOOK_POINTS
(the fraction of cells passed; nothing when no TODO earned a point, since the notebooks then ran only
the kit's own code); total = their sum, out of MAX_POINTS.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import secrets
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .. import threads as thread_policy
from ..course import TODOS
from . import isolation
from .kit import EDITABLE, KIT_ROOT, ReleaseError, reference_files
from .notebooks import grade_notebooks
from .scan import scan
from .todos import grade_todos

TODO_POINTS = 1.0
NOTEBOOK_POINTS = 2.0
MAX_POINTS = TODO_POINTS * len(TODOS) + NOTEBOOK_POINTS


def read_submission(submission: str | os.PathLike) -> dict[str, str | None]:
    """The texts of a submission's student files (None where missing)."""
    submission = Path(submission)
    if not submission.is_dir():
        raise ReleaseError(f"submission {submission} is not a folder; unpack it first")
    files = {}
    for rel in EDITABLE:
        path = submission / rel
        files[rel] = path.read_text(errors="replace") if path.is_file() else None
    if all(v is None for v in files.values()):
        raise ReleaseError(
            f"submission {submission} holds none of {', '.join(EDITABLE)}; point at the kit's top folder"
        )
    return files


def grade(
    submission: str | os.PathLike,
    notebooks: bool = True,
    timeout: float = 30,
    cell_timeout: float = 60,
    jobs: int = 2,
    json_out=None,
    verbose: bool = True,
    root: Path = KIT_ROOT,
    isolation_mode: str = "auto",
    seed: int | None = None,
    threads: int | None = None,
) -> dict:
    """Grade one submission folder (a kit with the student's sr_course files); the folder is only read.
    isolation_mode: 'auto' (the strongest sandbox that works here), 'bwrap', 'user', or 'none' (only
    for the reference: the report says "not isolated"). threads: the notebook kernels' threads
    (default: the thread policy's share for one job, sr_course/threads.py)."""
    started = time.monotonic()
    # 'user' mode: the sandbox's uid must read neither the reference nor this submission's folder
    # (nor, through it, the class's other submissions).
    protected = [*reference_files(root), *(Path(submission) / rel for rel in EDITABLE)]
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
        "missing_files": [rel for rel, text in files.items() if text is None],
        "todos": result["todos"],
        "notebooks": None,
        "flags": flags,
    }
    if notebooks:
        scores = {t: e["score"] for t, e in result["todos"].items()}
        report["notebooks"] = grade_notebooks(
            files,
            scores,
            cell_timeout=cell_timeout,
            root=root,
            threads=thread_policy.count(1, threads),
            isolation_mode=mode,
        )
        report["flags"] += [f"notebooks: blocked {b}" for b in report["notebooks"]["blocked"]]
    report.update(_points(report))
    report["seconds"] = round(time.monotonic() - started, 1)
    if verbose:
        print(format_report(report))
    if json_out:
        _atomic_text(Path(json_out), json.dumps(report, indent=1))
    return report


def _points(report: dict) -> dict:
    todos = sum(e["score"] for e in report["todos"].values()) * TODO_POINTS
    nb = report.get("notebooks")
    withheld = bool(report["flags"]) and nb is not None
    # With no TODO done, the notebooks ran only the kit's own code: nothing of the student's to credit.
    nb_points = 0.0 if nb is None or withheld or not todos else nb["score"] * NOTEBOOK_POINTS
    return {
        "points": {
            "todos": round(todos, 3),
            "notebooks": round(nb_points, 3),
            "notebooks_withheld": withheld,
            "total": round(todos + nb_points, 3),
            "max": MAX_POINTS if nb is not None else TODO_POINTS * len(TODOS),
        }
    }


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


def _atomic_text(path: Path, text: str) -> None:
    """Write path whole or not at all: a fresh temporary file beside it (mkstemp: O_EXCL, mode
    0600, a name nobody can predict, so no FIFO or link planted there is ever opened), then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
        return grade(
            submission,
            json_out=Path(out_dir) / f"{Path(submission).name}.json",
            verbose=False,
            **kwargs,
        )
    except Exception as err:  # noqa: BLE001 - one broken submission must not stop the class
        return {"submission": str(submission), "error": f"{type(err).__name__}: {err}"}


def grade_many(
    submissions, out_dir: str | os.PathLike, jobs: int | None = None, verbose: bool = True, **kwargs
) -> list[dict]:
    """Grade a class: every submission on its own, `jobs` at a time (default: the machine's cores);
    writes OUT/<name>.json per student and OUT/gradebook.csv; returns the reports."""
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
    reports = []
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(subs)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        for report in pool.map(_grade_one, [(s, out_dir, kwargs) for s in subs]):
            reports.append(report)
            if verbose:
                name = Path(report["submission"]).name
                line = (
                    report.get("error")
                    or f"{report['points']['total']:.2f} of {report['points']['max']:g}"
                )
                print(f"{name}: {line}{' (flagged)' if report.get('flags') else ''}", flush=True)
    _atomic_text(out_dir / "gradebook.csv", gradebook_csv(reports))
    if verbose:
        print(
            f"{len(reports)} submissions graded in {time.monotonic() - started:.0f} s; gradebook: {out_dir / 'gradebook.csv'}"
        )
    return reports


def gradebook_csv(reports: list[dict]) -> str:
    """One row per student: a column per TODO, the notebooks, the total, the flags."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", *TODOS, "todos", "notebooks", "total", "max", "isolation", "flags"])
    for r in reports:
        name = Path(r["submission"]).name
        if "error" in r:
            writer.writerow([name, *[""] * (len(TODOS) + 5), f"not graded: {r['error']}"])
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
                r.get("isolation", ""),
                "; ".join(r["flags"]),
            ]
        )
    return buf.getvalue()
