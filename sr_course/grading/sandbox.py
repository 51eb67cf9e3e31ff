"""What runs inside the grader's sandbox: the probes of one TODO on one submission (instructor-only).

Started by sr_course/grading/todos.py as `python -I sandbox.py JOB.json`, inside the operating-system
sandbox of isolation.py (the security rests there); never imported by the grader to run anything
but `todo_slug` and the channel's frame format. It:
  1. imports torch and warms it up, then tells the grader it has started (a frame on the channel);
  2. installs an audit hook (PEP 578): a second layer that refuses and flags reads outside Python's
     folders, the system's and the kit's, writes outside /tmp, processes, signals, sockets, ctypes
     and walks over the interpreter's objects; each flag leaves on the channel as it happens, so
     code in this process cannot take it back;
  3. imports the student's file of this TODO from the kit tree (the stubs plus this submission's
     three files) and puts the probes' stand-ins where the TODOs it builds on are looked up;
  4. runs the probes and sends each one's outputs (or its error) on the channel as soon as it has
     them, then ends the process (threads it started end with it).
The same file, run outside any sandbox on the reference's tree with "reference": true, computes the
reference's outputs of every TODO for the grading run's seed (a separate process that never sees a
submission).

The channel is a pipe (file descriptor job["channel"]). Frames: one kind byte, a 4-byte big-endian
length, the payload. S: started; I: a student file's import begins (its stem) or ends (empty), so
that a process ended or stopped by the import itself is told from one ended by a probe; F: a flag
(UTF-8); R: a record (4-byte probe index, then torch.save bytes of {"outputs": ...} or
{"error", "message", "where"}); E: the TODO is done.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import re
import struct
import sys
import traceback

STARTED, IMPORT, FLAG, RECORD, END = b"S", b"I", b"F", b"R", b"E"
HEADER = struct.Struct(">cI")

BLOCKED_EVENTS = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
    "os.killpg", "signal.pthread_kill", "subprocess.Popen", "socket.__new__", "socket.connect",
    "socket.bind", "socket.sendto", "socket.sendmsg", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "gc.get_objects",
    "gc.get_referrers", "gc.get_referents", "sys.setprofile", "sys.settrace",
)  # fmt: skip
# Allowed inside the write roots only (every path argument is checked).
WRITE_EVENTS = (
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.utime", "os.chmod",
    "os.chown", "os.truncate", "os.symlink", "os.link", "os.mkfifo", "os.mknod",
)  # fmt: skip
AF_UNIX = 1  # socket.AF_UNIX on Linux
LIBRARY_PACKAGES = ("torchvision",)  # see library_roots()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def todo_slug(todo: str) -> str:
    """A TODO's id as a file name: 'SRGAN step' -> 'SRGAN_step'."""
    return re.sub(r"[^A-Za-z0-9]+", "_", todo).strip("_")


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def library_roots() -> tuple[str, ...]:
    """The folders of the installed packages that load their own compiled operators with ctypes
    (torchvision), found without importing them. Importing torchvision costs a box about 1.5 s of
    CPU (it imports torch._dynamo), so a box imports it only when the submission does, after the
    hook is in place; the hook lets it load its own libraries and nothing else."""
    roots = []
    for name in LIBRARY_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots += [os.path.realpath(p) for p in spec.submodule_search_locations]
    return tuple(roots)


def install_guard(read_roots, write_roots, deny_roots, report, locked_roots=()) -> None:
    """Add the audit hook. Roots are folders; paths are resolved before they are compared: deny
    beats everything, locked (the kit, the runner: read, never written) beats write, and write
    implies read. Shared libraries may be loaded with ctypes from library_roots() only. Each refused
    action is passed to report(text) before PermissionError is raised."""
    libraries = library_roots()
    read_roots = tuple(os.path.realpath(r) for r in read_roots)
    write_roots = tuple(os.path.realpath(r) for r in write_roots)
    deny_roots = tuple(os.path.realpath(r) for r in deny_roots)
    locked_roots = tuple(os.path.realpath(r) for r in locked_roots)
    realpath, fspath = os.path.realpath, os.fspath

    def allowed(path, write: bool) -> bool:
        try:
            p = realpath(fspath(path))
        except (TypeError, ValueError):
            return False
        if _under(p, deny_roots):
            return False
        if _under(p, locked_roots):
            return not write
        return _under(p, write_roots) or (not write and _under(p, read_roots))

    def refuse(event, detail):
        text = f"{event}: {detail}"[:200].replace("\n", " ")
        report(text)
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
        elif (
            event == "os.chdir"
        ):  # paths are resolved before they are compared: only where it may read
            if not allowed(args[0], False):
                refuse(event, str(args[0]))
        elif (
            event == "ctypes.dlopen"
            and isinstance(args[0], str)
            and _under(realpath(args[0]), libraries)
        ):
            return  # torchvision's own operators (and never a path the student chose elsewhere)
        elif event == "socket.__new__" and len(args) > 1 and args[1] == AF_UNIX:
            return  # a socket pair inside this process (asyncio's self-pipe); connect stays refused
        elif event in BLOCKED_EVENTS or event.startswith(("os.exec", "os.spawn", "os.posix_spawn")):
            refuse(event, repr(args)[:80])

    sys.addaudithook(hook)


