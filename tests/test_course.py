"""The course experience: self-checks catch broken code with a message a student understands; the
demo runs end to end and writes its results."""

import json
import subprocess
import sys

import pytest
import torch

from sr_course import checks, models
from sr_course.checks import CheckFailed


def test_checks_pass_on_the_reference(capsys):
    checks.run_all()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Blocks: OK",
        "SRResNet: OK (1,549,462 parameters)",
        "Discriminator: OK (23,565,505 parameters)",
        "TruncatedVGG19: OK (phi_5,4 keeps 36 layers)",
        "Losses: OK",
        "SRGAN step: OK",
        "imresize: OK (MATLAB bicubic)",
    ]


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
        checks.check_blocks()
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


def test_unfinished_todo_says_so(monkeypatch):
    def stub(*args, **kwargs):
        raise NotImplementedError("TODO: build the discriminator")

    monkeypatch.setattr(models.Discriminator, "__init__", stub)
    with pytest.raises(
        CheckFailed,
        match=r"Discriminator is not implemented yet \(TODO: build the discriminator\); fill in its TODO",
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


def test_demo_writes_results_json_and_grid(tmp_path):
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-m",
        "sr_course",
        "demo",
        "--out",
        str(out),
        "--data-root",
        str(tmp_path / "data"),
        "--iterations",
        "3",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    assert set(data) == {"sets", "seconds"} and data["seconds"] > 0
    assert set(data["sets"]) == {"Sample"}
    for method in ("bicubic", "srresnet", "srgan"):
        scores = data["sets"]["Sample"][method]
        assert set(scores) == {"psnr", "ssim"} and all(
            isinstance(v, float) for v in scores.values()
        )
    assert 20 < data["sets"]["Sample"]["bicubic"]["psnr"] < 40
    from PIL import Image

    assert min(Image.open(out / "grid.png").size) > 500
    assert "SRResNet" in result.stdout and "vs bicubic" in result.stdout
    # A second run reuses the trained models instead of training again.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already trained" in again.stdout


def test_checks_do_not_leave_grad_disabled():
    assert torch.is_grad_enabled()
