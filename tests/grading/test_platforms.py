"""Grading where courses grade: Gradescope's and PrairieLearn's results.json, LMS imports, the
students' feedback pages, the similarity check and the Gradescope bundle."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from sr_course.course import TODOS
from sr_course.grading import autograder, formats, gradescope, isolation, lms, similarity
from sr_course.grading.feedback import feedback_html, feedback_markdown
from sr_course.grading.grader import grade
from sr_course.grading.kit import EDITABLE, KIT_ROOT, ReleaseError, stubbed
from sr_course.grading.release import find_leaks, solution_regions

SEED = 97531
NO_TANH = ('kernel_size, activation="tanh")', "kernel_size, activation=None)")


def _files(folder: Path, texts: dict[str, str]) -> Path:
    for rel, text in texts.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def _reference(**edits) -> dict[str, str]:
    texts = {rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE}
    for rel, (old, new) in edits.items():
        assert old in texts[rel]
        texts[rel] = texts[rel].replace(old, new, 1)
    return texts


@pytest.fixture(scope="module")
def bug_report(tmp_path_factory):
    """A real report: the reference with SRResNet's Tanh left out, TODOs graded in the sandbox."""
    if not isolation.available():
        pytest.skip("no sandbox works here")
    sub = _files(tmp_path_factory.mktemp("bug"), _reference(**{"sr_course/models.py": NO_TANH}))
    return grade(sub, notebooks=False, verbose=False, seed=SEED)


def test_gradescope_results_of_a_graded_bug(bug_report):
    data = formats.gradescope(bug_report)
    formats.validate("gradescope", data)
    assert data["score"] == len(TODOS) - 1 == sum(t["score"] for t in data["tests"])
    assert data["stdout_visibility"] == "hidden"
    tests = {t["name"]: t for t in data["tests"]}
    assert list(tests) == [*TODOS, "instructor review: flags"]
    srresnet = tests["SRResNet"]
    assert srresnet["score"] < srresnet["max_score"] == 1.0
    assert "leaves [-1, 1]" in srresnet["output"]
    assert srresnet["output"].endswith(
        "to see it yourself: run check_srresnet() from sr_course.checks "
        "(the self-check cell of train_srresnet.ipynb)"
    )
    assert (
        tests["pixel_mse"]["output"]
        == f"all {bug_report['todos']['pixel_mse']['total']} checks passed"
    )
    assert tests["instructor review: flags"]["visibility"] == "hidden"
    assert all(t["visibility"] == "visible" for n, t in tests.items() if n in TODOS)
    print(json.dumps(data, indent=1))  # the note's example


def test_flags_reach_only_the_instructor(bug_report):
    report = {**bug_report, "flags": ["SRResNet: blocked open /secret for reading"]}
    data = formats.gradescope(report)
    visible = json.dumps([t for t in data["tests"] if t["visibility"] != "hidden"])
    assert "/secret" not in visible and "/secret" not in data["output"]
    hidden = next(t for t in data["tests"] if t["visibility"] == "hidden")
    assert "flag: SRResNet: blocked open /secret for reading" in hidden["output"]
    pl = formats.prairielearn(report)
    assert "/secret" not in json.dumps(pl)
    for page in (feedback_markdown(report), feedback_html(report)):
        assert "/secret" not in page and str(SEED) not in page


def test_prairielearn_results_of_a_graded_bug(bug_report):
    data = formats.prairielearn(bug_report)
    formats.validate("prairielearn", data)
    assert data["gradable"] is True
    assert data["score"] == pytest.approx((len(TODOS) - 1) / len(TODOS), abs=1e-4)
    assert [t["name"] for t in data["tests"]] == list(TODOS)
    assert {t["name"]: t["points"] for t in data["tests"]}["SRResNet"] == 0.0


def test_schema_names_the_field_that_breaks_it(bug_report):
    data = formats.gradescope(bug_report)
    data["tests"][0]["score"] = "1"
    with pytest.raises(ValueError) as err:
        formats.validate("gradescope", data)
    assert str(err.value) == "gradescope results.json: tests/0/score: '1' is not of type 'number'"
    with pytest.raises(ValueError, match="score: 9 is greater than the maximum of 1"):
        formats.validate("prairielearn", {"gradable": True, "score": 9})


