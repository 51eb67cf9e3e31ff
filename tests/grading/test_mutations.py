"""The grader's mutation suite: realistic student bugs, injected one at a time into the reference.

Each bug must lose points on its own TODO (and on no other TODO of its file: the TODOs it builds on
run as the probes' stand-ins), and the first failure
must be one plain sentence that says what is wrong: no assert text, no traceback, no colour codes.
The table in MUTANTS is the suite; `python -m pytest tests/grading/test_mutations.py -q -rA` prints it.
"""

from __future__ import annotations

import json
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
    ("no gradient reaches sr", "VGGContentLoss", "losses", "            target = self.vgg(hr) * self.rescale\n        return F.mse_loss(", "            target = self.vgg(hr) * self.rescale\n            return F.mse_loss(", "no gradient back to sr"),
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


# Correct code written the way students write it: each must score full marks. A probe judges only
# what training depends on. (name, TODO, file, reference text, student's text)
CORRECT = [
    # ConvolutionalBlock
    ("activation by if/elif", "ConvolutionalBlock", "models", '        if activation is not None:\n            layers.append(\n                {"prelu": nn.PReLU, "leakyrelu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}[\n                    activation.lower()\n                ]()\n            )\n', '        name = (activation or "").lower()\n        if name == "prelu":\n            layers.append(nn.PReLU())\n        elif name == "leakyrelu":\n            layers.append(nn.LeakyReLU(negative_slope=0.2))\n        elif name == "tanh":\n            layers.append(nn.Tanh())\n'),
    ("padding (k - 1) // 2", "ConvolutionalBlock", "models", "stride=stride, padding=kernel_size // 2", "stride=stride, padding=(kernel_size - 1) // 2"),
    ("Sequential filled by a loop", "ConvolutionalBlock", "models", "        self.block = nn.Sequential(*layers)\n", "        self.block = nn.Sequential()\n        for layer in layers:\n            self.block.append(layer)\n"),
    # SubPixelConvolutionalBlock
    ("functional pixel shuffle", "SubPixelConvolutionalBlock", "models", "return self.prelu(self.pixel_shuffle(self.conv(x)))", "return self.prelu(torch.nn.functional.pixel_shuffle(self.conv(x), self.pixel_shuffle.upscale_factor))"),
    ("r * r channels", "SubPixelConvolutionalBlock", "models", "n_channels * scaling_factor**2", "n_channels * scaling_factor * scaling_factor"),
    # ResidualBlock
    ("forward step by step", "ResidualBlock", "models", "return x + self.conv2(self.conv1(x))", "residual = x\n        out = self.conv1(x)\n        out = self.conv2(out)\n        return out + residual"),
    ("in-place sum", "ResidualBlock", "models", "return x + self.conv2(self.conv1(x))", "out = self.conv2(self.conv1(x))\n        out += x\n        return out"),
    # SRResNet
    ("upscale blocks appended in a loop", "SRResNet", "models", "        self.upscale = nn.Sequential(\n            *[\n                SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2)\n                for _ in range(n_upscale)\n            ]\n        )\n", "        self.upscale = nn.Sequential()\n        for _ in range(n_upscale):\n            self.upscale.append(SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2))\n"),
    ("number of x2 blocks from a table", "SRResNet", "models", "n_upscale = int(math.log2(scaling_factor))", "n_upscale = {2: 1, 4: 2, 8: 3}[scaling_factor]"),
    ("forward with named steps", "SRResNet", "models", "        features = self.head(lr)\n        features = features + self.body_end(self.body(features))\n        return self.tail(self.upscale(features))\n", "        head = self.head(lr)\n        x = self.body(head)\n        x = self.body_end(x)\n        x = x + head\n        x = self.upscale(x)\n        return self.tail(x)\n"),
    # pixel_mse
    ("a manual mean", "pixel_mse", "losses", "    return F.mse_loss(sr, hr)\n", "    return ((sr - hr) ** 2).mean()\n"),
    ("a module for the function", "pixel_mse", "losses", "    return F.mse_loss(sr, hr)\n", "    return nn.MSELoss()(sr, hr)\n"),
    ("the target detached", "pixel_mse", "losses", "    return F.mse_loss(sr, hr)\n", "    return F.mse_loss(sr, hr.detach())\n"),
    # Discriminator
    ("strides from a tuple", "Discriminator", "models", "stride=1 if i % 2 == 0 else 2", "stride=(1, 2)[i % 2]"),
    ("functional LeakyReLU and view", "Discriminator", "models", "return self.fc2(self.leaky_relu(self.fc1(torch.flatten(x, 1))))", "return self.fc2(torch.nn.functional.leaky_relu(self.fc1(x.view(x.size(0), -1)), 0.2))"),
    # TruncatedVGG19
    ("layers counted in a loop", "TruncatedVGG19", "models", "    layers_before_block = sum(2 * VGG19_BLOCKS[b] + 1 for b in range(1, i))\n    return layers_before_block + 2 * j\n", "    count = 0\n    for block in range(1, i):\n        count += 2 * VGG19_BLOCKS[block] + 1  # conv and ReLU per convolution, one max-pool\n    return count + 2 * j\n"),
    # VGGContentLoss
    (".detach() for no_grad", "VGGContentLoss", "losses", "        with torch.no_grad():\n            target = self.vgg(hr) * self.rescale\n", "        target = self.vgg(hr).detach() * self.rescale\n"),
    ("HR features as data (no no_grad)", "VGGContentLoss", "losses", "        with torch.no_grad():\n            target = self.vgg(hr) * self.rescale\n", "        target = self.vgg(hr) * self.rescale\n"),
    ("a manual MSE of the features", "VGGContentLoss", "losses", "return F.mse_loss(self.vgg(sr) * self.rescale, target)", "return ((self.vgg(sr) * self.rescale - target) ** 2).mean()"),
    # adversarial losses
    ("BCEWithLogitsLoss module", "adversarial losses", "losses", "    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))\n", "    return nn.BCEWithLogitsLoss()(fake_logits, torch.ones_like(fake_logits))\n"),
    ("softplus", "adversarial losses", "losses", "    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))\n", "    return F.softplus(-fake_logits).mean()\n"),
    ("smoothed target as a product", "adversarial losses", "losses", "torch.full_like(real_logits, 1.0 - label_smoothing)", "(1.0 - label_smoothing) * torch.ones_like(real_logits)"),
    # SRGAN step
    ("gradient clipping in the GAN step", "SRGAN step", "solver", "        optimizer_step(g_loss, t.opt_g, t.scaler_g)\n", "        optimizer_step(g_loss, t.opt_g, t.scaler_g, before_step=t.clip_gradients)\n"),
    ("G's update by hand, zero_grad last", "SRGAN step", "solver", "        optimizer_step(g_loss, t.opt_g, t.scaler_g)\n", "        t.scaler_g.scale(g_loss).backward()\n        t.scaler_g.step(t.opt_g)\n        t.scaler_g.update()\n        t.opt_g.zero_grad()\n"),
    ("D's update by hand", "SRGAN step", "solver", "    optimizer_step(d_loss, t.opt_d, t.scaler_d)\n", "    t.opt_d.zero_grad()\n    t.scaler_d.scale(d_loss).backward()\n    t.scaler_d.step(t.opt_d)\n    t.scaler_d.update()\n"),
    ("D frozen by a requires_grad loop", "SRGAN step", "solver", "        with frozen(t.D_raw), t.autocast():\n            content = t.content_loss(sr.float(), hr)\n            adversarial = t.adversarial.generator_loss(t.D_raw, sr, hr)\n", "        for p in t.D_raw.parameters():\n            p.requires_grad_(False)\n        with t.autocast():\n            content = t.content_loss(sr.float(), hr)\n            adversarial = t.adversarial.generator_loss(t.D_raw, sr, hr)\n        for p in t.D_raw.parameters():\n            p.requires_grad_(True)\n"),
]  # fmt: skip


