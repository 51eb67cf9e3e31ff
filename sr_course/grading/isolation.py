"""Where a submission's code runs: one process in an operating-system sandbox (instructor-only).

    choose(requested) -> mode       'bwrap', 'user' or 'none'; raises IsolationError (one sentence)
    Box(...)                        what one sandboxed process sees and may do
    command(argv, box) -> argv      the command line that starts argv inside the box
    start(argv, box, ...) -> Popen  start it (a new session, so a timeout kills all of it)
    stop(proc, box)                 kill it and everything it started; clean up after it
    lease_ids(n)                    'user' mode: uids and gids that no concurrent box holds

The modes, strongest first (choose() picks the strongest that works here and says which):

  'bwrap'  bubblewrap (the `bubblewrap` package, what Flatpak uses): new user, mount, PID, network,
           IPC, UTS and cgroup namespaces. The file system holds only the system's libraries and
           the Python environment (read-only), the box's read-only folders (the kit's stubs with this
           submission's files), its writable folders and a size-capped tmpfs /tmp; not the
           instructor's repository, the reference package, $HOME, other submissions or the grader's
           other folders. /proc shows the box's own processes only; no network; a clean environment;
           --die-with-parent. A seccomp filter refuses new processes (threads are allowed): forks,
           vforks and spawns fail with EPERM, whatever Python call or C library makes them.
  'user'   for containers where namespaces cannot be made (Gradescope runs each submission in a
           Docker container as root): the process runs as an unprivileged uid with no home and no
           groups (setpriv), so everything the grader keeps root-owned and closed to others (the
           reference, the results, the other boxes) is out of its reach. start() refuses unless the
           Python environment is open to that uid and the reference is closed to it.
  'none'   no isolation: only for an instructor grading the reference itself; every report says so.

Both real modes apply the same resource limits (prlimit, which the code inside cannot raise): address
space, CPU seconds, file size, open files and processes; the caller's wall-clock timeout kills the
whole box (the namespace, or every process of the box's uid).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

MODES = ("bwrap", "user")  # strongest first
# System folders a Python process needs, read-only (symlinks, as on merged-/usr systems, are kept).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/nsswitch.conf", "/etc/alternatives", "/etc/fonts",
)  # fmt: skip
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable: cleaned of a 'user' box's files
# What the audit hook lets Python read besides the kit and Python: libraries, and this process's
# own /proc entries (not its parent's or another's).
SYSTEM_READS = (
    "/usr", "/lib", "/lib64", "/etc", "/sys", "/dev", "/proc/self", "/proc/thread-self",
    "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
)  # fmt: skip
USER_UID_BASE = 200000  # the 'user' mode's ids start here (lease_ids); no passwd entry, no home


class IsolationError(UserError, RuntimeError):
    """Grading cannot be isolated here; the message says what to install or change."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one box (prlimit): the code inside cannot raise them."""

    memory: int = 6 * 2**30  # address space, bytes
    cpu_seconds: int = 300
    file_size: int = 64 * 2**20  # the largest file it may write, bytes
    open_files: int = 256
    processes: int = 64  # threads count too
    tmp_size: int = 256 * 2**20  # its /tmp (bwrap: a tmpfs of this size)

    def prlimit(self) -> list[str]:
        return [
            "prlimit",
            f"--as={self.memory}",
            f"--cpu={self.cpu_seconds}",
            f"--fsize={self.file_size}",
            f"--nofile={self.open_files}",
            f"--nproc={self.processes}",
            "--",
        ]


@dataclass
class Box:
    """What one sandboxed process sees.

    mode: 'bwrap', 'user' or 'none'. read_only / writable: host folders it sees at the same paths.
    env: its whole environment (nothing is inherited). cwd: where it starts. uid, gid ('user'
    mode): the ids it runs as, leased with lease_ids() so that no concurrent box shares them.
    """

    mode: str
    read_only: list[str] = field(default_factory=list)
    writable: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    limits: Limits = Limits()
    uid: int = USER_UID_BASE
    gid: int | None = None  # 'user' mode: the group that may enter this submission's folders


IDS_PER_PROCESS = 64
_free_ids: dict[int, list[int]] = {}  # per process id: a forked grader gets a block of its own
_ids_lock = threading.Lock()


