"""The red-team suite: submissions written to fool, read through or tamper with the grader.

Each attack is its own submission (the kit's stubs plus the attack, in models.py unless it says
otherwise), graded for real in the strongest sandbox this machine has. Each must earn no point, leave
nothing outside the sandbox, leak neither the reference nor the grader's environment into its report,
leave no process behind, and raise a flag that names what it tried. The table ATTACKS is the suite;
`python -m pytest tests/grading/test_redteam.py -q -rA` prints the attack table (attack, score, flag).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sr_course.course import TODOS
from sr_course.grading import grader, isolation
from sr_course.grading.grader import grade, grade_many
from sr_course.grading.kit import EDITABLE, KIT_ROOT
from sr_course.grading.release import build_release
from sr_course.grading.todos import MAX_UNPACKED_BYTES

SEED = 424242
MARK = "srredteam" + hashlib.sha256(b"red team").hexdigest()[:8]  # names its processes and files
SECRET = "grader-secret-" + MARK  # in the grader's environment: must never reach a report
REF = str(KIT_ROOT / "sr_course" / "models.py")
# Lines of the reference solution that the kit's stubs do not have: a report must hold none.
SOLUTION_LINES = ("nn.PixelShuffle(scaling_factor)", "padding=kernel_size // 2", "BEGIN SOLUTION")

pytestmark = pytest.mark.skipif(not isolation.available(), reason="no sandbox works here")


def _runs_python(mode: str) -> bool:
    """Can this mode's box run this Python here? ('user' cannot where Python lives in a folder
    closed to other users, such as a virtualenv under /root: .ci/run builds its own elsewhere.)"""
    try:
        isolation.choose(mode)
    except isolation.IsolationError:
        return False
    return True


MODES = [m for m in isolation.available() if _runs_python(m)]  # each is attacked: bwrap, user


@pytest.fixture(scope="module")
def closed_reference():
    """The 'user' mode grades only where the sandbox's uid cannot read the reference: close this
    checkout to other users for the module (as an instructor does), and reopen it afterwards.
    Only the 'user' mode's tests ask for it (through `sandbox_mode`), so that under pytest-xdist the
    other modes' worker never reopens the checkout while the 'user' mode's worker grades."""
    top = KIT_ROOT
    mode = top.stat().st_mode
    top.chmod(mode & ~0o007)
    yield
    top.chmod(mode)


def sandbox_mode(request, mode: str) -> str:
    """`mode`, with what it needs in place: the 'user' mode a checkout closed to other users."""
    if mode == "user":
        request.getfixturevalue("closed_reference")
    return mode


# name: (file, code, a word its flags must contain, timeout)
ATTACKS = {
    "paths relative to a directory descriptor": ("models", """
import os
_fd = os.open(os.path.dirname(REF), os.O_RDONLY)
raise RuntimeError(os.read(os.open("models.py", os.O_RDONLY, dir_fd=_fd), 400).decode())
""", "for reading", 30),
    "a symlink to the reference": ("models", """
import os
os.symlink(REF, "/tmp/ref_link.py")
raise RuntimeError(open("/tmp/ref_link.py").read()[:400])
""", "symlink", 30),
    "torch.from_file (C++ file access)": ("models", """
import torch
_t = torch.from_file(REF, size=400, dtype=torch.uint8)
raise RuntimeError(bytes(_t.tolist()).decode())
""", "from_file", 30),
    "numpy.fromfile (C file access)": ("models", """
import numpy
raise RuntimeError(numpy.fromfile(REF, dtype=numpy.uint8)[:400].tobytes().decode())
""", "fromfile", 30),
    "PIL reading the reference": ("models", """
from PIL import Image
Image.open(REF)
""", "for reading", 30),
    "torchvision.io.read_file": ("models", """
import torchvision.io
raise RuntimeError(bytes(torchvision.io.read_file(REF).tolist()[:400]).decode())
""", "torchvision.io", 30),
    "/proc of the parent and siblings": ("models", """
import os
_seen = [open(f"/proc/{p}/environ", "rb").read() for p in os.listdir("/proc") if p.isdigit()]
raise RuntimeError(repr(_seen)[:400])
""", "/proc/", 30),
    "builtins through object.__subclasses__()": ("models", """
