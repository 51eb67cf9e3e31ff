"""The autograder (instructor-only: not part of the student kit).

    grade(submission)               one student: a score per TODO, the notebooks, a total, flags
    grade_many(submissions, out)    a class, on all cores: one JSON per student and gradebook.csv

How a submission is graded, and why it cannot change its own score:

1. TODOs, by behaviour. Only the student's sr_course/models.py, losses.py and solver.py are read.
   `sandbox.py` runs the probes of `probes.py` on them in a separate process, one forked child per
   TODO, each under an audit hook that confines it (see sandbox.py). A TODO is graded with the
   reference's version of the TODOs it builds on, and the kit's stubs for the student's other files,
   so one mistake costs one TODO. The children only write outputs; this process, where student code
   never runs, compares them with the reference's outputs and writes the verdicts.
2. Notebooks. The course's notebooks run with the student's files (nbclient, a fresh kernel per
   notebook, the smoke profile, the same audit hook put into each kernel by an IPython startup file)
   and are judged here like `pytest --nbval-lax`: every code cell must run, and each self-check cell
   must print what the reference printed. A self-check cell counts only if the grader also found the
   TODOs it checks right. A cell that does not finish in time stops the notebook run: the notebooks
   build on each other.
3. Flags. Anything that looks like an attempt on the grader (a blocked action in the sandbox, a
   process that ended early, imports and calls such as atexit, subprocess, exec or os._exit in the
   student's files) is listed in `flags`; a flagged submission's notebook points are withheld until
   an instructor has looked (inside a kernel, student code can still patch library code).

Score: each TODO is worth TODO_POINTS (the fraction of its probes passed), the notebooks NOTEBOOK_POINTS
(the fraction of cells passed; nothing when no TODO earned a point, since the notebooks then ran only
the kit's own code); total = their sum, out of MAX_POINTS.
"""

from __future__ import annotations

import ast
import copy
import csv
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from . import probes as probes_module
from .checks import COURSE
from .probes import PROBES, TODOS
from .release import (
    EDITABLE,
    INSTRUCTOR_ONLY,
    KIT_ROOT,
    ReleaseError,
    kit_files,
    strip_solutions,
)
from .sandbox import todo_slug

TODO_POINTS = 1.0
NOTEBOOK_POINTS = 2.0
MAX_POINTS = TODO_POINTS * len(TODOS) + NOTEBOOK_POINTS
NOTEBOOKS = (
    "train_srresnet.ipynb",
    "train_srgan.ipynb",
    "test.ipynb",
    "super_resolution.ipynb",
    "improvements.ipynb",
)
# Which TODOs each self-check covers: a check cell counts only when the grader passed them all.
CHECK_TODOS = {name: todos for name, _, todos, _ in COURSE}
# Modules and calls a submission has no business with (beyond what the reference file itself uses).
SUSPICIOUS_MODULES = {
    "atexit", "subprocess", "socket", "ctypes", "signal", "builtins", "importlib", "gc", "pytest",
    "_pytest", "nbval", "nbclient", "jupyter_client", "multiprocessing", "threading", "pickle",
    "marshal", "shutil", "inspect", "sr_course.checks", "sr_course.grader", "sr_course.sandbox",
    "sr_course.probes", "sr_course.release",
}  # fmt: skip
SUSPICIOUS_CALLS = {
    "exec", "eval", "compile", "__import__", "open", "breakpoint", "globals", "setattr", "delattr",
    "_exit", "system", "kill", "popen", "_getframe", "exit", "register", "remove", "unlink", "rmtree",
    "write_text", "write_bytes", "addaudithook",
}  # fmt: skip
SUSPICIOUS_ATTRIBUTES = {"modules", "__builtins__", "__code__", "__globals__"}
MAX_RECORD_BYTES = 32 * 2**20
SANITIZE = KIT_ROOT / "notebooks" / "nbval_sanitize.cfg"


# --- TODOs -----------------------------------------------------------------------------------------

_REFERENCE: dict[str, list] = {}
_REFERENCE_LOCK = threading.Lock()  # the probes seed torch's global RNG: one thread at a time


def reference_outputs(todo: str) -> list:
    """The reference's outputs of every probe of a TODO (computed here once, from trusted code)."""
    with _REFERENCE_LOCK:
        return _reference_outputs(todo)


def _reference_outputs(todo: str) -> list:
    if todo not in _REFERENCE:
        from types import SimpleNamespace

        from . import losses, models, solver

        ctx = SimpleNamespace(models=models, losses=losses, solver=solver)
        _REFERENCE[todo] = [p.run(ctx) for p in PROBES[todo]]
    return _REFERENCE[todo]


