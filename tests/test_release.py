import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sr_course import release
from sr_course.release import (
    ReleaseError,
    build_release,
    commit_to_branch,
    find_regions,
)

TODOS = {
    "ConvolutionalBlock",
    "SubPixelConvolutionalBlock",
    "ResidualBlock",
    "SRResNet",
    "Discriminator",
    "TruncatedVGG19",
    "pixel_mse",
    "VGGContentLoss",
    "adversarial losses",
    "SRGAN step",
}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "# TODO [a]: x\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
            "f.py:3: nested '# BEGIN SOLUTION' (the region opened at line 2 is not closed)",
        ),
        (
            "# TODO [a]: x\n# BEGIN SOLUTION\ny = 1\n",
            "f.py:2: '# BEGIN SOLUTION' is never closed by '# END SOLUTION'",
        ),
        (
            "y = 1\n# END SOLUTION\n",
            "f.py:2: stray '# END SOLUTION' without a '# BEGIN SOLUTION' before it",
        ),
        (
            "y = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n",
            "f.py:2: the solution region has no '# TODO [<id>]: <what>' box above it",
        ),
        (
            "# TODO [a]: x\n# BEGIN SOLUTION\ny = 2  # END SOLUTION\n",
            "f.py:3: a solution marker must stand alone on its line",
        ),
    ],
)
def test_bad_markers_name_file_and_line(text, message):
    with pytest.raises(ReleaseError) as err:
        find_regions(text, "f.py")
    assert str(err.value) == message


def test_stub_keeps_indentation_and_names_the_todo():
    text = "def f(x):\n    # TODO [double]: return twice x.\n    #   Shapes: any.\n    # BEGIN SOLUTION\n    y = 2 * x\n    return y\n    # END SOLUTION\n"
    stripped, regions = release.strip_solutions(text, "f.py")
    assert (
        stripped
        == 'def f(x):\n    # TODO [double]: return twice x.\n    #   Shapes: any.\n    raise NotImplementedError("TODO: double: return twice x.")\n'
    )
    assert regions[0].todo_id == "double" and regions[0].lines == ("    y = 2 * x", "    return y")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "kit"
    regions = build_release(out, verbose=False)
    return out, regions


def test_kit_has_no_solution_and_imports(kit):
    out, regions = kit
    assert {r.todo_id for r in regions} == TODOS
    for path in out.rglob("*.py"):
        assert not any(
            line.strip() in (release.BEGIN, release.END) for line in path.read_text().splitlines()
        ), path
    for path in out.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert not any("BEGIN SOLUTION" in c.source for c in nb.cells if c.cell_type == "code"), (
            path
        )
    for rel in release.INSTRUCTOR_ONLY:
        assert not (out / rel).exists()
    probe = subprocess.run(
        [sys.executable, "-c", "import sr_course.models as m; print(m.__file__)"],
        cwd=out,
        env=release._isolated_env(out),
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0 and Path(probe.stdout.strip()).is_relative_to(out)
    for nb_path in (out / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        assert all(
            not c.get("outputs") and c.get("execution_count") is None
            for c in nb.cells
            if c.cell_type == "code"
        )


def test_release_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(ReleaseError, match="exists and is not empty; choose a new folder"):
        build_release(tmp_path, check=False, verbose=False)
    assert (tmp_path / "x").read_text() == "keep me"


def test_kit_committed_to_a_branch_without_touching_the_work_tree(kit, tmp_path):
    out, _ = kit
    repo = tmp_path / "repo"
    repo.mkdir()
    git = [
        "git",
        "-C",
        str(repo),
        "-c",
        "user.name=Instructor",
        "-c",
        "user.email=instructor@example.org",
    ]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "solution.txt").write_text("reference")
    subprocess.run([*git, "add", "solution.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "reference"], check=True)
    env_id = {
        "GIT_AUTHOR_NAME": "Instructor",
        "GIT_AUTHOR_EMAIL": "i@example.org",
        "GIT_COMMITTER_NAME": "Instructor",
        "GIT_COMMITTER_EMAIL": "i@example.org",
    }
    import os

    os.environ.update(env_id)
    try:
        commit = commit_to_branch(out, "student", root=repo)
    finally:
        for k in env_id:
            os.environ.pop(k, None)
    files = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", "student"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "sr_course/models.py" in files and "sr_course/release.py" not in files
    models = subprocess.run(
        [*git, "show", "student:sr_course/models.py"], capture_output=True, text=True, check=True
    ).stdout
    assert 'NotImplementedError("TODO: SRResNet:' in models
    assert (
        subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""
    )
    assert len(commit) == 40


def test_kit_passes_its_own_lint_and_format_check(kit):
    out, _ = kit
    for args in (["check", "."], ["format", "--check", "."]):
        run = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=out, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_kit_demo_names_the_todo_to_do_first_in_one_sentence(kit, tmp_path):
    out, _ = kit
    run = subprocess.run(
        [sys.executable, "-m", "sr_course", "demo", "--out", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=release._isolated_env(out),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: this command needs SRResNet, which is not implemented yet; 10 TODO(s) are still open, "
        "in course order ConvolutionalBlock, SubPixelConvolutionalBlock, ResidualBlock, SRResNet, "
        "Discriminator, TruncatedVGG19, pixel_mse, VGGContentLoss, adversarial losses, SRGAN step: "
        "start with ConvolutionalBlock in sr_course/models.py (its TODO box says what to build; "
        "python -m sr_course check tells when it is right)"
    ]


def test_kit_readme_is_the_students(kit):
    out, _ = kit
    readme = (out / "README.md").read_text()
    assert readme == (release.KIT_ROOT / release.STUDENT_README).read_text()
    assert readme.startswith("# sr_course: 4x super-resolution with SRResNet and SRGAN")
    for instructor_word in (
        "reference solution",
        "release",
        "grade SUB",
        "probes",
        "BEGIN SOLUTION",
    ):
        assert instructor_word not in readme
    assert not (out / "docs" / "student_README.md").exists()