_fileio = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "FileIO"][0]
raise RuntimeError(_fileio(REF).read(400).decode())
""", "__subclasses__", 30),
    "builtins by subscript in a default argument": ("models", """
def _f(x=__builtins__["open"](REF).read()):
    return x
""", "__builtins__", 30),
    "code in a class body": ("models", """
class _Leak:
    text = __import__("io").open(REF).read()
""", "__import__", 30),
    "monkeypatching torch": ("models", """
import torch
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda *a, **k: True
""", "patches torch.allclose", 30),
    "monkeypatching the probes and their stand-ins": ("models", """
import sys
_probes = sys.modules["sr_grade_probes"]
_probes.same = lambda *a, **k: True
_probes.StandInConvolutionalBlock = type("X", (), {})
""", "modules", 30),
    "rewritten records": ("models", """
import torch
_save = torch.save
def _forged(obj, f, *a, **k):
    return _save({"outputs": {"state": [], "eval 0": torch.zeros(1)}}, f, *a, **k)
torch.save = _forged
""", "patches torch.save", 30),
    "a record that inflates": ("models", """
import torch, zipfile
def _bomb(obj, f, *a, **k):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z, z.open("archive/data.pkl", "w") as e:
        for _ in range(80):  # 80 MiB unpacked, past the grader's 64 MiB
            e.write(bytes(2**20))
torch.save = _bomb
""", "OversizedOutput", 30),
    "FIFOs where the grader writes": ("models", """
import os
for _p in ("/tmp/gradebook.csv.tmp", "/tmp/status.json", os.path.join(os.environ["TMPDIR"], "probe0.pt")):
    try:
        os.mkfifo(_p)
    except OSError:
        pass
""", "mkfifo", 30),
    "a disk fill": ("models", """
_k = 0
try:
    while _k < 10000:
        with open(f"/tmp/fill{_k}", "wb") as _f:
            _f.write(bytes(32 * 2**20))
        _k += 1
except OSError:
    pass
""", "uses open", 30),
    "a memory bomb": ("models", """
_hog = bytearray(200 * 2**30)
""", "memory limit", 30),
    "a fork bomb": ("models", """
import os
while True:
    try:
        os.fork()
    except OSError:
        break
""", "fork", 30),
    "a process through _posixsubprocess.fork_exec, in its own session": ("models", """
import _posixsubprocess, os
_r, _w = os.pipe()
_cmd = [b"/bin/sh", b"-c", b"sleep 600 # MARK"]
_base = [_cmd, [b"/bin/sh"], True, (_w,), None, None, -1, -1, -1, -1, -1, -1, _r, _w, True, True,
         -1, None, None, None, -1, None]
for _extra in ([], [False]):
    try:
        _posixsubprocess.fork_exec(*_base, *_extra)
        break
    except TypeError:
        continue
""", "_posixsubprocess", 30),
    "a thread that outlives its probe": ("models", """
import threading, time
def _spin():
    while True:
        time.sleep(0.01)
threading.Thread(target=_spin).start()
""", "threading", 30),
    "sqlite3 writing outside": ("models", """
import sqlite3
sqlite3.connect(TARGET).execute("create table t (x)")
""", "sqlite3", 30),
    "AF_UNIX datagrams to the host": ("models", """
import socket
_s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
_s.sendto(b"MARK", "\\0" + "MARK")
""", "socket", 30),
    "writing the reference and a file outside": ("models", """
for _path in (TARGET, REF):
    try:
        open(_path, "w").write("overwritten")
    except OSError:
        pass
""", "models.py for writing", 30),
    "a 1 GB stdout flood": ("models", """
import sys
for _ in range(64):
    sys.stdout.write("x" * 2**24)
""", "printed", 30),
    # Limits count CPU time; code that waits instead meets the wall-clock limit (WALL_FACTOR x).
    "sleeping in every probe, past the wall-clock limit": ("solver", """
import time, torch
_seed = torch.manual_seed
def _slow(*a, **k):
    time.sleep(13)
    return _seed(*a, **k)
