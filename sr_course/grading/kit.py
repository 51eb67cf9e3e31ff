"""The student kit as files: solution markers and stubs, the kit's file list, and kit trees.

Markers (nbgrader's words). In sr_course/*.py and in notebook code cells, a solution region is

    # TODO [<id>]: <what to implement>        <- the TODO box above the region (one or more comment lines)
    #   ...shapes, paper section, self-check...
    # BEGIN SOLUTION                          <- the markers, each on a line of its own
    <reference code>
    # END SOLUTION                            <- (what this docstring shows is not one)

and becomes `raise NotImplementedError("TODO: <id>: <what to implement>")` at the region's
indentation in the kit. The release (release.py) and the grader's sandbox trees (todos.py,
notebooks.py) both build from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..course import STUDENT_FILES
from ..errors import UserError

KIT_ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
TODO_LINE = re.compile(r"#\s*TODO \[(?P<id>[^\]]+)\]:\s*(?P<what>.*)")
# What the release leaves out: folders (ending in /) and files, relative to the kit root.
INSTRUCTOR_ONLY = (
    "sr_course/grading/",
    "tests/grading/",
    "bench/bench_grade.py",
    "docs/student_README.md",  # becomes the kit's README.md
)
STUDENT_README = "docs/student_README.md"
# Where students work, so where solution regions may be (other files are copied as they are).
STUDENT_FOLDERS = ("sr_course/", "notebooks/")
# Files a student edits: those with solution regions (the course manifest's student files).
EDITABLE = tuple(f"sr_course/{name}" for name in STUDENT_FILES)


def instructor_only(rel: str) -> bool:
    """Whether the kit-relative path `rel` stays with the instructor (see INSTRUCTOR_ONLY)."""
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in INSTRUCTOR_ONLY)


class ReleaseError(UserError, RuntimeError):
    """Bad markers or a kit that fails its own checks; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    path: str  # relative to the kit root (for notebooks: 'notebooks/x.ipynb#cell3')
    begin: int  # 1-based line numbers of the markers
    end: int
    indent: str
    todo_id: str
    what: str
    lines: tuple[str, ...]  # the solution lines between the markers


# --- markers ---------------------------------------------------------------------------------------


def find_regions(text: str, where: str) -> list[Region]:
    """The solution regions of one file's text; nested, unclosed or stray markers raise ReleaseError."""
    lines = text.splitlines()
    regions, start = [], None
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if start is not None:
                raise ReleaseError(
                    f"{where}:{n}: nested '{BEGIN}' (the region opened at line {start} is not closed)"
                )
            start = n
        elif stripped == END:
            if start is None:
                raise ReleaseError(f"{where}:{n}: stray '{END}' without a '{BEGIN}' before it")
            todo_id, what = _todo_above(lines, start, where)
            indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
            regions.append(
                Region(where, start, n, indent, todo_id, what, tuple(lines[start : n - 1]))
            )
            start = None
        elif BEGIN in line or END in line:
            raise ReleaseError(f"{where}:{n}: a solution marker must stand alone on its line")
    if start is not None:
        raise ReleaseError(f"{where}:{start}: '{BEGIN}' is never closed by '{END}'")
    return regions


def _todo_above(lines: list[str], begin: int, where: str) -> tuple[str, str]:
    """The TODO line of the comment block right above line `begin` (1-based)."""
    n = begin - 1
    while n >= 1 and lines[n - 1].strip().startswith("#"):
        match = TODO_LINE.search(lines[n - 1])
        if match:
            return match["id"].strip(), match["what"].strip()
        n -= 1
    raise ReleaseError(
        f"{where}:{begin}: the solution region has no '# TODO [<id>]: <what>' box above it"
    )


LINE_LENGTH = 100  # pyproject.toml's [tool.ruff] line-length


def _stub(region: Region) -> str:
    """The raise that replaces a region, laid out as `ruff format` would (the kit passes its own
    format check): double quotes, and the argument on its own line when the call is too long."""
    message = f"TODO: {region.todo_id}: {region.what}"
    literal = json.dumps(message, ensure_ascii=False) if '"' not in message else repr(message)
    line = f"{region.indent}raise NotImplementedError({literal})"
    if len(line) <= LINE_LENGTH:
        return line
    return (
        f"{region.indent}raise NotImplementedError(\n{region.indent}    {literal}\n{region.indent})"
    )


def strip_solutions(
    text: str, where: str, keep: set[str] = frozenset()
) -> tuple[str, list[Region]]:
    """The text with every solution region replaced by its NotImplementedError stub, except the
    regions of the TODOs in `keep` (their solution lines stay, without the markers)."""
    regions = find_regions(text, where)
    lines = text.splitlines()
    out, i = [], 0
    for r in regions:
        out += lines[i : r.begin - 1]
        out += list(r.lines) if r.todo_id in keep else [_stub(r)]
        i = r.end
    out += lines[i:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), regions


# --- kit files and trees ---------------------------------------------------------------------


def kit_files(root: Path = KIT_ROOT) -> list[str]:
    """Files of the reference kit (git's tracked and untracked-not-ignored files, else a walk)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        files = [f for f in out if (root / f).is_file()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        # No git (an unpacked autograder bundle): every file but the downloads, the runs and caches.
        top_skip = {"data", "runs", ".venv"}  # at the top only: sr_course/data/ is code
        skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
        files = [
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file()
            and not skip & set(p.relative_to(root).parts)
            and p.relative_to(root).parts[0] not in top_skip
        ]
    return sorted(files)


def reference_files(root: Path = KIT_ROOT) -> list[Path]:
    """The files that hold the solution: the reference's student files under `root`, and those of
    the package this grader runs from (the same files, unless `root` is another copy)."""
    package = Path(__file__).resolve().parents[1]
    return list(
        dict.fromkeys(
            [root / "sr_course" / f for f in STUDENT_FILES] + [package / f for f in STUDENT_FILES]
        )
    )


def write_kit(dst: Path, files: dict[str, str], root: Path, folders: tuple[str, ...]) -> None:
    """The reference's files under `folders` (less instructor-only ones) written to `dst`, with
    `files` ({'sr_course/models.py': text, ...}) in place of the student files."""
    for rel in kit_files(root):
        if instructor_only(rel) or not rel.startswith(folders):
            continue
        path = dst / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel in EDITABLE:
            path.write_text(files[rel])
        else:
            shutil.copyfile(root / rel, path)


def complete(files: dict[str, str | None], root: Path) -> dict[str, str]:
    """Every student file's text: the submission's, or the kit's stub where it is missing."""
    return {rel: files.get(rel) or stubbed(root, rel) for rel in EDITABLE}


def stubbed(root: Path, rel: str, keep: tuple[str, ...] = ()) -> str:
    """A reference file with its solution regions replaced by stubs, except the TODOs in `keep`."""
    text, _ = strip_solutions((root / rel).read_text(), rel, keep=set(keep))
    return text


# --- submissions and results as files -----------------------------------------------------------


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


def write_atomic(path: Path, text: str) -> None:
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