def describe(err: BaseException, tree: str, student_files: tuple[str, ...]) -> dict:
    """An exception as plain data: type, first line (the student's own text, capped), and the
    student's file and line it came from."""
    where = None
    for entry in traceback.extract_tb(err.__traceback__):
        name = os.path.basename(entry.filename)
        if entry.filename.startswith(tree) and name in student_files:
            where = f"{name} line {entry.lineno}"
    if (
        isinstance(err, SyntaxError)
        and err.filename
        and os.path.basename(err.filename) in student_files
    ):
        where = f"{os.path.basename(err.filename)} line {err.lineno}"
    try:
        text = str(err).strip()
    except Exception:  # noqa: BLE001 - a student's exception whose str() raises
        text = ""
    message = text.splitlines()[0] if text else ""
    return {"error": type(err).__name__, "message": message[:240], "where": where}


def _warm_up(torch) -> None:
    """torch imports parts of itself lazily: the cheap ones (autocast, a convolution's backward)
    here, before any student code, so that they are not billed to the student's time. Not an
    optimiser's: its first construction imports torch._dynamo (about 1.3 s of CPU), which only the
    TODOs that train need (the SRGAN step), so a box whose code never trains (an unfinished or
    broken submission) does not pay it; the audit hook allows that import (tests grade the
    reference with no flag) and a TODO's limit leaves room for it."""
    net = torch.nn.Conv2d(1, 1, 1)
    with torch.autocast("cpu", enabled=False):
        net(torch.zeros(1, 1, 2, 2)).sum().backward()


def run_todo(job: dict, todo: str, probes, send, torch) -> None:
    """Run one TODO's probes on the tree's student module and send a record per probe."""
    spec = job["todos"][todo]
    tree = job["tree"]
    student_files = tuple(job["student_files"])
    stem = spec["file"]
    saved = {}
    module, ctx_error = None, None
    first_import = f"sr_course.{stem}" not in sys.modules
    try:
        if first_import:
            send(IMPORT, stem.encode())
        module = importlib.import_module(f"sr_course.{stem}")
        for dep in spec["builds_on"]:
            for name, stand_in in probes.STAND_INS[dep].items():
                if hasattr(module, name):
                    saved[name] = getattr(module, name)
                    setattr(module, name, stand_in)
    except BaseException as err:  # noqa: BLE001 - a student's import can raise anything
        ctx_error = describe(err, tree, student_files)
    if first_import:
        send(IMPORT, b"")
    ctx = type("Ctx", (), {stem: module})()
    for k, probe in enumerate(probes.PROBES[todo]):
        if ctx_error:
            record = ctx_error
        else:
            try:
                record = {"outputs": probe.run(ctx)}
            except BaseException as err:  # noqa: BLE001
                record = describe(err, tree, student_files)
        buf = io.BytesIO()
        try:
            torch.save(record, buf)
        except Exception as err:  # noqa: BLE001 - outputs that cannot be saved
            buf = io.BytesIO()
            unsavable = {"error": "UnsavableOutput", "message": str(err)[:200], "where": None}
            torch.save(unsavable, buf)
        send(RECORD, struct.pack(">I", k) + buf.getvalue())
    for name, value in saved.items():  # the reference run goes on with the next TODO
        setattr(module, name, value)
    send(END, todo.encode())


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    channel = int(job["channel"])

    def send(kind: bytes, payload: bytes) -> None:
        data = frame(kind, payload)
        while data:
            data = data[os.write(channel, data) :]

    import torch  # before any student code (torchvision only if the submission imports it)

    torch.set_num_threads(1)
    _warm_up(torch)
    sys.dont_write_bytecode = True

    loader = importlib.util.spec_from_file_location("sr_grade_probes", job["probes"])
    probes = importlib.util.module_from_spec(loader)
    sys.modules["sr_grade_probes"] = probes
    loader.loader.exec_module(probes)
    probes.RUN_SEED = int(job["seed"])
    send(STARTED, b"")

    if not job.get("reference"):
        install_guard(
            read_roots=job["read_roots"],
            write_roots=job["write_roots"],
            deny_roots=job.get("deny_roots", []),
            report=lambda text: send(FLAG, text.encode("utf-8", "replace")),
            locked_roots=job.get("locked_roots", []),
        )
    sys.path.insert(0, job["tree"])
    for todo in job["todos"]:
        run_todo(job, todo, probes, send, torch)
    # Threads the student's code left running (or blocked in) die with the process.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
