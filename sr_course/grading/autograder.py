"""The Gradescope autograder: a bundle that grades one upload per container on Gradescope's machines.

    build_bundle(out_zip) -> list[str]       python -m sr_course autograder --out autograder.zip
    (gradescope.py)                          what the bundle's run_autograder runs on Gradescope
    rehearse(bundle) -> list[str]            python -m sr_course autograder --check (no Gradescope)

The bundle (Gradescope unpacks it to /autograder/source and runs setup.sh once per image):

    setup.sh              Ubuntu 22.04's python3 and bubblewrap, a venv with the CPU builds of torch
                          and torchvision (PyTorch's CPU index; the default build is several GB), the
                          grading requirements
    run_autograder        grades /autograder/submission into /autograder/results/results.json
    requirements.txt      what grading imports (CPU), derived from the kit's requirements
    kit/                  the student kit's package as released (stubs only) with the grader
                          (sr_course/grading/), and the notebooks with the reference's outputs (what
                          their cells are judged by)
    reference.pt          the reference's outputs of every probe, for the bundle's own seed

No reference solution is in the bundle: the release's leak check runs on it (release.find_leaks)
before it is written; the one file it lets through is the grader's probes.py, whose stand-ins build
the layers of the TODOs that others build on but compute something else (STAND_INS_FILE). Grading runs in the strongest isolation mode the container allows (Gradescope's
Docker containers run as root without user namespaces: the 'user' mode, a separate uid); before it
starts, the source, the upload and the results folder are closed to other users, so the student's
code can neither read the reference's outputs nor write results.json. The upload may be the whole
kit, its sr_course/ folder or just the three student files, zipped or not; files it lacks are named
in the results and graded as the kit's stubs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat

from ..course import NOTEBOOKS, TODOS
from .formats import FLAGS_TEST, NOTEBOOKS_TEST, validate
from .kit import EDITABLE, KIT_ROOT, ReleaseError
from .release import build_release, find_leaks, solution_regions
from .todos import reference_outputs, save_reference

# Gradescope's container, as its documentation gives it: what the bundle is built and measured for.
GRADESCOPE = {"image": "Ubuntu 22.04", "cpus": 0.5, "memory_mb": 768, "timeout_s": 600}
# What grading imports, beside torch and torchvision (installed from PyTorch's CPU index first).
GRADING_NEEDS = (
    "numpy",
    "pillow",
    "matplotlib",
    "easydict",
    "tqdm",
    "scikit-image",
    "lpips",
    "ipykernel",
    "ipywidgets",
    "nbclient",
    "nbformat",
    "jsonschema",
)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
KIT_PARTS = ("sr_course", "notebooks", "pyproject.toml")  # of the student kit, in the bundle
# The probes' stand-ins for the TODOs that others build on (probes.STAND_INS) build the same layers
# under the same names as those TODOs (the shapes and names their boxes state) and compute something
# else on purpose: the leak check's line and same-job tests see their constructors as solution
# lines, so this one file is let through. Nothing else in the bundle may hold a solution line.
STAND_INS_FILE = ("sr_course/grading/probes.py",)

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder's image (Ubuntu 22.04, as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip bubblewrap util-linux
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
# The CPU builds: the default (CUDA) build is several GB and the container has no GPU.
/autograder/venv/bin/pip install -q --index-url {index} {torch}
/autograder/venv/bin/pip install -q -r /autograder/source/requirements.txt
# The 'user' sandbox runs students' code as another uid: it must be able to run this Python.
chmod 755 /autograder /autograder/venv
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for each upload. AUTOGRADER_ROOT and AUTOGRADER_PYTHON exist for the
# rehearsal (`python -m sr_course autograder --check`); on Gradescope they are unset.
set -uo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
python="${AUTOGRADER_PYTHON:-$root/venv/bin/python}"
mkdir -p "$root/results"
cd "$root/source/kit"
PYTHONPATH="$root/source/kit" exec "$python" -m sr_course.grading.gradescope \\
    "$root/submission" "$root/results/results.json" "$root/source"
"""