def id_block() -> range:
    """The ids ('user' mode) this process leases from: a block of its own, from its pid."""
    base = USER_UID_BASE + (os.getpid() % 30000) * IDS_PER_PROCESS
    return range(base, base + IDS_PER_PROCESS)


@contextlib.contextmanager
def lease_ids(n: int):
    """n ids ('user' mode: uids of boxes, gids of gradings) that no other box or grading holds
    while they are leased: each grader process owns a block of IDS_PER_PROCESS ids (from its pid;
    grade_many's workers are processes), and threads of one process take turns within it."""
    with _ids_lock:
        free = _free_ids.setdefault(os.getpid(), list(id_block()))
        if len(free) < n:
            raise IsolationError(
                f"more than {IDS_PER_PROCESS} sandboxes at once in one grader process: "
                "grade fewer submissions at once in one process (grade_many uses processes)"
            )
        ids = [free.pop() for _ in range(n)]
    try:
        yield ids
    finally:
        with _ids_lock:
            _free_ids[os.getpid()].extend(ids)


def disk_usage(paths) -> int:
    """Bytes that the files under `paths` take on disk (links not followed)."""
    total = 0
    for top in paths:
        for root, dirs, files in os.walk(top):
            for name in files + dirs:
                try:
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
                except OSError:
                    pass
    return total


# --- choosing a mode ------------------------------------------------------------------------------


@functools.cache
def bwrap_works() -> bool:
    """Can bubblewrap make all its namespaces here, with every option the boxes use (an older
    bubblewrap lacks some)? Tried once: `true` in a box like the grader's, seccomp filter included."""
    if not shutil.which("bwrap") or not shutil.which("prlimit"):
        return False
    box = Box("bwrap", env={"PATH": "/usr/bin:/bin"}, cwd="/")
    fd = seccomp_file()
    try:
        done = subprocess.run(
            command(["true"], box, fd),
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            pass_fds=(fd,) if fd is not None else (),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        if fd is not None:
            os.close(fd)
    return done.returncode == 0


def user_mode_works() -> bool:
    return os.geteuid() == 0 and all(shutil.which(p) for p in ("setpriv", "prlimit"))


def available() -> list[str]:
    """The real modes that work on this machine, strongest first."""
    return [m for m, ok in (("bwrap", bwrap_works()), ("user", user_mode_works())) if ok]


def choose(requested: str = "auto", protected=()) -> str:
    """The mode to grade in: the strongest available for 'auto', else the one asked for (checked).
    'none' is only ever used when asked for by name. In 'user' mode the sandbox's uid must be able
    to run this Python and must not be able to read any of `protected` (the reference's files, the
    submissions): otherwise IsolationError says what to change."""
    mode = _choose(requested)
    if mode == "user":
        must_read = [*python_roots(), os.path.realpath(sys.executable)]
        with lease_ids(1) as (uid,):
            check_user_mode(Box("user", uid=uid), must_read, [str(p) for p in protected])
    return mode


def _choose(requested: str) -> str:
    if requested == "none":
        return "none"
    modes = available()
    if requested == "auto":
        if modes:
            return modes[0]
        raise IsolationError(
            "grading needs an operating-system sandbox and none works here: install bubblewrap "
            "(Debian/Ubuntu: apt-get install bubblewrap) and allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 and later "
            "kernel.apparmor_restrict_unprivileged_userns=0), or run the grader as root so that it "
            "can run submissions as a separate user; --no-isolation is only for grading the "
            "reference itself"
        )
    if requested not in MODES:
        raise IsolationError(f"unknown isolation mode {requested!r}: use auto, bwrap or user")
    if requested not in modes:
        why = {
            "bwrap": "bubblewrap is missing or cannot create namespaces here "
            "(apt-get install bubblewrap; sysctl kernel.unprivileged_userns_clone=1)",
            "user": "it needs the grader to run as root and util-linux's setpriv",
        }[requested]
        raise IsolationError(f"isolation mode {requested!r} does not work here: {why}")
    return requested


# --- the seccomp filter: no new processes ---------------------------------------------------------

# (audit architecture, syscall numbers) of the machines the filter knows; elsewhere the process limit
# alone holds forks back.
_SYSCALLS = {
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435}),
}
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS = 1, 38


