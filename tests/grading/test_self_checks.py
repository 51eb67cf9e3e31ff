"""The self-checks catch broken code with the sentence a student understands (instructor-only: the
broken versions below are pieces of the solution, so this file is left out of the student kit;
tests/grading/test_mutations.py runs the same sentences against many more mutants)."""

import subprocess
import sys
from pathlib import Path

import pytest

from sr_course import checks, models
from sr_course.checks import CheckFailed
from sr_course.course import TODOS


def test_srresnet_without_tanh_fails_its_check(monkeypatch):
    original = models.SRResNet.__init__

    def without_tanh(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.tail.block = self.tail.block[:-1]  # the final activation forgotten

    monkeypatch.setattr(models.SRResNet, "__init__", without_tanh)
    with pytest.raises(CheckFailed) as err:
        checks.check_srresnet()
    assert str(err.value) == f"SRResNet: {checks.MESSAGES['sr range']}"


def test_residual_block_without_skip_fails_its_check(monkeypatch):
    monkeypatch.setattr(models.ResidualBlock, "forward", lambda self, x: self.conv2(self.conv1(x)))
    with pytest.raises(CheckFailed) as err:
        checks.check_residual_block()
    assert str(err.value) == f"ResidualBlock: {checks.MESSAGES['residual skip']}"


def test_wrong_discriminator_size_fails_its_check(monkeypatch):
    original = models.Discriminator.__init__

    def smaller(self, kernel_size=3, n_channels=64, n_blocks=8, fc_size=1024):
        original(self, kernel_size, n_channels, n_blocks, fc_size=512)

    monkeypatch.setattr(models.Discriminator, "__init__", smaller)
    with pytest.raises(
        CheckFailed, match="Discriminator has 14,127,297 parameters, expected 23,565,505"
    ):
        checks.check_discriminator()


def test_gan_step_that_trains_d_in_the_g_step_is_caught(monkeypatch):
    from sr_course import solver

    monkeypatch.setattr(solver, "frozen", lambda module: _leave_frozen(module))
    with pytest.raises(
        CheckFailed, match=r"srgan_step failed: RuntimeError: .* means a network was left frozen"
    ):
        checks.check_srgan_step()


class _leave_frozen:
    def __init__(self, module):
        self.module = module

    def __enter__(self):
        for p in self.module.parameters():
            p.requires_grad_(False)

    def __exit__(self, *exc):
        return False


def test_vgg_truncation_index_values_and_a_miscount_fails_its_check(monkeypatch):
    """The TODO's answers (kept out of the kit: tests/test_models.py states only the worked
    example), and a count that stops at the convolution, before its ReLU."""
    assert models.vgg19_truncation_index(5, 4) == 36  # the paper's phi_(5,4)
    assert models.vgg19_truncation_index(2, 2) == 9
    assert models.vgg19_truncation_index(3, 1) == 12
    monkeypatch.setattr(
        models, "vgg19_truncation_index", lambda i, j: 35 if (i, j) == (5, 4) else 2
    )
    with pytest.raises(CheckFailed) as err:
        checks.check_vgg()
    assert str(err.value).startswith(
        "vgg19_truncation_index(2, 2) = 2: the first 2 layers of vgg19().features end at the ReLU "
        "after convolution 1, but phi_(2,2) ends at the ReLU after convolution 4"
    )


def _check_command(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sr_course", "check"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )


def _with(name: str, old: str, new: str) -> dict[str, str]:
    text = (Path(checks.__file__).parent / name).read_text()
    assert text.count(old) == 1, old
    return {name: text.replace(old, new)}


def test_check_never_crashes_and_names_the_todo_that_failed(tmp_path, package_copy):
    # The fault: with padding=0 in ConvolutionalBlock, `check` died in the SRResNet check with a raw
    # RuntimeError and the later checks never ran.
    package_copy(
        tmp_path / "a",
        _with("models.py", "stride=stride, padding=kernel_size // 2", "stride=stride, padding=0"),
    )
    run = _check_command(tmp_path / "a")
    assert run.returncode == 1 and run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [*TODOS, "imresize"]
    assert lines[0].startswith(
        "ConvolutionalBlock: not yet: ConvolutionalBlock(8, 16, 3, stride=2)"
    )
    assert lines[1] == "SubPixelConvolutionalBlock: OK"  # its own line, whatever the others do
    assert lines[3].startswith("SRResNet: not yet: your code raised RuntimeError: ")
    assert lines[4] == "pixel_mse: OK"
    assert lines[-1].endswith("; next: TODO ConvolutionalBlock (notebook train_srresnet.ipynb)")

    # The fault: with wrong adversarial losses, "next" named VGGContentLoss, which was done.
    package_copy(
        tmp_path / "b",
        _with(
            "losses.py",
            "F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
            "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))",
        ),
    )
    lines = _check_command(tmp_path / "b").stdout.splitlines()
    assert "VGGContentLoss: OK" in lines
    assert lines[-1] == (
        "10 of 11 self-checks pass; next: TODO adversarial losses (notebook train_srgan.ipynb)"
    )


def test_srresnet_check_covers_batch_norm_off(tmp_path, package_copy):
    # The fault: body_end kept its batch norm with batch_norm=False; check passed, the grader did not.
    package_copy(
        tmp_path,
        _with(
            "models.py",
            "n_channels, n_channels, small_kernel_size, batch_norm=batch_norm\n",
            "n_channels, n_channels, small_kernel_size, batch_norm=True\n",
        ),
    )
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sr_course import checks\ntry:\n    checks.check_srresnet()\nexcept checks.CheckFailed as err:\n    print(f'SRResNet: not yet: {err}')",
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )
    lines = ["", "", "", *run.stdout.splitlines()]
    assert lines[3] == (
        "SRResNet: not yet: SRResNet(batch_norm=False) has 1,545,366 parameters, expected 1,545,238: "
        "with batch_norm=False no conv block of the network has batch norm (body_end's neither)"
    )