torch.manual_seed = _slow
""", "did not finish within 12 s of wall-clock time", 3),
    "os._exit at import": ("models", """
import os
os._exit(0)
""", "ended early", 30),
}  # fmt: skip


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "kit"
    build_release(out, verbose=False, check=False)
    return out


def _submission(folder: Path, source: Path, edits: dict | None = None) -> Path:
    for rel in EDITABLE:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        text = (source / rel).read_text()
        (folder / rel).write_text(edits[rel](text) if edits and rel in edits else text)
    return folder


PLANTED = ("ref_link.py", "gradebook.csv.tmp", "status.json", "probe0.pt", "fill")


def _shared_tmp() -> set[str]:
    """What the attacks could have left in the machine's shared temporary folders: entries owned by
    one of this process's sandbox uids ('user' mode: isolation.lease_ids), or named as an attack
    names its files by anyone but a sandbox uid (other programs, and other test processes'
    sandboxes, may write there meanwhile)."""
    ours = isolation.id_block()
    names = set()
    for folder in isolation.SHARED_TMP:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                owner = entry.stat(follow_symlinks=False).st_uid
            except OSError:
                continue
            sandbox = owner >= isolation.USER_UID_BASE
            if owner in ours or (not sandbox and entry.name.startswith(PLANTED)):
                names.add(entry.path)
    return names


def _processes_with(word: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if word in cmdline and "pytest" not in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture(scope="module", params=MODES)
def attacked(request, kit, tmp_path_factory):
    """Every attack graded (two at a time) in each isolation mode that works here, with the grader's
    environment holding a secret and a host socket listening for the datagram attack. The marks
    that name its processes and its socket are the mode's own (pytest-xdist grades the modes at
    once, in two workers)."""
    mode = sandbox_mode(request, request.param)
    mark = MARK + mode
    base = tmp_path_factory.mktemp(f"redteam-{mode}")
    outside = base / "outside"
    outside.mkdir()
    target = outside / "target.txt"
    target.write_text("the instructor's file")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + mark)
    listener.setblocking(False)
    reference = Path(REF).read_bytes()
    os.environ["SR_GRADER_SECRET"] = SECRET
    before = _shared_tmp()

    def run(name):
        file, code, _, timeout = ATTACKS[name]
        code = code.replace("REF", repr(REF)).replace("TARGET", repr(str(target)))
        code = code.replace("MARK", mark)
        rel = f"sr_course/{file}.py"
        sub = _submission(
            base / name.replace(" ", "_").replace("/", "_"), kit, {rel: lambda t: t + code}
        )
        # One box per submission, as a class's grading and the Gradescope bundle grade.
        report = grade(
            sub,
            notebooks=False,
            verbose=False,
            timeout=timeout,
            seed=SEED,
            isolation_mode=mode,
            jobs=1,
        )
        return name, report

    try:
        with ThreadPoolExecutor(2) as pool:
            reports = dict(pool.map(run, ATTACKS))
    finally:
        del os.environ["SR_GRADER_SECRET"]
    try:
        received = listener.recv(100)
    except BlockingIOError:
        received = b""
    listener.close()
    return {
        "mode": mode,
        "reports": reports,
        "target": target.read_text(),
        "reference intact": Path(REF).read_bytes() == reference,
        "outside": sorted(p.name for p in outside.iterdir()),
        "left_in_tmp": sorted(_shared_tmp() - before),
        "received": received,
        "processes": _processes_with(mark),
    }


def test_the_suite_is_large_enough():
    assert len(ATTACKS) >= 20
    assert "range(80)" in ATTACKS["a record that inflates"][1] and 80 * 2**20 > MAX_UNPACKED_BYTES


@pytest.mark.parametrize("name", ATTACKS, ids=list(ATTACKS))
def test_attack_earns_nothing_leaks_nothing_and_is_flagged(attacked, name):
    report = attacked["reports"][name]
    _, _, word, _ = ATTACKS[name]
    assert {t: e["score"] for t, e in report["todos"].items()} == {t: 0.0 for t in TODOS}
    assert report["points"]["total"] == 0.0
    assert report["isolation"] == attacked["mode"]
    assert any(word in f for f in report["flags"]), report["flags"]
    text = json.dumps(report)
    for line in SOLUTION_LINES:
        assert line not in text, f"{name}: the report holds the reference's {line!r}"
    assert SECRET not in text
    flag = next(f for f in report["flags"] if word in f)
    print(f"{attacked['mode']:5} | {name:64} | {report['points']['total']:.0f} | {flag}")


def test_the_attacks_left_nothing_outside(attacked):
    assert attacked["target"] == "the instructor's file"
    assert attacked["reference intact"]
    assert attacked["outside"] == ["target.txt"]
    assert attacked["left_in_tmp"] == []
    assert attacked["received"] == b""
    assert attacked["processes"] == []


@pytest.mark.parametrize("mode", MODES)
def test_a_class_member_cannot_read_or_change_the_others(kit, request, tmp_path, mode):
    """mallory walks every folder it can see, looking for the others' files and the grader's: it
    must find none, change none, and cost alice (correct) and bob (the kit) nothing."""
    mode = sandbox_mode(request, mode)
    subs = tmp_path / "class"
    marker = "alice-" + MARK
    _submission(subs / "alice", KIT_ROOT, {"sr_course/models.py": lambda t: t + f"\n# {marker}\n"})
    _submission(subs / "bob", kit)
    # The marker is put together at run time, so that mallory's own file does not hold it.
    attack = f"""
