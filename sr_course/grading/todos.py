"""Grading the TODOs by behaviour: the probes run on a submission in the sandbox, the judges here.

    grade_todos(files) -> {"todos": {todo: entry}, "flags": [...], "seconds"}

Only the student's sr_course/models.py, losses.py and solver.py are read. `sandbox.py` runs the
probes of `probes.py` on them in a separate process, one forked child per TODO, each under an audit
hook that confines it (see sandbox.py). A TODO is graded with the reference's version of the TODOs
it builds on (the course manifest's builds_on) and the kit's stubs for the student's other files, so
one mistake costs one TODO. The children only write outputs; this process, where student code never
runs, compares them with the reference's outputs and writes the verdicts.
"""

from __future__ import annotations

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
from types import SimpleNamespace

import torch

from .. import losses, models, solver
from ..course import STUDENT_FILES, TODOS
from . import probes as probes_module
from . import sandbox as sandbox_module
from .kit import EDITABLE, KIT_ROOT, complete, stubbed, write_kit
from .probes import PROBES
from .sandbox import todo_slug

MAX_RECORD_BYTES = 32 * 2**20
if set(PROBES) != set(TODOS):  # every TODO of the manifest is probed, and nothing else
    raise RuntimeError(
        f"probes.PROBES covers {sorted(PROBES)}, the manifest's TODOS {sorted(TODOS)}"
    )


_REFERENCE: dict[str, list] = {}
_REFERENCE_LOCK = threading.Lock()  # the probes seed torch's global RNG: one thread at a time


def reference_outputs(todo: str) -> list:
    """The reference's outputs of every probe of a TODO (computed here once, from trusted code)."""
    with _REFERENCE_LOCK:
        return _reference_outputs(todo)


def _reference_outputs(todo: str) -> list:
    if todo not in _REFERENCE:
        ctx = SimpleNamespace(models=models, losses=losses, solver=solver)
        _REFERENCE[todo] = [p.run(ctx) for p in PROBES[todo]]
    return _REFERENCE[todo]


def guard_roots(root: Path, *reads: Path) -> tuple[list[str], list[str]]:
    """What guarded student code may read (Python's and the system's folders, plus `reads`) and what
    it may never read: the reference solution, wherever it lies (a repository or an installed package)."""
    prefixes = sorted({sys.prefix, sys.base_prefix, sys.exec_prefix})
    system = ["/usr", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"]
    denied = [str(Path(__file__).resolve().parents[1])]  # the reference package
    denied += [str(root / d) for d in ("sr_course", "tests", "notebooks", ".git")]
    return prefixes + [str(r) for r in reads] + system, denied


def _prepare(work: Path, files: dict[str, str], root: Path) -> dict:
    """Write the sandbox's trees (one per student file, the other student files stubbed), the
    dependency modules and the job description; return the job."""
    stubs = {rel: stubbed(root, rel) for rel in EDITABLE}
    for own in EDITABLE:
        mixed = {rel: files[rel] if rel == own else stubs[rel] for rel in EDITABLE}
        write_kit(work / "trees" / Path(own).stem, mixed, root, ("sr_course/",))
    todos = {}
    for todo, entry in TODOS.items():
        file, deps = entry.file, entry.builds_on
        spec = {"tree": str(work / "trees" / file)}
        if deps:
            dep_files = {TODOS[d].file for d in deps}
            assert len(dep_files) == 1, f"{todo}: dependencies in several files"
            deps_dir = work / "deps" / todo_slug(todo)
            deps_dir.mkdir(parents=True)
            rel = f"sr_course/{dep_files.pop()}.py"
            (deps_dir / "deps.py").write_text(stubbed(root, rel, keep=deps))
            spec.update(
                deps_dir=str(deps_dir),
                deps_file=str(deps_dir / "deps.py"),
                dep_names=[n for d in deps for n in TODOS[d].names],
            )
        todos[todo] = spec
    runner = work / "runner"
    runner.mkdir()
    shutil.copyfile(Path(probes_module.__file__), runner / "probes.py")
    shutil.copyfile(Path(sandbox_module.__file__), runner / "sandbox.py")
    reads, denied = guard_roots(root, runner)
    return {
        "todos": todos,
        "student_files": list(STUDENT_FILES),
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
    files = complete(files, root)
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
    file = TODOS[todo].file
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