def _write_kit(dst: Path, files: dict[str, str], root: Path, folders: tuple[str, ...]) -> None:
    """The reference's files under `folders` (less instructor-only ones) written to `dst`, with
    `files` ({'sr_course/models.py': text, ...}) in place of the student files."""
    for rel in kit_files(root):
        if rel in INSTRUCTOR_ONLY or not rel.startswith(folders):
            continue
        path = dst / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel in EDITABLE:
            path.write_text(files[rel])
        else:
            shutil.copyfile(root / rel, path)


def _complete(files: dict[str, str | None], root: Path) -> dict[str, str]:
    """Every student file's text: the submission's, or the kit's stub where it is missing."""
    return {rel: files.get(rel) or _stubbed(root, rel) for rel in EDITABLE}


def _guard_roots(root: Path, *reads: Path) -> tuple[list[str], list[str]]:
    """What guarded student code may read (Python's and the system's folders, plus `reads`) and what
    it may never read: the reference solution, wherever it lies (a repository or an installed package)."""
    prefixes = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix})
    system = ["/usr", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"]
    denied = [str(Path(__file__).resolve().parent)]
    denied += [str(root / d) for d in ("sr_course", "tests", "notebooks", ".git")]
    return prefixes + [str(r) for r in reads] + system, denied


def _stubbed(root: Path, rel: str, keep: tuple[str, ...] = ()) -> str:
    """A reference file with its solution regions replaced by stubs, except the TODOs in `keep`."""
    text, _ = strip_solutions((root / rel).read_text(), rel, keep=set(keep))
    return text


def _prepare(work: Path, files: dict[str, str], root: Path) -> dict:
    """Write the sandbox's trees (one per student file, the other student files stubbed), the
    dependency modules and the job description; return the job."""
    stubs = {rel: _stubbed(root, rel) for rel in EDITABLE}
    for name in ("models", "losses", "solver"):
        own = f"sr_course/{name}.py"
        mixed = {rel: files[rel] if rel == own else stubs[rel] for rel in EDITABLE}
        _write_kit(work / "trees" / name, mixed, root, ("sr_course/",))
    todos = {}
    for todo, (file, deps) in TODOS.items():
        spec = {"tree": str(work / "trees" / file)}
        if deps:
            dep_files = {TODOS[d][0] for d in deps}
            assert len(dep_files) == 1, f"{todo}: dependencies in several files"
            deps_dir = work / "deps" / todo_slug(todo)
            deps_dir.mkdir(parents=True)
            rel = f"sr_course/{dep_files.pop()}.py"
            (deps_dir / "deps.py").write_text(_stubbed(root, rel, keep=deps))
            spec.update(
                deps_dir=str(deps_dir),
                deps_file=str(deps_dir / "deps.py"),
                dep_names=[n for d in deps for n in probes_module.NAMES[d]],
            )
        todos[todo] = spec
    runner = work / "runner"
    runner.mkdir()
    shutil.copyfile(Path(probes_module.__file__), runner / "probes.py")
    shutil.copyfile(Path(__file__).with_name("sandbox.py"), runner / "sandbox.py")
    reads, denied = _guard_roots(root, runner)
    return {
        "todos": todos,
        "outdir": str(work / "out"),
        "status": str(work / "status.json"),
        "probes": str(runner / "probes.py"),
        "read_roots": reads,
        "deny_roots": denied,
    }


def grade_todos(
    files: dict[str, str], timeout: float = 30, jobs: int = 2, root: Path = KIT_ROOT
) -> dict:
    """Grade the TODOs of one submission, given the texts of its student files ({'sr_course/models.py':
    text, ...}; a missing file counts as the kit's stub). Returns {todo: entry} and the flags."""
    files = _complete(files, root)
    with tempfile.TemporaryDirectory(prefix="sr-grade-") as tmp:
        work = Path(tmp)
        job = _prepare(work, files, root)
        job.update(timeout=timeout, jobs=jobs)
        (work / "job.json").write_text(json.dumps(job))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SR_", "PYTHON"))}
        env.update(PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
        started = time.monotonic()
        # What the student's code prints is not read (it could print gigabytes): no pipes, no files.
        proc = subprocess.run(
            [sys.executable, "-I", str(work / "runner" / "sandbox.py"), str(work / "job.json")],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout * (len(TODOS) + 2) + 60,
        )
        try:
            status = json.loads((work / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            status = {}
        if proc.returncode != 0 and not status:
            raise RuntimeError(
                f"the grading sandbox failed to start (exit code {proc.returncode}): check that "
                f"`{sys.executable} -I -c 'import torch'` works"
            )
        todos, flags = {}, []
        for todo in TODOS:
            todos[todo], todo_flags = _judge_todo(
                todo, work / "out" / todo_slug(todo), status.get(todo, {}), timeout
            )
            flags += todo_flags
    return {"todos": todos, "flags": flags, "seconds": round(time.monotonic() - started, 1)}


def _load_record(path: Path):
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_RECORD_BYTES:
        return {"error": "OversizedOutput", "message": "", "where": None}
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - anything but plain data is a forged or broken file
        return {"error": "UnreadableOutput", "message": "", "where": None}


def _judge_todo(todo: str, out: Path, status: dict, timeout: float) -> tuple[dict, list]:
    """Judge one TODO's probe outputs against the reference's: an entry and the flags it raises."""
    file = TODOS[todo][0]
    references = reference_outputs(todo)
    entry = {"passed": 0, "total": len(references), "first_failure": None, "failures": []}
    flags = []
    try:
        runtime = json.loads((out / "flags.json").read_text())
        flags += [f"{todo}: blocked {f}" for f in runtime if isinstance(f, str)][:5]
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        pass
    for k, (probe, reference) in enumerate(zip(PROBES[todo], references)):
        record = _load_record(out / f"probe{k}.pt")
        if record is None:
            if status.get("timed_out"):
                verdict = (
                    f"{todo} did not finish within {timeout:g} s (an endless loop?); "
                    "the checks after that point were not run"
                )
            else:
                code = status.get("exitcode")
                verdict = (
                    f"{todo}: the grading process ended before this check ran (exit code {code}): "
                    f"something in sr_course/{file}.py ends the process (exit() or os._exit?)"
                )
                flags.append(f"{todo}: the process ended early (exit code {code})")
        elif not isinstance(record, dict):
            verdict = f"{todo}: its outputs could not be read"
            flags.append(f"{todo}: unreadable outputs")
        elif "error" in record:
            verdict = _error_sentence(todo, file, record)
            if record["error"] in ("UnreadableOutput", "OversizedOutput"):
                flags.append(f"{todo}: {record['error']}")
        else:
            try:
                verdict = probe.judge(record["outputs"], reference)
            except Exception as err:  # noqa: BLE001 - outputs of the wrong kind
                verdict = (
                    f"{todo} ({probe.name}): its outputs have the wrong kind or shape "
                    f"({type(err).__name__}): check the return values against the docstring"
                )
        if verdict is None:
            entry["passed"] += 1
        else:
            entry["failures"].append(f"{probe.name}: {verdict}")
            entry["first_failure"] = entry["first_failure"] or verdict
    entry["score"] = round(entry["passed"] / entry["total"], 3)
    return entry, flags


def _error_sentence(todo: str, file: str, record: dict) -> str:
    kind, message, where = record.get("error"), record.get("message") or "", record.get("where")
    if kind == "NotImplementedError":
        return f"{todo} is not implemented yet: fill in its TODO box in sr_course/{file}.py"
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return (
            f"sr_course/{file}.py does not compile ({kind} at {where or 'an unknown line'}: {message}): "
            f"every TODO of {file}.py scores 0 until it does"
        )
    if kind == "PermissionError" and message.startswith("the grader does not allow"):
        return f"{todo}: {message}"
    for pattern, hint in ERROR_HINTS:
        if pattern in message:
            return f"{todo} raised {kind}: {hint}"
    place = f" at {where}" if where else ""
    first = re.split(r"(?<=[.;])\s", message)[0]
    return f"{todo} raised {kind}{place}: {first}".rstrip(": ")


# PyTorch errors whose cause in a student's code is known: what to say instead of the raw message.
ERROR_HINTS = (
    (
        "backward through the graph a second time",
        "a second backward pass went through the generator's graph: the discriminator's update "
        "must see the generator's output detached",
    ),
    (
        "does not require grad and does not have a grad_fn",
        "a loss has no gradient: a network was left frozen or its output computed under no_grad "
        "where it must learn",
    ),
    (
        "modified by an inplace operation",
        "a tensor needed for the gradient was changed in place: step an optimiser only after "
        "every backward pass that needs its parameters",
    ),
)


# --- static scan -----------------------------------------------------------------------------------


def _imports_and_calls(text: str) -> tuple[set[str], list[tuple[int, str]]]:
    tree = ast.parse(text)
    imports, calls = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("sr_course." if node.level else "") + (node.module or "")
            imports.add(base.rstrip("."))
            imports |= {f"{base}.{a.name}".lstrip(".") for a in node.names}
        elif isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id
                if isinstance(f, ast.Name)
                else f.attr
                if isinstance(f, ast.Attribute)
                else None
            )
            if name:
                calls.append((node.lineno, name))
        elif isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRIBUTES:
            calls.append((node.lineno, node.attr))
    return imports, calls


def scan(files: dict[str, str], root: Path = KIT_ROOT) -> list[str]:
    """Flags for what a submission's files import or call beyond what the reference files use."""
    flags = []
    for rel, text in files.items():
        if text is None:
            continue
        try:
            imports, calls = _imports_and_calls(text)
        except SyntaxError:
            continue  # graded as a compile error
        ref_imports, ref_calls = _imports_and_calls((root / rel).read_text())
        ref_call_names = {name for _, name in ref_calls}
        for name in sorted(imports - ref_imports):
            if name in SUSPICIOUS_MODULES or name.split(".")[0] in SUSPICIOUS_MODULES:
                flags.append(f"{rel}: imports {name}")
        for line, name in calls:
            if name in SUSPICIOUS_CALLS | SUSPICIOUS_ATTRIBUTES and name not in ref_call_names:
                flags.append(f"{rel}:{line}: uses {name}")
    return flags


# --- notebooks -------------------------------------------------------------------------------------


@functools.cache
def _sanitizers() -> list[tuple[re.Pattern, str]]:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(SANITIZE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def _cell_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append("".join(out.get("text", "")))
        elif out.get("output_type") == "execute_result":
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    text = "".join(parts)
    for pattern, replace in _sanitizers():
        text = pattern.sub(replace, text)
    return text.strip()


def grade_notebooks(
    files: dict[str, str],
    todo_scores: dict[str, float],
    cell_timeout: float = 60,
    budget: float = 600,
    root: Path = KIT_ROOT,
    threads: int = 2,
) -> dict:
    """Run the course's notebooks with the student's files; judge every code cell here."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    files = _complete(files, root)
    entry = {"passed": 0, "total": 0, "first_failure": None, "failures": []}
    started = time.monotonic()
    stop_reason = None
    with tempfile.TemporaryDirectory(prefix="sr-grade-nb-") as tmp:
        tmp = Path(tmp)
        tree = tmp / "kit"
        _write_kit(tree, files, root, ("sr_course/", "notebooks/"))
        # The kernels may write here only: not the kit, not IPython's startup folder below.
        writable = [tmp / d for d in ("data", "runs", "mpl", "scratch")]
        for d in writable:
            d.mkdir()
        _kernel_guard(tmp, tree, writable, root)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SR_", "PYTHON"))}
        env.update(
            PYTHONPATH=str(tree),
            PYTHONDONTWRITEBYTECODE="1",
            SR_PROFILE="smoke",
            SR_DATA_ROOT=str(tmp / "data"),
            SR_RUNS_DIR=str(tmp / "runs"),
            OMP_NUM_THREADS=str(threads),
            MPLBACKEND="Agg",
            MPLCONFIGDIR=str(tmp / "mpl"),
            IPYTHONDIR=str(tmp / "ipython"),
            TMPDIR=str(tmp / "scratch"),
        )
        for name in NOTEBOOKS:
            reference = nbformat.read(root / "notebooks" / name, as_version=4)
            nb = copy.deepcopy(reference)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            client = NotebookClient(
                nb,
                timeout=cell_timeout,
                kernel_name="python3",
                allow_errors=True,
                interrupt_on_timeout=True,
                resources={"metadata": {"path": str(tree / "notebooks")}},
            )
            dead = None
            with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
                for index, (cell, ref_cell) in enumerate(zip(nb.cells, reference.cells)):
                    if cell.cell_type != "code":
                        continue
                    entry["total"] += 1
                    where = f"{name} cell {index + 1}"
                    if stop_reason or dead:
                        verdict = f"{where}: not run ({stop_reason or dead})"
                    elif time.monotonic() - started > budget:
                        stop_reason = f"the notebooks' time budget of {budget:g} s was used up"
                        verdict = f"{where}: not run ({stop_reason})"
                    else:
                        t0 = time.monotonic()
                        try:
                            client.execute_cell(cell, index)
                            verdict = _judge_cell(cell, ref_cell, todo_scores, where)
                        except DeadKernelError:
                            dead = "the kernel died in an earlier cell"
                            verdict = f"{where}: the kernel died (does the student's code end the process?)"
                        if time.monotonic() - t0 > cell_timeout:
                            stop_reason = f"{where} did not finish within {cell_timeout:g} s"
                            verdict = f"{where} did not finish within {cell_timeout:g} s (an endless loop?)"
                    if verdict is None:
                        entry["passed"] += 1
                    else:
                        entry["failures"].append(verdict)
                        entry["first_failure"] = entry["first_failure"] or verdict
        blocked = tmp / "scratch" / "blocked.log"
        entry["blocked"] = blocked.read_text().splitlines()[:5] if blocked.is_file() else []
    entry["score"] = round(entry["passed"] / entry["total"], 3) if entry["total"] else 0.0
    entry["seconds"] = round(time.monotonic() - started, 1)
    return entry


def _kernel_guard(tmp: Path, tree: Path, writable: list[Path], root: Path) -> None:
    """An IPython startup file that puts the sandbox's audit hook into every notebook kernel before
    its first cell: the kit and Python's folders readable, only this grading's folders writable."""
    runner = tmp / "runner"
    runner.mkdir()
    shutil.copyfile(Path(__file__).with_name("sandbox.py"), runner / "sr_grade_sandbox.py")
    reads, denies = _guard_roots(root, runner, tree, tmp / "ipython")
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-sr-grade-guard.py").write_text(
        "import sys as _sys\n"
        "import torch as _torch, torchvision as _tv  # loaded first: they load libraries with ctypes\n"
        "import matplotlib.font_manager as _fm  # builds its font cache with a subprocess\n"
        f"_sys.path.insert(0, {str(runner)!r})\n"
        "import sr_grade_sandbox as _guard\n"
        "_sys.path.pop(0)\n"
        f"_guard.install_guard({reads!r}, {[str(w) for w in writable]!r}, {denies!r}, [], "
        f"log={str(tmp / 'scratch' / 'blocked.log')!r})\n"
        "del _sys, _guard, _torch, _tv, _fm\n"
    )


def _judge_cell(cell, ref_cell, todo_scores: dict, where: str) -> str | None:
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        err = errors[0]
        value = re.sub(r"\x1b\[[0-9;]*m", "", str(err.get("evalue", ""))).strip().splitlines()
        return f"{where} failed: {err.get('ename')}: {value[0] if value else ''}".rstrip(": ")
    if "NBVAL_CHECK_OUTPUT" not in cell.source:
        return None
    got, want = _cell_text(cell), _cell_text(ref_cell)
    if got != want:
        return f"{where} printed {got[:120]!r}, expected {want[:120]!r}"
    for check, todos in CHECK_TODOS.items():
        if f"checks.{check}(" in cell.source:
            wrong = [t for t in todos if todo_scores.get(t, 0) < 1]
            if wrong:
                return (
                    f"{where}: its self-check passed, but the grader found {', '.join(wrong)} wrong"
                )
    return None


# --- one submission, a class -----------------------------------------------------------------------


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
) -> dict:
    """Grade one submission folder (a kit with the student's sr_course files); the folder is only read."""
    started = time.monotonic()
    files = read_submission(submission)
    result = grade_todos(files, timeout=timeout, jobs=jobs, root=root)
    flags = scan(files, root) + result["flags"]
    report = {
        "submission": str(submission),
        "missing_files": [rel for rel, text in files.items() if text is None],
        "todos": result["todos"],
        "notebooks": None,
        "flags": flags,
    }
    if notebooks:
        scores = {t: e["score"] for t, e in result["todos"].items()}
        report["notebooks"] = grade_notebooks(
            files, scores, cell_timeout=cell_timeout, root=root, threads=jobs
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
    for flag in report["flags"]:
        rows.append(f"flag: {flag}")
    return "\n".join(rows)


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    torch.set_num_threads(1)
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
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    subs = find_submissions(submissions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    kwargs.setdefault("jobs", 1)
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
    writer.writerow(["student", *TODOS, "todos", "notebooks", "total", "max", "flags"])
    for r in reports:
        name = Path(r["submission"]).name
        if "error" in r:
            writer.writerow([name, *[""] * (len(TODOS) + 4), f"not graded: {r['error']}"])
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
                "; ".join(r["flags"]),
            ]
        )
    return buf.getvalue()
