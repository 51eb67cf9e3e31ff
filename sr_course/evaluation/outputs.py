"""The super-resolved images a student hands in for human evaluation: every image of a test split,
for each model and bicubic, as lossless PNGs with an index of their scores.

    <out>/<method>/<split>/<image>.png     the x4 output (8-bit RGB, the size of the HR image)
    <out>/<method>/<split>/source.json     what made them (a checkpoint's SHA-256, or 'bicubic')
    <out>/index.csv, <out>/index.json      split, image, method, PSNR, SSIM, file

Running again keeps the PNGs whose source is unchanged (and scores them from disk); a checkpoint
that changed (trained further, retrained) has its folder written anew.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from ..data.datasets import SRDataset
from ..data.imresize import imresize
from ..data.lists import read_image, write_png
from ..errors import SettingError
from ..utils import atomic_write, get_device
from .inference import as_generator, super_resolve
from .metrics import score_sr

SOURCE = "source.json"


def source_of(model) -> str:
    """What identifies a method's outputs: 'bicubic', 'sha256:<hex>' of a checkpoint file, or of
    an in-memory model's weights."""
    if model is None:
        return "bicubic (MATLAB imresize)"
    digest = hashlib.sha256()
    if isinstance(model, (str, Path)):
        with open(model, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    else:
        for key, tensor in model.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def _folder_for(out: Path, method: str, split: str, source: str) -> tuple[Path, bool]:
    """The method's folder for split, emptied of its PNGs when they came from another source.
    Returns (folder, whether its PNGs can be kept)."""
    folder = out / method / split
    manifest = folder / SOURCE
    try:
        same = json.loads(manifest.read_text()).get("source") == source
    except (OSError, ValueError):
        same = False
    if not same and folder.exists():
        for png in folder.glob("*.png"):
            png.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    if not same:
        with atomic_write(manifest, "w") as f:
            json.dump({"method": method, "split": split, "source": source}, f, indent=1)
    return folder, same


def save_outputs(
    models: dict, splits, config, out_dir, device=None, tile: int | None = None, verbose=True
) -> list[dict]:
    """Write the x4 output of every image of each split for bicubic and each model.

    models: {name: checkpoint path or model}. Returns the index rows
    [{split, image, method, psnr, ssim, file}] (file relative to out_dir), also written to
    index.csv and index.json.
    """

    out = Path(out_dir)
    device = get_device(device)
    methods = {"bicubic": None, **models}
    if "bicubic" in models:
        raise SettingError(
            "the name 'bicubic' is reserved for the bicubic outputs; name your model otherwise"
        )
    sources = {name: source_of(m) for name, m in methods.items()}
    loaded: dict = {}
    rows = []
    scale = int(config.scale)
    for split in splits:
        ds = SRDataset(split, config)
        for name, model in methods.items():
            folder, keep = _folder_for(out, name, split, sources[name])
            written = kept = 0
            for i in range(len(ds)):
                png = folder / f"{ds.name(i)}.png"
                if keep and png.exists():
                    sr = read_image(png)
                    kept += 1
                else:
                    lr = ds.lr_uint8(i)
                    if model is None:
                        sr = imresize(lr, scale)
                    else:
                        if name not in loaded:
                            loaded[name] = as_generator(model, device)
                        sr = super_resolve(loaded[name], lr, tile=tile)
                    write_png(sr, png)
                    written += 1
                p, s = score_sr(sr, ds.hr_uint8(i), scale)
                rows.append(
                    {
                        "split": split,
                        "image": ds.name(i),
                        "method": name,
                        "psnr": round(p, 4),
                        "ssim": round(s, 6),
                        "file": png.relative_to(out).as_posix(),
                    }
                )
            if verbose:
                print(f"{split} / {name}: {written} written, {kept} kept -> {folder}")
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, ["split", "image", "method", "psnr", "ssim", "file"])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out / "index.csv", "w") as f:
        f.write(table.getvalue())
    with atomic_write(out / "index.json", "w") as f:
        json.dump(rows, f, indent=1)
    if verbose:
        print(f"index: {out / 'index.csv'} ({len(rows)} images)")
    return rows
