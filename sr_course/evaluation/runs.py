"""Run records: every training run describes itself in `<run folder>/run.json`, and
`python -m sr_course runs` lists a student's attempts side by side.

run.json (rewritten atomically at every checkpoint; small: losses every log_every iterations)
    name, stage, profile, device, gpu       what ran where
    iteration, total_iterations, epoch, finished, train_seconds, updated
    config                                  the full configuration
    changes                                 {key: [paper recipe's value, this run's value]}
    losses                                  the logged training losses, one record per log
    validation                              validation PSNR/SSIM after each epoch
    best                                    the best validation record
    test                                    {checkpoint file: {split: {psnr, ssim}}}, added by
                                            `test`/evaluate() when they score this run's checkpoints
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from ..config import load_config, to_plain_dict
from ..utils import atomic_write, format_duration

RECORD = "run.json"
# Settings that say where, how fast or how it is watched or scored, not what was trained: never
# listed (srgan.mode says whether the generator started from an SRResNet; the path is a where).
NOT_RECIPE = (
    "profile", "device", "data_root", "runs_dir", "data.num_workers", "data.cache_dir",
    "data.test_splits", "data.val_split", "data.val_images", "train.amp", "train.channels_last",
    "train.compile", "train.checkpoint_every", "train.log_every", "train.sync_bn",
    "train.deterministic", "lpips.", "srgan.srresnet_checkpoint",
)  # fmt: skip
# Sections that do not shape a stage's result (the other stage's settings).
OTHER_STAGE = {"srresnet": ("srgan.", "D."), "srgan": ("srresnet.",)}


def _irrelevant(config: dict, stage: str) -> tuple[str, ...]:
    """Key prefixes whose values cannot matter to this run: the other stage's, the generator
    architectures not in use, VGG when no loss uses it."""
    arch = config["model"]["arch"]
    skip = [*OTHER_STAGE.get(stage, ()), *(f"model.{a}." for a in config["model"] if a != arch)]
    if arch != "srresnet":
        skip.append("G.")
    if stage == "srresnet" or config["srgan"]["content_loss"] != "vgg":
        skip.append("vgg.")
    return tuple(skip)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recipe_changes(config: dict, stage: str) -> dict:
    """{dotted key: [paper value, this value]} for every recipe setting that differs from the
    paper profile (paths, device and loader settings left out, and the other stage's)."""

    plain = to_plain_dict(config)
    paper, mine = _flat(to_plain_dict(load_config("paper"))), _flat(plain)
    skip = _irrelevant(plain, stage)
    return {
        key: [paper.get(key), value]
        for key, value in sorted(mine.items())
        if paper.get(key) != value and not key.startswith(NOT_RECIPE) and not key.startswith(skip)
    }


def write_record(trainer) -> Path:
    """Write (or rewrite) the trainer's run.json; the `test` results already there are kept."""
    path = Path(trainer.out_dir) / RECORD
    val = trainer.history["val"]
    record = {
        "name": Path(trainer.out_dir).name,
        "stage": trainer.stage,
        "profile": trainer.cfg.profile,
        "device": str(trainer.device),
        "gpu": torch.cuda.get_device_name(trainer.device)
        if trainer.device.type == "cuda"
        else None,
        "iteration": trainer.iteration,
        "total_iterations": trainer.total_iterations,
        "epoch": trainer.epoch,
        "finished": trainer.iteration >= trainer.total_iterations,
        "train_seconds": round(trainer.train_seconds, 1),
        "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": to_plain_dict(trainer.cfg),
        "changes": recipe_changes(trainer.cfg, trainer.stage),
        "losses": trainer.history["train"],
        "validation": val,
        "best": max(val, key=lambda r: r["psnr"]) if val else None,
        "test": read_record(path).get("test", {}) if path.exists() else {},
    }
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=1)
    return path


def read_record(path: str | os.PathLike) -> dict:
    """A run.json as a dict ({} when it cannot be read: a run from before records, or cut short)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def record_test(checkpoint: str | os.PathLike, scores: dict) -> None:
    """Add {split: {psnr, ssim}} of a checkpoint to the run.json beside it, if there is one."""

    checkpoint = Path(checkpoint)
    path = checkpoint.parent / RECORD
    record = read_record(path)
    if not record:
        return
    record.setdefault("test", {}).setdefault(checkpoint.name, {}).update(scores)
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=1)


def find_runs(root: str | os.PathLike) -> list[tuple[Path, dict]]:
    """(folder, record) of every run under root that has a readable run.json."""
    found = []
    for path in sorted(Path(root).rglob(RECORD)):
        record = read_record(path)
        if record.get("stage"):
            found.append((path.parent, record))
    return found


def score_on(record: dict, split: str) -> tuple[dict | None, str]:
    """The run's PSNR/SSIM on split: a test of best.pt, else of last.pt, else its best validation."""
    for name in ("best.pt", "last.pt"):
        scores = record.get("test", {}).get(name, {}).get(split)
        if scores:
            return scores, f"test, {name}"
    best = record.get("best")
    if best and best.get("split") == split:
        return best, "validation"
    return None, ""


def _describe_changes(changes: dict, limit: int = 4) -> str:
    if not changes:
        return "the paper's recipe"
    parts = [f"{k}={v[1]}" for k, v in changes.items()]
    return ", ".join(parts[:limit]) + (
        f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
    )


def runs_table(root: str | os.PathLike, split: str = "Set5") -> str:
    """A markdown table of every run under root, best PSNR on `split` first."""

    rows = []
    for folder, r in find_runs(root):
        scores, source = score_on(r, split)
        rows.append(
            (
                (scores is None, -scores["psnr"] if scores else 0.0),
                [
                    folder.relative_to(root).as_posix() if folder != Path(root) else folder.name,
                    r["stage"],
                    _describe_changes(r.get("changes", {})),
                    f"{r['iteration']:,} / {r['total_iterations']:,}"
                    + ("" if r.get("finished") else " (unfinished)"),
                    format_duration(r.get("train_seconds", 0)),
                    f"{scores['psnr']:.2f}" if scores else "-",
                    f"{scores['ssim']:.4f}" if scores else "-",
                    source or "-",
                ],
            )
        )
    if not rows:
        return (
            f"no runs under {root} (a run folder holds run.json once training saved a checkpoint)"
        )
    header = ["run", "stage", "changed from the paper", "iterations", "time"]
    header += [f"{split} PSNR", f"{split} SSIM", "scored by"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for _, cells in sorted(rows, key=lambda x: x[0])]
    return "\n".join(lines)
