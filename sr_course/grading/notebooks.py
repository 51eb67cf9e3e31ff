"""Grading the notebooks: the course's notebooks run with a submission's files, judged here.

The notebooks run with the student's files (nbclient, a fresh kernel per notebook, the smoke profile)
and are judged like `pytest --nbval-lax`: every code cell must run, and each self-check cell must
print what the reference printed. A self-check cell counts only if the grader also found the TODOs
it checks right. Limits count the kernel's own CPU time (a cell's, and all the notebooks'
together), so that a busy grading machine costs no points; each has a wall-clock limit
isolation.WALL_FACTOR times longer for code that waits. A cell that hits its limit is interrupted
and costs that cell alone: the next cells run (a kernel that ignores the interrupt is stopped, and
costs the rest of its notebook).

Each kernel runs in an operating-system sandbox of its own (isolation.py): it sees the kit with the
student's files and the notebooks (read-only), the grading's data, runs and matplotlib folders (the
notebooks build on each other's runs), its own /tmp, and the folder of its ZeroMQ sockets: the
client here talks to it over Unix sockets there (transport "ipc"), since the sandbox has no
network. The audit hook (a flag layer) is put into each kernel before its first cell, and sends its
flags on a pipe as they happen. What a kernel may send back is capped (ZeroMQ's largest message,
the outputs kept per cell); the folders it writes are watched and the kernel killed when they grow
past their quota.
"""

from __future__ import annotations

import configparser
import contextlib
import copy
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import zmq
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from .. import threads as thread_policy
from ..course import CHECKS, NOTEBOOKS
from . import isolation
from . import sandbox as sandbox_module
from .kit import KIT_ROOT, complete, read_submission, reference_files, write_atomic, write_kit

MAX_MESSAGE_BYTES = 32 * 2**20  # one ZeroMQ message from a kernel (a larger one drops the link)
MAX_CELL_OUTPUT_BYTES = 2 * 2**20  # outputs kept per cell; the rest is dropped
WRITABLE_QUOTA = 2 * 2**30  # the data, runs and matplotlib folders together
KERNEL_LIMITS = isolation.Limits(
    memory=8 * 2**30, cpu_seconds=900, file_size=512 * 2**20, open_files=1024, processes=256
)
SANITIZE = KIT_ROOT / "notebooks" / "nbval_sanitize.cfg"
NOT_RUN = "not run: no TODO has earned a point yet, and the notebooks count only once one has"
INTERRUPT_GRACE = 20  # seconds a kernel has to stop a cell after its interrupt


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


class _Client(NotebookClient):
    """nbclient with a cap on what each cell keeps of its outputs."""

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(
            len(str(v)) for v in content.get("data", {}).values()
        )
        self._sizes = getattr(self, "_sizes", {})
        self._sizes[cell_index] = self._sizes.get(cell_index, 0) + size
        if self._sizes[cell_index] > MAX_CELL_OUTPUT_BYTES:
            return None
        return super().output(outs, msg, display_id, cell_index)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts its kernel inside `box` (set before start)."""

    box: isolation.Box | None = None
    seccomp_fd: int | None = None

    def format_kernel_cmd(self, extra_arguments=None):
        argv = super().format_kernel_cmd(extra_arguments)
        return isolation.command(argv, self.box, self.seccomp_fd)

    def write_connection_file(self, **kwargs):
        """'user' mode: the kernel runs as the box's uid, so its connection file (written 0600 by
        this process) must be that uid's to read."""
        result = super().write_connection_file(**kwargs)
        if self.box is not None and self.box.mode == "user":
            os.chown(self.connection_file, self.box.uid, -1)
        return result


