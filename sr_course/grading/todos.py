"""Grading the TODOs by behaviour: the probes run on a submission inside the sandbox, the judges here.

    grade_todos(files) -> {"todos": {todo: entry}, "flags": [...], "isolation", "seed", "seconds"}

Only the student's sr_course/models.py, losses.py and solver.py are read. The probes run in one
process per grading job (sandbox.py; box_groups: with jobs > 1, whole student files are split across
boxes that run at once), each inside an operating-system sandbox (isolation.py) that sees the
kit's stubs with this submission's three files and nothing of the reference, the grader or other
submissions. What leaves it is one stream of frames on a pipe: a record per probe (size-capped,
loaded with torch.load(weights_only=True) after its zip is checked) and the flags as they happen.

The reference's outputs come from another process that never sees a submission, for the same
grading run's seed (a fresh one each run, so outputs cannot be looked up from an earlier report),
computed once per seed. A TODO that builds on others runs with the probes' stand-ins for them, so
one mistake costs one TODO. This process, where student code never runs, judges the records.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import threads as thread_policy
from ..course import STUDENT_FILES, TODOS
from . import isolation
from . import probes as probes_module
from . import sandbox as sandbox_module
from .kit import KIT_ROOT, ReleaseError, complete, reference_files, write_kit
from .probes import PROBES, STAND_INS
from .sandbox import END, FLAG, HEADER, IMPORT, RECORD, STARTED, todo_slug

MAX_RECORD_BYTES = 8 * 2**20  # one probe's record as sent
MAX_UNPACKED_BYTES = 64 * 2**20  # ... and unpacked (a record is a zip: checked before loading)
MAX_ZIP_ENTRIES = 4096
MAX_FLAG_BYTES = 1024
MAX_FLAGS = 10  # kept per TODO (the rest are counted)
MAX_PRINTED_BYTES = 16 * 2**20  # more than this on stdout and stderr together is flagged
STARTUP_SECONDS = 120  # for Python and torch to start in the sandbox, before the TODO's own timeout
if set(PROBES) != set(TODOS):  # every TODO of the manifest is probed, and nothing else
    raise RuntimeError(
        f"probes.PROBES covers {sorted(PROBES)}, the manifest's TODOS {sorted(TODOS)}"
    )
if missing := {d for t in TODOS.values() for d in t.builds_on} - set(STAND_INS):
    raise RuntimeError(f"probes.STAND_INS has no stand-ins for {sorted(missing)}")


# --- the channel ----------------------------------------------------------------------------------


class Stream:
    """What one sandboxed process sent: per TODO it ran (in order), the records by probe index and
    the flags raised while that TODO ran; and why the stream was cut off, if it was."""

    def __init__(self, n_probes: list[int]):
        self.n_probes = n_probes  # probes per TODO, in the order the process runs them
        self.records: list[dict[int, bytes]] = [{} for _ in n_probes]
        self.flags: list[list[str]] = [[] for _ in n_probes]
        self.extra_flags = [0 for _ in n_probes]
        self.started = False
        self.done = 0  # TODOs finished
        self.broken: str | None = None
        self.importing: str | None = None  # the student file being imported, while it is

    def feed(self, kind: bytes, payload: bytes) -> None:
        current = min(self.done, len(self.n_probes) - 1)
        if kind == STARTED:
            self.started = True
        elif kind == IMPORT:
            self.importing = payload.decode("utf-8", "replace")[:40] or None
        elif kind == FLAG:
            if len(self.flags[current]) < MAX_FLAGS:
                self.flags[current].append(payload.decode("utf-8", "replace")[:200])
            else:
                self.extra_flags[current] += 1
        elif kind == RECORD and self.done < len(self.n_probes) and len(payload) >= 4:
            (k,) = struct.unpack(">I", payload[:4])
            if k >= self.n_probes[self.done] or k in self.records[self.done]:
                self.broken = f"a record for probe {k} that does not exist or came twice"
            else:
                self.records[self.done][k] = payload[4:]
        elif kind == END and self.done < len(self.n_probes):
            self.done += 1
        else:
            self.broken = f"an unknown frame {kind!r}"


def read_stream(fd: int, stream: Stream, proc, timeout: float, watch=None) -> dict:
    """Read frames from fd until every TODO is done, the stream ends or a limit is hit. Each TODO
    may use `timeout` seconds of the box's own CPU time (the start, STARTUP_SECONDS), counted from
    when the process started or the TODO before it ended, so that a busy grading machine does not
    cost points; and WALL_FACTOR times that of wall-clock time, for code that waits instead of
    computing. Returns the status; status["timed_out"] says which limit: "cpu" or "wall"."""
    started_at = time.monotonic()
    limit, phase_wall, phase_cpu = STARTUP_SECONDS, started_at, 0.0
    buf = bytearray()
    status = {"timed_out": False, "ended_early": False, "closed_early": False, "over_quota": False}
    last_watch = 0.0
    while stream.done < len(stream.n_probes) and not stream.broken:
        now = time.monotonic()
        if now - phase_wall > limit * isolation.WALL_FACTOR:
            status["timed_out"] = "wall"
            break
        if now - last_watch > 0.5:
            last_watch = now
            if isolation.cpu_seconds(proc.pid) - phase_cpu > limit:
                status["timed_out"] = "cpu"
                break
            if watch and watch():
                status["over_quota"] = True
                break
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            # The channel closed before the last TODO ended: the process ended (exit, os._exit,
            # a crash), or its code closed the channel and goes on running.
            try:
                proc.wait(timeout=2)
                status["ended_early"] = True
            except subprocess.TimeoutExpired:
                status["closed_early"] = True
            break
        buf += chunk
        while len(buf) >= HEADER.size and not stream.broken:
            kind, n = HEADER.unpack(bytes(buf[: HEADER.size]))
            cap = MAX_RECORD_BYTES + 4 if kind == RECORD else MAX_FLAG_BYTES
            if n > cap:
                stream.broken = f"a frame of {n} bytes (the cap is {cap})"
                break
            if len(buf) < HEADER.size + n:
                break
            payload = bytes(buf[HEADER.size : HEADER.size + n])
            del buf[: HEADER.size + n]
            was_started, was_done = stream.started, stream.done
            stream.feed(kind, payload)
            if (stream.started and not was_started) or stream.done > was_done:
                # each TODO has its own time
                limit, phase_wall = timeout, time.monotonic()
                phase_cpu = isolation.cpu_seconds(proc.pid)
    status["seconds"] = round(time.monotonic() - started_at, 2)
    return status


def load_record(data: bytes | None):
    """A record as plain data, or an error record saying why it cannot be used."""
    if data is None:
        return None
    bad = {"error": "UnreadableOutput", "message": "", "where": None}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            size = sum(i.file_size for i in infos)
    except (zipfile.BadZipFile, ValueError, OSError):
        return bad
    if len(infos) > MAX_ZIP_ENTRIES or size > MAX_UNPACKED_BYTES:
        return {"error": "OversizedOutput", "message": "", "where": None}
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - anything but plain data is a forged or broken record
        return bad


def _decode(stream: Stream) -> list[list]:
    return [
        [load_record(stream.records[t].get(k)) for k in range(n)]
        for t, n in enumerate(stream.n_probes)
    ]


# --- the reference --------------------------------------------------------------------------------

_REFERENCE: dict[tuple, dict] = {}
_REFERENCE_LOCK = threading.Lock()


def probes_digest() -> str:
    """What the probes ask: the probes and the runner that runs them."""
    h = hashlib.sha256()
    for path in (Path(probes_module.__file__), Path(sandbox_module.__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def reference_digest(root: Path = KIT_ROOT) -> str:
    """What the reference outputs depend on: the reference's student files and the probes."""
    h = hashlib.sha256(probes_digest().encode())
    for path in [root / "sr_course" / f for f in STUDENT_FILES]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def save_reference(path: Path, seed: int, outputs: dict[str, list]) -> None:
    """The reference's outputs for `seed`, for grading where the reference is not (the autograder
    bundle), with the digest of the probes they answer."""
    torch.save({"seed": seed, "probes": probes_digest(), "outputs": outputs}, path)


