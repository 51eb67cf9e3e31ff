"""The course manifest: the TODOs, the notebooks and the data splits, each declared once.

Everything else derives from these tables: the self-checks' course order and labels
(sr_course/checks.py), the student files (resume fingerprints, the release, the grader's sandbox
trees), the grader's TODO list, gradebook columns and dependency swaps, the data folders, the
download's image counts, the config's test sets and the report's five sets.

    Adding a TODO: one row in TODOS, its solution region in the student file, its probes in
    sr_course/grading/probes.py and (when it has a new one) its self-check in sr_course/checks.py.
    Adding a test set: one row in SPLITS (and its archive in sr_course/data/download.py when it is
    downloaded from somewhere new).

This module imports nothing: the grader's sandbox and the notebooks read it as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Todo:
    """One student TODO.

    file: the student file (sr_course/<file>.py) that holds its solution region.
    builds_on: TODOs graded with the reference's version in place (one mistake costs one TODO).
    names: the module-level names it defines (what the grader swaps in where another builds on it).
    check / label: the self-check in sr_course/checks.py that confirms it, and the line it prints.
    notebook: the notebook whose self-check cell runs that check.
    """

    file: str
    builds_on: tuple[str, ...]
    names: tuple[str, ...]
    check: str
    label: str
    notebook: str


# In course order: the order the notebooks meet them, the self-checks run and the gradebook lists them.
TODOS: dict[str, Todo] = {
    "ConvolutionalBlock": Todo("models", (), ("ConvolutionalBlock",), "check_conv_block", "ConvolutionalBlock", "train_srresnet.ipynb"),
    "SubPixelConvolutionalBlock": Todo("models", (), ("SubPixelConvolutionalBlock",), "check_subpixel_block", "SubPixelConvolutionalBlock", "train_srresnet.ipynb"),
    "ResidualBlock": Todo("models", ("ConvolutionalBlock",), ("ResidualBlock",), "check_residual_block", "ResidualBlock", "train_srresnet.ipynb"),
    "SRResNet": Todo("models", ("ConvolutionalBlock", "ResidualBlock", "SubPixelConvolutionalBlock"), ("SRResNet",), "check_srresnet", "SRResNet", "train_srresnet.ipynb"),
    "pixel_mse": Todo("losses", (), ("pixel_mse",), "check_pixel_loss", "pixel_mse", "train_srresnet.ipynb"),
    "Discriminator": Todo("models", ("ConvolutionalBlock",), ("Discriminator",), "check_discriminator", "Discriminator", "train_srgan.ipynb"),
    "TruncatedVGG19": Todo("models", (), ("TruncatedVGG19",), "check_vgg", "TruncatedVGG19", "train_srgan.ipynb"),
    "VGGContentLoss": Todo("losses", (), ("VGGContentLoss",), "check_vgg_loss", "VGGContentLoss", "train_srgan.ipynb"),
    "adversarial losses": Todo("losses", (), ("generator_adversarial_loss", "discriminator_loss"), "check_adversarial_losses", "adversarial losses", "train_srgan.ipynb"),
    "SRGAN step": Todo("solver", ("adversarial losses",), ("srgan_step",), "check_srgan_step", "SRGAN step", "train_srgan.ipynb"),
}  # fmt: skip

# The self-checks in course order, each with the TODOs it confirms: {check: (todo, ...)}.
CHECKS: dict[str, tuple[str, ...]] = {}
for _todo, _entry in TODOS.items():
    CHECKS[_entry.check] = (*CHECKS.get(_entry.check, ()), _todo)

# The files students read and change (sr_course/<name>), in the order the TODOs first meet them.
STUDENT_FILES: tuple[str, ...] = tuple(dict.fromkeys(f"{t.file}.py" for t in TODOS.values()))

# The course's notebooks, in the order they build on each other.
NOTEBOOKS = (
    "train_srresnet.ipynb",
    "train_srgan.ipynb",
    "test.ipynb",
    "super_resolution.ipynb",
    "improvements.ipynb",
)


@dataclass(frozen=True)
class Split:
    """One data split under the data root.

    role: 'train' (random patches), 'test' (whole images, scored), or 'sample-train' / 'sample-test'
    (the built-in offline sample). hr / lr: its HR folder and its x4 bicubic LR folder. images: how
    many HR images a complete download holds (None: not checked). course: one of the five sets the
    course tests on (in the report, in this order).
    """

    role: str
    hr: str
    lr: str
    images: int | None = None
    course: bool = False


def _benchmark(name: str, images: int) -> Split:
    return Split("test", f"benchmark/{name}/HR", f"benchmark/{name}/LR_bicubic/X4", images, True)


SPLITS: dict[str, Split] = {
    "DIV2K_train": Split("train", "DIV2K/DIV2K_train_HR", "DIV2K/DIV2K_train_LR_bicubic/X4", 800),
    "Set5": _benchmark("Set5", 5),
    "Set14": _benchmark("Set14", 14),
    "B100": _benchmark("B100", 100),
    "Urban100": _benchmark("Urban100", 100),
    "DIV2K_valid": Split(
        "test", "DIV2K/DIV2K_valid_HR", "DIV2K/DIV2K_valid_LR_bicubic/X4", 100, True
    ),
    "Sample_train": Split("sample-train", "sample/Sample_train/HR", "sample/Sample_train/LR_bicubic/X4"),
    "Sample": Split("sample-test", "sample/Sample/HR", "sample/Sample/LR_bicubic/X4"),
}  # fmt: skip

# Derived views.
COURSE_SETS = tuple(name for name, s in SPLITS.items() if s.course)  # the five test sets
BENCHMARK_SETS = tuple(name for name, s in SPLITS.items() if s.hr.startswith("benchmark/"))
SAMPLE_SPLITS = tuple(name for name, s in SPLITS.items() if s.role.startswith("sample"))
