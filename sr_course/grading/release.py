"""The student release (instructor-only: this file is not part of the student kit).

Markers (nbgrader's words). In sr_course/*.py and in notebook code cells, a solution region is

    # TODO [<id>]: <what to implement>        <- the TODO box above the region (one or more comment lines)
    #   ...shapes, paper section, self-check...
    # BEGIN SOLUTION                          <- the markers, each on a line of its own
    <reference code>
    # END SOLUTION                            <- (what this docstring shows is not one)

`python -m sr_course release --out DIR` writes the student kit: every region (kit.py) becomes
its `raise NotImplementedError("TODO: <id>: <what to implement>")` stub, notebook outputs are
cleared, and the instructor-only files (this folder, the hidden grading tests) are left out.
Then it checks itself: every .py parses, no marker and no solution line remains, `import sr_course`
works, and the grader (sr_course/grading/todos.py) finds every TODO "not implemented" in the kit as released.
"""

from __future__ import annotations

import ast
import builtins
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat

from ..models import VGG19_BLOCKS, vgg19_truncation_index
from .kit import (
    BEGIN,
    EDITABLE,
    END,
    INSTRUCTOR_ONLY,
    KIT_ROOT,
    STUDENT_FOLDERS,
    STUDENT_README,
    Region,
    ReleaseError,
    instructor_only,
    kit_files,
    strip_solutions,
)
from .todos import grade_todos


def _strip_notebook(src: Path, where: str) -> tuple[str, list[Region]]:
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
            if instructor_only(rel):
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
            elif rel == "README.md":  # the kit's README is the student's, not this one
                dst.write_text((root / STUDENT_README).read_text())
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


# --- code doing a TODO's job ------------------------------------------------------------------------

# Names kept as they are when code is compared "names aside": modules, builtins and classes say what
# the code does; variables, arguments and functions of one's own are renamed by first appearance.
KEPT_NAMES = {"torch", "F", "nn", "math", "np"} | set(dir(builtins))
MIN_NODES = 8  # smaller statements (one call, one assignment) are too common to be telling


def _size(node: ast.AST) -> int:
    return sum(not isinstance(n, ast.expr_context) for n in ast.walk(node))


def _names_aside(node: ast.AST) -> str:
    """The node's AST with its own names renamed v0, v1, ... in order of appearance."""
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        if name in KEPT_NAMES or name[:1].isupper():
            return name
        return names.setdefault(name, f"v{len(names)}")

    node = copy.deepcopy(node)
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            n.id = rename(n.id)
        elif isinstance(n, ast.arg):
            n.arg = rename(n.arg)
    return ast.dump(node, include_attributes=False)


def _units(tree: ast.AST):
    """Statements and expressions big enough to be telling: (node, its names-aside form)."""
    # Compound statements (with, for, if, def) count by the simple statements inside them: a
    # `with autocast(): sr = G(lr)` shared with a provided step is not the step.
    simple = (ast.stmt, ast.expr)
    compound = (ast.With, ast.For, ast.While, ast.If, ast.Try, ast.FunctionDef, ast.ClassDef)
    for node in ast.walk(tree):
        if isinstance(node, simple) and not isinstance(node, compound) and _size(node) >= MIN_NODES:
            yield node, _names_aside(node)


def _code_cells(notebook_text: str) -> list[tuple[int, str]]:
    """(cell number from 1, source) of a notebook's code cells."""
    cells = json.loads(notebook_text)["cells"]
    return [(k, "".join(c["source"])) for k, c in enumerate(cells, 1) if c["cell_type"] == "code"]


def _code_sources(kit: Path, texts: dict[str, str]):
    """(where, parsed code) of every piece of Python in the kit: modules, tests, notebook code cells
    (IPython magics dropped) and the python blocks of its documents."""
    for rel, text in texts.items():
        pieces = []
        if rel.endswith(".py"):
            pieces = [(rel, 0, text)]
        elif rel.endswith(".ipynb"):
            for k, src in _code_cells(text):
                src = "\n".join(
                    "" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()
                )
                pieces.append((f"{rel}#cell{k}", 0, src))
        elif rel.endswith(".md"):
            for m in re.finditer(r"```(?:python|py)\n(.*?)```", text, re.S):
                pieces.append((rel, text[: m.start()].count("\n") + 1, m.group(1)))
        for where, offset, src in pieces:
            try:
                yield where, offset, ast.parse(src)
            except SyntaxError:
                continue


def same_job_leaks(kit: Path, regions: list[Region], texts: dict[str, str]) -> list[str]:
    """Places in the kit whose code is a solution's code with other names: a statement or an
    expression of a solution region (at least MIN_NODES AST nodes) that appears, names aside,
    anywhere in the kit's Python (modules, tests, notebooks, documents' code blocks)."""
    wanted: dict[str, tuple[Region, str]] = {}
    for r in regions:
        try:
            tree = ast.parse(textwrap.dedent("\n".join(r.lines)))
        except SyntaxError:
            continue
        for node, form in _units(tree):
            wanted.setdefault(form, (r, ast.unparse(node).splitlines()[0]))
    problems = []
    for where, offset, tree in _code_sources(kit, texts):
        seen_lines = set()
        for node, form in sorted(_units(tree), key=lambda unit: unit[0].lineno):
            if form in wanted and node.lineno not in seen_lines:
                seen_lines.add(node.lineno)
                r, code = wanted[form]
                problems.append(
                    f"{where}:{offset + node.lineno}: does the job of TODO [{r.todo_id}]: the same code "
                    f"as its solution ({r.path}:{r.begin}) with other names: {code[:60]}"
                )
    return problems