def _requirements(root: Path) -> str:
    """The kit's requirements, less what only development needs (the notebook server, pytest,
    ruff, the browser test) and torch/torchvision (setup.sh installs their CPU builds first)."""
    wanted, lines = set(GRADING_NEEDS), []
    for line in (root / "requirements.txt").read_text().splitlines():
        name = line.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        if name in wanted:
            lines.append(line.strip())
            wanted.discard(name)
    lines += sorted(wanted)  # needed by grading, left to the kit's other packages to pull in
    return (
        "# What grading imports (setup.sh installs torch and torchvision first).\n"
        + "\n".join(lines)
        + "\n"
    )


def _torch_line(root: Path) -> str:
    picks = [
        line.strip()
        for line in (root / "requirements.txt").read_text().splitlines()
        if line.strip().startswith(("torch>", "torch=", "torchvision"))
    ]
    return " ".join(f"'{p}'" for p in picks) or "torch torchvision"


def _stage(where: Path, root: Path, seed: int) -> None:
    """The bundle's tree in `where`: scripts, requirements, the kit with the grader, the reference
    outputs for `seed`."""
    kit = where / "kit"
    build_release(kit, root=root, check=False, verbose=False)
    for path in kit.iterdir():  # grading needs the package and the notebooks, nothing else
        if path.name not in KIT_PARTS:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(
        root / "sr_course" / "grading",
        kit / "sr_course" / "grading",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in NOTEBOOKS:  # the judge compares each self-check cell's output with the reference's
        nb = nbformat.read(root / "notebooks" / name, as_version=4)
        nbformat.write(nb, kit / "notebooks" / name)
    save_reference(where / "reference.pt", seed, reference_outputs(seed, root))
    (where / "requirements.txt").write_text(_requirements(root))
    (where / "setup.sh").write_text(SETUP_SH.format(index=TORCH_CPU_INDEX, torch=_torch_line(root)))
    (where / "run_autograder").write_text(RUN_AUTOGRADER)
    for script in ("setup.sh", "run_autograder"):
        (where / script).chmod(0o755)


def build_bundle(out: str | os.PathLike, root: Path = KIT_ROOT, verbose: bool = True) -> list[str]:
    """Write the Gradescope bundle (a zip) to `out`; returns its file list. Refuses, writing
    nothing, when a line of the reference's solution would be in it."""
    out = Path(out)
    seed = secrets.randbelow(2**31)
    with tempfile.TemporaryDirectory(prefix="sr-autograder-") as tmp:
        stage = Path(tmp) / "bundle"
        _stage(stage, root, seed)
        problems = find_leaks(stage / "kit", solution_regions(root), exempt=STAND_INS_FILE)
        if problems:
            raise ReleaseError(
                "the autograder bundle would hold solution code:\n  " + "\n  ".join(problems)
            )
        files = sorted(
            p.relative_to(stage).as_posix()
            for p in stage.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
        try:
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
                for rel in files:
                    info = zipfile.ZipInfo.from_file(stage / rel, rel)
                    with open(stage / rel, "rb") as f:
                        z.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    if verbose:
        size = out.stat().st_size / 2**20
        print(f"autograder bundle written to {out} ({len(files)} files, {size:.1f} MiB)")
    return files


# --- the rehearsal ---------------------------------------------------------------------------------


def _bug(root: Path, into: Path) -> tuple[Path, str]:
    """An upload with one realistic bug: the reference's three files (flat) with the sub-pixel
    block's convolution widening by r instead of r^2 (the TODO that must lose points). Every
    network built from it fails at its first forward pass, so the notebooks stop early, as they
    do for many real uploads."""
    models = _flat(root, into) / "models.py"
    text = models.read_text()
    bugged = text.replace("n_channels * scaling_factor**2,", "n_channels * scaling_factor,")
    if bugged == text:
        raise ReleaseError("the rehearsal's bug no longer applies to models.py")
    models.write_text(bugged)
    return into, "SubPixelConvolutionalBlock"


def unpack(bundle: Path, home: Path) -> None:
    """The bundle as Gradescope lays it out: home/source (home stands for /autograder)."""
    with zipfile.ZipFile(bundle) as z:
        z.extractall(home / "source")
    for script in ("setup.sh", "run_autograder"):
        (home / "source" / script).chmod(0o755)


def run_upload(home: Path, upload: Path, wrapper: tuple[str, ...] = ()) -> tuple[dict | None, str]:
    """Run the unpacked bundle's run_autograder on `upload` (copied to home/submission), with this
    Python in place of setup.sh's venv, under `wrapper` (a command prefix: limits for a bench).
    Returns results.json (None when it failed) and what run_autograder printed."""
    sub = home / "submission"
    shutil.rmtree(sub, ignore_errors=True)
    shutil.copytree(upload, sub, symlinks=True)
    shutil.rmtree(home / "results", ignore_errors=True)
    env = {**os.environ, "AUTOGRADER_ROOT": str(home), "AUTOGRADER_PYTHON": sys.executable}
    proc = subprocess.run(
        [*wrapper, str(home / "source" / "run_autograder")], env=env, capture_output=True, text=True
    )
    path = home / "results" / "results.json"
    if proc.returncode or not path.is_file():
        return None, proc.stdout[-1500:] + proc.stderr[-1500:]
    return json.loads(path.read_text()), proc.stdout


def rehearsal_uploads(home: Path) -> dict[str, tuple[Path, str | None]]:
    """The rehearsal's uploads, each in another shape: {what: (folder, the TODO that must lose)}."""
    kit_copy = home / "kit-as-released"
    build_release(kit_copy, check=False, verbose=False)
    bug_dir, bug_todo = _bug(KIT_ROOT, home / "bug")
    return {
        "the reference (the three files, flat)": (_flat(KIT_ROOT, home / "ref"), None),
        "the kit as released (the whole kit)": (kit_copy, None),
        "one bug: the sub-pixel convolution widens by r, not r^2": (bug_dir, bug_todo),
    }


def rehearse(bundle: Path, verbose: bool = True) -> list[str]:
    """Unpack the bundle into an /autograder-like tree and run its run_autograder on the reference
    (full marks), the kit as released (0) and one bug (the right TODO loses points); each
    results.json is checked against Gradescope's schema. Returns the problems (none: it passed)."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="sr-autograder-check-") as tmp:
        home = Path(tmp)
        unpack(bundle, home)
        for name, (upload, bug) in rehearsal_uploads(home).items():
            t0 = time.monotonic()
            data, printed = run_upload(home, upload)
            if data is None:
                problems.append(f"{name}: run_autograder failed:\n{printed}")
                continue
            try:
                validate("gradescope", data)
            except ValueError as err:
                problems.append(f"{name}: {err}")
            problems += _expect(name, data, bug)
            if verbose:
                notebooks, flags = _outputs(data)
                notes = f"{notebooks.splitlines()[0]}; {flags.replace(chr(10), ', ')}"
                print(
                    f"{name}: {data['score']:g} points in {time.monotonic() - t0:.0f} s ({notes})"
                )
    return problems


def _flat(root: Path, into: Path) -> Path:
    into.mkdir(parents=True)
    for rel in EDITABLE:
        shutil.copyfile(root / rel, into / Path(rel).name)
    return into


def _outputs(data: dict) -> tuple[str, str]:
    """What results.json says of the notebooks and, in its hidden test, of the flags."""
    tests = {t["name"]: t for t in data["tests"]}
    return tests[NOTEBOOKS_TEST]["output"], tests[FLAGS_TEST]["output"]


def _expect(name: str, data: dict, bug: str | None) -> list[str]:
    scores = {t["name"]: t.get("score") for t in data["tests"]}
    maxima = {t["name"]: t.get("max_score") for t in data["tests"]}
    if name.startswith("the reference"):
        if data["score"] != sum(v for v in maxima.values() if v):
            return [f"{name}: {data['score']} points, not full marks: {data['output']}"]
        notebooks, flags = _outputs(data)
        if not notebooks.startswith("all "):
            return [f"{name}: not every notebook cell ran as the reference's do: {notebooks}"]
        if "no flags" not in flags:  # the reference's own code raised a flag: the grader is wrong
            return [f"{name}: flagged: {flags}"]
    elif name.startswith("the kit"):
        if data["score"] != 0:
            return [f"{name}: {data['score']} points, not 0"]
    else:
        lost = [t for t in TODOS if scores[t] < maxima[t]]
        if lost != [bug]:
            return [f"{name}: points lost on {lost or 'nothing'}, expected {bug} only"]
    return []
