"""Student release and autograder (instructor-only: this file is not part of the student kit).

Markers (nbgrader's words). In sr_course/*.py and in notebook code cells, a solution region is

    # TODO [<id>]: <what to implement>        <- the TODO box above the region (one or more comment lines)
    #   ...shapes, paper section, self-check...
    # BEGIN SOLUTION
    <reference code>
    # END SOLUTION

`python -m sr_course release --out DIR` writes the student kit: every region becomes
`raise NotImplementedError("TODO: <id>: <what to implement>")` at the region's indentation, notebook
outputs are cleared, and instructor-only files (this one, the hidden grading tests) are left out.
Then it checks itself: every .py parses, no marker and no solution line remains, `import sr_course`
works, and every TODO's grading tests fail with the NotImplementedError that names it.

`python -m sr_course grade SUBMISSION` copies only the student-editable files of a submission into a
clean copy of this reference kit, runs the grading tests (tests/test_todos.py, a timeout per test) and
the notebooks (nbval against the reference outputs, smoke profile), and prints a score per TODO.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
TODO_LINE = re.compile(r"#\s*TODO \[(?P<id>[^\]]+)\]:\s*(?P<what>.*)")
INSTRUCTOR_ONLY = ("sr_course/release.py", "tests/test_todos.py", "tests/test_release.py")
# Where students work, so where solution regions may be (other files are copied as they are).
STUDENT_FOLDERS = ("sr_course/", "notebooks/")
GRADING_TESTS = "tests/test_todos.py"
# Files a student edits: those with solution regions (found by scanning; these are the expected ones).
EDITABLE = ("sr_course/models.py", "sr_course/losses.py", "sr_course/solver.py")


class ReleaseError(RuntimeError):
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


def _stub(region: Region) -> str:
    message = f"TODO: {region.todo_id}: {region.what}"
    return f"{region.indent}raise NotImplementedError({message!r})"


def strip_solutions(text: str, where: str) -> tuple[str, list[Region]]:
    """The text with every solution region replaced by its NotImplementedError stub."""
    regions = find_regions(text, where)
    lines = text.splitlines()
    out, i = [], 0
    for r in regions:
        out += lines[i : r.begin - 1]
        out.append(_stub(r))
        i = r.end
    out += lines[i:]
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), regions


# --- the student kit -------------------------------------------------------------------------------


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
        skip = {".git", "data", "runs", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv"}
        files = [
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(root).parts)
        ]
    return sorted(files)


def _strip_notebook(src: Path, where: str) -> tuple[str, list[Region]]:
    import nbformat

    nb = nbformat.read(src, as_version=4)
    regions = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source or END in cell.source:
            cell.source, found = strip_solutions(cell.source, f"{where}#cell{k + 1}")
            regions += found
        cell.outputs = []
        cell.execution_count = None
    return nbformat.writes(nb), regions


def build_release(
    out: str | os.PathLike, root: Path = KIT_ROOT, check: bool = True, verbose: bool = True
) -> list[Region]:
    """Write the student kit to `out` (which must not exist or be empty) and check it."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ReleaseError(
            f"{out} exists and is not empty; choose a new folder (nothing was written)"
        )
    regions: list[Region] = []
    staged = Path(
        tempfile.mkdtemp(prefix=".release-", dir=out.parent if out.parent.exists() else None)
    )
    try:
        for rel in kit_files(root):
            if rel in INSTRUCTOR_ONLY:
                continue
            src, dst = root / rel, staged / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if rel.endswith(".py") and rel.startswith(STUDENT_FOLDERS):
                text, found = strip_solutions(src.read_text(), rel)
                dst.write_text(text)
                regions += found
            elif rel.endswith(".ipynb") and rel.startswith(STUDENT_FOLDERS):
                text, found = _strip_notebook(src, rel)
                dst.write_text(text)
                regions += found
            else:
                shutil.copy2(src, dst)
        if check:
            check_release(staged, regions, root)
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if verbose:
        ids = sorted({r.todo_id for r in regions})
        print(
            f"student kit written to {out}: {len(regions)} solution regions, {len(ids)} TODOs ({', '.join(ids)})"
        )
    return regions


