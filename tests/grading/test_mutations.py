"""The grader's mutation suite: realistic student bugs, injected one at a time into the reference.

Each bug must lose points on its own TODO (and on no other TODO of its file: the TODOs it builds on
run as the probes' stand-ins), and the first failure
must be one plain sentence that says what is wrong: no assert text, no traceback, no colour codes.
The table in MUTANTS is the suite; `python -m pytest tests/grading/test_mutations.py -q -rA` prints it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sr_course.checks import MESSAGES
from sr_course.course import TODOS
from sr_course.grading.kit import EDITABLE, KIT_ROOT, find_regions
from sr_course.grading.todos import grade_todos

# (name, TODO, file, reference text, buggy text, words the first failure must contain)
MUTANTS = [
    # ConvolutionalBlock
    ("no padding", "ConvolutionalBlock", "models", "stride=stride, padding=kernel_size // 2", "stride=stride, padding=0", "wrong shape"),
    ("padding fixed to 1", "ConvolutionalBlock", "models", "stride=stride, padding=kernel_size // 2", "stride=stride, padding=1", "wrong shape"),
    ("LeakyReLU slope 0.01", "ConvolutionalBlock", "models", '"leakyrelu": lambda: nn.LeakyReLU(0.2)', '"leakyrelu": lambda: nn.LeakyReLU()', "slope 0.2"),
    ("ReLU for PReLU", "ConvolutionalBlock", "models", '{"prelu": nn.PReLU,', '{"prelu": nn.ReLU,', "missing block.2.weight"),
    ("batch norm always on", "ConvolutionalBlock", "models", "        if batch_norm:\n            layers.append", "        if True:\n            layers.append", "unexpected block.1.weight"),
    ("activation name not lower-cased", "ConvolutionalBlock", "models", "activation.lower()\n                ]()", "activation\n                ]()", "raised KeyError"),
    ("conv without bias", "ConvolutionalBlock", "models", "stride=stride, padding=kernel_size // 2", "stride=stride, padding=kernel_size // 2, bias=False", "missing block.0.bias"),
    # SubPixelConvolutionalBlock
    ("reshape instead of pixel shuffle", "SubPixelConvolutionalBlock", "models", "return self.prelu(self.pixel_shuffle(self.conv(x)))", "y = self.conv(x)\n        return self.prelu(y.reshape(y.shape[0], -1, x.shape[2] * self.pixel_shuffle.upscale_factor, x.shape[3] * self.pixel_shuffle.upscale_factor))", "pixel shuffle"),
    ("conv widens by r, not r^2", "SubPixelConvolutionalBlock", "models", "n_channels, n_channels * scaling_factor**2, kernel_size", "n_channels, n_channels * scaling_factor, kernel_size", "conv.weight has shape"),
    ("one PReLU slope per channel", "SubPixelConvolutionalBlock", "models", "        self.prelu = nn.PReLU()\n", "        self.prelu = nn.PReLU(n_channels)\n", "prelu.weight has shape"),
    # ResidualBlock
    ("no skip connection", "ResidualBlock", "models", "return x + self.conv2(self.conv1(x))", "return self.conv2(self.conv1(x))", "identity skip"),
    ("PReLU after the second conv", "ResidualBlock", "models", "n_channels, n_channels, kernel_size, batch_norm=batch_norm, activation=None", "n_channels, n_channels, kernel_size, batch_norm=batch_norm, activation='prelu'", "unexpected conv2.block.2.weight"),
    ("batch_norm argument ignored", "ResidualBlock", "models", 'n_channels, n_channels, kernel_size, batch_norm=batch_norm, activation="prelu"', 'n_channels, n_channels, kernel_size, batch_norm=True, activation="prelu"', "unexpected conv1.block.1.bias"),
    # SRResNet
    ("no long skip", "SRResNet", "models", "features = features + self.body_end(self.body(features))", "features = self.body_end(self.body(features))", "long skip"),
    ("long skip before body_end", "SRResNet", "models", "features = features + self.body_end(self.body(features))", "features = self.body_end(features + self.body(features))", "long skip"),
    ("no Tanh at the output", "SRResNet", "models", 'ConvolutionalBlock(n_channels, 3, large_kernel_size, activation="tanh")', "ConvolutionalBlock(n_channels, 3, large_kernel_size, activation=None)", "leaves [-1, 1]"),
    ("one x4 sub-pixel block", "SRResNet", "models", "SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2)\n                for _ in range(n_upscale)", "SubPixelConvolutionalBlock(small_kernel_size, n_channels, scaling_factor)\n                for _ in range(1)", "missing upscale.1.conv.weight"),
    ("no PReLU in the head", "SRResNet", "models", 'ConvolutionalBlock(3, n_channels, large_kernel_size, activation="prelu")', "ConvolutionalBlock(3, n_channels, large_kernel_size)", "missing head.block.1.weight"),
    # Discriminator
    ("strides on the even blocks", "Discriminator", "models", "stride=1 if i % 2 == 0 else 2", "stride=2 if i % 2 == 0 else 1", "stride 2"),
    ("sigmoid at the output", "Discriminator", "models", "return self.fc2(self.leaky_relu(self.fc1(torch.flatten(x, 1))))", "return torch.sigmoid(self.fc2(self.leaky_relu(self.fc1(torch.flatten(x, 1)))))", "instead of a logit"),
    ("batch norm in the first block", "Discriminator", "models", "batch_norm=batch_norm and i > 0", "batch_norm=batch_norm", "unexpected features.0.block.1.weight"),
    ("channels double one block early", "Discriminator", "models", "n_channels * 2 ** (i // 2)", "n_channels * 2 ** ((i + 1) // 2)", "has shape"),
    ("no LeakyReLU between the dense layers", "Discriminator", "models", "return self.fc2(self.leaky_relu(self.fc1(torch.flatten(x, 1))))", "return self.fc2(self.fc1(torch.flatten(x, 1)))", "output differs"),
    ("max pooling for average pooling", "Discriminator", "models", "nn.AdaptiveAvgPool2d((6, 6))", "nn.AdaptiveMaxPool2d((6, 6))", "output differs"),
    # TruncatedVGG19
    ("max-pool layers not counted", "TruncatedVGG19", "models", "2 * VGG19_BLOCKS[b] + 1", "2 * VGG19_BLOCKS[b]", "end at convolution 3 itself, before its activation, but phi_(2,1) ends at the ReLU after convolution 3"),
    ("stops before the ReLU", "TruncatedVGG19", "models", "return layers_before_block + 2 * j", "return layers_before_block + 2 * j - 1", "end at convolution 1 itself, before its activation, but phi_(1,1) ends at the ReLU after convolution 1"),
    # pixel_mse
    ("sum instead of mean", "pixel_mse", "losses", "return F.mse_loss(sr, hr)", 'return F.mse_loss(sr, hr, reduction="sum")', "mean of the squared differences"),
    ("L1 instead of MSE", "pixel_mse", "losses", "return F.mse_loss(sr, hr)", "return F.l1_loss(sr, hr)", "mean of the squared differences"),
    ("RMSE instead of MSE", "pixel_mse", "losses", "return F.mse_loss(sr, hr)", "return torch.sqrt(F.mse_loss(sr, hr))", "mean of the squared differences"),
    # VGGContentLoss
    ("rescales the loss, not the features", "VGGContentLoss", "losses", "return F.mse_loss(self.vgg(sr) * self.rescale, target)", "return F.mse_loss(self.vgg(sr), target / self.rescale) * self.rescale", "each multiplied by rescale"),
    ("HR features with gradients", "VGGContentLoss", "losses", "        with torch.no_grad():\n            target = self.vgg(hr) * self.rescale", "        target = self.vgg(hr) * self.rescale", "gradients into the HR image"),
    ("no rescaling", "VGGContentLoss", "losses", "return F.mse_loss(self.vgg(sr) * self.rescale, target)", "return F.mse_loss(self.vgg(sr), target / self.rescale)", "each multiplied by rescale"),
    # adversarial losses
    ("generator target 'fake'", "adversarial losses", "losses", "F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))", "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))", "label 'fake'"),
    ("-log(sigmoid(x)), unstable", "adversarial losses", "losses", "return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))", "return -torch.log(torch.sigmoid(fake_logits)).mean()", "stably"),
    ("smoothing on the fake labels", "adversarial losses", "losses", "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))\n    return real + fake", "F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, label_smoothing))\n    return real + fake", "against 0"),
    ("label smoothing ignored", "adversarial losses", "losses", "torch.full_like(real_logits, 1.0 - label_smoothing)", "torch.full_like(real_logits, 1.0)", "1 - label_smoothing"),
    ("average instead of sum of the two terms", "adversarial losses", "losses", "    return real + fake\n", "    return (real + fake) / 2\n", "plus that of the fake"),
    # SRGAN step
    ("fake not detached for D", "SRGAN step", "solver", "discriminator_loss(t.D, hr, sr.detach())", "discriminator_loss(t.D, hr, sr)", "detached"),
    ("adv_weight hard-coded", "SRGAN step", "solver", "g_loss = content + s.adv_weight * adversarial", "g_loss = content + 1e-3 * adversarial", "content + adv_weight * adversarial"),
    ("D not frozen in the G update", "SRGAN step", "solver", "with frozen(t.D_raw), t.autocast():", "with t.autocast():", "reaches the discriminator"),
    ("critic's hook skipped", "SRGAN step", "solver", "    t.adversarial.after_discriminator_step(t.D_raw)\n", "", "hook"),
    ("critic's hook before D's update", "SRGAN step", "solver", "    optimizer_step(d_loss, t.opt_d, t.scaler_d)\n    t.adversarial.after_discriminator_step(t.D_raw)\n", "    t.adversarial.after_discriminator_step(t.D_raw)\n    optimizer_step(d_loss, t.opt_d, t.scaler_d)\n", "hook"),
    ("real and fake swapped for D", "SRGAN step", "solver", "discriminator_loss(t.D, hr, sr.detach())", "discriminator_loss(t.D, sr.detach(), hr)", "as real"),
    ("losses returned with their graphs", "SRGAN step", "solver", 'out = {"content": content.detach(), "adversarial": adversarial.detach()}', 'out = {"content": content, "adversarial": adversarial}', "detached"),
    ("G updated without update_generator", "SRGAN step", "solver", "    out = {}\n    if update_generator:\n", "    out = {}\n    if True:\n", "without the generator update"),
    ("G loss leaks into D's update", "SRGAN step", "solver", "    optimizer_step(d_loss, t.opt_d, t.scaler_d)\n    t.adversarial", "    d_loss.backward()\n    t.opt_d.step()\n    t.adversarial", "update D with one step"),
]  # fmt: skip


def _files_with(file: str, old: str, new: str) -> dict[str, str]:
    """The reference's student files with `old` replaced by `new` inside a solution region."""
    files = {rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE}
    rel, text = f"sr_course/{file}.py", files[f"sr_course/{file}.py"]
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    spans = [(line_starts[r.begin], line_starts[r.end - 1]) for r in find_regions(text, rel)]
    starts = [i for i in range(len(text)) if text.startswith(old, i)]
    in_code = [i for i in starts if any(a <= i and i + len(old) <= b for a, b in spans)]
    assert len(in_code) == 1, f"the mutation's reference text is not unique in {rel}: {old!r}"
    files[rel] = text[: in_code[0]] + new + text[in_code[0] + len(old) :]
    return files