def grade_notebooks(
    files: dict[str, str],
    todo_scores: dict[str, float],
    cell_timeout: float = 60,
    budget: float = 600,
    root: Path = KIT_ROOT,
    threads: int = 2,
    isolation_mode: str = "auto",
    ahead: bool = True,
) -> dict:
    """Run the course's notebooks with the student's files, each kernel sandboxed; judge every code
    cell here. cell_timeout: CPU seconds a cell may use; budget: CPU seconds all the notebooks'
    cells may use together. The next notebook's kernel starts while one runs (its start is mostly
    imports), unless `ahead` is False (one core, or little memory: one kernel at a time).
    While no TODO has earned a point the notebooks are not run: they would run only the kit's own
    code, and count for nothing (points.py); an untouched upload is graded in seconds."""
    entry = {"passed": 0, "total": 0, "first_failure": None, "failures": [], "blocked": []}
    entry["cpu_seconds"] = 0.0  # the kernels' own, cell by cell
    if not any(todo_scores.values()):
        entry["total"] = sum(_code_cells(root / "notebooks" / name) for name in NOTEBOOKS)
        entry["first_failure"] = NOT_RUN
        entry["failures"] = [NOT_RUN]
        entry.update(score=0.0, seconds=0.0)
        return entry
    mode = isolation.choose(isolation_mode, protected=reference_files(root))
    files = complete(files, root)
    started = time.monotonic()
    stop_reason = None
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sr-grade-nb-"))
        tmp = Path(tmp)
        tree = tmp / "kit"
        write_kit(tree, files, root, ("sr_course/", "notebooks/"))
        runner = tmp / "runner"
        runner.mkdir()
        shutil.copyfile(Path(sandbox_module.__file__), runner / "sr_grade_sandbox.py")
        writable = [tmp / d for d in ("data", "runs", "mpl")]
        for d in writable:
            d.mkdir()
        # 'user' mode: a group for this grading's folders, one uid for its kernels (they build on
        # each other's runs, so they share it).
        gid, uid = stack.enter_context(isolation.lease_ids(2))
        if mode == "user":
            isolation.open_to_group([tmp, tree, runner], gid)

        def kernel(index: int) -> _Kernel:
            return _Kernel(index, tmp, tree, runner, writable, mode, uid, gid, threads)

        # The next kernel starts while one runs (its start is mostly imports), except in 'user'
        # mode: there all kernels share one uid (they build on each other's runs) and closing one
        # kills every process of that uid.
        ahead = ahead and mode != "user"
        upcoming = kernel(0)
        for index, name in enumerate(NOTEBOOKS):
            current = upcoming or kernel(index)
            upcoming = kernel(index + 1) if ahead and index + 1 < len(NOTEBOOKS) else None
            try:
                stop_reason = _run_notebook(
                    name, root, current, cell_timeout, todo_scores, entry, stop_reason,
                    started, budget,
                )  # fmt: skip
            finally:
                entry["blocked"] += [f"{name}: {f}" for f in current.close()]
        if upcoming is not None:
            upcoming.close()
    entry["score"] = round(entry["passed"] / entry["total"], 3) if entry["total"] else 0.0
    entry["seconds"] = round(time.monotonic() - started, 1)
    entry["blocked"] = entry["blocked"][:5]
    return entry


def _code_cells(path: Path) -> int:
    return sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)


