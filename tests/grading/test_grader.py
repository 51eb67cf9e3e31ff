"""The autograder: full marks for the reference, nothing for the kit as released, one TODO per
mistake, bounded cost for loops, and no way for a submission to change its own score."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from sr_course.cli import main
from sr_course.course import NOTEBOOKS, STUDENT_FILES, TODOS
from sr_course.grading import formats, grader
from sr_course.grading import notebooks as notebooks_module
from sr_course.grading import todos as todos_module
from sr_course.grading.grader import grade, grade_many
from sr_course.grading.kit import EDITABLE, KIT_ROOT
from sr_course.grading.points import MAX_POINTS, NOTEBOOK_POINTS, TODO_POINTS
from sr_course.grading.release import build_release
from sr_course.grading.todos import box_groups

MODELS_TODOS = [t for t, entry in TODOS.items() if entry.file == "models"]
# One seed for this module's gradings, so that the reference's outputs are computed once (grading's
# default is a fresh seed each run: test_grade_many_writes_a_gradebook checks how seeds are kept).
SEED = 24680


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "kit"
    build_release(out, verbose=False, check=False)
    return out


def _submission(folder: Path, source: Path = KIT_ROOT, edits: dict | None = None) -> Path:
    """A submission folder: the student files of `source`, with `edits` ({file: f(text)}) applied."""
    for rel in EDITABLE:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        text = (source / rel).read_text()
        if edits and rel in edits:
            text = edits[rel](text)
        (folder / rel).write_text(text)
    return folder


def _digest(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _todos_graded(folder: Path, edits: dict, timeout: float) -> dict:
    """The TODO-only report of the reference's files with `edits`, each TODO limited to `timeout`."""
    submission = _submission(folder, edits=edits)
    return grade(submission, notebooks=False, timeout=timeout, verbose=False, seed=SEED)


def _scores(report: dict) -> dict:
    return {t: e["score"] for t, e in report["todos"].items()}


def test_reference_scores_full_marks(tmp_path):
    """The TODOs here; the reference's notebooks are graded once per test session, in the Gradescope
    rehearsal (test_platforms.py): every cell as the reference's, no flag, full marks."""
    submission = _submission(tmp_path / "reference")
    before = _digest(submission)
    report = grade(
        submission, notebooks=False, json_out=tmp_path / "grade.json", verbose=False, seed=SEED
    )
    assert _scores(report) == {t: 1.0 for t in TODOS}
    assert report["notebooks"] is None
    assert report["flags"] == []
    assert report["points"]["total"] == report["points"]["max"] == MAX_POINTS - NOTEBOOK_POINTS
    assert (tmp_path / "grade.json").exists()
    assert _digest(submission) == before


def test_kit_as_released_scores_zero_with_not_implemented_sentences(kit):
    """The kit as released, notebooks asked for: every TODO says it is not implemented, and the
    notebooks, which would run only the kit's own code for no point, are not run at all."""
    report = grade(kit, verbose=False, seed=SEED)
    for todo, entry in report["todos"].items():
        assert entry["score"] == 0.0
        file = TODOS[todo].file
        assert entry["first_failure"] == (
            f"{todo} is not implemented yet: fill in its TODO box in sr_course/{file}.py"
        )
    assert report["flags"] == []
    nb = report["notebooks"]
    sentence = "not run: no TODO has earned a point yet, and the notebooks count only once one has"
    assert nb["failures"] == [sentence] and nb["first_failure"] == sentence
    assert (nb["passed"], nb["score"], nb["cpu_seconds"]) == (0, 0.0, 0.0)
    assert nb["total"] == sum(
        c["cell_type"] == "code"
        for name in NOTEBOOKS
        for c in json.loads((KIT_ROOT / "notebooks" / name).read_text())["cells"]
    )
    assert report["points"]["total"] == 0.0 and report["points"]["max"] == MAX_POINTS
    assert formats.notebook_lines(report) == (
        "no TODO has earned a point yet, so the notebooks were not run: they count once one has"
    )


def test_boxes_split_whole_student_files_in_course_order():
    assert box_groups(list(TODOS), 1) == [list(TODOS)]
    groups = box_groups(list(TODOS), 2)
    assert len(groups) == 2 and sorted(sum(groups, [])) == sorted(TODOS)
    order = list(TODOS)
    for group in groups:
        assert group == sorted(group, key=order.index)
    files = [{TODOS[t].file for t in group} for group in groups]
    assert not files[0] & files[1], files  # a file's TODOs share its import: one box
    assert box_groups(list(TODOS), 8) == box_groups(list(TODOS), len(STUDENT_FILES))


