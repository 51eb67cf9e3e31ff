"""Checkpoints: one format, plain data only, written atomically, loaded with weights_only=True.

A checkpoint is a dict:
    format_version  int (CHECKPOINT_VERSION)
    stage           'srresnet' or 'srgan'
    epoch           epochs completed so far (int); `batch_in_epoch` batches of the next one are done
    iteration       optimiser steps so far (int)
    config          the run's configuration as a plain dict
    models          {'generator': state_dict, 'discriminator': state_dict?}
    optimizers      {'generator': state_dict, ...}
    schedulers      {'generator': state_dict, ...}
    scaler          GradScaler state_dict or None
    rng             Python, NumPy, torch CPU and CUDA generator states
    history         loss and validation history (lists of plain numbers)
    plus anything else plain (the sampler's position, metrics, ...)

Never a pickled nn.Module: such files break across PyTorch versions and run arbitrary code on load.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the fix."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write `state` to `path` atomically: a temporary file in the same folder, fsync, then rename.

    A kill at any moment leaves either the previous file or the new one, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format_version": CHECKPOINT_VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by save_checkpoint, safely (torch.load(weights_only=True)).

    Raises CheckpointError for a missing file, a file that needs pickle (the course's old format of
    whole pickled modules), or a file of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path (or train first)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError / RuntimeError variants here
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely: it holds pickled Python objects (the course's "
            "old format saved whole nn.Modules), which PyTorch >= 2.6 refuses because loading them can "
            "run arbitrary code. If you trust the file, convert it once with "
            "`python -m sr_course convert-checkpoint OLD.pth NEW.pt` and use NEW.pt. "
            f"(torch said: {str(err).splitlines()[0][:200]})"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(
            f"checkpoint {path} is not an sr_course checkpoint (no format_version); "
            "use a file written by sr_course training"
        )
    if state["format_version"] > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state['format_version']}, newer than this kit "
            f"({CHECKPOINT_VERSION}); update sr_course"
        )
    return state


def convert_legacy_checkpoint(old_path: str | os.PathLike, new_path: str | os.PathLike) -> Path:
    """Convert a checkpoint of the course's old format (a dict of pickled nn.Modules) to ours.

    This unpickles the old file (weights_only=False): only do it for a file you trust.
    """
    old = torch.load(old_path, map_location="cpu", weights_only=False)
    if isinstance(old, torch.nn.Module):
        old = {"model": old}
    models = {}
    for key, name in (
        ("model", "generator"),
        ("generator", "generator"),
        ("discriminator", "discriminator"),
    ):
        value = old.get(key)
        if isinstance(value, torch.nn.Module):
            module = getattr(value, "net", value)  # the old Generator wrapped an SRResNet as .net
            models[name] = module.state_dict()
    if "generator" not in models:
        raise CheckpointError(
            f"{old_path} holds no model, generator or discriminator module to convert"
        )
    stage = "srgan" if "discriminator" in models else "srresnet"
    return save_checkpoint(
        {
            "stage": stage,
            "epoch": int(old.get("epoch", -1)) + 1,
            "iteration": 0,
            "config": {},
            "models": models,
        },
        new_path,
    )
