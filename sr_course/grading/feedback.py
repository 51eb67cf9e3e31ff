"""The page a student reads about their grade: Markdown and a standalone HTML page, per student.

    feedback_markdown(report) -> str
    feedback_html(report) -> str

What it holds is what the student may see and nothing else: a score per TODO, the grader's sentence
for each failed check, the self-check that shows the same mistake on their own machine, the notebook
cells that failed. The sentences are the grader's (formats.py: the same ones Gradescope shows); no
reference values, seeds or probe inputs, no flags (those are for the instructor: the JSON and the
gradebook).
"""

from __future__ import annotations

import html
from pathlib import Path

from ..course import TODOS
from .formats import parts


def _rows(report: dict) -> list[tuple[str, str, str]]:
    """(part, points, what to read) in course order, the notebooks last."""
    return [(name, f"{got:g} / {most:g}", text) for name, got, most, text in parts(report)]


def _title(report: dict) -> str:
    return f"sr_course: feedback for {Path(report['submission']).name}"


def feedback_markdown(report: dict) -> str:
    p = report["points"]
    out = [f"# {_title(report)}", "", f"**{p['total']:g} of {p['max']:g} points**", ""]
    if report.get("missing_files"):
        out += [
            "Missing from your submission (graded as the kit's stubs): "
            + ", ".join(f"`{f}`" for f in report["missing_files"]),
            "",
        ]
    for part, points, text in _rows(report):
        out += [f"## {part}: {points}", "", *text.splitlines(), ""]
    done = [t for t, e in report["todos"].items() if e["passed"] == e["total"]]
    if len(done) < len(TODOS):
        out.append(
            "Each TODO's self-check prints the same sentences on your machine: "
            "`python -m sr_course check` runs them all."
        )
    return "\n".join(out).rstrip() + "\n"


def feedback_html(report: dict) -> str:
    p = report["points"]
    esc = html.escape
    parts = []
    for part, points, text in _rows(report):
        lines = text.splitlines()
        items = [f"<li>{esc(line[2:])}</li>" for line in lines if line.startswith("- ")]
        prose = [f"<p>{esc(line)}</p>" for line in lines if not line.startswith("- ")]
        body = prose[:1] + ([f"<ul>{''.join(items)}</ul>"] if items else []) + prose[1:]
        parts.append(f"<section><h2>{esc(part)}: {esc(points)}</h2>{''.join(body)}</section>")
    missing = report.get("missing_files") or []
    note = (
        f"<p>Missing from your submission (graded as the kit's stubs): {esc(', '.join(missing))}</p>"
        if missing
        else ""
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(_title(report))}</title><style>"
        "body{font:16px/1.5 system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em}"
        "h2{font-size:1.1em;margin-top:1.5em}li{margin:.2em 0}</style></head><body>"
        f"<h1>{esc(_title(report))}</h1><p><strong>{p['total']:g} of {p['max']:g} points</strong></p>"
        f"{note}{''.join(parts)}"
        "<p>Each TODO's self-check prints the same sentences on your machine: "
        "<code>python -m sr_course check</code> runs them all.</p></body></html>\n"
    )
