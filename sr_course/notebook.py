"""Helpers that keep the notebooks thin: setup() for the config cell, LivePlot for training cells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from . import threads as thread_policy
from .config import DEFAULT_PROFILE, PROFILES, load_config
from .course import NOTEBOOKS
from .errors import OtherCopy
from .utils import get_device

KIT_ROOT = Path(__file__).resolve().parents[1]


def setup(profile: str | None = None, kit=None, **overrides):
    """The config cell: check that `kit` (the folder the notebook belongs to) is this package's,
    load the profile (else $SR_PROFILE, else config.DEFAULT_PROFILE), make the kit's root the
    working folder (so that data/ and runs/<profile>/ are the folders the command line uses, and
    every path printed reads as in the file browser), and print what will be used and written."""
    if kit is not None:
        _check_own_kit(Path(kit))
    cfg = load_config(profile, **overrides)
    thread_policy.apply()  # the kernel's share of the cores (SR_THREADS overrides)
    os.chdir(KIT_ROOT)
    device = get_device(None if cfg.device == "auto" else cfg.device)
    cfg.device = str(device)
    chosen = (
        "as asked"
        if profile
        else "from SR_PROFILE"
        if os.environ.get("SR_PROFILE")
        else f"SR_PROFILE is unset: the default, {DEFAULT_PROFILE}"
    )
    print(f"sr_course: {shown(KIT_ROOT / 'sr_course')}   (the kit beside this notebook)")
    print(f"profile  : {cfg.profile}   ({chosen}; choose with SR_PROFILE={'|'.join(PROFILES)})")
    print(f"device   : {device}")
    print(
        f"data     : {shown(cfg.data_root)}   train {', '.join(cfg.data.train_splits)}; "
        f"test {', '.join(cfg.data.test_splits)}"
    )
    print(f"runs     : {shown(cfg.runs_dir)}   (srresnet/last.pt, srgan/last.pt, figures/)")
    return cfg


def shown(path) -> str:
    """A path as a notebook prints it: relative to the kit's root when inside it (what a student
    sees in the file browser), else as it is."""
    path = Path(path)
    try:
        return str((KIT_ROOT / path).resolve().relative_to(KIT_ROOT))
    except ValueError:
        return str(path)


def _check_own_kit(kit: Path) -> None:
    """Refuse to go on with another copy of sr_course than the kit the notebook belongs to: its
    checks would pass or fail for someone else's code, and its data and runs would land there."""
    if kit.resolve() != KIT_ROOT:
        raise OtherCopy(
            f"this notebook belongs to the kit in {kit.resolve()}, but Python imported sr_course "
            f"from {KIT_ROOT / 'sr_course'}: restart the kernel and run this cell first; if it "
            f"persists, install the kit into this environment (pip install -e {kit.resolve()}) or "
            "give the kit an environment of its own"
        )


class LivePlot:
    """on_log callback for Trainer: redraws the loss curves in the notebook about `redraws` times
    through the run (at least at every `every` log points when given), and always at its end."""

    def __init__(self, every: int | None = None, redraws: int = 8):
        self.every, self.redraws, self.calls, self.handle = every, redraws, 0, None

    def __call__(self, trainer, record) -> None:
        self.calls += 1
        every = self.every
        if every is None:  # the run's log points, spread over `redraws` pictures
            every = max(1, round(trainer.log_points / self.redraws))
        if self.calls % every and trainer.iteration < trainer.total_iterations:
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


def execute_notebooks(
    names=None, profile: str = "demo", timeout: int = 900, in_place: bool = False
) -> list[Path]:
    """Re-execute the course notebooks in course order on `profile`, then strip them as
    `nbstripout --keep-output --keep-count` does, and drop the progress bars' widgets (their state
    is not kept in the file: they would show their first line, 0%).

    For committing (the default): in a temporary copy of the kit (its sr_course/ and notebooks/)
    with data and runs folders of its own, so that outputs do not depend on what is lying around
    and show the paths a student's kit has (runs/demo/...); the executed notebooks are copied back.
    The committed notebooks are made with `python -m sr_course execute-notebooks` on the demo
    profile, whose models really learn, so every figure shows a real result; nbval still runs the
    smoke profile and compares only the profile-independent self-check lines.
    in_place=True (a student's hand-in): here, with the kit's own data/ and runs/<profile>/, so the
    training cells resume the runs that are there (a finished run is not trained again).
    """
    # Only execute-notebooks runs notebooks; a kernel importing this module does not need them.
    import nbformat
    from nbclient import NotebookClient

    names = names or [
        n for n in COURSE_NOTEBOOKS if (KIT_ROOT / "notebooks" / f"{n}.ipynb").exists()
    ]
    paths = [KIT_ROOT / "notebooks" / f"{n}.ipynb" for n in names]
    saved = {k: os.environ.get(k) for k in ("SR_PROFILE", "SR_DATA_ROOT", "SR_RUNS_DIR")}
    with tempfile.TemporaryDirectory(prefix="sr_course-notebooks-") as tmp:
        kit = KIT_ROOT if in_place else Path(tmp) / "kit"
        if not in_place:
            skip = shutil.ignore_patterns("__pycache__")
            shutil.copytree(KIT_ROOT / "sr_course", kit / "sr_course", ignore=skip)
            shutil.copytree(KIT_ROOT / "notebooks", kit / "notebooks", ignore=skip)
        os.environ["SR_PROFILE"] = profile
        for key in ("SR_DATA_ROOT", "SR_RUNS_DIR"):  # the kit's own data/ and runs/<profile>/
            os.environ.pop(key, None)
        try:
            for path in paths:
                print(f"executing {path.name} ({profile} profile)", flush=True)
                nb = nbformat.read(path, as_version=4)
                NotebookClient(
                    nb,
                    timeout=timeout,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(kit / "notebooks")}},
                ).execute()
                _drop_widgets(nb)
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


WIDGET = "application/vnd.jupyter.widget-view+json"


def _drop_widgets(nb) -> None:
    """Remove widget outputs (tqdm's bars): a saved notebook keeps only their first text."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