def no_new_processes_filter() -> bytes | None:
    """A classic-BPF seccomp program (for bwrap --seccomp): clone without CLONE_THREAD, fork and vfork
    fail with EPERM, clone3 with ENOSYS (so the C library falls back to clone, where the flags can be
    read); syscalls of another ABI (32-bit, x32) fail with EPERM. None on an unknown machine."""
    known = _SYSCALLS.get(platform.machine())
    if known is None:
        return None
    arch, nr = known
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    # Each instruction: (code, jump-if-true label, jump-if-false label, k); labels are resolved below.
    prog = [("ld", ld, None, None, 4), ("", jeq, None, "deny", arch), ("", ld, None, None, 0)]
    if platform.machine() == "x86_64":
        prog.append(("", jge, "deny", None, _X32_BIT))
    prog.append(("", jeq, "nosys", None, nr["clone3"]))
    for name in ("fork", "vfork"):
        if name in nr:
            prog.append(("", jeq, "deny", None, nr[name]))
    prog += [
        ("", jeq, None, "allow", nr["clone"]),
        ("", ld, None, None, 16),  # args[0], the clone flags (low 32 bits)
        ("", jset, "allow", "deny", _CLONE_THREAD),
        ("allow", ret, None, None, _RET_ALLOW),
        ("deny", ret, None, None, _RET_ERRNO | _EPERM),
        ("nosys", ret, None, None, _RET_ERRNO | _ENOSYS),
    ]
    where = {label: i for i, (label, *_rest) in enumerate(prog) if label}
    out = b""
    for i, (_label, code, jt, jf, k) in enumerate(prog):
        t = where[jt] - i - 1 if jt else 0
        f = where[jf] - i - 1 if jf else 0
        out += struct.pack("HBBI", code, t, f, k)
    return out


# --- the command line -----------------------------------------------------------------------------


def python_roots() -> list[str]:
    """The folders of this Python (the virtual environment and the installation it comes from)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    roots |= {os.path.realpath(r) for r in list(roots)}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    # Keep the outermost folders only (a root inside another is already there).
    out = []
    for r in sorted(roots, key=len):
        if not any(r == o or r.startswith(o.rstrip("/") + "/") for o in out):
            out.append(r)
    return out


def _bwrap(argv: list[str], box: Box, seccomp_fd: int | None) -> list[str]:
    cmd = [
        "bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
        "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--cap-drop", "ALL",
        "--proc", "/proc", "--dev", "/dev", "--size", str(box.limits.tmp_size), "--tmpfs", "/tmp",
        "--dir", "/var/tmp", "--clearenv",
    ]  # fmt: skip
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        cmd += ["--ro-bind-try", path, path]
    for path in python_roots() + box.read_only:
        cmd += ["--ro-bind", path, path]
    for path in box.writable:
        cmd += ["--bind", path, path]
    for key, value in box.env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", box.cwd]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    return cmd + box.limits.prlimit() + argv


def _user(argv: list[str], box: Box) -> list[str]:
    uid = str(box.uid)
    env = ["env", "-i", *(f"{k}={v}" for k, v in box.env.items())]
    gid = str(box.gid if box.gid is not None else box.uid)
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs"]
    setpriv += ["--inh-caps=-all", "--bounding-set=-all"]
    return [*setpriv, *env, *box.limits.prlimit(), *argv]


def command(argv: list[str], box: Box, seccomp_fd: int | None = None) -> list[str]:
    """The command line that runs argv (a program and its arguments) inside the box."""
    if box.mode == "bwrap":
        return _bwrap(argv, box, seccomp_fd)
    if box.mode == "user":
        return _user(argv, box)
    if box.mode == "none":
        return argv
    raise IsolationError(f"unknown isolation mode {box.mode!r}")


def seccomp_file() -> int | None:
    """A file descriptor with the seccomp program at offset 0 (bwrap reads it; inheritable)."""
    program = no_new_processes_filter()
    if program is None:
        return None
    fd, path = tempfile.mkstemp(prefix="sr-grade-seccomp-")
    os.unlink(path)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def prepare(box: Box, own: list[str] = ()) -> None:
    """Make the box's folders usable by it ('user' mode: read-only folders open to all, writable ones
    and `own` owned by its uid); checks that the reference is closed to it."""
    if box.mode != "user":
        return
    for path in box.writable + list(own):
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.lchown(name, box.uid, box.gid if box.gid is not None else box.uid)


def open_to_group(paths, gid: int) -> None:
    """'user' mode: a grading's folders (root's) may be entered by its own boxes only, through their
    group gid; the files inside stay readable, as written."""
    for path in paths:
        os.chown(path, 0, gid)
        os.chmod(path, 0o750)


def start(argv: list[str], box: Box, **popen) -> subprocess.Popen:
    """Start argv inside the box, in a new session (stop() kills the session or the uid)."""
    fd = seccomp_file() if box.mode == "bwrap" else None
    try:
        pass_fds = tuple(popen.pop("pass_fds", ())) + ((fd,) if fd is not None else ())
        env = {"PATH": "/usr/bin:/bin"} if box.mode != "none" else dict(box.env)
        return subprocess.Popen(
            command(argv, box, fd),
            env=env,
            cwd=box.cwd if box.mode == "none" else "/",
            pass_fds=pass_fds,
            start_new_session=True,
            **popen,
        )
    finally:
        if fd is not None:
            os.close(fd)


# Grading limits count a box's own CPU time, so that a grade does not depend on how busy the
# grading machine is; each also has a wall-clock limit this many times longer, for code that waits
# (sleeps, blocks on a lock) instead of computing.
WALL_FACTOR = 4
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def limit_text(hit: str | None, cpu_limit: float) -> str:
    """The limit a TODO or a cell hit ('cpu' or 'wall'), as its sentence says it: what it hit,
    never a guess at why."""
    if hit == "wall":
        return f"{cpu_limit * WALL_FACTOR:g} s of wall-clock time, its limit"
    return f"its {cpu_limit:g} s of CPU time"


def process_tree(root: int) -> dict[int, list[str]]:
    """{pid: fields of /proc/<pid>/stat after the command name} of `root` and every process below
    it: a box started by start() (or a kernel) and what it started. (Not its session: bwrap gives
    the sandbox a session of its own.)"""
    stats, children = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))  # field 4: the parent
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found[pid] = stats[pid]
            todo += children.get(pid, [])
    return found


def cpu_seconds(root: int) -> float:
    """CPU seconds (user and system, with those of waited-for children) used by `root` and the
    processes below it that are alive now. Accounting, not security: RLIMIT_CPU bounds each process."""
    ticks = sum(sum(int(x) for x in fields[11:15]) for fields in process_tree(root).values())
    return ticks / _CLOCK_TICKS


def stop(proc: subprocess.Popen, box: Box) -> None:
    """Kill the box's process and everything it started, then clean up what it left in shared
    temporary folders ('user' mode)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap: its init dies, and the namespace with it
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()
    if box.mode == "user":
        end_user(box.uid)


