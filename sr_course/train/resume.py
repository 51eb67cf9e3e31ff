"""A training run's state in a checkpoint, and resuming from it exactly.

    training_state(t)        everything a resumed run needs (the format: sr_course/checkpoint.py)
    resume(t, path)          load it back into a freshly built Trainer; refuse settings that cannot
                             change, apply a changed learning rate, say when the student files changed
    initialise_generator(t)  SRGAN's start: the generator of a trained SRResNet (srgan.mode=paper)
    move_earlier_run_aside   --fresh: last.pt, best.pt and run.json into out_dir/earlier-<k>/

Exact resume: a checkpoint holds the weights, optimiser/scheduler/grad-scaler states, RNG states, the
epoch and how many batches of it are done. Training samples are a pure function of (seed, epoch,
index) and the sampler can start mid-epoch, so a run killed at any point and resumed from its last
checkpoint ends with the same weights as an uninterrupted run (CPU, deterministic settings).
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CheckpointError, initialize_with_srresnet, load_checkpoint
from ..config import lookup, to_plain_dict
from ..course import STUDENT_FILES
from ..errors import SettingError
from ..evaluation.runs import RECORD
from ..models import Generator

PACKAGE = Path(__file__).resolve().parents[1]

# Settings a resumed run cannot change, and why (the learning rate, the loss weights, logging,
# checkpoints, validation and mixed precision can: they act from the next step on).
RESUME_FIXED = {
    "scale": "the weights were trained for it",
    "G": "the weights were trained for it",
    "D": "the weights were trained for it",
    "model": "the weights were trained for it",
    "seed": "the order of the training samples depends on it",
    "data.train_splits": "the order of the training samples depends on it",
    "data.crop_size": "the order of the training samples depends on it",
    "data.patches_per_image": "the order of the training samples depends on it",
    "{stage}.batch_size": "the position inside the epoch is counted in batches of it",
    "{stage}.optimizer": "the optimiser's saved state belongs to it",
}


def code_fingerprint() -> dict[str, str]:
    """A short SHA-256 of each student file: a checkpoint remembers the code its weights came from,
    so a resumed run can say when that code has changed since."""
    return {n: hashlib.sha256((PACKAGE / n).read_bytes()).hexdigest()[:16] for n in STUDENT_FILES}


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


def _parts(t) -> dict[str, tuple]:
    """{'generator': (network, optimiser, schedule, scaler), 'discriminator': (...)} of a Trainer."""
    parts = {"generator": (t.G_raw, t.opt_g, t.sched_g, t.scaler_g)}
    if t.D_raw is not None:
        parts["discriminator"] = (t.D_raw, t.opt_d, t.sched_d, t.scaler_d)
    return parts


def training_state(t) -> dict:
    """The checkpoint of Trainer `t` as plain data."""
    parts = _parts(t)
    return {
        "stage": t.stage,
        "epoch": t.epoch,
        "batch_in_epoch": t.batch_in_epoch,
        "iteration": t.iteration,
        "config": to_plain_dict(t.cfg),
        "models": {k: p[0].state_dict() for k, p in parts.items()},
        "optimizers": {k: p[1].state_dict() for k, p in parts.items()},
        "schedulers": {k: p[2].state_dict() for k, p in parts.items()},
        "scalers": {k: p[3].state_dict() for k, p in parts.items()},
        "rng": _rng_state(),
        "code": code_fingerprint(),
        "history": t.history,
        "best_psnr": t.best_psnr,
        "train_seconds": t.train_seconds,
    }


def resume(t, resume) -> str | None:
    """Continue Trainer `t` from its own last.pt (resume 'auto' or True; None when there is none
    yet) or from a checkpoint path. Returns the path resumed from."""
    path = t.out_dir / "last.pt" if resume in ("auto", True) else Path(resume)
    if not path.exists():
        if resume in ("auto", True):
            return None
        raise CheckpointError(f"cannot resume: checkpoint {path} does not exist")
    state = load_checkpoint(path)  # onto the CPU (load_checkpoint says why)
    if state.get("stage") != t.stage:
        raise CheckpointError(
            f"{path} is a {state.get('stage')!r} checkpoint; this run trains {t.stage!r}"
        )
    _refuse_fixed_changes(t, state.get("config") or {}, path)
    _note_changed_code(t, state.get("code"), path)
    parts = _parts(t)
    try:
        for key, (net, *_) in parts.items():
            net.load_state_dict(state["models"][key])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"{path} does not fit this configuration ({str(err).splitlines()[0]}); the run was made with "
            f"G={state['config'].get('G')} D={state['config'].get('D')}. Resume with the same settings or "
            "start a new run with another --out"
        ) from None
    for key, (_, opt, sched, scaler) in parts.items():
        opt.load_state_dict(state["optimizers"][key])
        sched.load_state_dict(state["schedulers"][key])
        scaler.load_state_dict(state["scalers"][key])
    t.epoch, t.batch_in_epoch, t.iteration = (
        state["epoch"],
        state["batch_in_epoch"],
        state["iteration"],
    )
    t.history, t.best_psnr = state["history"], state["best_psnr"]
    t.train_seconds = float(state.get("train_seconds", 0.0))
    _set_rng_state(state["rng"])
    t.last_saved_iteration = t.iteration
    t.log(
        f"resumed from {path} (epoch {t.epoch}, batch {t.batch_in_epoch}, iteration {t.iteration})"
    )
    _apply_recipe_changes(t, state.get("config") or {})
    return str(path)


def _refuse_fixed_changes(t, saved: dict, path) -> None:
    current = to_plain_dict(t.cfg)
    for key, reason in RESUME_FIXED.items():
        key = key.format(stage=t.stage)
        old, new = lookup(saved, key), lookup(current, key)
        if old is not None and old != new:
            raise CheckpointError(
                f"{path} was trained with {key}={old}; it cannot change on resume ({reason}). "
                f"Resume with {key}={old}, or start a new run with another --out"
            )


def _apply_recipe_changes(t, saved: dict) -> None:
    """Apply a changed learning rate (keeping the decay already done) and say in one line what
    changed in the stage's recipe since the checkpoint was written."""
    old_recipe, changes = saved.get(t.stage) or {}, []
    for key, new in t.recipe.items():
        old = old_recipe.get(key, new)
        if old != new:
            changes.append(f"{t.stage}.{key} {old} -> {new}")
    old_lr, new_lr = old_recipe.get("lr", t.recipe.lr), t.recipe.lr
    if old_lr != new_lr:
        for _, opt, sched, _ in _parts(t).values():
            for group in opt.param_groups:
                group["lr"] *= new_lr / old_lr
                group["initial_lr"] = new_lr
            sched.base_lrs = [new_lr for _ in sched.base_lrs]
            sched._last_lr = [group["lr"] for group in opt.param_groups]
    if changes:
        t.log(f"resumed with changed settings: {', '.join(changes)} (applied from the next step)")