def test_a_syntax_error_costs_only_its_file(tmp_path):
    """With two boxes (jobs=2) the broken file's box still grades the other file it holds."""
    submission = _submission(
        tmp_path / "s", edits={"sr_course/losses.py": lambda t: t + "\ndef oops(:\n"}
    )
    assert any({"losses", "solver"} <= {TODOS[t].file for t in g} for g in box_groups(TODOS, 2))
    report = grade(submission, notebooks=False, verbose=False, seed=SEED, jobs=2)
    for todo, file in ((t, e.file) for t, e in TODOS.items()):
        assert report["todos"][todo]["score"] == (0.0 if file == "losses" else 1.0), todo
    sentence = report["todos"]["pixel_mse"]["first_failure"]
    assert sentence.startswith(
        "sr_course/losses.py does not compile (SyntaxError at losses.py line"
    )
    assert sentence.endswith("every TODO of losses.py scores 0 until it does")


def test_an_endless_loop_costs_only_its_todo(tmp_path):
    loop = "    while True:\n        pass\n"
    edits = {
        "sr_course/models.py": lambda t: t.replace(
            "    layers_before_block = sum(", loop + "    layers_before_block = sum(", 1
        )
    }
    report = _todos_graded(tmp_path / "s", edits, timeout=5)
    assert _scores(report) == {t: float(t != "TruncatedVGG19") for t in TODOS}
    assert report["todos"]["TruncatedVGG19"]["first_failure"] == (
        "TruncatedVGG19 did not finish within its 5 s of CPU time; "
        "the checks after that point were not run"
    )


@pytest.mark.parametrize(
    "file, code, ending",
    [
        ("models", "\nimport os\nos._exit(3)\n", "ended the grading process (exit code 3)"),
        ("losses", "\nwhile True:\n    pass\n", "did not finish within its 4 s of CPU time"),
    ],
    ids=["os._exit(3)", "an endless loop"],
)
def test_a_file_whose_import_ends_the_box_costs_its_todos_in_one_box(
    tmp_path, monkeypatch, file, code, ending
):
    """A student file whose import ends or stops the box scores 0 on its own TODOs, all judged by
    that one run (as a file that does not compile is); the other files' TODOs keep their points."""
    boxes = []
    run_box = todos_module._run_box
    monkeypatch.setattr(
        todos_module, "_run_box", lambda todos, *a: boxes.append(list(todos)) or run_box(todos, *a)
    )
    edits = {f"sr_course/{file}.py": lambda t: t + code}
    report = _todos_graded(tmp_path / "s", edits, timeout=4)
    assert _scores(report) == {t: float(e.file != file) for t, e in TODOS.items()}
    for todo in (t for t, e in TODOS.items() if e.file == file):
        assert report["todos"][todo]["first_failure"] == (
            f"importing sr_course/{file}.py {ending}: every TODO of {file}.py scores 0 until it "
            "imports"
        )
    # One box met the file's import; the next box starts after the file's last TODO.
    assert len(boxes) == 2 and [any(TODOS[t].file == file for t in b) for b in boxes] == [
        True,
        False,
    ], boxes


def test_notebook_limits_count_cpu_time_and_cost_only_the_cell_that_hit_them(tmp_path, monkeypatch):
    """A busy grading machine costs no points: a cell may wait (sleep) longer than its CPU limit;
    a cell that computes past it, or waits past the wall-clock limit, is interrupted and costs
    itself alone (the fault: one slow cell was called "an endless loop?" and every later cell of
    every notebook was "not run")."""
    root = tmp_path / "root"
    shutil.copytree(KIT_ROOT / "sr_course", root / "sr_course")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("while True:\n    x += 1"),
            nbformat.v4.new_code_cell("import time\n\ntime.sleep(3)"),
            nbformat.v4.new_code_cell("time.sleep(600)"),
            nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('still here')"),
        ]
    )
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="still here\n")]
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / "notebooks" / "limits.ipynb")
    monkeypatch.setattr(notebooks_module, "NOTEBOOKS", ("limits.ipynb",))
    # (With a TODO's point earned: the notebooks run only once one is.)
    entry = notebooks_module.grade_notebooks({}, {"pixel_mse": 1.0}, cell_timeout=2, root=root)
    assert (entry["passed"], entry["total"]) == (3, 5), entry["failures"]
    assert entry["failures"] == [
        "limits.ipynb cell 2 did not finish within its 2 s of CPU time: it was interrupted there",
        "limits.ipynb cell 4 did not finish within 8 s of wall-clock time, its limit: it was "
        "interrupted there",
    ]
    assert 2 <= entry["cpu_seconds"] < 10