def end_user(uid: int) -> None:
    """'user' mode: kill every process of the box's uid and remove what it left in shared folders."""
    kill_uid(uid)
    for shared in SHARED_TMP:
        remove_owned(Path(shared), uid)


def kill_uid(uid: int) -> None:
    """Kill every process of uid, whatever session it moved to (kill(-1) as that uid)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only kills and exits
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def remove_owned(folder: Path, uid: int) -> None:
    """Remove what uid left directly in a shared folder (a world-writable /tmp)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def readable_as(uid: int, paths: list[str]) -> list[str]:
    """Which of `paths` uid can open for reading (checked by a child that becomes uid)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only tries and reports
        os.close(r)
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            hits = []
            for k, path in enumerate(paths):
                try:
                    os.close(os.open(path, os.O_RDONLY))
                    hits.append(str(k))
                except OSError:
                    pass
            os.write(w, ",".join(hits).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read().decode()
    os.waitpid(pid, 0)
    return [paths[int(k)] for k in data.split(",") if k]


def check_user_mode(box: Box, must_read: list[str], must_not_read: list[str]) -> None:
    """Refuse, in one sentence, a 'user' box that cannot run Python or could read the reference."""
    if box.mode != "user":
        return
    missing = [p for p in must_read if p not in readable_as(box.uid, must_read)]
    if missing:
        raise IsolationError(
            f"isolation mode 'user': the sandbox user (uid {box.uid}) cannot read {missing[0]}: "
            "install Python and the packages where every user can read them (e.g. /usr/local or "
            "/opt), not under a private home folder"
        )
    leaks = readable_as(box.uid, must_not_read)
    if leaks:
        raise IsolationError(
            f"isolation mode 'user': the sandbox user (uid {box.uid}) can read {leaks[0]}: make "
            f"the reference and the submissions unreadable to other users (chmod -R o-rwx on "
            "their top folder) before grading"
        )
