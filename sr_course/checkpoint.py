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
    code            a short SHA-256 of each student file (models.py, losses.py, solver.py)
    history         loss and validation history (lists of plain numbers)
    plus anything else plain (the sampler's position, metrics, ...)

Never a pickled nn.Module: such files break across PyTorch versions and run arbitrary code on load.
"""

from __future__ import annotations

import errno
import os
import shutil
import zipfile
from pathlib import Path

import torch

from .errors import UserError
from .models import Discriminator, Generator, count_parameters
from .utils import atomic_write

CHECKPOINT_VERSION = 1


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file that cannot be used; the message names the file and the fix."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write `state` to `path` atomically: a temporary file in the same folder, fsync, then rename.

    A kill at any moment leaves either the previous file or the new one, never half a file.
    """
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save({"format_version": CHECKPOINT_VERSION, **state}, f)
    except (OSError, RuntimeError) as err:  # torch reports a failed write as a RuntimeError
        kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
        if _disk_full(err, path):
            raise CheckpointError(
                f"cannot write checkpoint {path}: the disk is full ({kept}); free some space on that disk "
                f"or set another --out, then resume"
            ) from None
        raise CheckpointError(
            f"cannot write checkpoint {path} ({str(err).splitlines()[0][:200]}); {kept}"
        ) from None
    return path


def _disk_full(err: BaseException, path: Path) -> bool:
    """Whether a failed write looks like a full disk: ENOSPC anywhere in the chain, or torch's
    'file write failed' with little room left."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "file write failed" in str(err) or "No space left" in str(err):
            return True
        err = err.__cause__ or err.__context__
    try:
        return shutil.disk_usage(path.parent).free < (64 << 20)
    except OSError:
        return False


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by save_checkpoint, safely (torch.load(weights_only=True)), onto the
    CPU whatever device wrote it: networks and optimisers copy its tensors to their own device as
    they load them, and the RNG states it holds must stay CPU tensors (a resume on a GPU failed
    when they were moved there).

    Raises CheckpointError for a missing file, a file that needs pickle (the course's old format of
    whole pickled modules), or a file of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path (or train first)")
    broken = _broken_file(path)
    if broken:
        raise CheckpointError(
            f"checkpoint {path} is {broken}: it is not a checkpoint any more (a copy or download cut "
            "short, or a disk fault). Use another file: best.pt beside it, or train again"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError / RuntimeError variants here
        if not _needs_unpickling(err):
            raise CheckpointError(
                f"checkpoint {path} is damaged and cannot be read ({type(err).__name__}: "
                f"{(str(err).splitlines() or [''])[0][:160]}); "
                "use another file: best.pt beside it, or train again"
            ) from None
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


def _broken_file(path: Path) -> str | None:
    """Why `path` cannot be a torch checkpoint at all (empty; a zip archive cut short), else None.

    torch.save writes a zip archive (since PyTorch 1.6); the course's old files are too. A zip whose
    end-of-archive record is missing was cut short; a legacy (pre-1.6) pickle file is not a zip and
    is left to torch.load to judge.
    """
    size = path.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        return None
    if not zipfile.is_zipfile(path):
        return f"cut short or corrupt ({size:,} bytes, no end-of-archive record)"
    # torch.load does not check the members' CRCs: damaged bytes of the same size would load as
    # wrong weights. Reading every member checks them (about a second per GB).
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return f"corrupt ({type(err).__name__}: {err})"
    if bad is not None:
        return f"damaged: its member {bad} fails its CRC check ({size:,} bytes)"
    return None


def _needs_unpickling(err: Exception) -> bool:
    """Whether torch.load(weights_only=True) refused the file because it holds pickled objects
    (the course's old format), rather than because the file is damaged."""
    text = str(err)
    return "Unsupported global" in text or "can still be loaded" in text


def _remap_by_position(state: dict, reference: dict, what: str) -> dict:
    """Give an old state_dict our key names: same architecture, same tensor order and shapes."""
    if list(state) == list(reference):
        return state
    if len(state) != len(reference) or any(
        a.shape != b.shape for a, b in zip(state.values(), reference.values())
    ):
        raise CheckpointError(
            f"the old {what} does not match this kit's default {what} layer by layer; convert it by hand"
        )
    return dict(zip(reference, state.values()))


def convert_legacy_checkpoint(old_path: str | os.PathLike, new_path: str | os.PathLike) -> Path:
    """Convert a checkpoint of the course's old format (a dict of pickled nn.Modules) to ours.

    This unpickles the old file (weights_only=False), which can run code: only do it for a file you
    trust. The old modules must be the default-size networks (their weights are matched to ours in
    order, shape by shape).
    """
    old_path = Path(old_path)
    if not old_path.is_file():
        raise CheckpointError(f"{old_path} does not exist; check the path")
    broken = _broken_file(old_path)
    if broken:
        raise CheckpointError(f"{old_path} is {broken}: there is nothing to convert")
    try:
        old = torch.load(old_path, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError) as err:
        raise CheckpointError(
            f"{old_path} holds modules pickled from the course's old code, which is not importable here "
            f"({str(err).splitlines()[0]}): run the conversion in the folder that holds the old models.py "
            "(cd there, then python -m sr_course convert-checkpoint ...)"
        ) from None
    except Exception as err:
        raise CheckpointError(
            f"{old_path} cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            "it is damaged or not a PyTorch file"
        ) from None
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
            reference = (Generator() if name == "generator" else Discriminator()).state_dict()
            models[name] = _remap_by_position(value.state_dict(), reference, name)
    if "generator" not in models:
        raise CheckpointError(
            f"{old_path} holds no model, generator or discriminator module to convert"
        )
    stage = "srgan" if "discriminator" in models else "srresnet"
    state = {
        "stage": stage,
        "epoch": int(old.get("epoch", -1)) + 1,
        "batch_in_epoch": 0,
        "iteration": 0,
        "config": {},
        "models": models,
    }
    return save_checkpoint(state, new_path)


def initialize_with_srresnet(generator: Generator, path: str | os.PathLike) -> dict:
    """Load the weights of an SRResNet checkpoint written by sr_course training into `generator`
    (the paper starts SRGAN from a trained SRResNet).

    Prints and returns what was loaded ({'path', 'stage', 'epoch', 'iteration', 'parameters'}).
    """
    state = load_checkpoint(path)
    weights = state.get("models", {}).get("generator")
    if weights is None:
        raise CheckpointError(f"checkpoint {path} holds no generator weights")
    try:
        generator.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this Generator (different G settings?): "
            f"{str(err).splitlines()[0]}. Build the Generator with the same G config as the SRResNet "
            f"run: {state.get('config', {}).get('G')}"
        ) from None
    info = {
        "path": str(path),
        "stage": state.get("stage"),
        "epoch": state.get("epoch"),
        "iteration": state.get("iteration"),
        "parameters": count_parameters(generator),
    }
    print(
        f"Generator initialised from {path} ({info['stage']} checkpoint, epoch {info['epoch']}, "
        f"iteration {info['iteration']}, {info['parameters']:,} parameters loaded)"
    )
    return info