import os, sys
_marker = "alice-" + {MARK!r}
_found = []
_skip = ("/proc", "/sys", "/usr", "/dev", sys.prefix, sys.base_prefix)
for _top in ("/", "/tmp", "/var/tmp", "/dev/shm", {str(tmp_path)!r}, {str(KIT_ROOT)!r}):
    for _root, _dirs, _files in os.walk(_top):
        if _root.startswith(_skip):
            _dirs[:] = []
            continue
        for _name in _files:
            _path = os.path.join(_root, _name)
            try:
                _text = open(_path, errors="replace").read()
            except OSError:
                continue
            if _marker in _text or "gradebook" in _name:
                _found.append(_path)
                try:
                    open(_path, "w").write("mallory was here")
                except OSError:
                    pass
if _found:
    raise RuntimeError("found " + " ".join(_found)[:200])
"""
    _submission(subs / "mallory", kit, {"sr_course/models.py": lambda t: t + attack})
    before = {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()}
    reports = grade_many(
        [subs], tmp_path / "grades", jobs=2, notebooks=False, verbose=False, isolation_mode=mode
    )
    by_name = {Path(r["submission"]).name: r for r in reports}
    assert by_name["alice"]["points"]["todos"] == len(TODOS)
    assert by_name["bob"]["points"]["todos"] == 0.0
    mallory = by_name["mallory"]
    assert mallory["points"]["total"] == 0.0
    assert marker not in json.dumps(mallory), "mallory read alice's file"
    assert not any(
        "raised RuntimeError" in (e["first_failure"] or "") for e in mallory["todos"].values()
    )
    assert any("uses walk" in f for f in mallory["flags"])
    assert {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()} == before
    for name in ("alice", "bob", "mallory"):
        assert "mallory was here" not in (tmp_path / "grades" / f"{name}.json").read_text()
    assert "mallory was here" not in (tmp_path / "grades" / "gradebook.csv").read_text()


@pytest.mark.parametrize("mode", MODES)
def test_a_notebook_cell_cannot_edit_the_kit_or_the_grader(kit, request, tmp_path, mode):
    """Code run in the notebooks' kernels tries to rewrite the kit's self-checks and notebooks (so
    that later kernels print OK) and to plant files for the grader: every write fails and is flagged,
    and the notebooks earn nothing. (The losses are done, so that the notebooks run: they run only
    once a TODO has earned a point.)"""
    mode = sandbox_mode(request, mode)
    attack = """
import os, pathlib
_kit = pathlib.Path(__file__).resolve().parents[1]
for _p in [_kit / "sr_course" / "checks.py", *(_kit / "notebooks").glob("*.ipynb")]:
    try:
        _p.write_text("def check_conv_block(): print('ConvolutionalBlock: OK')")
    except OSError:
        pass
