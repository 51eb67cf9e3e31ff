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
    for name, *_ in checks.COURSE:  # each raises its CheckFailed; run_all only prints them
        getattr(checks, name)()
    capsys.readouterr()
    assert checks.run_all() == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "ConvolutionalBlock: OK",
        "SubPixelConvolutionalBlock: OK",
        "ResidualBlock: OK",
        "SRResNet: OK (1,549,462 parameters)",
        "pixel_mse: OK",
        "Discriminator: OK (23,565,505 parameters)",
        "TruncatedVGG19: OK",
        "VGGContentLoss: OK",
        "adversarial losses: OK",
        "SRGAN step: OK",
        "imresize: OK (MATLAB bicubic)",
        "11 of 11 self-checks pass",
    ]


def test_unfinished_todo_says_so(monkeypatch):
    def stub(*args, **kwargs):
        raise NotImplementedError("TODO: build the discriminator")

    monkeypatch.setattr(models.Discriminator, "__init__", stub)
    with pytest.raises(
        CheckFailed,
        match=r"Discriminator is not implemented yet \(TODO: build the discriminator\); fill in its TODO",
    ):
        checks.check_discriminator()


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
        assert set(scores) == {"psnr", "ssim", "lpips"} and all(
            isinstance(v, float) for v in scores.values()
        )
    assert 20 < data["sets"]["Sample"]["bicubic"]["psnr"] < 40
    from PIL import Image

    assert min(Image.open(out / "grid.png").size) > 500
    assert "SRResNet" in result.stdout and "vs bicubic" in result.stdout
    # laid out like a profile's runs folder: the runs record their test scores, the outputs for
    # human evaluation are kept, and the report is written
    for stage in ("srresnet", "srgan"):
        record = json.loads((out / stage / "run.json").read_text())
        assert record["test"]["last.pt"]["Sample"]["psnr"] == pytest.approx(
            data["sets"]["Sample"][stage]["psnr"]
        )
    assert json.loads((out / "test" / "results.json").read_text())["table"]["srgan"]["Sample"][
        "psnr"
    ] == pytest.approx(data["sets"]["Sample"]["srgan"]["psnr"])
    assert len(list((out / "outputs").glob("*/Sample/*.png"))) == 3 * 4
    report = (out / "report" / "report.md").read_text()
    assert "## SRResNet: the best run" in report and "## Missing" not in report
    # A second run reuses the trained models instead of training again.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already trained" in again.stdout
    assert "results, figures and report are up to date" in again.stdout
    assert json.loads((out / "results.json").read_text()) == data


@pytest.mark.demo
def test_the_demo_srgan_draws_texture_without_a_cast_or_a_frame(tmp_path):
    """The README's main command in full (demo profile; about 4 minutes on 2 cores, so it runs with
    `pytest -m demo`): its SRGAN keeps the gray photographs gray (each channel's mean within 1 gray
    level of the others' and the HR's), adds no frame along the borders, scores LPIPS at or below
    SRResNet's (the offline random AlexNet backbone: a pipeline check, not LPIPS) and draws more
    texture than SRResNet."""
    from sr_course.evaluation.artefacts import look

    out, data = tmp_path / "demo", tmp_path / "data"
    cmd = [sys.executable, "-m", "sr_course", "demo", "--out", str(out), "--data-root", str(data)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads((out / "results.json").read_text())["sets"]["Sample"]
    hr_dir = data / "sample" / "Sample" / "HR"
    srresnet, srgan = (look(out / "outputs" / m / "Sample", hr_dir) for m in ("srresnet", "srgan"))
    assert srgan["gray_cast"] <= 1.0, srgan
    assert srgan["border_ratio"] <= srresnet["border_ratio"] + 0.05, (srgan, srresnet)
    assert scores["srgan"]["lpips"] <= scores["srresnet"]["lpips"], scores
    assert srgan["texture"] > srresnet["texture"], (srgan, srresnet)


def test_checks_do_not_leave_grad_disabled():
    assert torch.is_grad_enabled()


def test_a_student_file_that_does_not_compile_fails_only_its_own_checks(tmp_path, package_copy):
    """The notebooks' setup cell and the other files' self-checks run while models.py is broken."""
    package_copy(tmp_path, {"models.py": "class SRResNet(:\n"})
    script = (
        "from sr_course import checks\n"
        "from sr_course.notebook import setup\n"
        "setup('smoke')\n"
        "checks.check_pixel_loss()\n"
        "try:\n"
        "    checks.check_conv_block()\n"
        "except SyntaxError as err:\n"
        "    print('blocks:', type(err).__name__, err.filename.endswith('models.py'))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "sr_course: sr_course   (the kit beside this notebook)"
    assert lines[1].startswith("profile  : smoke")
    assert lines[-2:] == ["pixel_mse: OK", "blocks: SyntaxError True"]