def test_one_todo_filled_scores_exactly_that_todo(kit, tmp_path):
    from sr_course.grading.kit import find_regions

    reference = (KIT_ROOT / "sr_course/models.py").read_text()
    region = next(r for r in find_regions(reference, "m") if r.todo_id == "ConvolutionalBlock")

    def fill(text):
        from sr_course.grading.kit import _stub

        return text.replace(_stub(region), "\n".join(region.lines), 1)

    submission = _submission(tmp_path / "s", source=kit, edits={"sr_course/models.py": fill})
    report = grade(submission, notebooks=False, verbose=False, seed=SEED)
    assert _scores(report) == {t: float(t == "ConvolutionalBlock") for t in TODOS}


# --- forgery: the submission is the kit's stubs plus an attack; its score must stay 0 -------------

ATTACKS = {
    "atexit hook": """
import atexit, glob, os
def _forge():
    for path in glob.glob("/tmp/**/*.pt", recursive=True) + glob.glob("/tmp/**/status.json", recursive=True):
        try:
            open(path, "w").write("{}")
        except OSError:
            pass
atexit.register(_forge)
""",
    "os._exit(0) at import": "\nimport os\nos._exit(0)\n",
    "sys.exit at import": "\nimport sys\nsys.exit(0)\n",
    "writing and deleting the outputs": """
from pathlib import Path
_out = Path(__file__).resolve().parents[3] / "out"
for _p in list(_out.rglob("*")):
    try:
        _p.unlink() if _p.is_file() else None
    except OSError:
        pass
try:
    (_out / "status.json").write_text("{}")
except OSError:
    pass
""",
    "patching torch and the checks": """
import torch
from sr_course import checks
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
checks.check_srresnet = lambda: print("SRResNet: OK (1,549,462 parameters)")
""",
    "reading the reference": """
import os
try:
    exec(open(os.path.join(REFERENCE, "sr_course", "models.py")).read())
except OSError:
    pass
""",
    "a subprocess": """
import subprocess
try:
    subprocess.run(["true"])
except OSError:
    pass
""",
}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_forgery_does_not_raise_the_score_and_is_flagged(kit, tmp_path, attack):
    code = ATTACKS[attack].replace("REFERENCE", repr(str(KIT_ROOT)))
    submission = _submission(
        tmp_path / "s", source=kit, edits={"sr_course/models.py": lambda t: t + code}
    )
    report = grade(submission, notebooks=False, verbose=False, seed=SEED)
    assert _scores(report) == {t: 0.0 for t in TODOS}
    assert report["flags"], "the attempt was not flagged"
    assert report["points"]["total"] == 0.0


def test_honest_imports_of_the_reference_environment_cost_nothing(tmp_path):
    """What the reference's environment can import, a submission can import: torchvision loads its
    operators with ctypes, which the sandbox's audit hook refuses once it is in place."""
    submission = _submission(
        tmp_path / "s",
        edits={
            "sr_course/models.py": lambda t: t.replace(
                "import torch\n", "import torch\nimport torchvision\n", 1
            )
        },
    )
    report = grade(submission, notebooks=False, verbose=False, seed=SEED)
    assert _scores(report) == {t: 1.0 for t in TODOS}
    assert report["flags"] == []


def test_reading_the_reference_is_refused_even_for_a_correct_file(tmp_path):
    """A correct models.py that also tries to read the reference keeps its points and is flagged."""
    code = ATTACKS["reading the reference"].replace("REFERENCE", repr(str(KIT_ROOT)))
    submission = _submission(tmp_path / "s", edits={"sr_course/models.py": lambda t: t + code})
    report = grade(submission, notebooks=False, verbose=False, seed=SEED)
    assert _scores(report) == {t: 1.0 for t in TODOS}
    assert any("uses open" in f for f in report["flags"])
    assert any("blocked open" in f for f in report["flags"])