def _isolated_env(kit: Path) -> dict:
    """Environment in which `import sr_course` resolves to `kit` (not the installed reference)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SR_DATA_ROOT", "SR_RUNS_DIR")}
    env["PYTHONPATH"] = str(kit) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_release(kit: Path, regions: list[Region], root: Path = KIT_ROOT) -> None:
    """The kit's self-check; raises ReleaseError naming what is wrong."""
    problems = []
    texts = {}
    for path in kit.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".ipynb", ".md", ".toml", ".cfg", ".txt"):
            text = path.read_text(errors="replace")
            texts[path.relative_to(kit).as_posix()] = text
            if path.suffix == ".py":
                try:
                    ast.parse(text, filename=str(path))
                except SyntaxError as err:
                    problems.append(
                        f"{path.relative_to(kit)}:{err.lineno}: does not parse: {err.msg}"
                    )
            code = text
            if path.suffix == ".ipynb":  # the code cells' sources, not the JSON
                cells = json.loads(text)["cells"]
                code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            if path.suffix in (".py", ".ipynb"):
                for n, line in enumerate(code.splitlines(), 1):
                    if line.strip() in (BEGIN, END):
                        problems.append(f"{path.relative_to(kit)}:{n}: a solution marker remains")
    # A solution line leaks when it stands anywhere in the kit although the package's own code (outside
    # the regions) never uses it: in a test, a notebook, a doc. Short and shared lines are not telling.
    package = "\n".join(
        t for rel, t in texts.items() if rel.startswith("sr_course/") and rel.endswith(".py")
    )
    for r in regions:
        for line in r.lines:
            code = line.strip()
            if len(code.replace(" ", "")) < 16 or code.startswith("#") or code in package:
                continue
            for rel, text in texts.items():
                if code in text:
                    problems.append(
                        f"{rel}: holds a line of the solution of TODO [{r.todo_id}] ({r.path}:{r.begin}): {code[:60]}"
                    )
    for rel in INSTRUCTOR_ONLY:
        if (kit / rel).exists():
            problems.append(f"{rel}: instructor-only file in the kit")
    if problems:
        raise ReleaseError("the student kit failed its checks:\n  " + "\n  ".join(problems))
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sr_course, sr_course.models, sr_course.losses, sr_course.solver; print(sr_course.__file__)",
        ],
        cwd=kit,
        env=_isolated_env(kit),
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or not Path(probe.stdout.strip()).resolve().is_relative_to(
        kit.resolve()
    ):
        raise ReleaseError(f"`import sr_course` fails in the student kit:\n{probe.stderr[-1500:]}")
    with tempfile.TemporaryDirectory(prefix="sr-release-check-") as tmp:
        trial = Path(tmp) / "kit"
        shutil.copytree(kit, trial)
        shutil.copy2(root / GRADING_TESTS, trial / GRADING_TESTS)
        report = grade_tree(trial, notebooks=False, timeout=60)
    for todo_id in sorted(
        {r.todo_id for r in regions if not r.path.endswith(".ipynb") and "#cell" not in r.path}
    ):
        entry = report["todos"].get(todo_id)
        if entry is None:
            problems.append(f"TODO [{todo_id}] has no grading test in {GRADING_TESTS}")
        elif (
            entry["passed"]
            or f"NotImplementedError: TODO: {todo_id}:" not in (entry["first_failure"] or "")
            and f"TODO: {todo_id}:" not in (entry["first_failure"] or "")
        ):
            problems.append(
                f"TODO [{todo_id}]: its stub does not raise NotImplementedError naming it (got: {entry['first_failure']})"
            )
    if problems:
        raise ReleaseError("the student kit failed its checks:\n  " + "\n  ".join(problems))