class _Kernel:
    """One notebook's kernel in its own box, started at once: its sockets' folder, its /tmp, the
    pipe its audit hook's flags come back on, and a watch on the folders it writes."""

    def __init__(
        self, index, tmp: Path, tree: Path, runner: Path, writable, mode, uid, gid, threads
    ):
        self.mode = mode
        self.tree = tree
        self.conn = tmp / f"kernel-{index}"  # its sockets and connection file: nothing else
        self.conn.mkdir()
        self.own_tmp = tmp / f"tmp-{index}"  # 'user' and 'none' modes: its temporary folder
        self.own_tmp.mkdir(mode=0o700)
        inside_tmp = "/tmp" if mode == "bwrap" else str(self.own_tmp)
        flags_r, flags_w = os.pipe()
        rw = [str(d) for d in writable] + [str(self.conn)]
        self.box = isolation.Box(
            mode,
            read_only=[str(tree), str(runner)],
            writable=rw + ([] if mode == "bwrap" else [str(self.own_tmp)]),
            env=_kernel_env(tree, tmp, inside_tmp, threads, flags_w),
            cwd=str(tree / "notebooks"),
            limits=KERNEL_LIMITS,
            uid=uid,
            gid=gid,
        )
        isolation.prepare(self.box)
        km = SandboxedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(self.conn / "k"),
            connection_file=str(self.conn / "kernel.json"),
        )  # fmt: skip
        km.context = zmq.asyncio.Context()
        km.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        km.box = self.box
        km.seccomp_fd = isolation.seccomp_file() if mode == "bwrap" else None
        self.km = km
        guard = runner / f"kernel_guard_{index}.py"
        guard.write_text(_guard_source(tree, runner, writable, self.conn, inside_tmp))
        guard.chmod(0o644)
        self.extra_arguments = [f"--IPKernelApp.exec_files=['{guard}']"]
        self.flags: list[str] = []
        self.reader = threading.Thread(target=_read_flags, args=(flags_r, self.flags), daemon=True)
        self.reader.start()
        self.over_quota = threading.Event()
        self._done = threading.Event()
        watched = [*writable, self.conn, self.own_tmp]

        def watch():  # the writable folders are on the grader's disk: kill the kernel past the quota
            while not self._done.wait(0.5):
                if isolation.disk_usage(watched) > WRITABLE_QUOTA:
                    self.over_quota.set()
                    _kill(km)
                    return

        threading.Thread(target=watch, daemon=True).start()
        pass_fds = [flags_w] + ([km.seccomp_fd] if km.seccomp_fd is not None else [])
        self.start_error = None
        try:
            run_sync(km.start_kernel)(
                extra_arguments=self.extra_arguments, env=dict(self.box.env),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=pass_fds,
                cwd=str(tree / "notebooks"),
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001 - reported as the notebook's first failure
            self.start_error = err
        finally:
            os.close(flags_w)
            if km.seccomp_fd is not None:
                os.close(km.seccomp_fd)

    def close(self) -> list[str]:
        """Kill the box and everything in it; the flags it raised."""
        self._done.set()
        _kill(self.km)
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - already dead
            pass
        if self.mode == "user":
            isolation.end_user(self.box.uid)
        self.reader.join(timeout=5)
        shutil.rmtree(self.conn, ignore_errors=True)
        shutil.rmtree(self.own_tmp, ignore_errors=True)
        if self.over_quota.is_set():
            self.flags.append("wrote more than the notebooks' folders may hold")
        return self.flags


def _run_notebook(
    name, root, kernel: _Kernel, cell_timeout, todo_scores, entry, stop_reason, started, budget
):
    """Run one notebook in its kernel and judge its cells into `entry`; returns why the notebooks
    after it must not run (None: they may)."""
    reference = nbformat.read(root / "notebooks" / name, as_version=4)
    nb = copy.deepcopy(reference)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # nbclient's own timeout is the last resort, for a kernel that ignores the interrupt.
    last_resort = cell_timeout * isolation.WALL_FACTOR + INTERRUPT_GRACE
    client = _Client(
        nb, km=kernel.km, timeout=last_resort, allow_errors=True, interrupt_on_timeout=False,
        resources={"metadata": {"path": str(kernel.tree / "notebooks")}},
    )  # fmt: skip
    dead = None
    judged = 0  # code cells of this notebook counted so far
    if kernel.start_error is not None:
        dead = f"{name}'s kernel did not start ({type(kernel.start_error).__name__})"
    try:
        with client.setup_kernel():
            for index, (cell, ref_cell) in enumerate(zip(nb.cells, reference.cells)):
                if cell.cell_type != "code":
                    continue
                entry["total"] += 1
                judged += 1
                where = f"{name} cell {index + 1}"
                if stop_reason or dead:
                    verdict = f"{where}: not run ({stop_reason or dead})"
                elif entry["cpu_seconds"] > budget or (
                    time.monotonic() - started > budget * isolation.WALL_FACTOR
                ):
                    stop_reason = f"the notebooks' budget of {budget:g} s of CPU time was used up"
                    verdict = f"{where}: not run ({stop_reason})"
                else:
                    watch = _CellWatch(kernel, cell_timeout)
                    try:
                        client.execute_cell(cell, index)
                        verdict = _judge_cell(cell, ref_cell, todo_scores, where)
                    except CellTimeoutError:
                        dead = f"the kernel was stopped after {where} ignored its interrupt"
                        verdict = f"{where} did not finish within {watch.limit_text()}"
                        _kill(kernel.km)
                    except DeadKernelError:
                        dead = "the kernel died in an earlier cell"
                        verdict = (
                            f"{where}: the kernel died (does the student's code end the process?)"
                        )
                    finally:
                        entry["cpu_seconds"] += watch.stop()
                    if watch.hit and not dead:
                        verdict = (
                            f"{where} did not finish within {watch.limit_text()}: it was "
                            "interrupted there"
                        )
                    if kernel.over_quota.is_set():
                        stop_reason = f"{where} wrote more than the notebooks' folders may hold"
                        verdict = stop_reason
                if verdict is None:
                    entry["passed"] += 1
                else:
                    entry["failures"].append(verdict)
                    entry["first_failure"] = entry["first_failure"] or verdict
    except Exception as err:  # noqa: BLE001 - the kernel went away between cells
        stop_reason = stop_reason or f"{name}'s kernel failed ({type(err).__name__})"
        entry["first_failure"] = entry["first_failure"] or stop_reason
        # Every cell of this notebook counts, run or not: a kernel that fails costs its cells.
        codes = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        for index in codes[judged:]:
            entry["total"] += 1
            entry["failures"].append(f"{name} cell {index + 1}: not run ({stop_reason})")
    entry["cpu_seconds"] = round(entry["cpu_seconds"], 1)
    return stop_reason


class _CellWatch:
    """Watches one cell's kernel while it runs: past `cpu_limit` seconds of the kernel's own CPU
    time, or WALL_FACTOR times that of wall-clock time, the cell is interrupted (SIGINT to the
    kernel, as Jupyter's stop button), and the next cells still run."""

    def __init__(self, kernel: _Kernel, cpu_limit: float):
        proc = getattr(getattr(kernel.km, "provisioner", None), "process", None)
        self.root = proc.pid if proc is not None else None
        self.cpu_limit, self.hit = cpu_limit, None
        self.cpu0, self.wall0 = self._cpu(), time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _cpu(self) -> float:
        return isolation.cpu_seconds(self.root) if self.root is not None else 0.0

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            if self._cpu() - self.cpu0 > self.cpu_limit:
                self.hit = "cpu"
            elif time.monotonic() - self.wall0 > self.cpu_limit * isolation.WALL_FACTOR:
                self.hit = "wall"
            if self.hit:
                _interrupt(self.root)
                return

    def stop(self) -> float:
        """Stop watching; the CPU seconds the cell used."""
        self._done.set()
        self._thread.join(timeout=5)
        return max(self._cpu() - self.cpu0, 0.0)

    def limit_text(self) -> str:
        return isolation.limit_text(self.hit or "wall", self.cpu_limit)


def _interrupt(root: int | None) -> None:
    """SIGINT to the kernel's Python process below `root` (bwrap, the box's own process, would
    not pass it on)."""
    if root is None:
        return
    for pid in sorted(isolation.process_tree(root)):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv[0].endswith(b"bwrap") and any(b"ipykernel" in a for a in argv):
            os.kill(pid, signal.SIGINT)
            return


def _kill(km) -> None:
    """Kill a kernel's whole box: its process group (bwrap's namespace dies with it)."""
    proc = getattr(getattr(km, "provisioner", None), "process", None)
    if proc is None:
        return
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _read_flags(fd: int, flags: list[str]) -> None:
    """Collect the flag frames a kernel's audit hook sends (capped), until the pipe closes."""
    buf = b""
    with os.fdopen(fd, "rb", buffering=0) as f:
        while chunk := f.read(1 << 16):
            buf += chunk
            while len(buf) >= sandbox_module.HEADER.size:
                kind, n = sandbox_module.HEADER.unpack(buf[: sandbox_module.HEADER.size])
                if n > 1024 or kind != sandbox_module.FLAG:
                    flags.append("its flag channel was forged")
                    return
                if len(buf) < sandbox_module.HEADER.size + n:
                    break
                text = buf[sandbox_module.HEADER.size : sandbox_module.HEADER.size + n]
                buf = buf[sandbox_module.HEADER.size + n :]
                if len(flags) < 20:
                    flags.append(text.decode("utf-8", "replace")[:200])


def _kernel_env(tree: Path, tmp: Path, inside_tmp: str, threads: int, flags_fd: int):
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": inside_tmp,
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(tree),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SR_PROFILE": "smoke",
        "SR_DATA_ROOT": str(tmp / "data"),
        "SR_RUNS_DIR": str(tmp / "runs"),
        **thread_policy.child_env(threads),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(tmp / "mpl"),
        "IPYTHONDIR": f"{inside_tmp}/ipython",
        "TMPDIR": inside_tmp,
        "JUPYTER_RUNTIME_DIR": f"{inside_tmp}/jupyter",
        "SR_GRADE_FLAGS_FD": str(flags_fd),
    }