def test_feedback_page_says_what_to_fix_and_nothing_hidden(bug_report):
    md = feedback_markdown(bug_report)
    assert md.startswith(f"# sr_course: feedback for {Path(bug_report['submission']).name}\n")
    assert f"**{len(TODOS) - 1:g} of {len(TODOS):g} points**" in md
    assert "## SRResNet: 0 / 1" in md and "run check_srresnet()" in md
    page = feedback_html(bug_report)
    assert "<h2>SRResNet: 0 / 1</h2>" in page and "leaves [-1, 1]" in page
    for secret in ("seed", "isolation", "bwrap", "flag"):
        assert secret not in md.lower() and secret not in page.lower()


# --- LMS ---------------------------------------------------------------------------------------


def _report(name: str, total: float | None) -> dict:
    if total is None:
        return {"submission": f"/class/{name}", "error": "RuntimeError: broken"}
    return {"submission": f"/class/{name}", "points": {"total": total, "max": 12.0}}


CANVAS_EXPORT = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (101)
    Points Possible,,,,,10
"Lovelace, Ada",1001,S1001,ada,CS-A,9
"Hopper, Grace",1002,S1002,grace,CS-A,8
"Turing, Alan",1003,S1003,alan,CS-B,7
"""


def test_canvas_import_file_from_canvas_roster(tmp_path):
    (tmp_path / "roster.csv").write_text(CANVAS_EXPORT.replace("    ", ""))
    roster = lms.read_roster(tmp_path / "roster.csv")
    reports = [_report("ada", 12.0), _report("alan", None), _report("zed", 3.5)]
    text, matching = lms.export(reports, "canvas", "SRGAN (4x)", roster)
    assert text.splitlines() == [
        "Student,ID,SIS User ID,SIS Login ID,Section,SRGAN (4x)",
        "Points Possible,,,,,12.0",
        '"Lovelace, Ada",1001,S1001,ada,CS-A,12.0',
        '"Hopper, Grace",1002,S1002,grace,CS-A,',
        '"Turing, Alan",1003,S1003,alan,CS-B,',
        "zed,,,zed,,3.5",
    ]
    assert matching.key == "SIS Login ID"
    assert matching.lines() == [
        "submissions not in the roster: zed",
        "in the roster without a submission: grace",
    ]


def test_moodle_import_file_with_and_without_roster(tmp_path):
    (tmp_path / "participants.csv").write_text(
        "First name,Last name,Email address\nAda,Lovelace,ada@uni.edu\nGrace,Hopper,grace@uni.edu\n"
    )
    roster = lms.read_roster(tmp_path / "participants.csv")
    reports = [_report("ada@uni.edu", 11.0), _report("grace@uni.edu", 6.25)]
    text, matching = lms.export(reports, "moodle", "SRGAN", roster)
    assert text.splitlines() == ["Email address,SRGAN", "ada@uni.edu,11.0", "grace@uni.edu,6.25"]
    assert matching.lines() == []
    text, _ = lms.export(reports, "moodle", "SRGAN")
    assert text.splitlines()[0] == "Username,SRGAN"


def test_a_roster_that_names_nobody_is_refused_with_its_columns(tmp_path):
    (tmp_path / "r.csv").write_text("name,email\nAda,ada@uni.edu\n")
    with pytest.raises(ReleaseError) as err:
        lms.export([_report("s123", 1.0)], "canvas", "A", lms.read_roster(tmp_path / "r.csv"))
    assert (
        "no column holds the submission folder names (such as 's123'); columns: name, email"
        in str(err.value)
    )
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ReleaseError, match="has no rows under a header"):
        lms.read_roster(tmp_path / "empty.csv")


# --- similarity --------------------------------------------------------------------------------


def _fill(text: str, todo: str, what: str, code: str) -> str:
    """Replace the kit stub of `todo` whose message starts with `what` by `code` (indented)."""
    pattern = re.compile(
        rf"^( *)raise NotImplementedError\(\s*\"TODO: {re.escape(todo)}: {re.escape(what)}[^\n]*\n(?: *\)\n)?",
        re.M,
    )
    match = pattern.search(text)
    assert match, (todo, what)
    body = "".join(f"{match.group(1)}{line}\n" if line else "\n" for line in code.splitlines())
    return text[: match.start()] + body + text[match.end() :]


CAROL_BLOCK = """pad = (kernel_size - 1) // 2
seq = nn.Sequential()
seq.append(nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad))
if batch_norm:
    seq.append(nn.BatchNorm2d(out_channels))