def _edit(files: dict[str, str], file: str, old: str, new: str) -> dict[str, str]:
    """`files` with `old` replaced by `new` inside a solution region of sr_course/<file>.py."""
    rel = f"sr_course/{file}.py"
    text = files[rel]
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    spans = [(line_starts[r.begin], line_starts[r.end - 1]) for r in find_regions(text, rel)]
    starts = [i for i in range(len(text)) if text.startswith(old, i)]
    in_code = [i for i in starts if any(a <= i and i + len(old) <= b for a, b in spans)]
    assert len(in_code) == 1, f"the edit's reference text is not unique in {rel}: {old!r}"
    return {**files, rel: text[: in_code[0]] + new + text[in_code[0] + len(old) :]}


def _reference_files() -> dict[str, str]:
    return {rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE}


def _files_with(file: str, old: str, new: str) -> dict[str, str]:
    """The reference's student files with `old` replaced by `new` inside a solution region."""
    return _edit(_reference_files(), file, old, new)


SUITE_SEED = 20261202


def _rounds(edits: list, key) -> list[list]:
    """The edits in as few submissions as can hold them, at most one per key(edit) in each. The
    grader judges each TODO with the reference's versions of the TODOs it builds on in place, so
    edits of different TODOs (correct variants) or of different files (mutants, which may break
    their whole file) cannot reach each other's scores; a dozen gradings then cost what fifty would."""
    rounds: list[list] = []
    for e in edits:
        free = next((r for r in rounds if key(e) not in {key(o) for o in r}), None)
        if free is None:
            rounds.append(free := [])
        free.append(e)
    return rounds


def _grade_rounds(edits: list, key) -> dict[str, dict]:
    """{edit name: the report of its round}, the rounds graded two at a time (each grading is a
    sandboxed subprocess) with one seed for the suite (the reference is computed once)."""

    def run(edits):
        files = _reference_files()
        for _, _, file, old, new, *_ in edits:
            files = _edit(files, file, old, new)
        report = grade_todos(files, timeout=60, jobs=1, seed=SUITE_SEED)
        return [(e[0], report) for e in edits]

    with ThreadPoolExecutor(2) as pool:
        return {name: r for rnd in pool.map(run, _rounds(edits, key)) for name, r in rnd}


