"""`python -m sr_course super-resolve`: your own images, x4, with a checkpoint."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from ..data.lists import BadImage, read_image, write_png
from ..errors import MissingFile
from ..evaluation.inference import load_generator, super_resolve
from .common import tile_size


def register(sub) -> None:
    p = sub.add_parser(
        "super-resolve",
        help="super-resolve your own images with a checkpoint",
        description="Example: python -m sr_course super-resolve runs/course/srgan/last.pt photo.png --out runs/sr",
    )
    p.add_argument("checkpoint", help="a checkpoint written by training (last.pt / best.pt)")
    p.add_argument("images", nargs="+", help="input (low-resolution) images")
    p.add_argument("--out", default="runs/sr", help="output folder (default runs/sr)")
    p.add_argument("--tile", type=tile_size, help="tile size in LR pixels (default: automatic)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    p.set_defaults(func=run)


def run(args) -> int:
    inputs = _input_images(args.images)
    model = load_generator(args.checkpoint, args.device)
    out = Path(args.out)
    targets = _output_names(inputs, out, model.scaling_factor)
    failed = []
    for path, target in zip(inputs, targets):
        try:
            lr = read_image(path)
        except (BadImage, FileNotFoundError) as err:
            failed.append(path)
            print(f"skipped {path}: {err}", file=sys.stderr)
            continue
        sr = super_resolve(model, lr, tile=args.tile)
        write_png(sr, target)
        print(f"{path} ({lr.shape[1]}x{lr.shape[0]}) -> {target} ({sr.shape[1]}x{sr.shape[0]})")
    if failed:
        print(
            f"error: {len(failed)} of {len(inputs)} images could not be read (named above); the others "
            f"are in {out}",
            file=sys.stderr,
        )
        return 1
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _input_images(items: list[str]) -> list[Path]:
    """Files as given, and the images inside folders (sorted); a missing path is refused."""
    inputs = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise MissingFile(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            inputs += found
        elif path.is_file():
            inputs.append(path)
        else:
            raise MissingFile(f"input image {path} does not exist")
    return inputs


def _output_names(inputs: list[Path], out: Path, scale: int) -> list[Path]:
    """<stem>_x<scale>.png for each input; inputs that share a stem (a.png and a.jpg, or two
    folders' a.png) get their extension and then their folder added, so none overwrites another."""
    stems = Counter(p.stem for p in inputs)
    names = [p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix[1:]}" for p in inputs]
    counts = Counter(names)
    names = [
        n if counts[n] == 1 else f"{p.parent.name or 'here'}_{n}" for p, n in zip(inputs, names)
    ]
    taken: Counter = Counter()
    unique = []
    for n in names:  # still equal (a/x.png and b/a/x.png...): number them
        taken[n] += 1
        unique.append(n if taken[n] == 1 else f"{n}_{taken[n]}")
    return [out / f"{n}_x{scale}.png" for n in unique]
