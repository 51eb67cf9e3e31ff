"""The grader's sandbox: runs the probes on a student's code and only writes their outputs
(instructor-only; started by sr_course/grading/todos.py as `python sandbox.py JOB.json`, never imported by it).

The runner imports torch, then forks one child per TODO (a few at a time). Each child:
  1. installs an audit hook (PEP 578) that cannot be removed: files may be read only from Python's
     own folders, the system's and the child's own copy of the package; written only in the child's
     output folder; no processes, signals, sockets, ctypes or walks over the interpreter's objects.
     Blocked actions raise PermissionError and are reported as flags;
  2. imports the student's file of that TODO from its own tree (the other student files there are the
     kit's stubs) and swaps in the reference's version of the TODOs it builds on;
  3. runs the TODO's probes, saving each probe's outputs (or its error) as soon as it has them.
The runner kills a child that outlives the time limit. The grader, where student code never runs,
loads the outputs (tensors and plain data only: torch.load(weights_only=True)) and judges them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import multiprocessing
import os
import re
import sys
import time
import traceback
from pathlib import Path

BLOCKED_EVENTS = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "signal.pthread_kill",
    "subprocess.Popen",
    "socket.__new__",
    "socket.connect",
    "socket.bind",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.call_function",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys.setprofile",
    "sys.settrace",
    "os.chdir",
)
# Allowed inside the write roots only (every path argument is checked).
WRITE_EVENTS = (
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.utime", "os.chmod",
    "os.chown", "os.truncate", "os.symlink", "os.link",
)  # fmt: skip
AF_UNIX = 1  # socket.AF_UNIX on Linux and macOS
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def install_guard(read_roots, write_roots, deny_roots, flags: list, log: str | None = None) -> None:
    """Add the audit hook. Roots are folders; paths are resolved before they are compared. Blocked
    actions are appended to `flags` (and to the file `log`, when given)."""
    read_roots = tuple(os.path.realpath(r) for r in read_roots)
    write_roots = tuple(os.path.realpath(r) for r in write_roots)
    deny_roots = tuple(os.path.realpath(r) for r in deny_roots)
    realpath, fspath = os.path.realpath, os.fspath

    def allowed(path, write: bool) -> bool:
        try:
            p = realpath(fspath(path))
        except (TypeError, ValueError):
            return False
        if _under(p, write_roots):
            return True
        return not write and _under(p, read_roots) and not _under(p, deny_roots)

    def refuse(event, detail):
        flags.append(f"{event}: {detail}"[:200])
        if log:
            with open(log, "a") as f:
                f.write(flags[-1].replace("\n", " ") + "\n")
        raise PermissionError(f"the grader does not allow {event} ({detail})"[:200])

    def hook(event, args):
        if event == "open":
            path, mode, oflags = (tuple(args) + (None, None, None))[:3]
            if isinstance(path, int):
                return
            write = bool(mode and any(c in str(mode) for c in "wax+")) or bool(
                isinstance(oflags, int) and oflags & WRITE_FLAGS
            )
            if not allowed(path, write):
                refuse(event, f"{path!s} {'for writing' if write else 'for reading'}")
        elif event in WRITE_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not allowed(path, True):
                    refuse(event, str(path))
        elif event == "socket.__new__" and len(args) > 1 and args[1] == AF_UNIX:
            return  # a socket pair inside this process (asyncio's self-pipe); connect stays blocked
        elif event in BLOCKED_EVENTS or event.startswith(("os.exec", "os.spawn", "os.posix_spawn")):
            refuse(event, repr(args)[:80])

    sys.addaudithook(hook)


def todo_slug(todo: str) -> str:
    """A TODO's id as a folder name: 'SRGAN step' -> 'SRGAN_step'."""
    return re.sub(r"[^A-Za-z0-9]+", "_", todo).strip("_")


def _describe(err: BaseException, tree: str, student_files: tuple[str, ...]) -> dict:
    """An exception as plain data: type, first line, and the student's file and line it came from
    (student_files: the job's, e.g. ('models.py', 'losses.py', 'solver.py'))."""
    where = None
    for frame in traceback.extract_tb(err.__traceback__):
        name = os.path.basename(frame.filename)
        if frame.filename.startswith(tree) and name in student_files:
            where = f"{name} line {frame.lineno}"
    if (
        isinstance(err, SyntaxError)
        and err.filename
        and os.path.basename(err.filename) in student_files
    ):
        where = f"{os.path.basename(err.filename)} line {err.lineno}"
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return {"error": type(err).__name__, "message": message[:240], "where": where}