def load_reference(path: Path, root: Path) -> int:
    """Saved reference outputs (save_reference) become this grader's for the kit at `root`, whose
    student files are stubs; returns their seed. Outputs made for other probes are refused."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise ReleaseError(f"reference outputs {path}: cannot be read ({err})") from None
    if data.get("probes") != probes_digest():
        raise ReleaseError(
            f"reference outputs {path} answer other probes than this grader's: rebuild the "
            "autograder bundle with this grader (python -m sr_course autograder)"
        )
    with _REFERENCE_LOCK:
        _REFERENCE[(data["seed"], reference_digest(root))] = data["outputs"]
    return data["seed"]


def reference_outputs(seed: int, root: Path = KIT_ROOT) -> dict[str, list]:
    """The reference's outputs of every probe for this seed: {todo: [outputs, ...]}, computed in a
    separate process on the reference's own files (never a submission's), once per seed."""
    key = (seed, reference_digest(root))
    with _REFERENCE_LOCK:
        if key not in _REFERENCE:
            _REFERENCE[key] = _compute_reference(seed, root)
        return _REFERENCE[key]


def _compute_reference(seed: int, root: Path) -> dict[str, list]:
    with tempfile.TemporaryDirectory(prefix="sr-grade-ref-") as tmp:
        runner = _runner(Path(tmp))
        job = _job(list(TODOS), root, runner, seed, reference=True)
        stream = Stream([len(PROBES[t]) for t in TODOS])
        box = isolation.Box("none", env=_env(tmp), cwd=tmp)
        status = _run(job, runner, box, stream, timeout=600)
    records = _decode(stream)
    out = {}
    for todo, recs in zip(TODOS, records, strict=True):
        if any(r is None or "outputs" not in r for r in recs) or stream.broken:
            raise RuntimeError(
                f"the reference failed its own probes of {todo} ({status}, {recs}): the grader "
                "cannot grade against it"
            )
        out[todo] = [r["outputs"] for r in recs]
    return out


# --- running one box ------------------------------------------------------------------------------


def _runner(work: Path) -> Path:
    """The folder the sandboxed process runs from: the runner and the probes (no reference code)."""
    runner = work / "runner"
    runner.mkdir(mode=0o755)
    shutil.copyfile(Path(sandbox_module.__file__), runner / "sandbox.py")
    shutil.copyfile(Path(probes_module.__file__), runner / "probes.py")
    return runner


def _job(
    todos: list[str], tree: Path, runner: Path, seed: int, reference=False, tmp="/tmp"
) -> dict:
    return {
        "todos": {t: {"file": TODOS[t].file, "builds_on": list(TODOS[t].builds_on)} for t in todos},
        "tree": str(tree),
        "student_files": list(STUDENT_FILES),
        "probes": str(runner / "probes.py"),
        "seed": seed,
        "reference": reference,
        "read_roots": [*isolation.python_roots(), *isolation.SYSTEM_READS, str(tree), str(runner)],
        "write_roots": [tmp],
        # The bwrap box's /tmp holds the mount points of the kit and the runner: never writable.
        "locked_roots": [str(tree), str(runner)],
        # For the 'none' mode (and a second layer elsewhere): the reference package itself.
        "deny_roots": [] if reference else [str(Path(__file__).resolve().parents[1])],
    }


def _env(tmp: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": tmp,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        **thread_policy.child_env(1),  # a probe's kernels are tiny: no thread pool
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _run(job: dict, runner: Path, box: isolation.Box, stream: Stream, timeout: float, watch=None):
    """Start the runner in the box with a fresh pipe as its channel, read it, stop the box."""
    r, w = os.pipe()
    job = dict(job, channel=w)
    name = todo_slug("-".join(job["todos"]))[:60] if not job["reference"] else "reference"
    job_path = runner / f"job-{name}-{secrets.token_hex(4)}.json"
    job_path.write_text(json.dumps(job))
    job_path.chmod(0o644)
    try:
        proc = isolation.start(
            [sys.executable, "-I", str(runner / "sandbox.py"), str(job_path)],
            box,
            pass_fds=(w,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # counted, never kept: the student's code may print gigabytes
            stderr=subprocess.STDOUT,
        )
    finally:
        os.close(w)
    printed = [0]
    drain = threading.Thread(target=_count, args=(proc.stdout, printed), daemon=True)
    drain.start()
    try:
        status = read_stream(r, stream, proc, timeout, watch)
    finally:
        os.close(r)
        isolation.stop(proc, box)
        drain.join(timeout=5)
    status["exitcode"] = proc.returncode
    status["printed"] = printed[0]
    return status


def _count(pipe, printed: list[int]) -> None:
    with pipe:
        while chunk := pipe.read1(1 << 20):
            printed[0] += len(chunk)


# --- grading one submission -----------------------------------------------------------------------


@dataclass
class Outcome:
    """One TODO's run: its records (decoded, None where missing), the flags raised while it ran,
    why its stream was cut off (if it was) and how its process ended."""

    records: list
    flags: list[str]
    extra_flags: int = 0
    broken: str | None = None
    status: dict = field(default_factory=dict)
    printed: int = 0  # bytes its box wrote to stdout and stderr (told on the box's first TODO)


def grade_todos(
    files: dict[str, str],
    timeout: float = 30,
    jobs: int = 1,
    root: Path = KIT_ROOT,
    isolation_mode: str = "auto",
    seed: int | None = None,
    todos: list[str] | None = None,
) -> dict:
    """Grade the TODOs of one submission, given the texts of its student files ({'sr_course/models.py':
    text, ...}; a missing file counts as the kit's stub). Returns {todo: entry} (for `todos`, default
    all, in course order), the flags, the isolation mode and the run's seed (None: a fresh one)."""
    mode = isolation.choose(isolation_mode, protected=reference_files(root))
    seed = secrets.randbelow(2**31) if seed is None else seed
    files = complete(files, root)
    started = time.monotonic()
    selected = [t for t in TODOS if todos is None or t in todos]
    boxes = box_groups(selected, jobs)
    with (
        contextlib.ExitStack() as stack,
        tempfile.TemporaryDirectory(prefix="sr-grade-") as tmp,
        ThreadPoolExecutor(1) as side,
        ThreadPoolExecutor(jobs) as pool,
    ):
        work = Path(tmp)
        reference = side.submit(reference_outputs, seed, root)  # beside the submission's boxes
        write_kit(work / "kit", files, root, ("sr_course/",))
        runner = _runner(work)
        # 'user' mode: a group for this grading's folders and a uid per concurrent box.
        ids = stack.enter_context(isolation.lease_ids(jobs + 1))
        gid, uids = ids[0], ids[1:]
        if mode == "user":
            isolation.open_to_group([work, work / "kit", runner], gid)
        lock = threading.Lock()

        def run_group(todos: list[str]) -> dict[str, Outcome]:
            with lock:
                uid = uids.pop()
            try:
                return _run_chain(todos, work, runner, mode, uid, gid, seed, timeout)
            finally:
                with lock:
                    uids.append(uid)

        outcomes: dict[str, Outcome] = {}
        for result in pool.map(run_group, boxes):
            outcomes.update(result)
        references = reference.result()
    entries, flags = {}, []
    for todo in selected:
        entries[todo], todo_flags = _judge_todo(todo, outcomes[todo], references[todo], timeout)
        flags += todo_flags
    return {
        "todos": entries,
        "flags": flags,
        "isolation": mode,
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
    }


