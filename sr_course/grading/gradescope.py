"""The autograder bundle's side on Gradescope: grade one upload, write results.json.

    python -m sr_course.grading.gradescope UPLOAD RESULTS_JSON SOURCE     (the bundle's run_autograder)

This process imports no torch: Gradescope's container has 768 MB, and torch's import alone holds a
few hundred. The grading runs in two child processes, one after the other, so that one torch
process at most is alive at a time:

1. the TODOs: `python -m sr_course.grading.grader UPLOAD SOURCE/reference.pt TODOS.json` (one
   sandbox box; the reference's outputs saved in the bundle, so no solution is needed);
2. the notebooks: `python -m sr_course.grading.notebooks UPLOAD TODOS.json NOTEBOOKS.json` (the
   notebook grader imports no torch; each kernel, sandboxed, does).

Then the points (points.py) and the results in Gradescope's format (formats.py), schema-checked.
Before anything runs, the bundle, the upload and the results folder are closed to other users (the
'user' sandbox's uid). The upload may be the whole kit, its sr_course/ folder or the three files,
zipped or not; files it lacks are named and graded as the kit's stubs.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..course import STUDENT_FILES
from .formats import FORMATS, validate
from .kit import EDITABLE, write_atomic
from .points import add_notebooks, points, status


def locate(upload: Path, into: Path) -> list[str]:
    """Copy the student files of an upload, whatever its shape (the whole kit, its sr_course/
    folder, the three files; zips unpacked), to into/sr_course/; returns the files it lacks."""
    for archive in sorted(upload.rglob("*.zip")):
        target = into.parent / "unzipped" / archive.stem
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.infolist():  # a zip is the student's: names are checked
                    name = Path(member.filename)
                    if member.is_dir() or name.is_absolute() or ".." in name.parts:
                        continue
                    if name.name in STUDENT_FILES and member.file_size < 2**22:
                        dest = target / name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_bytes(z.read(member))
        except zipfile.BadZipFile:
            continue
    (into / "sr_course").mkdir(parents=True, exist_ok=True)
    missing = []
    for name in STUDENT_FILES:
        found = [
            p
            for top in (upload, into.parent / "unzipped")
            if top.is_dir()
            for p in top.rglob(name)
            if p.is_file() and not p.is_symlink() and "__MACOSX" not in p.parts
        ]
        # The file inside an sr_course/ folder first, then the shallowest.
        found.sort(key=lambda p: (p.parent.name != "sr_course", len(p.parts), str(p)))
        if found:
            shutil.copyfile(found[0], into / "sr_course" / name)
        else:
            missing.append(f"sr_course/{name}")
    return missing


def _close(paths) -> None:
    """Closed to other users (the 'user' sandbox's uid): the reference outputs, the upload, the
    results. Gradescope runs as root, so the grader itself still reads and writes them."""
    for top in paths:
        top = Path(top)
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o007)


def _stage(command: list[str], what: str) -> None:
    """Run one stage of the grading in a child process; its failure is the grading's error."""
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{what} failed: {(proc.stderr or proc.stdout)[-600:]}")


def grade_upload(upload: Path, source: Path, work: Path) -> dict:
    """The report of one upload (grader.grade's shape), from the two stages' child processes."""
    sub = work / "submission"
    missing = locate(upload, sub)
    _close([work])
    if len(missing) == len(EDITABLE):
        return {
            "submission": str(upload),
            "error": "the upload holds none of models.py, losses.py, solver.py: upload the "
            "kit's sr_course/ folder (or the three files)",
        }
    todos_json, notebooks_json = work / "todos.json", work / "notebooks.json"
    python = [sys.executable, "-m"]
    _stage(
        [
            *python,
            "sr_course.grading.grader",
            str(sub),
            str(source / "reference.pt"),
            str(todos_json),
        ],
        "grading the TODOs",
    )
    report = json.loads(todos_json.read_text())
    _stage(
        [*python, "sr_course.grading.notebooks", str(sub), str(todos_json), str(notebooks_json)],
        "grading the notebooks",
    )
    add_notebooks(report, json.loads(notebooks_json.read_text()))
    report["graded_with"]["notebooks"] = True
    report.update(points(report))
    report["status"] = status(report)
    report["submission"] = str(upload)
    return report


def run(upload: Path, results: Path, source: Path, fmt: str = "gradescope") -> dict:
    """Grade one upload against the bundle's reference outputs; write results.json; return it."""
    started = time.monotonic()
    _close([source, upload, results.parent])
    with tempfile.TemporaryDirectory(prefix="sr-upload-") as tmp:
        try:
            report = grade_upload(upload, source, Path(tmp))
        except RuntimeError as err:
            report = {"submission": str(upload), "error": str(err)}
    report["seconds"] = round(time.monotonic() - started, 1)
    data = FORMATS[fmt][0](report)
    validate(fmt, data)
    write_atomic(results, json.dumps(data, indent=1))
    return data


def main(argv: list[str] | None = None) -> int:
    """run_autograder's entry: UPLOAD RESULTS_JSON SOURCE."""
    upload, results, source = (Path(a) for a in (argv or sys.argv[1:]))
    data = run(upload, results, source)
    print(data["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
