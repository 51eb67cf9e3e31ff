"""Grading the notebooks: the course's notebooks run with a submission's files, judged here.

The notebooks run with the student's files (nbclient, a fresh kernel per notebook, the smoke profile,
the sandbox's audit hook put into each kernel by an IPython startup file) and are judged like
`pytest --nbval-lax`: every code cell must run, and each self-check cell must print what the
reference printed. A self-check cell counts only if the grader also found the TODOs it checks right.
A cell that does not finish in time stops the notebook run: the notebooks build on each other.
"""

from __future__ import annotations

import configparser
import copy
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from ..course import CHECKS, NOTEBOOKS
from . import sandbox as sandbox_module
from .kit import KIT_ROOT, complete, write_kit
from .todos import guard_roots

SANITIZE = KIT_ROOT / "notebooks" / "nbval_sanitize.cfg"


@functools.cache
def _sanitizers() -> list[tuple[re.Pattern, str]]:
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
    files = complete(files, root)
    entry = {"passed": 0, "total": 0, "first_failure": None, "failures": []}
    started = time.monotonic()
    stop_reason = None
    with tempfile.TemporaryDirectory(prefix="sr-grade-nb-") as tmp:
        tmp = Path(tmp)
        tree = tmp / "kit"
        write_kit(tree, files, root, ("sr_course/", "notebooks/"))
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
    shutil.copyfile(Path(sandbox_module.__file__), runner / "sr_grade_sandbox.py")
    reads, denies = guard_roots(root, runner, tree, tmp / "ipython")
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
    for check, todos in CHECKS.items():  # a check cell counts only where all its TODOs passed
        if f"checks.{check}(" in cell.source:
            wrong = [t for t in todos if todo_scores.get(t, 0) < 1]
            if wrong:
                return (
                    f"{where}: its self-check passed, but the grader found {', '.join(wrong)} wrong"
                )
    return None