def box_groups(todos: list[str], jobs: int) -> list[list[str]]:
    """The TODOs split into at most `jobs` boxes that run at once, whole student files together
    (the largest files first, each to the box with the fewest TODOs), each box in course order.
    A box's start (Python, torch) costs more than most TODOs' probes: one grading job, one box."""
    by_file: dict[str, list[str]] = {}
    for todo in todos:
        by_file.setdefault(TODOS[todo].file, []).append(todo)
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(by_file))))]
    for file_todos in sorted(by_file.values(), key=len, reverse=True):
        min(groups, key=len).extend(file_todos)
    order = {t: i for i, t in enumerate(TODOS)}
    return [sorted(g, key=order.get) for g in groups if g]


def _run_chain(todos, work: Path, runner: Path, mode: str, uid: int, gid: int, seed, timeout):
    """TODOs in one box while it goes well: a TODO that times out, ends the process or forges its
    stream costs only itself; the ones after it start in a fresh box."""
    outcomes: dict[str, Outcome] = {}
    remaining = list(todos)
    while remaining:
        stream, status = _run_box(remaining, work, runner, mode, uid, gid, seed, timeout)
        records = _decode(stream)
        for i, todo in enumerate(remaining[: stream.done]):
            outcomes[todo] = Outcome(records[i], stream.flags[i], stream.extra_flags[i])
        if stream.done >= len(remaining):
            outcomes[remaining[0]].printed = status.get("printed", 0)
            break
        i = stream.done
        stuck, later = remaining[i], remaining[i + 1 :]
        file = TODOS[stuck].file
        if stream.importing == file:
            # Importing the student's file is what ended or stopped the box: it would do the same
            # for every TODO of that file, so they are all judged by this run (as a file that
            # does not compile is), instead of starting a box per TODO to see it again.
            status = {**status, "in_import": file}
            for todo in (t for t in later if TODOS[t].file == file):
                outcomes[todo] = Outcome([None] * len(PROBES[todo]), [], 0, stream.broken, status)
            later = [t for t in later if TODOS[t].file != file]
        outcomes[stuck] = Outcome(
            records[i], stream.flags[i], stream.extra_flags[i], stream.broken, status
        )
        # What the box printed is counted per box: it is told on the first TODO the box ran.
        outcomes[remaining[0]].printed = status.get("printed", 0)
        remaining = later
    return outcomes