"""
    losses = (KIT_ROOT / "sr_course" / "losses.py").read_text()
    sub = _submission(
        tmp_path / "s",
        kit,
        {"sr_course/models.py": lambda t: t + attack, "sr_course/losses.py": lambda t: losses},
    )
    kit_before = {p: p.read_bytes() for p in kit.rglob("*") if p.is_file()}
    report = grade(sub, verbose=False, seed=SEED, isolation_mode=mode)
    assert report["notebooks"]["total"] > 0 and report["notebooks"]["cpu_seconds"] > 0
    assert report["points"]["notebooks"] == 0.0 and report["points"]["notebooks_withheld"]
    done = [t for t, e in TODOS.items() if e.file == "losses"]
    assert {t: e["score"] for t, e in report["todos"].items()} == {
        t: float(t in done) for t in TODOS
    }
    writes = [f for f in report["flags"] if f.startswith("notebooks: blocked")]
    assert any("checks.py for writing" in f for f in writes), report["flags"]
    assert {p: p.read_bytes() for p in kit.rglob("*") if p.is_file()} == kit_before


def test_no_sandbox_means_no_grading(tmp_path, monkeypatch):
    """Where neither bubblewrap nor a user switch works, grading refuses in one sentence naming what
    to install; --no-isolation runs and says so in the report."""
    monkeypatch.setattr(isolation, "available", lambda: [])
    sub = _submission(tmp_path / "s", KIT_ROOT)
    with pytest.raises(isolation.IsolationError) as err:
        grade(sub, notebooks=False, verbose=False)
    message = str(err.value)
    assert "apt-get install bubblewrap" in message and "unprivileged_userns_clone" in message
    assert "--no-isolation" in message
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sr_course",
            "grade",
            str(sub),
            "--no-notebooks",
            "--isolation",
            "bogus",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    report = grade(sub, notebooks=False, verbose=False, isolation_mode="none", seed=SEED)
    assert report["isolation"] == "none"
    assert "NOT ISOLATED" in grader.format_report(report)


def test_the_seccomp_filter_refuses_processes_but_not_threads():
    if isolation.no_new_processes_filter() is None:
        pytest.skip("no seccomp filter for this machine")
    if "bwrap" not in isolation.available():
        pytest.skip("bubblewrap does not work here")
    code = (
        "import os, subprocess, threading\n"
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
        "for f in (os.fork, lambda: subprocess.run(['true'])):\n"
        "    try:\n        f(); print('started')\n"
        "    except OSError as e:\n        print(e.errno)\n"
        "print(sorted(os.listdir('/proc'))[:2], os.path.exists(" + repr(REF) + "))\n"
    )
    box = isolation.Box("bwrap", env={"PATH": "/usr/bin:/bin"}, cwd="/tmp")
    proc = isolation.start(
        [sys.executable, "-I", "-c", code], box, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=60)
    isolation.stop(proc, box)
    assert out.split("\n")[:3] == ["thread", "1", "1"], out
    assert "False" in out.split("\n")[3]


def test_the_user_mode_refuses_where_its_uid_could_read_the_reference():
    """The 'user' mode's guarantee rests on file permissions: where the sandbox's uid could read a
    protected file, grading refuses in one sentence that says what to change."""
    if "user" not in MODES:
        pytest.skip("the 'user' mode needs root")
    with tempfile.TemporaryDirectory(prefix="sr-open-") as top:  # in /tmp, open to all
        _user_mode_refuses(Path(top))


def _user_mode_refuses(open_folder: Path) -> None:
    open_folder.chmod(0o755)
    (open_folder / "models.py").write_text("# the solution")
    with pytest.raises(isolation.IsolationError) as err:
        isolation.choose("user", protected=[open_folder / "models.py"])
    assert str(err.value).endswith(
        f"can read {open_folder / 'models.py'}: make the reference and the submissions unreadable "
        "to other users (chmod -R o-rwx on their top folder) before grading"
    )
    open_folder.chmod(0o750)
    assert isolation.choose("user", protected=[open_folder / "models.py"]) == "user"
