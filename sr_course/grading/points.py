"""The score rules, stated once: what each part is worth and how a report's points are summed.

Each TODO is worth TODO_POINTS (the fraction of its probes passed), the notebooks NOTEBOOK_POINTS
(the fraction of cells passed; nothing while no TODO has earned a point, since the notebooks would
then run only the kit's own code, so they are not run; withheld while the report has flags, until an
instructor has looked);
total = their sum, out of MAX_POINTS.
"""

from __future__ import annotations

from ..course import TODOS

TODO_POINTS = 1.0
NOTEBOOK_POINTS = 2.0
MAX_POINTS = TODO_POINTS * len(TODOS) + NOTEBOOK_POINTS


def points(report: dict) -> dict:
    """{"points": {todos, notebooks, notebooks_withheld, total, max}} of a graded report."""
    todos = sum(e["score"] for e in report["todos"].values()) * TODO_POINTS
    nb = report.get("notebooks")
    withheld = bool(report["flags"]) and nb is not None
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


def add_notebooks(report: dict, notebooks: dict) -> None:
    """Put the notebooks' entry into a report; what their kernels tried and were refused is flagged."""
    report["notebooks"] = notebooks
    report["flags"] += [f"notebooks: blocked {b}" for b in notebooks["blocked"]]


def status(report: dict) -> str:
    """The gradebook's status: 'graded', 'timed out' (a TODO or a notebook cell ran out of its
    time: the rest was graded) or 'error' (the grader could not grade it)."""
    if "error" in report:
        return "error"
    nb = report.get("notebooks") or {}
    late = any("did not finish within" in f for f in report["flags"]) or any(
        "did not finish within" in f or "budget of" in f for f in nb.get("failures", [])
    )
    return "timed out" if late else "graded"