@pytest.fixture(scope="module")
def graded():
    """{mutant name: its report, limited to the TODOs of its file}: one mutant per file in each
    round, so a mutant's file holds no other mistake."""
    reports = _grade_rounds(MUTANTS, key=lambda m: m[2])
    return {
        m[0]: {
            **reports[m[0]],
            "todos": {t: e for t, e in reports[m[0]]["todos"].items() if TODOS[t].file == m[2]},
        }
        for m in MUTANTS
    }


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
    report = grade_todos(_reference_files())
    assert {t: e["score"] for t, e in report["todos"].items()} == {t: 1.0 for t in TODOS}
    assert report["flags"] == []


@pytest.fixture(scope="module")
def graded_correct():
    """{variant name: its round's report}: one variant per TODO in each round."""
    return _grade_rounds(CORRECT, key=lambda v: v[1])


def test_suite_holds_enough_correct_variants():
    assert len(CORRECT) >= 15
    assert len({v[0] for v in CORRECT}) == len(CORRECT)
    assert "gradient clipping in the GAN step" in {v[0] for v in CORRECT}


@pytest.mark.parametrize("variant", CORRECT, ids=[v[0] for v in CORRECT])
def test_correct_code_written_differently_scores_full_marks(graded_correct, variant):
    report = graded_correct[variant[0]]
    entry = report["todos"][variant[1]]
    assert entry["score"] == 1.0, f"{variant[0]}: {entry['first_failure']}"
    assert report["flags"] == []


# The notebooks' self-checks catch the same mistakes with the same sentence, where a check can.
SELF_CHECKED = [
    ("LeakyReLU slope 0.01", "check_conv_block", "leaky slope"),
    ("no skip connection", "check_residual_block", "residual skip"),
    ("no long skip", "check_srresnet", "long skip"),
    ("long skip before body_end", "check_srresnet", "long skip"),
    ("no Tanh at the output", "check_srresnet", "sr range"),
    ("strides on the even blocks", "check_discriminator", "d strides"),
    ("sigmoid at the output", "check_discriminator", "d logit"),
    ("generator target 'fake'", "check_adversarial_losses", "g label"),
    ("-log(sigmoid(x)), unstable", "check_adversarial_losses", "unstable"),
    ("no gradient reaches sr", "check_vgg_loss", "sr grad"),
    ("D not frozen in the G update", "check_srgan_step", "gan d touched"),
    ("losses returned with their graphs", "check_srgan_step", "gan detached"),
    ("critic's hook skipped", "check_srgan_step", "gan hook"),
]


# Runs in one Python: for each case, the mutated files replace the package copy's, the package is
# imported afresh and the check run; its CheckFailed message is printed as one JSON line.
_SELF_CHECK_RUNNER = """
import json, pathlib, sys
package = pathlib.Path(sys.argv[1]) / "sr_course"
reference = {p.name: p.read_text() for p in package.glob("*.py")}
for case in json.loads(sys.stdin.read()):
    for name, text in reference.items():
        (package / name).write_text(case["files"].get(name, text))
    for module in [m for m in sys.modules if m == "sr_course" or m.startswith("sr_course.")]:
        del sys.modules[module]
    from sr_course import checks
    try:
        getattr(checks, case["check"])()
        said = "passed"
    except checks.CheckFailed as err:
        said = str(err)
    print(json.dumps(said), flush=True)
"""


def _self_check_messages(tmp: Path, cases: list) -> list[str]:
    """Each (mutant, check)'s self-check message on a copy of the package with the mutant in it
    (one process for all: torch is imported once)."""
    tree = tmp / "package"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(KIT_ROOT / "sr_course", tree / "sr_course", ignore=skip)
    todo = [
        {
            "check": check,
            "files": {
                Path(rel).name: text
                for rel, text in _files_with(file, old, new).items()
                if rel == f"sr_course/{file}.py"
            },
        }
        for (name, _, file, old, new, _), check in cases
    ]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _SELF_CHECK_RUNNER, str(tree)],
        input=json.dumps(todo),
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    said = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(said) == len(cases), proc.stderr[-2000:]
    return said


def test_self_checks_catch_the_same_bugs_with_the_same_sentence(graded, tmp_path):
    by_name = {m[0]: m for m in MUTANTS}
    said = _self_check_messages(
        tmp_path, [(by_name[name], check) for name, check, _ in SELF_CHECKED]
    )
    results = list(zip(SELF_CHECKED, said))
    for (name, check, key), message in results:
        core = MESSAGES[key].split("{")[0]  # the sentence up to its first number
        assert core in message, f"{name}: checks.{check}() said {message!r}"
        assert core in graded[name]["todos"][by_name[name][1]]["first_failure"], name