def _guard_source(tree, runner, writable, conn, inside_tmp) -> str:
    """The file each kernel runs before its first cell: the audit hook (flags on the pipe)."""
    reads = [*isolation.python_roots(), *isolation.SYSTEM_READS, str(tree), str(runner), str(conn)]
    writes = [str(w) for w in writable] + [inside_tmp, str(conn)]
    locked = [str(tree), str(runner)]  # read, never written (in the bwrap box they sit in /tmp)
    return (
        "import os as _os, sys as _sys\n"
        "import torch as _torch  # before any cell (torchvision when a cell imports it)\n"
        "import matplotlib.font_manager as _fm  # builds its font cache\n"
        f"_sys.path.insert(0, {str(runner)!r})\n"
        "import sr_grade_sandbox as _guard\n"
        "_sys.path.pop(0)\n"
        "_fd = int(_os.environ.pop('SR_GRADE_FLAGS_FD'))\n"
        "def _report(text, _fd=_fd, _frame=_guard.frame, _write=_os.write):\n"
        "    try:\n"
        "        _write(_fd, _frame(b'F', text.encode('utf-8', 'replace')))\n"
        "    except OSError:\n"
        "        pass\n"
        f"_guard.install_guard({reads!r}, {writes!r}, [], _report, {locked!r})\n"
        "del _guard, _torch, _fm, _report, _fd\n"
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


def main(argv: list[str] | None = None) -> int:
    """`python -m sr_course.grading.notebooks SUBMISSION TODO_REPORT OUT`: the notebook stage of a
    grading on its own, for a grader process that must not hold torch while the kernels run (the
    autograder bundle: grading/gradescope.py). TODO_REPORT is the TODO stage's report (its scores
    and isolation mode); OUT receives the notebooks' entry as JSON. This module imports no torch."""
    submission, todo_report, out = (Path(a) for a in (argv or sys.argv[1:]))
    report = json.loads(todo_report.read_text())
    entry = grade_notebooks(
        read_submission(submission),
        {t: e["score"] for t, e in report["todos"].items()},
        threads=1,
        isolation_mode=report["isolation"],
        ahead=False,
    )
    write_atomic(out, json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
