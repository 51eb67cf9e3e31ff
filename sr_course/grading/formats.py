"""A grading report in the formats course platforms read, from one report (grader.grade's dict).

    gradescope(report)     Gradescope's autograder results.json
    prairielearn(report)   PrairieLearn's external-grading results.json
    FORMATS                {name: (writer, JSON Schema)}: `grade --format NAME` and the bundle use it
    validate(name, data)   raises ValueError naming the first field that breaks the format's schema

What a student sees is the grader's sentences, nothing more: a score per TODO with the sentence of
its first failure and the self-check that shows it, the notebooks' failed cells. Flags (an attempted
read outside the sandbox, a forged self-check) and the isolation mode go to an entry only the
instructor sees (Gradescope: visibility "hidden"; PrairieLearn has no hidden tests, so flags stay
out of its results and in the grader's own JSON).
"""

from __future__ import annotations

import jsonschema

from ..course import TODOS
from .points import NOTEBOOK_POINTS, TODO_POINTS

REVIEW_SENTENCE = "the notebook points await an instructor's review"
NOTEBOOKS_TEST = "notebooks"  # the part, beside one per TODO, that grades the notebooks
FLAGS_TEST = "instructor review: flags"  # Gradescope's hidden test that lists the flags


def todo_lines(todo: str, entry: dict) -> str:
    """What a student reads for one TODO: the outcome, the failures, where to see them."""
    if entry["passed"] == entry["total"]:
        return f"all {entry['total']} checks passed"
    lines = [f"{entry['passed']} of {entry['total']} checks passed"]
    lines += [f"- {f}" for f in entry["failures"]]
    spec = TODOS[todo]
    lines.append(
        f"to see it yourself: run {spec.check}() from sr_course.checks "
        f"(the self-check cell of {spec.notebook})"
    )
    return "\n".join(lines)


def notebook_lines(report: dict) -> str:
    nb = report["notebooks"]
    if report["points"]["notebooks_withheld"]:
        return REVIEW_SENTENCE
    if not report["points"]["todos"]:
        return (
            "no TODO has earned a point yet, so the notebooks were not run: they count once one has"
        )
    if nb["passed"] == nb["total"]:
        return f"all {nb['total']} cells ran as the reference's do"
    return "\n".join(
        [f"{nb['passed']} of {nb['total']} cells ran as the reference's do"]
        + [f"- {f}" for f in nb["failures"]]
    )


def parts(report: dict) -> list[tuple[str, float, float, str]]:
    """What a student is graded on, in course order: (name, points, max points, the sentences),
    a TODO each, then the notebooks where they were graded. Every writer lays out these."""
    rows = [
        (todo, round(e["score"] * TODO_POINTS, 3), TODO_POINTS, todo_lines(todo, e))
        for todo, e in report["todos"].items()
    ]
    if report.get("notebooks") is not None:
        rows.append(
            (NOTEBOOKS_TEST, report["points"]["notebooks"], NOTEBOOK_POINTS, notebook_lines(report))
        )
    return rows


def summary(report: dict) -> str:
    p = report["points"]
    lines = [f"{p['total']:g} of {p['max']:g} points"]
    if report.get("missing_files"):
        lines.append(
            "missing from the upload (graded as the kit's stubs): "
            + ", ".join(report["missing_files"])
        )
    return "\n".join(lines)


def instructor_lines(report: dict) -> str:
    lines = [f"isolation: {report.get('isolation')}", f"seed: {report.get('seed')}"]
    lines += [f"flag: {f}" for f in report["flags"]] or ["no flags"]
    return "\n".join(lines)


def gradescope(report: dict) -> dict:
    """Gradescope's results.json: one test per TODO, one for the notebooks, one hidden for flags."""
    if "error" in report:  # the grader could not grade this submission at all
        return {
            "score": 0.0,
            "output": f"not graded: {report['error']}",
            "stdout_visibility": "hidden",
            "tests": [],
        }
    tests = [
        {"name": name, "score": got, "max_score": most, "output": text, "visibility": "visible"}
        for name, got, most, text in parts(report)
    ]
    tests.append(
        {
            "name": FLAGS_TEST,
            "score": 0.0,
            "max_score": 0.0,
            "output": instructor_lines(report),
            "visibility": "hidden",
        }
    )
    return {
        "score": report["points"]["total"],
        "execution_time": round(report.get("seconds", 0.0)),
        "output": summary(report),
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def prairielearn(report: dict) -> dict:
    """PrairieLearn's external-grading results.json: score in [0, 1], one test per TODO and one
    for the notebooks (flags stay in the grader's JSON: PrairieLearn shows every test)."""
    if "error" in report:
        return {"gradable": False, "score": 0.0, "message": f"not graded: {report['error']}"}
    tests = [
        {"name": name, "points": got, "max_points": most, "message": text}
        for name, got, most, text in parts(report)
    ]
    p = report["points"]
    return {
        "gradable": True,
        "score": round(p["total"] / p["max"], 4),
        "message": summary(report),
        "tests": tests,
    }


# The formats' documented fields (Gradescope's "Autograder specifications", PrairieLearn's
# "External grading: grading results"), as JSON Schemas: what the rehearsal and the tests check.
_NUMBER = {"type": "number"}
GRADESCOPE_SCHEMA = {
    "type": "object",
    "required": ["tests"],
    "anyOf": [{"required": ["score"]}, {"properties": {"tests": {"minItems": 1}}}],
    "properties": {
        "score": _NUMBER,
        "execution_time": _NUMBER,
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "score": _NUMBER,
                    "max_score": _NUMBER,
                    "status": {"enum": ["passed", "failed"]},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": {
                        "enum": ["hidden", "after_due_date", "after_published", "visible"]
                    },
                    "extra_data": {"type": "object"},
                },
            },
        },
        "leaderboard": {"type": "array"},
    },
    "additionalProperties": False,
}
PRAIRIELEARN_SCHEMA = {
    "type": "object",
    "required": ["gradable"],
    "if": {"properties": {"gradable": {"const": True}}},
    "then": {"required": ["score"]},
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "images": {"type": "array"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "points", "max_points"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "points": _NUMBER,
                    "max_points": _NUMBER,
                    "message": {"type": "string"},
                    "output": {"type": "string"},
                    "images": {"type": "array"},
                },
            },
        },
    },
    "additionalProperties": False,
}

FORMATS = {
    "gradescope": (gradescope, GRADESCOPE_SCHEMA),
    "prairielearn": (prairielearn, PRAIRIELEARN_SCHEMA),
}


def validate(name: str, data: dict) -> None:
    """Raise ValueError naming the first field of `data` that breaks format `name`'s schema."""
    try:
        jsonschema.validate(data, FORMATS[name][1])
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "the top level"
        raise ValueError(f"{name} results.json: {where}: {err.message}") from None
