"""A class's grades in the CSV layout a learning-management system imports.

    read_roster(path) -> Roster                  the instructor's class list (any CSV with a header)
    export(reports, lms, assignment, roster)     -> (csv text, Matching)
    LAYOUTS                                      the LMSes, each declared once: canvas, moodle

Who is who. A submission's folder name is the student's identifier (a bulk download names folders by
login or e-mail). With a roster, the folder names are matched against the roster column whose values
match the most of them (Canvas' own gradebook export works as a roster: its "SIS Login ID"; Moodle's
participants export: its "Email address" or "Username"), and the LMS's identifier columns are copied
from the roster. Students missing from the roster and roster rows without a submission are listed
(Matching), never guessed at. A submission that was not graded (an error) gets an empty cell, which
both LMSes import as "no grade" rather than a zero.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from .kit import ReleaseError

# Canvas: the gradebook import's identity columns (it matches on ID, SIS User ID or SIS Login ID),
# a "Points Possible" row, then one column per assignment. Moodle: an identifier column the import
# maps to a user field, then one column per grade item.
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
LAYOUTS = ("canvas", "moodle")


@dataclass
class Roster:
    path: Path
    columns: list[str]
    rows: list[dict[str, str]]


@dataclass
class Matching:
    key: str | None  # the roster column the folder names matched (None: no roster)
    not_in_roster: list[str] = field(default_factory=list)  # submissions
    no_submission: list[str] = field(default_factory=list)  # roster rows (their key values)

    def lines(self) -> list[str]:
        out = []
        if self.not_in_roster:
            out.append("submissions not in the roster: " + ", ".join(self.not_in_roster))
        if self.no_submission:
            out.append("in the roster without a submission: " + ", ".join(self.no_submission))
        return out


def read_roster(path: str | Path) -> Roster:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheet exports often start with a BOM
    except OSError as err:
        raise ReleaseError(f"roster {path}: cannot read it ({err.strerror})") from None
    reader = csv.DictReader(io.StringIO(text))
    # Canvas' export has a "Points Possible" row under its header: not a student.
    rows = [
        r
        for r in reader
        if any((v or "").strip() for v in r.values())
        and (r.get(reader.fieldnames[0]) or "").strip() != "Points Possible"
    ]
    if not reader.fieldnames or not rows:
        raise ReleaseError(
            f"roster {path} has no rows under a header; give a CSV whose first line names "
            "its columns (Canvas' or Moodle's own export works)"
        )
    return Roster(path, list(reader.fieldnames), rows)


def _match(names: list[str], roster: Roster) -> tuple[str, dict[str, dict]]:
    """The roster column whose values match the most folder names, and {name: row}."""
    wanted = {n.strip().lower() for n in names}

    def hits(col: str) -> int:
        return sum((r.get(col) or "").strip().lower() in wanted for r in roster.rows)

    key = max(roster.columns, key=hits)
    if not hits(key):
        raise ReleaseError(
            f"roster {roster.path}: no column holds the submission folder names (such as "
            f"{names[0]!r}); columns: {', '.join(roster.columns)}. Name the folders by a roster "
            "column (a login or an e-mail address)"
        )
    by_value = {(r.get(key) or "").strip().lower(): r for r in roster.rows}
    return key, {n: by_value[n.strip().lower()] for n in names if n.strip().lower() in by_value}


def export(
    reports: list[dict], lms: str, assignment: str, roster: Roster | None = None
) -> tuple[str, Matching]:
    """The import file for `lms` ('canvas' or 'moodle'): one row per student with the points."""
    if lms not in LAYOUTS:
        raise ReleaseError(f"unknown LMS {lms!r}; choose one of {', '.join(LAYOUTS)}")
    by_name = {Path(r["submission"]).name: r for r in reports}
    names = list(by_name)
    if roster is None:
        matching, people = Matching(None), [(n, {}) for n in names]
    else:
        key, rows = _match(names, roster)
        seen = {id(r) for r in rows.values()}
        matching = Matching(
            key,
            not_in_roster=[n for n in names if n not in rows],
            no_submission=[(r.get(key) or "") for r in roster.rows if id(r) not in seen],
        )
        # Roster order (the LMS's own), then the submissions the roster lacks, by name.
        people = [(next((n for n in rows if rows[n] is r), None), r) for r in roster.rows]
        people += [(n, {}) for n in matching.not_in_roster]
    maximum = next((r["points"]["max"] for r in reports if "points" in r), "")
    buf = io.StringIO()
    writer = csv.writer(buf)
    if lms == "canvas":
        writer.writerow([*CANVAS_IDENTITY, assignment])
        writer.writerow(["Points Possible", *[""] * (len(CANVAS_IDENTITY) - 1), maximum])
        for name, row in people:
            identity = [row.get(c, "") for c in CANVAS_IDENTITY]
            if not row:  # no roster row: the folder name is the login
                identity = [name, "", "", name, ""]
            writer.writerow([*identity, _points(by_name.get(name))])
    else:
        # The import maps this column to a user field (username, e-mail, ID number) on its page.
        column = matching.key or "Username"
        writer.writerow([column, assignment])
        for name, row in people:
            writer.writerow([row.get(column, name) if row else name, _points(by_name.get(name))])
    return buf.getvalue(), matching


def _points(report: dict | None):
    if report is None or "points" not in report:
        return ""  # no submission, or not graded: no grade rather than a zero
    return report["points"]["total"]