kind = None if activation is None else activation.lower()
if kind == "prelu":
    seq.append(nn.PReLU())
elif kind == "leakyrelu":
    seq.append(nn.LeakyReLU(negative_slope=0.2))
elif kind == "tanh":
    seq.append(nn.Tanh())
self.block = seq"""
CAROL_SUBPIXEL = """r = scaling_factor
self.conv = nn.Conv2d(n_channels, n_channels * r * r, kernel_size, 1, (kernel_size - 1) // 2)
self.pixel_shuffle = nn.PixelShuffle(upscale_factor=r)
self.prelu = nn.PReLU(num_parameters=1)"""
CAROL_MSE = """d = sr - hr
return (d * d).sum() / d.numel()"""


def _carol() -> dict[str, str]:
    models = stubbed(KIT_ROOT, "sr_course/models.py")
    models = _fill(models, "ConvolutionalBlock", "build", CAROL_BLOCK)
    models = _fill(models, "SubPixelConvolutionalBlock", "build", CAROL_SUBPIXEL)
    models = _fill(
        models,
        "SubPixelConvolutionalBlock",
        "the forward",
        "y = self.conv(x)\ny = self.pixel_shuffle(y)\nreturn self.prelu(y)",
    )
    losses = _fill(stubbed(KIT_ROOT, "sr_course/losses.py"), "pixel_mse", "the pixel", CAROL_MSE)
    return {"sr_course/models.py": models, "sr_course/losses.py": losses,
            "sr_course/solver.py": stubbed(KIT_ROOT, "sr_course/solver.py")}  # fmt: skip


def _disguised(texts: dict[str, str]) -> dict[str, str]:
    """A copy as copiers disguise it: comments gone, names changed, blank lines moved."""
    out = {}
    for rel, text in texts.items():
        lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
        text = "\n\n".join(lines)
        for old, new in (
            ("layers", "mods"),
            ("seq", "stack"),
            ("features", "feats"),
            ("kind", "which"),
            ("d ", "delta "),
        ):
            text = re.sub(rf"\b{old.strip()}\b", new.strip(), text)
        out[rel] = text + "\n# my own work\n"
    return out  # fmt: skip


def test_similarity_finds_the_near_copies_and_not_honest_work(tmp_path):
    alice = {rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE}
    kit = {rel: stubbed(KIT_ROOT, rel) for rel in EDITABLE}
    cls = tmp_path / "class"
    for name, texts in {
        "alice": alice,
        "bob": _disguised(alice),  # alice's work, disguised
        "carol": _carol(),  # three TODOs of her own
        "dave": kit,  # nothing done yet
        "erin": _disguised(_carol()),  # carol's work, disguised
    }.items():
        _files(cls / name, texts)
    pairs = similarity.compare(sorted(cls.iterdir()))
    ranked = [(p.a, p.b) for p in pairs]
    assert ranked[:2] == [("alice", "bob"), ("carol", "erin")] or ranked[:2] == [
        ("carol", "erin"),
        ("alice", "bob"),
    ]
    by_pair = {(p.a, p.b): p for p in pairs}
    assert by_pair["alice", "bob"].similarity >= 0.9
    assert by_pair["carol", "erin"].similarity >= 0.9
    for honest in (("alice", "carol"), ("bob", "carol"), ("alice", "erin")):
        assert by_pair[honest].similarity <= 0.3, (honest, by_pair[honest].similarity)
    assert not any("dave" in pair for pair in ranked)  # the kit's stubs match nothing
    page = similarity.similarity_report(pairs, top=3)
    assert "| alice / bob | " in page and "sr_course" not in page.split("\n")[0]
    assert re.search(r"models\.py \d+:\d+", page)


# --- the Gradescope bundle ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    ["the whole kit", "its sr_course folder", "the three files", "a zip of the kit", "two files"],
)
def test_an_upload_of_any_shape_is_found_and_missing_files_named(tmp_path, shape):
    upload = tmp_path / "submission"
    texts = {rel: f"# {rel}\n" for rel in EDITABLE}
    if shape == "the whole kit":
        _files(upload / "my-kit", {**texts, "notebooks/x.py": "", "tests/models.py": "# not it\n"})
    elif shape == "its sr_course folder":
        _files(upload, texts)
    elif shape in ("the three files", "two files"):
        _files(upload, {Path(rel).name: t for rel, t in texts.items()})
        if shape == "two files":
            (upload / "solver.py").unlink()
    else:
        upload.mkdir()
        with zipfile.ZipFile(upload / "kit.zip", "w") as z:
            for rel, text in texts.items():
                z.writestr(f"kit/{rel}", text)
            z.writestr("../evil/models.py", "# outside")
    missing = gradescope.locate(upload, tmp_path / "work" / "sub")
    expected_missing = ["sr_course/solver.py"] if shape == "two files" else []
    assert missing == expected_missing
    for rel in EDITABLE:
        if rel not in expected_missing:
            assert (tmp_path / "work" / "sub" / rel).read_text() == f"# {rel}\n"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "work" / "evil").exists()


def test_bundle_holds_no_solution_and_a_leak_is_refused(tmp_path, monkeypatch):
    regions = solution_regions()
    assert {r.todo_id for r in regions} == set(TODOS)
    original = autograder._stage

    def leaky(where, root, seed):
        original(where, root, seed)
        line = next(r for r in regions if r.todo_id == "SubPixelConvolutionalBlock").lines[-2]
        (where / "kit" / "notes.md").write_text(f"hint: {line.strip()}\n")

    monkeypatch.setattr(autograder, "_stage", leaky)
    with pytest.raises(
        ReleaseError,
        match="would hold solution code:\n  notes.md: holds a line of the solution of TODO \\[SubPixel",
    ):
        autograder.build_bundle(tmp_path / "leaky.zip", verbose=False)
    assert not (tmp_path / "leaky.zip").exists() and not list(tmp_path.iterdir())


@pytest.mark.skipif(not isolation.available(), reason="no sandbox works here")
def test_bundle_built_and_rehearsed_like_gradescope(tmp_path, capsys):
    """The bundle's files, no solution line in any of them (the release's own leak check), and the
    rehearsal: run_autograder on the reference (full marks: every TODO, every notebook cell, no
    flag), the kit (0) and one bug."""
    bundle = tmp_path / "autograder.zip"
    files = autograder.build_bundle(bundle, verbose=False)
    for top in ("setup.sh", "run_autograder", "requirements.txt", "reference.pt"):
        assert top in files
    assert "kit/sr_course/grading/grader.py" in files and "kit/sr_course/models.py" in files
    assert {f.split("/")[1] for f in files if f.startswith("kit/")} == {
        "sr_course",
        "notebooks",
        "pyproject.toml",
    }
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(unpacked)
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
    assert find_leaks(unpacked / "kit", solution_regions(), autograder.STAND_INS_FILE) == []
    setup = (unpacked / "setup.sh").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup and "bubblewrap" in setup
    assert "jupyterlab" not in (unpacked / "requirements.txt").read_text()
    problems = autograder.rehearse(bundle)
    assert problems == []
    out = capsys.readouterr().out
    # The session's one grading of the reference with its notebooks (test_grader grades the TODOs).
    full = re.search(r"the reference \(the three files, flat\): 12 points in \d+ s \((.*)\)", out)
    assert full, out
    cells = re.fullmatch(
        r"all (\d+) cells ran as the reference's do; isolation: (\w+), .*", full[1]
    )
    assert cells and int(cells[1]) >= 30 and cells[2] != "none", full[1]
    assert full[1].endswith("no flags"), full[1]
    assert "the kit as released (the whole kit): 0 points" in out
    shutil.rmtree(unpacked)
