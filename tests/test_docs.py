"""What the READMEs, the notebooks and --help tell: one list of profiles, sections that exist, and
notebooks that run the package beside them. Runs in the reference and in the student kit (whose
README.md is the student README)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sr_course.cli.common import PROFILE_HELP
from sr_course.config import DEFAULT_PROFILE, PROFILE_NOTES, PROFILES
from sr_course.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
# The READMEs a file of the kit can be read beside: the kit's README.md is the student README.
READMES = [p for p in (ROOT / "README.md", ROOT / "docs" / "student_README.md") if p.is_file()]
INSTRUCTORS_ONLY = ("sr_course/grading/",)  # read beside this README.md only


def _cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_profiles_are_told_from_the_configs_one_list():
    rows = "\n".join(f"| `{name}` | {note} |" for name, note in PROFILE_NOTES.items())
    block = (
        f"| profile | for |\n|---|---|\n{rows}\n\nWithout `--profile` or `SR_PROFILE`, commands and "
        f"notebooks use `{DEFAULT_PROFILE}`.\n"
    )
    for readme in READMES:
        text = readme.read_text()
        told = text.split("<!-- profiles: begin -->\n", 1)[1].split("<!-- profiles: end -->")[0]
        assert told == block, (
            f"{readme.name}: paste this block between the profile markers:\n{block}"
        )
    listed = ", ".join(f"`{p}`" for p in PROFILES[:-1]) + f" or `{PROFILES[-1]}`"
    for name in NOTEBOOKS:
        first = _words(_cells(ROOT / "notebooks" / name)[0])
        assert listed in first, f"{name}'s first cell does not list the profiles as {listed}"
        assert f"When it is unset, the notebooks use `{DEFAULT_PROFILE}`." in first, name
    for name in PROFILES:
        assert f"{name} ({PROFILE_NOTES[name]})" in PROFILE_HELP
    assert PROFILE_HELP.endswith(f"default $SR_PROFILE, else {DEFAULT_PROFILE}")


CITATION = re.compile(r'README[,]?\s*\(?\s*"([^"\n]+)"')


def _headings(readme: Path) -> list[str]:
    return [
        line.lstrip("#").strip() for line in readme.read_text().splitlines() if line.startswith("#")
    ]


def _cites(section: str, headings: list[str]) -> bool:
    return any(h == section or h.startswith(f"{section}:") for h in headings)


def test_every_readme_section_a_file_cites_exists():
    files = [
        *ROOT.glob("sr_course/**/*.py"),
        *ROOT.glob("notebooks/*.ipynb"),
        *ROOT.glob("bench/*.py"),
        *ROOT.glob("data_prep/*.py"),
        *READMES,
    ]
    cited = 0
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        text = "\n".join(_cells(path)) if path.suffix == ".ipynb" else path.read_text()
        readmes = READMES[:1] if rel.startswith(INSTRUCTORS_ONLY) else READMES
        for section in CITATION.findall(text):
            cited += 1
            for readme in readmes:
                assert _cites(section, _headings(readme)), (
                    f'{rel} cites the README, "{section}", which {readme.name} does not have'
                )
    assert cited >= 4  # the scan finds the citations (losses.py, config.py, the notebooks)


def _setup_cell() -> str:
    return next(c for c in _cells(ROOT / "notebooks" / NOTEBOOKS[0]) if "setup(" in c)


@pytest.fixture(scope="module")
def two_copies(tmp_path_factory):
    """A kit (sr_course/ and notebooks/) and another copy of sr_course, as an instructor has who
    installed the reference and tries the kit in the same environment."""
    tmp = tmp_path_factory.mktemp("copies")
    skip = shutil.ignore_patterns("__pycache__")
    for where in ("kit", "other"):
        shutil.copytree(ROOT / "sr_course", tmp / where / "sr_course", ignore=skip)
    (tmp / "kit" / "notebooks").mkdir()
    return tmp


def _run_setup_cell(copies: Path, before: str = "") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(copies / "other"),  # the other copy is importable before the kit
        "SR_PROFILE": "smoke",
        "SR_DATA_ROOT": str(copies / "data"),
        "SR_RUNS_DIR": str(copies / "runs"),
    }
    code = before + _setup_cell() + "\nimport sr_course\nprint('imported', sr_course.__file__)\n"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=copies / "kit" / "notebooks",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_setup_cell_imports_the_kit_beside_the_notebook_and_says_so(two_copies):
    run = _run_setup_cell(two_copies)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "sr_course: sr_course   (the kit beside this notebook)"
    assert lines[1] == (
        f"profile  : smoke   (from SR_PROFILE; choose with SR_PROFILE={'|'.join(PROFILES)})"
    )
    assert lines[-1] == f"imported {two_copies / 'kit' / 'sr_course' / '__init__.py'}"


def test_another_copy_already_imported_stops_the_setup_cell_with_one_sentence(two_copies):
    run = _run_setup_cell(two_copies, before="import sr_course\n")  # the other copy, first
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last == (
        f"sr_course.errors.OtherCopy: this notebook belongs to the kit in {two_copies / 'kit'}, but "
        f"Python imported sr_course from {two_copies / 'other' / 'sr_course'}: restart the kernel "
        "and run this cell first; if it persists, install the kit into this environment (pip "
        f"install -e {two_copies / 'kit'}) or give the kit an environment of its own"
    )


RAW_TABLE = re.compile(
    r"^\|.*\|[ \t]*\n\|[-|: ]+\|[ \t]*$", re.M
)  # a Markdown table printed as text
TEMPORARY = re.compile(r"/tmp/|/var/folders/|sr_course-notebooks-")


def test_committed_notebooks_show_no_frozen_bar_temporary_path_or_raw_table():
    """What a student opens first: outputs as they were at the end of the run, paths of their own
    kit (runs/demo/...), tables rendered as tables."""
    for name in NOTEBOOKS:
        cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
        for k, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            where = f"{name} code cell {k}"
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                assert "application/vnd.jupyter.widget-view+json" not in data, (
                    f"{where}: a progress bar's widget (a saved notebook shows its first line)"
                )
                text = "".join(out.get("text", "")) + "".join(data.get("text/plain", ""))
                assert not TEMPORARY.search(text), f"{where}: a temporary path: {text[:200]!r}"
                assert not re.search(r"\b0%\|", text), f"{where}: a progress bar at 0%"
                if out.get("output_type") == "stream":
                    assert not RAW_TABLE.search(text), f"{where}: a Markdown table printed as text"


def test_one_srgan_recipe_for_the_demo_command_and_the_notebooks():
    """The demo command trains SRGAN for the demo profile's length (no cap of its own), so the
    README's demo table, `demo` and the notebooks on the demo profile report the same run."""
    import inspect

    from sr_course.cli import demo
    from sr_course.config import load_config
    from sr_course.data.sample import TRAIN_IMAGES

    cfg = load_config("demo")
    images = len(TRAIN_IMAGES)
    iterations = cfg.srgan.epochs * images * cfg.data.patches_per_image // cfg.srgan.batch_size
    source = inspect.getsource(demo.run_demo)
    assert 'train={"max_iterations": iterations}' in source.split("SRGAN, initialised")[1]
    rows = [
        line for p in READMES for line in p.read_text().splitlines() if line.startswith("| SRGAN (")
    ]
    assert all(f"{iterations} iterations from it" in row for row in rows), rows
    train_srgan = json.loads((ROOT / "notebooks" / "train_srgan.ipynb").read_text())
    printed = "".join(
        "".join(o.get("text", ""))
        for c in train_srgan["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    if printed:  # the committed notebooks (a released kit's have no outputs)
        assert f"srgan: done, {iterations} iterations" in printed
