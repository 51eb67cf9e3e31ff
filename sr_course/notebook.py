"""Helpers that keep the notebooks thin: setup() for the config cell, LivePlot for training cells."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from . import threads as thread_policy
from .config import PROFILES, load_config
from .course import NOTEBOOKS
from .utils import get_device

KIT_ROOT = Path(__file__).resolve().parents[1]


def setup(profile: str | None = None, **overrides):
    """The config cell: load the profile, resolve relative folders against the kit's root (kernels
    run inside notebooks/; runs go to runs/<profile>, the command line's folder too), and print
    what will be used and written."""
    cfg = load_config(profile, **overrides)
    thread_policy.apply()  # the kernel's share of the cores (SR_THREADS overrides)
    for key in ("data_root", "runs_dir"):
        if not Path(cfg[key]).is_absolute():
            cfg[key] = str(KIT_ROOT / cfg[key])
    device = get_device(None if cfg.device == "auto" else cfg.device)
    cfg.device = str(device)
    print(
        f"profile : {cfg.profile}   (choose with SR_PROFILE={'|'.join(PROFILES)} before starting Jupyter)"
    )
    print(f"device  : {device}")
    print(
        f"data    : {cfg.data_root}   train {', '.join(cfg.data.train_splits)}; test {', '.join(cfg.data.test_splits)}"
    )
    print(f"runs    : {cfg.runs_dir}   (srresnet/last.pt, srgan/last.pt, figures/)")
    return cfg


class LivePlot:
    """on_log callback for Trainer: redraws the loss curves in the notebook every `every` log points."""

    def __init__(self, every: int = 1):
        self.every, self.calls, self.handle = every, 0, None

    def __call__(self, trainer, record) -> None:
        self.calls += 1
        if self.calls % self.every:
            return
        from IPython.display import display  # inside a notebook kernel only

        # The figures import the networks (the student's files): here, not at the top, so that the
        # setup cell runs while a student file does not compile yet.
        from .evaluation.visualize import plot_history

        fig = plot_history(trainer.history, title=f"{trainer.stage}: iteration {trainer.iteration}")
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)


COURSE_NOTEBOOKS = tuple(name.removesuffix(".ipynb") for name in NOTEBOOKS)


def execute_notebooks(names=None, profile: str = "demo", timeout: int = 900) -> list[Path]:
    """Re-execute the course notebooks in place, in course order, on `profile` with fresh data and
    run folders (so outputs do not depend on what is lying around), then strip them as
    `nbstripout --keep-output --keep-count` does. The committed notebooks are made with this:
        python -m sr_course execute-notebooks
    on the demo profile, whose models really learn, so every figure shows a real result (about
    3 minutes on a 2-core CPU). nbval still runs the smoke profile and compares only the
    profile-independent self-check lines.
    """
    # Only execute-notebooks runs notebooks; a kernel importing this module does not need them.
    import nbformat
    from nbclient import NotebookClient

    folder = KIT_ROOT / "notebooks"
    names = names or [n for n in COURSE_NOTEBOOKS if (folder / f"{n}.ipynb").exists()]
    paths = [folder / f"{n}.ipynb" for n in names]
    saved = {k: os.environ.get(k) for k in ("SR_PROFILE", "SR_DATA_ROOT", "SR_RUNS_DIR")}
    with tempfile.TemporaryDirectory(prefix="sr_course-notebooks-") as tmp:
        os.environ.update(SR_PROFILE=profile, SR_DATA_ROOT=f"{tmp}/data", SR_RUNS_DIR=f"{tmp}/runs")
        try:
            for path in paths:
                print(f"executing {path.name} ({profile} profile)", flush=True)
                nb = nbformat.read(path, as_version=4)
                NotebookClient(
                    nb,
                    timeout=timeout,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(folder)}},
                ).execute()
                nbformat.write(nb, path)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    subprocess.run(
        [sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count", *map(str, paths)],
        check=True,
    )
    return paths