SUITE_SEED = 20261202


@pytest.fixture(scope="module")
def graded():
    """Every mutant graded (two at a time: each grading is a sandboxed subprocess)."""

    def run(m):
        name, _, file, old, new, _ = m
        # One seed for the suite (the reference is computed once), and only the TODOs of the
        # mutated file: the others run the reference's own files.
        todos = [t for t, entry in TODOS.items() if entry.file == file]
        return name, grade_todos(
            _files_with(file, old, new), timeout=60, jobs=1, seed=SUITE_SEED, todos=todos
        )

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(run, MUTANTS))


def test_suite_covers_every_todo_with_enough_bugs():
    assert len(MUTANTS) >= 25
    assert {m[1] for m in MUTANTS} == set(TODOS)
    assert len({m[0] for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_mutant_loses_points_on_its_todo_only(graded, mutant):
    name, todo, file, _, _, words = mutant
    report = graded[name]
    entry = report["todos"][todo]
    assert entry["score"] < 1, f"{name}: not caught ({entry})"
    sentence = entry["first_failure"]
    assert words in sentence, sentence
    assert "\n" not in sentence and "\x1b" not in sentence and "assert" not in sentence.lower()
    assert len(sentence) < 400
    others = {t: e["score"] for t, e in report["todos"].items() if t != todo}
    assert others == {t: 1.0 for t in others}, f"{name} also cost {others}"
    assert report["flags"] == []
    print(f"{todo:26} | {name:40} | {sentence}")


def test_reference_scores_full_in_the_sandbox():
    report = grade_todos({rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE})
    assert {t: e["score"] for t, e in report["todos"].items()} == {t: 1.0 for t in TODOS}
    assert report["flags"] == []


# The notebooks' self-checks catch the same mistakes with the same sentence, where a check can.
SELF_CHECKED = [
    ("LeakyReLU slope 0.01", "check_blocks", "leaky slope"),
    ("no skip connection", "check_blocks", "residual skip"),
    ("reshape instead of pixel shuffle", "check_blocks", "pixel shuffle"),
    ("no long skip", "check_srresnet", "long skip"),
    ("long skip before body_end", "check_srresnet", "long skip"),
    ("no Tanh at the output", "check_srresnet", "sr range"),
    ("strides on the even blocks", "check_discriminator", "d strides"),
    ("sigmoid at the output", "check_discriminator", "d logit"),
    ("generator target 'fake'", "check_srgan_losses", "g label"),
    ("-log(sigmoid(x)), unstable", "check_srgan_losses", "unstable"),
    ("HR features with gradients", "check_srgan_losses", "hr grad"),
    ("D not frozen in the G update", "check_srgan_step", "gan d touched"),
    ("losses returned with their graphs", "check_srgan_step", "gan detached"),
    ("critic's hook skipped", "check_srgan_step", "gan hook"),
]


def _self_check_message(tmp: Path, mutant, check: str) -> str:
    """Run one self-check on a copy of the package with the mutant in it; its CheckFailed message."""
    name, _, file, old, new, _ = mutant
    tree = tmp / name.replace(" ", "_").replace("/", "_")
    shutil.copytree(KIT_ROOT / "sr_course", tree / "sr_course")
    for rel, text in _files_with(file, old, new).items():
        (tree / rel).write_text(text)
    code = (
        "from sr_course import checks\n"
        f"try:\n    checks.{check}()\nexcept checks.CheckFailed as err:\n    print(err)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    return proc.stdout.strip() + proc.stderr[-300:]


def test_self_checks_catch_the_same_bugs_with_the_same_sentence(graded, tmp_path):
    by_name = {m[0]: m for m in MUTANTS}

    def run(case):
        name, check, key = case
        return case, _self_check_message(tmp_path, by_name[name], check)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, SELF_CHECKED))
    for (name, check, key), message in results:
        core = MESSAGES[key].split("{")[0]  # the sentence up to its first number
        assert core in message, f"{name}: checks.{check}() said {message!r}"
        assert core in graded[name]["todos"][by_name[name][1]]["first_failure"], name
