"""What several commands share: the config arguments, the checkpoint arguments, and reading them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import _BASE, DEFAULT_PROFILE, PROFILE_NOTES, load_config, lookup, parse_overrides
from ..errors import MissingFile, SettingError
from ..evaluation.inference import MIN_TILE

PROFILE_HELP = (
    "; ".join(f"{name} ({note})" for name, note in PROFILE_NOTES.items())
    + f"; default $SR_PROFILE, else {DEFAULT_PROFILE}"
)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help=PROFILE_HELP)
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. srresnet.lr=1e-3 data.num_workers=8",
    )


def tile_size(text: str) -> int:
    """--tile: LR pixels per tile side (at least inference.MIN_TILE), or 0 for no tiling."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value != 0 and value < MIN_TILE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a tile size: give the LR pixels per tile side ({MIN_TILE} or more), or 0 "
            "for no tiling"
        )
    return value


def add_model_arguments(p: argparse.ArgumentParser, models_help: str, out: str) -> None:
    """--models NAME=CHECKPOINT ..., --out and --tile: the commands that run checkpoints on test sets.
    `out` is the output folder's name inside the profile's runs folder (see out_folder)."""
    p.add_argument("--models", nargs="*", metavar="NAME=CHECKPOINT", help=models_help)
    p.add_argument(
        "--out", help=f"output folder (default <runs_dir>/{out}, e.g. runs/course/{out})"
    )
    p.set_defaults(default_out=out)
    p.add_argument(
        "--tile", type=tile_size, help="tile size in LR pixels for big images (default: automatic)"
    )


def config_of(args: argparse.Namespace):
    return load_config(args.profile, **parse_overrides(args.overrides))


def out_folder(args: argparse.Namespace, cfg) -> Path:
    """--out, else the command's folder in the profile's runs folder (runs/<profile>/test, ...),
    where the notebooks and `report` look for it."""
    return Path(args.out) if args.out else Path(cfg.runs_dir) / args.default_out


def named_models(items: list[str]) -> dict:
    """['srresnet=runs/course/srresnet/best.pt', 'runs/course/srgan/last.pt'] -> {name: path}
    (name defaults to the run folder's name). A name given twice is refused."""
    models, given = {}, {}
    for item in items or []:
        name, _, path = item.rpartition("=")
        path = Path(path)
        if not path.is_file():
            raise MissingFile(f"checkpoint {path} does not exist; train first or check the path")
        name = name or path.parent.name
        if name in models:
            raise SettingError(
                f"two models are named {name!r} ({given[name]} and {item}); give each its own name: "
                f"--models A={models[name]} B={path}"
            )
        models[name], given[name] = path, item
    return models


def is_config_leaf(key: str) -> bool:
    """Whether `key` (e.g. 'scale', 'data.crop_size') names a config value, not a section."""
    return not isinstance(lookup(_BASE, key, missing={}), dict)


def split_models(args: argparse.Namespace) -> None:
    """`--models a=x.pt key=value` : --models takes every word up to the next option, so move the
    config overrides (a key=value whose key is a config value, like scale=4 or data.crop_size=48)
    back to the overrides."""
    models = getattr(args, "models", None)
    if not models:
        return
    keep, moved = [], []
    for item in models:
        key = item.partition("=")[0]
        (moved if "=" in item and is_config_leaf(key) else keep).append(item)
    args.models = keep
    args.overrides = [*getattr(args, "overrides", []), *moved]