def _note_changed_code(t, saved: dict | None, path) -> None:
    """Say so when the student files differ from those the checkpoint's weights came from."""
    now = code_fingerprint()
    changed = [n for n in STUDENT_FILES if saved and saved.get(n) not in (None, now[n])]
    if changed:
        t.log(
            f"note: {', '.join(f'sr_course/{n}' for n in changed)} changed since {path} was written, so "
            "its weights come from your earlier code. To train from scratch with the code as it is now, "
            "start fresh: Trainer(..., fresh=True) in a notebook, --fresh on the command line (the "
            "earlier checkpoints are kept in a subfolder)"
        )


def move_earlier_run_aside(out_dir: Path, log) -> None:
    """--fresh: move an earlier run's last.pt, best.pt and run.json into out_dir/earlier-<k>/."""
    found = [out_dir / n for n in ("last.pt", "best.pt", RECORD) if (out_dir / n).exists()]
    if not found:
        return
    k = 1
    while (out_dir / f"earlier-{k}").exists():
        k += 1
    aside = out_dir / f"earlier-{k}"
    aside.mkdir(parents=True)
    for path in found:
        os.replace(path, aside / path.name)
    log(f"fresh start: moved the earlier run's {', '.join(p.name for p in found)} to {aside}")


def initialise_generator(t) -> None:
    """SRGAN's generator starts from a trained SRResNet (srgan.mode 'paper'), or from scratch."""
    mode = t.cfg.srgan.mode
    if mode == "baseline":
        t.log("SRGAN mode 'baseline': generator and discriminator trained together from scratch")
        return
    if mode != "paper":
        raise SettingError(f"srgan.mode must be 'paper' or 'baseline', got {mode!r}")
    path = t.cfg.srgan.srresnet_checkpoint or Path(t.cfg.runs_dir) / "srresnet" / "best.pt"
    if (
        not Path(path).exists()
        and Path(path).name == "best.pt"
        and Path(path).with_name("last.pt").exists()
    ):
        path = Path(path).with_name("last.pt")
    if not Path(path).exists():
        raise CheckpointError(
            f"SRGAN mode 'paper' starts from a trained SRResNet, but {path} does not exist: train it first "
            "(python -m sr_course train-srresnet), set srgan.srresnet_checkpoint=PATH, or use srgan.mode=baseline"
        )
    if t.is_main and isinstance(t.G_raw, Generator):
        initialize_with_srresnet(t.G_raw, path)
    else:
        t.G_raw.load_state_dict(load_checkpoint(path)["models"]["generator"])
        t.log(f"generator initialised from {path}")