def commit_to_branch(
    kit: Path, branch: str, root: Path = KIT_ROOT, message: str = "Student kit"
) -> str:
    """Commit the kit's files as the tip of `branch` in the repository at `root`, without touching its
    working tree or index (git plumbing with a temporary index). Returns the commit id."""
    env = {
        **os.environ,
        "GIT_INDEX_FILE": str(kit / ".git-release-index"),
        "GIT_WORK_TREE": str(kit),
    }

    def git(*args, **kw):
        return subprocess.run(
            ["git", "--git-dir", str(root / ".git"), *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            **kw,
        ).stdout.strip()

    try:
        git("add", "-A", "--", ".", ":!.git-release-index")
        tree = git("write-tree")
        parent = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        commit = git("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
        git("update-ref", f"refs/heads/{branch}", commit)
    finally:
        Path(env["GIT_INDEX_FILE"]).unlink(missing_ok=True)
    return commit


# --- grading ---------------------------------------------------------------------------------------


# A pytest plugin for the grading subprocess: it records each test's outcome and the telling line of
# its failure as JSON. A standalone file (written at grading time), since a student kit has no release.py.
_RECORDER = """
import json, os
from pathlib import Path

RESULTS = []


def _short(text):
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    for ln in errors:
        if "Error" in ln or "Timeout" in ln or "Exception" in ln:
            return ln[:300]
    return (errors[0] if errors else (lines[-1] if lines else ""))[:300]


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when != "call" and report.outcome == "failed"):
        RESULTS.append({"nodeid": report.nodeid, "outcome": report.outcome, "message": None if report.passed else _short(report.longreprtext)})


def pytest_collectreport(report):
    if report.failed:
        RESULTS.append({"nodeid": report.nodeid, "outcome": "error", "message": _short(report.longreprtext)})


def pytest_sessionfinish(session):
    Path(os.environ["SR_GRADE_RESULTS"]).write_text(json.dumps(RESULTS))
"""


def grade_tree(tree: Path, notebooks: bool = True, timeout: int = 120) -> dict:
    """Run tree/tests/test_todos.py (and tree/notebooks with nbval) with `tree`'s own sr_course, in a
    subprocess with a timeout per test; return the per-TODO report."""
    grading_tests = tree / GRADING_TESTS
    targets = [str(grading_tests)] + ([str(tree / "notebooks")] if notebooks else [])
    with tempfile.TemporaryDirectory(prefix="sr-grade-runs-") as runs:
        results_file = Path(runs) / "results.json"
        (Path(runs) / "sr_grade_recorder.py").write_text(_RECORDER)
        env = _isolated_env(tree)
        env["PYTHONPATH"] = runs + os.pathsep + env["PYTHONPATH"]
        env["SR_GRADE_RESULTS"] = str(results_file)
        env["SR_DATA_ROOT"], env["SR_RUNS_DIR"], env["SR_PROFILE"] = (
            f"{runs}/data",
            f"{runs}/runs",
            "smoke",
        )
        cmd = [
            sys.executable, "-m", "pytest", *targets, "-p", "sr_grade_recorder", "-q", "--no-header", "-p", "no:cacheprovider",
            f"--timeout={timeout}", "--rootdir", str(tree), "-c", str(tree / "pyproject.toml"),
            f"--nbval-cell-timeout={timeout}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
        try:
            results = json.loads(results_file.read_text() or "[]")
        except (FileNotFoundError, json.JSONDecodeError):
            results = []
    ids = _todo_ids_of_tests(grading_tests)
    report: dict = {"todos": {}, "notebooks": None, "pytest_exit_code": proc.returncode}
    for todo_id in dict.fromkeys(ids.values()):
        report["todos"][todo_id] = _new_entry()
    collect_errors = [
        r for r in results if r["outcome"] == "error" and not r["nodeid"].endswith(".ipynb")
    ]
    for r in results:
        name = r["nodeid"].split("::")[-1]
        if r["nodeid"].endswith(".ipynb") or ".ipynb::" in r["nodeid"]:
            nb = report["notebooks"] = report["notebooks"] or _new_entry()
            _tally(nb, r["outcome"], f"{r['nodeid'].split('/')[-1]}: {r['message']}")
        elif name in ids:
            _tally(report["todos"][ids[name]], r["outcome"], r["message"])
    for todo_id, entry in report["todos"].items():
        if entry["total"] == 0:  # not even collected: an import or syntax error in the submission
            entry["total"] = sum(1 for v in ids.values() if v == todo_id)
            entry["first_failure"] = (
                collect_errors[0]["message"]
                if collect_errors
                else (proc.stdout[-300:] or "no result")
            )
        entry["score"] = round(entry["passed"] / entry["total"], 3) if entry["total"] else 0.0
    if report["notebooks"]:
        nb = report["notebooks"]
        nb["score"] = round(nb["passed"] / nb["total"], 3)
    return report


def _new_entry() -> dict:
    return {"passed": 0, "total": 0, "first_failure": None}


def _tally(entry: dict, outcome: str, message: str | None) -> None:
    """Count one test's outcome into a report entry, keeping the first failure's message."""
    entry["total"] += 1
    entry["passed"] += outcome == "passed"
    if outcome != "passed" and entry["first_failure"] is None:
        entry["first_failure"] = message


def _todo_ids_of_tests(path: Path) -> dict[str, str]:
    """{test function name: TODO id} from the @todo("...") decorators of the grading tests."""
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                if (
                    isinstance(dec, ast.Call)
                    and getattr(dec.func, "id", None) == "todo"
                    and dec.args
                ):
                    out[node.name] = ast.literal_eval(dec.args[0])
    return out


def grade(
    submission: str | os.PathLike,
    root: Path = KIT_ROOT,
    notebooks: bool = True,
    timeout: int = 120,
    json_out=None,
    verbose: bool = True,
) -> dict:
    """Grade a submission folder (a student kit with the student's sr_course files). The submission
    is only read: its files are copied into a clean copy of the reference kit, and only the
    student-editable ones (sr_course/models.py, losses.py, solver.py); its tests are not used."""
    submission = Path(submission)
    if not submission.is_dir():
        raise ReleaseError(f"submission {submission} is not a folder; unpack it first")
    missing = [rel for rel in EDITABLE if not (submission / rel).is_file()]
    if len(missing) == len(EDITABLE):
        raise ReleaseError(
            f"submission {submission} holds none of {', '.join(EDITABLE)}; point at the kit's top folder"
        )
    with tempfile.TemporaryDirectory(prefix="sr-grade-") as tmp:
        work = Path(tmp) / "kit"
        for rel in kit_files(root):
            dst = work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dst)
        for rel in EDITABLE:
            if (submission / rel).is_file():
                shutil.copyfile(submission / rel, work / rel)
        report = grade_tree(work, notebooks=notebooks, timeout=timeout)
    report["submission"] = str(submission)
    report["missing_files"] = missing
    if verbose:
        print(format_report(report))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=1))
    return report


def format_report(report: dict) -> str:
    rows = [f"{'TODO':30} {'tests':>7} {'score':>6}  first failure"]
    for todo_id, e in report["todos"].items():
        rows.append(
            f"{todo_id:30} {e['passed']:>3}/{e['total']:<3} {e['score']:>6.2f}  {e['first_failure'] or ''}"
        )
    nb = report.get("notebooks")
    if nb:
        rows.append(
            f"{'notebooks (nbval)':30} {nb['passed']:>3}/{nb['total']:<3} {nb['score']:>6.2f}  {nb['first_failure'] or ''}"
        )
    total = sum(e["score"] for e in report["todos"].values())
    rows.append(f"total: {total:.2f} of {len(report['todos'])} TODOs")
    return "\n".join(rows)
