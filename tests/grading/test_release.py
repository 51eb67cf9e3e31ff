import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sr_course import course
from sr_course.cli import build_parser, main
from sr_course.errors import UserError
from sr_course.grading import kit as kit_files
from sr_course.grading import release
from sr_course.grading.isolation import IsolationError
from sr_course.grading.kit import ReleaseError, find_regions
from sr_course.grading.release import build_release, commit_to_branch

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
    stripped, regions = kit_files.strip_solutions(text, "f.py")
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
            line.strip() in (kit_files.BEGIN, kit_files.END)
            for line in path.read_text().splitlines()
        ), path
    for path in out.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert not any("BEGIN SOLUTION" in c.source for c in nb.cells if c.cell_type == "code"), (
            path
        )
    for rel in kit_files.INSTRUCTOR_ONLY:
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


def test_release_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(ReleaseError, match="exists and is not empty; choose a new folder"):
        build_release(tmp_path, check=False, verbose=False)
    assert (tmp_path / "x").read_text() == "keep me"
    # On the command line: the one sentence, as every expected failure (sr_course/errors.py).
    assert issubclass(ReleaseError, UserError) and issubclass(IsolationError, UserError)
    assert main(["release", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "choose a new folder" in err


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
    assert "sr_course/models.py" in files and "sr_course/grading/release.py" not in files
    models = subprocess.run(
        [*git, "show", "student:sr_course/models.py"], capture_output=True, text=True, check=True
    ).stdout
    assert '"TODO: SRResNet: ' in models and "raise NotImplementedError(" in models
    assert (
        subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""
    )
    assert len(commit) == 40


def _kit_command(kit_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m sr_course ARGS` as the released kit runs it (its own package, not this one)."""
    return subprocess.run(
        [sys.executable, "-m", "sr_course", *args],
        cwd=cwd,
        env=release._isolated_env(kit_dir),
        capture_output=True,
        text=True,
    )


def test_kit_passes_its_own_lint_and_format_check(kit):
    out, _ = kit
    for args in (["check", "."], ["format", "--check", "."]):
        run = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=out, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_kit_demo_names_the_todo_to_do_first_in_one_sentence(kit, tmp_path):
    run = _kit_command(kit[0], tmp_path, "demo", "--out", str(tmp_path / "demo"))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: this command needs SRResNet, which is not implemented yet; 10 TODO(s) are still open, "
        "in course order ConvolutionalBlock, SubPixelConvolutionalBlock, ResidualBlock, SRResNet, "
        "pixel_mse, Discriminator, TruncatedVGG19, VGGContentLoss, adversarial losses, SRGAN step: "
        "start with ConvolutionalBlock in sr_course/models.py (its TODO box says what to build; "
        "python -m sr_course check tells when it is right)"
    ]


def test_kit_readme_is_the_students(kit):
    out, _ = kit
    readme = (out / "README.md").read_text()
    assert readme == (kit_files.KIT_ROOT / kit_files.STUDENT_README).read_text()
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


def _reference_regions() -> list:
    return [
        r
        for rel in kit_files.EDITABLE
        for r in find_regions((kit_files.KIT_ROOT / rel).read_text(), rel)
    ]


def test_release_check_finds_a_todos_job_done_elsewhere_under_other_names(tmp_path):
    """The kit's self-check finds solution code with other names in any file: a module, a
    notebook cell, a document's code block (the old kit's gan_variant_step and RaGAN losses)."""
    trainer = (
        "def variant_step(self, low, high):\n"
        "    with self.autocast():\n"
        "        loss_d = self.adversarial.discriminator_loss(self.D, high, fake.detach())\n"
        "    optimizer_step(loss_d, self.opt_d, self.scaler_d)\n"
    )
    cell = "def g_loss(z):\n    return F.binary_cross_entropy_with_logits(z, torch.ones_like(z))\n"
    doc = "Notes\n\n```python\nlayer = nn.Conv2d(a, b, size, stride=step, padding=size // 2)\n```\n"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%matplotlib inline\n" + cell)])
    texts = {
        "sr_course/trainer.py": trainer,
        "notebooks/extra.ipynb": nbformat.writes(nb),
        "docs/notes.md": doc,
    }
    problems = release.same_job_leaks(tmp_path, _reference_regions(), texts)
    assert [p.split(": the same code")[0] for p in problems] == [
        "sr_course/trainer.py:3: does the job of TODO [SRGAN step]",
        "sr_course/trainer.py:4: does the job of TODO [SRGAN step]",
        "notebooks/extra.ipynb#cell1:3: does the job of TODO [adversarial losses]",
        "docs/notes.md:4: does the job of TODO [ConvolutionalBlock]",
    ]
    assert "(sr_course/solver.py:" in problems[0] and "(sr_course/losses.py:" in problems[2]


def test_release_check_finds_the_vgg_answer_stated_anywhere(tmp_path):
    """The TruncatedVGG19 TODO's answer is a number: a phi_(i,j) layer count stated next to VGG19's
    layers is refused (the box's worked example, phi_(1,1) = 2, and other numbers are not)."""
    test = (
        "def test_vgg():\n"
        "    assert vgg19_truncation_index(5, 4) == 36\n"
        "    assert vgg19_truncation_index(1, 1) == 2\n"
        "    assert len(d.features) == 8 and trainer.total_iterations == 36\n"
    )
    cell = "expected = reference.features[:36](x)\nfirst = reference.features[:2](x)\n"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    doc = "```python\nassert len(vgg.features) == 9\n```\n"
    texts = {"tests/t.py": test, "notebooks/n.ipynb": nbformat.writes(nb), "docs/d.md": doc}
    assert release.stated_answers(tmp_path, texts) == [
        "tests/t.py:2: states the answer of TODO [TruncatedVGG19] (a phi_(i,j) layer count, 36): "
        "vgg19_truncation_index(5, 4) == 36",
        "notebooks/n.ipynb#cell1:1: states the answer of TODO [TruncatedVGG19] (a phi_(i,j) layer "
        "count, 36): reference.features[:36]",
        "docs/d.md:2: states the answer of TODO [TruncatedVGG19] (a phi_(i,j) layer count, 9): "
        "len(vgg.features) == 9",
    ]


def test_release_check_lets_provided_code_and_small_common_lines_be(tmp_path):
    """Code the kit gives students (srresnet_step's `with t.autocast(): sr = t.G(lr)`, a lone
    nn.PixelShuffle in another architecture, a long skip under other layer names) is not a leak."""
    texts = {
        "sr_course/solver.py": (kit_files.KIT_ROOT / "sr_course/solver.py").read_text(),
        "sr_course/components/archs.py": (
            kit_files.KIT_ROOT / "sr_course/components/archs.py"
        ).read_text(),
    }
    texts["sr_course/solver.py"] = kit_files.strip_solutions(
        texts["sr_course/solver.py"], "sr_course/solver.py"
    )[0]
    assert release.same_job_leaks(tmp_path, _reference_regions(), texts) == []


def test_kit_check_command_lists_every_self_check_without_a_traceback(kit, tmp_path):
    run = _kit_command(kit[0], tmp_path, "check")
    assert run.returncode == 1 and run.stderr == ""
    lines = run.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [*course.TODOS, "imresize"]
    assert lines[0].startswith(
        "ConvolutionalBlock: not yet: ConvolutionalBlock is not implemented yet (TODO: "
        "ConvolutionalBlock: "
    )
    assert lines[1].startswith("SubPixelConvolutionalBlock: not yet: SubPixelConvolutionalBlock is")
    assert lines[-2] == "imresize: OK (MATLAB bicubic)"
    assert lines[-1] == (
        "1 of 11 self-checks pass; next: TODO ConvolutionalBlock (notebook train_srresnet.ipynb)"
    )


def _commands(help_text: str) -> list[str]:
    """The command names that `python -m sr_course --help` lists."""
    block = help_text.split("  <command>\n", 1)[1].split("\noptions:")[0]
    return [
        line.split()[0] for line in block.splitlines() if line.startswith("    ") and line[4] != " "
    ]


def test_kit_help_lists_only_the_students_commands(kit, tmp_path):
    kit_help = _kit_command(kit[0], tmp_path, "--help").stdout
    reference_help = build_parser().format_help()
    instructors = ["release", "grade", "autograder"]
    assert _commands(reference_help)[-3:] == instructors
    assert _commands(kit_help) == _commands(reference_help)[:-3]
    assert "instructors" not in kit_help


def test_kit_passes_its_own_test_suite_as_released(kit):
    """The kit's README test command on the kit as released: green, every test that needs an
    unfinished TODO skipped with the TODO's name, everything else (imresize, data, metrics, faults,
    downloads) run for real. About a minute on 2 cores."""
    out, _ = kit
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=out,
        env=release._isolated_env(out),
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "failed" not in summary and "error" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 150, (
        summary
    )  # the infrastructure's tests
    for reason in (
        "notebooks/train_srresnet.ipynb:0: needs TODO [ConvolutionalBlock], not implemented yet",
        "notebooks/train_srgan.ipynb:0: needs TODO [Discriminator], not implemented yet",
        "an earlier cell of this notebook needs TODO [ConvolutionalBlock]",
        "tests/train/test_training.py:0: needs TODO [SRResNet], not implemented yet",
        "tests/test_models.py:0: needs TODO [TruncatedVGG19], not implemented yet",
    ):
        assert reason in run.stdout, reason


def test_reference_test_run_does_not_skip_for_unfinished_todos():
    """The skip for unfinished TODOs is the kit's alone: in the reference a stub's error fails."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "root_conftest", kit_files.KIT_ROOT / "conftest.py"
    )
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    assert conftest.STUDENT_KIT is False
    assert conftest._unfinished_todo("NotImplementedError: TODO: SRResNet: build it") == "SRResNet"
    assert conftest._unfinished_todo("needs pixel_mse, which is not implemented yet") == "pixel_mse"
    assert conftest._unfinished_todo("TODO: something else: x") is None