def _child(job: dict, todo: str) -> None:
    import torch  # loaded once by main() before the fork; this binds it here

    torch.set_num_threads(1)
    sys.dont_write_bytecode = True
    spec = job["todos"][todo]
    student_files = tuple(job["student_files"])
    out = Path(job["outdir"]) / todo_slug(todo)
    tree = spec["tree"]
    flags: list[str] = []
    scratch = out / "scratch"  # a private temporary folder (some libraries ask for one)
    scratch.mkdir()
    os.environ["TMPDIR"] = str(scratch)
    import tempfile  # after TMPDIR is set, so its default folder is the scratch one

    tempfile.tempdir = str(scratch)
    install_guard(
        read_roots=[*job["read_roots"], tree, spec.get("deps_dir") or tree],
        write_roots=[str(out)],
        deny_roots=job["deny_roots"],
        flags=flags,
    )
    probes = sys.modules["sr_grade_probes"]

    def save(name, record):
        torch.save(record, out / f"{name}.pt")

    ctx_error = None
    try:
        sys.path.insert(0, tree)
        # The student's modules, from this child's own tree (only now on the path), as ctx.<name>.
        ctx = type("Ctx", (), {})()
        for name in student_files:
            stem = name.removesuffix(".py")
            setattr(ctx, stem, importlib.import_module(f"sr_course.{stem}"))
        if spec.get("deps_file"):
            # The reference's version of the TODOs this one builds on, in the package's namespace
            # (it uses relative imports), swapped in wherever the student's code looks them up.
            name = f"sr_course._grade_deps_{todo_slug(todo)}"
            loader = importlib.util.spec_from_file_location(name, spec["deps_file"])
            deps = importlib.util.module_from_spec(loader)
            sys.modules[name] = deps
            loader.loader.exec_module(deps)
            for attr in spec["dep_names"]:
                for module in (getattr(ctx, n.removesuffix(".py")) for n in student_files):
                    if hasattr(module, attr):
                        setattr(module, attr, getattr(deps, attr))
    except BaseException as err:  # noqa: BLE001 - a student's import can raise anything
        ctx_error = _describe(err, tree, student_files)
    for k, probe in enumerate(probes.PROBES[todo]):
        if ctx_error:
            record = ctx_error
        else:
            try:
                record = {"outputs": probe.run(ctx)}
            except BaseException as err:  # noqa: BLE001
                record = _describe(err, tree, student_files)
        try:
            save(f"probe{k}", record)
        except Exception as err:  # noqa: BLE001 - outputs that cannot be saved
            save(
                f"probe{k}", {"error": "UnsavableOutput", "message": str(err)[:200], "where": None}
            )
    (out / "flags.json").write_text(json.dumps(flags))


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    import torch  # the runner's only heavy import, before any student code and shared by fork

    # Warm up once, before any student code and shared by fork: torch imports parts of itself lazily
    # (the optimisers' first step, autocast, grad scalers).
    net = torch.nn.Conv2d(1, 1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with torch.autocast("cpu", enabled=False):
        net(torch.zeros(1, 1, 2, 2)).sum().backward()
    torch.amp.GradScaler("cuda", enabled=False).step(opt)
    torch.optim.Adam(net.parameters()).step()

    loader = importlib.util.spec_from_file_location("sr_grade_probes", job["probes"])
    probes = importlib.util.module_from_spec(loader)
    sys.modules["sr_grade_probes"] = probes
    loader.loader.exec_module(probes)

    fork = multiprocessing.get_context("fork")
    pending = list(job["todos"])
    running: dict[str, tuple] = {}
    status = {}
    while pending or running:
        while pending and len(running) < int(job["jobs"]):
            todo = pending.pop(0)
            (Path(job["outdir"]) / todo_slug(todo)).mkdir(parents=True, exist_ok=True)
            proc = fork.Process(target=_child, args=(job, todo), daemon=True)
            proc.start()
            running[todo] = (proc, time.monotonic())
        time.sleep(0.02)
        for todo, (proc, start) in list(running.items()):
            elapsed = time.monotonic() - start
            if proc.exitcode is not None or elapsed > job["timeout"]:
                timed_out = proc.exitcode is None
                if timed_out:
                    proc.kill()
                    proc.join()
                status[todo] = {
                    "exitcode": proc.exitcode,
                    "timed_out": timed_out,
                    "seconds": round(elapsed, 2),
                }
                del running[todo]
    Path(job["status"]).write_text(json.dumps(status))


if __name__ == "__main__":
    main(sys.argv[1])