def test_forged_self_checks_earn_no_notebook_points(kit, tmp_path):
    """The losses done (so that the notebooks run), the networks' stubs left, and self-checks
    patched to print OK: the check cells print the right lines, but count only where the grader
    found the TODOs right; the flag withholds the notebook points."""
    code = ATTACKS["patching torch and the checks"]
    losses = (KIT_ROOT / "sr_course" / "losses.py").read_text()
    submission = _submission(
        tmp_path / "s",
        source=kit,
        edits={"sr_course/models.py": lambda t: t + code, "sr_course/losses.py": lambda t: losses},
    )
    report = grade(submission, verbose=False, seed=SEED, cell_timeout=60)
    nb = report["notebooks"]
    assert any(
        "its self-check passed, but the grader found SRResNet wrong" in f for f in nb["failures"]
    ), nb["failures"]
    assert report["points"]["notebooks_withheld"] and report["points"]["notebooks"] == 0.0
    done = [t for t, e in TODOS.items() if e.file == "losses"]
    assert _scores(report) == {t: float(t in done) for t in TODOS}
    assert report["points"]["total"] == len(done) * TODO_POINTS


def test_grade_many_writes_a_gradebook(kit, tmp_path, capsys):
    subs = tmp_path / "class"
    _submission(subs / "alice")
    shutil.copytree(kit, subs / "bob")
    _submission(
        subs / "carol",
        edits={
            "sr_course/losses.py": lambda t: t.replace(
                "return F.mse_loss(sr, hr)", "return F.l1_loss(sr, hr)"
            )
        },
    )
    before = _digest(subs)
    reports = grade_many([subs], tmp_path / "grades", jobs=2, notebooks=False, verbose=False)
    assert [Path(r["submission"]).name for r in reports] == ["alice", "bob", "carol"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grades" / "gradebook.csv").read_text())))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert [float(r["total"]) for r in rows] == [10.0, 0.0, 9.0]
    assert rows[2]["pixel_mse"] == "0.0" and rows[2]["VGGContentLoss"] == "1.0"
    assert set(rows[0]) == {
        "student",
        *TODOS,
        "todos",
        "notebooks",
        "total",
        "max",
        "status",
        "isolation",
        "flags",
    }
    assert [r["status"] for r in rows] == ["graded"] * 3
    for name in ("alice", "bob", "carol"):
        assert (tmp_path / "grades" / f"{name}.json").is_file()
    feedback = (tmp_path / "grades" / "carol.feedback.md").read_text()
    assert "## pixel_mse: 0 / 1" in feedback and "run check_pixel_loss()" in feedback
    assert "<h2>pixel_mse: 0 / 1</h2>" in (tmp_path / "grades" / "carol.feedback.html").read_text()
    assert _digest(subs) == before
    # A rerun keeps the reports that still hold and grades only the submission that changed.
    seeds = {Path(r["submission"]).name: r["seed"] for r in reports}
    carol = subs / "carol" / "sr_course" / "losses.py"
    carol.write_text(carol.read_text().replace("F.l1_loss(sr, hr)", "F.mse_loss(sr, hr)"))
    again = grade_many([subs], tmp_path / "grades", jobs=2, notebooks=False, verbose=False)
    reseeded = {
        Path(r["submission"]).name: r["seed"] != seeds[Path(r["submission"]).name] for r in again
    }
    assert reseeded == {"alice": False, "bob": False, "carol": True}
    assert [r["points"]["total"] for r in again] == [10.0, 0.0, 10.0]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grades" / "gradebook.csv").read_text())))
    assert [float(r["total"]) for r in rows] == [10.0, 0.0, 10.0]
    # The command line, on the same folder: nothing to grade again; the LMS file and the
    # similarity page from the kept reports.
    grades = tmp_path / "grades"
    argv = ["grade", str(subs), "--out", str(grades), "--no-notebooks", "--lms", "moodle"]
    assert main([*argv, "--similarity"]) == 0
    out = capsys.readouterr().out
    assert "3 submissions unchanged since they were graded: kept (0 to grade)" in out
    assert (grades / "gradebook-moodle.csv").read_text().splitlines() == [
        "Username,sr_course",
        "alice,10.0",
        "bob,0.0",
        "carol,10.0",
    ]
    assert "| alice / carol | 1.00 |" in (grades / "similarity.md").read_text()


def test_scan_flags_only_what_the_reference_does_not_use():
    files = {rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE}
    assert grader.scan(files) == []
    files["sr_course/losses.py"] += "\nimport atexit\nimport math\nexec('x = 1')\n"
    flags = grader.scan(files)
    assert "sr_course/losses.py: imports atexit" in flags
    assert any(f.startswith("sr_course/losses.py:") and f.endswith("uses exec") for f in flags)
    assert not any("math" in f for f in flags)
    # The reference calls model.eval(); that must not exempt the builtin eval.
    files["sr_course/models.py"] += "\nx = eval('1 + 1')\n"
    assert any(
        f.startswith("sr_course/models.py:") and f.endswith("uses eval") for f in grader.scan(files)
    )