# The TruncatedVGG19 TODO's answer is a number, not code: the layer count of phi_(i,j). Its box gives
# phi_(1,1) as a worked example; every other count, stated next to VGG19's layers, is the answer.
WORKED_EXAMPLES = {(1, 1)}


def _vgg_answers() -> set[int]:

    return {
        vgg19_truncation_index(i, j)
        for i, n in VGG19_BLOCKS.items()
        for j in range(1, n + 1)
        if (i, j) not in WORKED_EXAMPLES
    }


def _about_vgg_layers(node: ast.AST) -> bool:
    """Whether an expression reads VGG19's layer list (`.features`) or the truncation index."""
    names = ("features", "vgg19_truncation_index")
    return any(
        (isinstance(n, ast.Attribute) and n.attr in names)
        or (isinstance(n, ast.Name) and n.id == names[1])
        for n in ast.walk(node)
    )


def stated_answers(kit: Path, texts: dict[str, str]) -> list[str]:
    """Places in the kit's Python that state the TruncatedVGG19 TODO's answer: a layer count of
    phi_(i,j) compared with, or slicing, VGG19's `features` or vgg19_truncation_index
    (`vgg19_truncation_index(5, 4) == 36`, `vgg.features[:36]`, `len(vgg.features) == 36`)."""
    answers = _vgg_answers()
    problems = []
    for where, offset, tree in _code_sources(kit, texts):
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                parts = [node.left, *node.comparators]
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
                parts = [node.value, node.slice.lower, node.slice.upper]
            else:
                continue
            numbers = {
                p.value for p in parts if isinstance(p, ast.Constant) and type(p.value) is int
            }
            stated = numbers & answers
            if stated and any(_about_vgg_layers(p) for p in parts if p is not None):
                problems.append(
                    f"{where}:{offset + node.lineno}: states the answer of TODO [TruncatedVGG19] "
                    f"(a phi_(i,j) layer count, {min(stated)}): {ast.unparse(node)[:60]}"
                )
    return problems


def solution_regions(root: Path = KIT_ROOT) -> list[Region]:
    """Every solution region of the reference (what no file given to students may hold)."""
    regions = []
    for rel in kit_files(root):
        if rel.startswith(STUDENT_FOLDERS) and not instructor_only(rel):
            if rel.endswith(".py"):
                regions += strip_solutions((root / rel).read_text(), rel)[1]
            elif rel.endswith(".ipynb"):
                regions += _strip_notebook(root / rel, rel)[1]
    return regions


def check_release(kit: Path, regions: list[Region], root: Path = KIT_ROOT) -> None:
    """The kit's self-check; raises ReleaseError naming what is wrong."""
    problems = find_leaks(kit, regions)
    for rel in INSTRUCTOR_ONLY:
        if (kit / rel).exists():
            problems.append(f"{rel}: instructor-only file in the kit")
    if problems:
        raise ReleaseError("the student kit failed its checks:\n  " + "\n  ".join(problems))
    _check_imports_and_stubs(kit, regions, root)


def find_leaks(kit: Path, regions: list[Region], exempt: tuple[str, ...] = ()) -> list[str]:
    """What in the tree `kit` gives a solution away: files that do not parse, markers left, lines
    of the solution regions where the package's own code never uses them, a TODO's job done
    elsewhere under other names, the VGG truncation's answer stated. One sentence per problem.
    `exempt`: files (relative to `kit`) neither checked nor counted as the package's own code."""
    problems = []
    texts = {}
    for path in kit.rglob("*"):
        if path.relative_to(kit).as_posix() in exempt:
            continue
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
                code = "\n".join(src for _, src in _code_cells(text))
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
    problems += same_job_leaks(kit, regions, texts)
    problems += stated_answers(kit, texts)
    return problems


def _check_imports_and_stubs(kit: Path, regions: list[Region], root: Path) -> None:
    """`import sr_course` works in the kit, and the grader finds every stub not implemented."""
    problems = []
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
    # Every stub must be graded "not implemented" by the grader (the kit's files as a submission).

    files = {rel: (kit / rel).read_text() for rel in EDITABLE}
    report = grade_todos(files, timeout=60, root=root)
    for todo_id in sorted({r.todo_id for r in regions if "#cell" not in r.path}):
        entry = report["todos"].get(todo_id)
        if entry is None:
            problems.append(f"TODO [{todo_id}] has no probes in sr_course/grading/probes.py")
        elif entry["passed"] or "is not implemented yet" not in (entry["first_failure"] or ""):
            problems.append(
                f"TODO [{todo_id}]: its stub is not graded 'not implemented' (got: {entry['first_failure']})"
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