def _run_box(todos, work: Path, runner: Path, mode: str, uid: int, gid: int, seed, timeout):
    tmp_host = work / f"tmp-{secrets.token_hex(6)}"
    tmp_host.mkdir(mode=0o700)
    inside_tmp = "/tmp" if mode == "bwrap" else str(tmp_host)
    box = isolation.Box(
        mode,
        read_only=[str(work / "kit"), str(runner)],
        env=_env(inside_tmp),
        cwd=str(runner),
        limits=isolation.Limits(cpu_seconds=int(timeout * len(todos)) + STARTUP_SECONDS),
        uid=uid,
        gid=gid,
    )
    isolation.prepare(box, own=[str(tmp_host)])
    job = _job(todos, work / "kit", runner, seed, tmp=inside_tmp)
    stream = Stream([len(PROBES[t]) for t in todos])
    quota = box.limits.tmp_size

    def over_quota() -> bool:  # the bwrap box's /tmp is a capped tmpfs; elsewhere, watched here
        return mode != "bwrap" and isolation.disk_usage([tmp_host]) > quota

    status = _run(job, runner, box, stream, timeout, over_quota)
    shutil.rmtree(tmp_host, ignore_errors=True)
    return stream, status


def _judge_todo(todo: str, outcome: Outcome, references: list, timeout: float):
    """Judge one TODO's records against the reference's: an entry and the flags it raises."""
    file = TODOS[todo].file
    status = outcome.status
    entry = {"passed": 0, "total": len(references), "first_failure": None, "failures": []}
    flags = [f"{todo}: blocked {f}" for f in outcome.flags]
    if outcome.extra_flags:
        flags.append(f"{todo}: {outcome.extra_flags} more blocked actions")
    if outcome.broken:
        flags.append(f"{todo}: its output stream was forged ({outcome.broken})")
    if status.get("closed_early"):
        flags.append(f"{todo}: the grader's channel was closed before the checks ended")
    limit = isolation.limit_text(status.get("timed_out"), timeout)
    if status.get("timed_out"):
        flags.append(f"{todo}: did not finish within {limit}")
    if status.get("over_quota"):
        flags.append(f"{todo}: wrote more than its temporary folder may hold")
    if outcome.printed > MAX_PRINTED_BYTES:
        flags.append(f"{todo}: printed {outcome.printed / 2**20:.0f} MB")
    for probe, record, reference in zip(PROBES[todo], outcome.records, references, strict=True):
        if record is None:
            if status.get("timed_out"):
                verdict = (
                    f"{todo} did not finish within {limit}; "
                    "the checks after that point were not run"
                )
            elif status.get("over_quota"):
                verdict = f"{todo}: the checks were stopped: the code filled its temporary folder"
            else:
                code = status.get("exitcode")
                verdict = (
                    f"{todo}: the grading process ended before this check ran (exit code {code}): "
                    f"something in sr_course/{file}.py ends the process (exit() or os._exit?)"
                )
                if not outcome.broken and not status.get("closed_early"):
                    flags.append(f"{todo}: the process ended early (exit code {code})")
            if status.get("in_import") and (status.get("timed_out") or status.get("ended_early")):
                # The file's import did it (_run_chain): one sentence for each TODO of the file.
                what = (
                    f"did not finish within {limit}"
                    if status.get("timed_out")
                    else f"ended the grading process (exit code {status.get('exitcode')})"
                )
                verdict = (
                    f"importing sr_course/{file}.py {what}: every TODO of {file}.py scores 0 "
                    "until it imports"
                )
        elif not isinstance(record, dict) or not (
            set(record) == {"outputs"} or set(record) == {"error", "message", "where"}
        ):
            verdict = f"{todo}: its outputs could not be read"
            flags.append(f"{todo}: outputs that are not a record")
        elif "error" in record:
            verdict = _error_sentence(todo, file, record)
            if record["error"] in ("UnreadableOutput", "OversizedOutput"):
                flags.append(f"{todo}: {record['error']}")
            elif record["error"] == "MemoryError":
                flags.append(f"{todo}: ran into the sandbox's memory limit")
        else:
            try:
                verdict = probe.verdict(record["outputs"], reference)
            except Exception as err:  # noqa: BLE001 - a record built to break the judge
                verdict = (
                    f"{todo} ({probe.name}): its outputs could not be judged ({type(err).__name__})"
                )
                flags.append(f"{todo}: outputs that break the judge")
        if verdict is None:
            entry["passed"] += 1
        else:
            entry["failures"].append(f"{probe.name}: {verdict}")
            entry["first_failure"] = entry["first_failure"] or verdict
    entry["score"] = round(entry["passed"] / entry["total"], 3)
    return entry, list(dict.fromkeys(flags))


def _error_sentence(todo: str, file: str, record: dict) -> str:
    kind, message, where = record.get("error"), record.get("message") or "", record.get("where")
    kind, message = str(kind)[:60], str(message)[:240]
    where = str(where)[:80] if where else None
    if kind == "NotImplementedError":
        return f"{todo} is not implemented yet: fill in its TODO box in sr_course/{file}.py"
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return (
            f"sr_course/{file}.py does not compile ({kind} at {where or 'an unknown line'}: {message}): "
            f"every TODO of {file}.py scores 0 until it does"
        )
    if kind == "PermissionError" and message.startswith("the grader does not allow"):
        return f"{todo}: {message}"
    if kind in ("UnreadableOutput", "OversizedOutput"):
        return f"{todo}: its outputs could not be read ({kind})"
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
        "a tensor needed for the gradient was changed in place: step an optimiser, or run the "
        "critic's hook (it changes D's weights), only after every backward pass that needs them",
    ),
)
