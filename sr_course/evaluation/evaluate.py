"""evaluate(): PSNR/SSIM (and LPIPS) of models on test sets beside bicubic, and its tables.

    evaluate(models, splits, config, out_dir) -> {"table", "per_image", "images", "notes"}
    format_table(table, splits)               the Markdown table of README and report

The metrics themselves (the papers' protocol) are in sr_course/evaluation/metrics.py.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import SRDataset
from ..data.imresize import imresize
from ..errors import SettingError
from ..utils import atomic_write, get_device
from .inference import as_generator, lr_tensor, super_resolve, super_resolve_tensor
from .metrics import lpips_distance, lpips_model, score_sr
from .runs import record_test

# --- evaluation of models over test sets ---------------------------------------------------------

# A model this far below bicubic is either barely trained or fed/read in the wrong value range; the
# warning fires only when reading it in another range closes the gap (see _range_mismatch).
FAR_BELOW_BICUBIC_DB = 3.0

# The mistakes students make with value ranges, by the range LR is given in: (LR in [0, 1] -> that
# range, the readings of the raw output it gives: (what the reading is called, output -> [0, 255])).
# Each input range costs one forward pass per image, which its readings share.
RANGE_READINGS = (
    (
        lambda x: x,
        (
            ("its output read as [0, 1]", lambda y: y * 255),
            ("its output read as [0, 255]", lambda y: y),
        ),
    ),
    (lambda x: x * 2 - 1, (("its input given in [-1, 1]", lambda y: (y + 1) * 127.5),)),
    (lambda x: x * 255, (("its input given in [0, 255]", lambda y: (y + 1) * 127.5),)),
)


@torch.no_grad()
def _range_mismatch(net, ds, scale: int, tile, target_psnr: float, images: int = 2):
    """(reading, PSNR) of the first other value-range reading that scores at least `target_psnr` on
    the first `images` images of `ds`, else None: evidence that the model works, in another range."""
    pairs = [(lr_tensor(ds.lr_uint8(i)), ds.hr_uint8(i)) for i in range(min(images, len(ds)))]
    for given, readings in RANGE_READINGS:
        outputs = [super_resolve_tensor(net, given(lr), tile=tile) for lr, _ in pairs]
        for reading, read in readings:
            scores = []
            for y, (_, hr) in zip(outputs, pairs):
                sr = torch.floor(read(y[0].float()).clamp(0, 255) + 0.5).to(torch.uint8)
                scores.append(score_sr(sr.permute(1, 2, 0).cpu().numpy(), hr, scale)[0])
            if float(np.mean(scores)) >= target_psnr:
                return reading, float(np.mean(scores))
    return None


def evaluate(
    models: dict,
    splits,
    config,
    out_dir=None,
    device=None,
    tile: int | None = None,
    verbose: bool = True,
) -> dict:
    """PSNR/SSIM of each model on each test split under the SR protocol, with a bicubic row.

    models: {name: model or checkpoint path}; a model maps (N, 3, h, w) in [0, 1] to [-1, 1].
    splits: test split names (Set5, Set14, B100, Urban100, DIV2K_valid, Sample, ...).
    The 'bicubic' row is our MATLAB-exact imresize x scale of the LR. Returns
        {"table": {method: {split: {"psnr", "ssim"}}}, "per_image": {split: {method: [{name, psnr, ssim}]}}}
    "images": {split: {"scored", "found"}} and "notes" (what a reader of the table must know: skipped
    images, a random LPIPS backbone); with out_dir, writes results.csv (per image),
    results.md (the table, with a note for each split whose data list skipped images) and
    results.json, each atomically. Warns when a model scores far below bicubic (the classic
    input/output range mismatch).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    nets = {"bicubic": None}
    for name, model in models.items():
        if name == "bicubic":
            raise SettingError(
                "the name 'bicubic' is reserved for the bicubic row; name your model otherwise"
            )
        nets[name] = as_generator(model, device)
    scale = int(config.scale)
    settings = config.get("lpips", {})
    lpips_weights = settings.get("weights", "imagenet")
    perceptual = lpips_model(lpips_weights, device) if settings.get("enabled", True) else None
    per_image: dict = {}
    images: dict = {}
    table: dict = {name: {} for name in nets}
    for split in splits:
        ds = SRDataset(split, config)
        images[split] = {"scored": len(ds), "found": max(ds.images_found, len(ds))}
        rows = per_image[split] = {name: [] for name in nets}
        for i in range(len(ds)):
            lr, hr = ds.lr_uint8(i), ds.hr_uint8(i)
            for name, net in nets.items():
                sr = imresize(lr, scale) if net is None else super_resolve(net, lr, tile=tile)
                p, s = score_sr(sr, hr, scale)
                row = {"name": ds.name(i), "psnr": p, "ssim": s}
                if perceptual is not None:
                    row["lpips"] = lpips_distance(perceptual, sr, hr, scale)
                rows[name].append(row)
        for name in nets:
            table[name][split] = {
                key: float(np.mean([r[key] for r in rows[name]]))
                for key in ("psnr", "ssim", "lpips")
                if key in rows[name][0]
            }
            bicubic = table["bicubic"][split]["psnr"]
            gap = bicubic - table[name][split]["psnr"]
            if name == "bicubic" or gap <= FAR_BELOW_BICUBIC_DB:
                continue
            found = _range_mismatch(nets[name], ds, scale, tile, bicubic - FAR_BELOW_BICUBIC_DB)
            if found:
                warnings.warn(
                    f"{name} scores {gap:.1f} dB below bicubic on {split} ({table[name][split]['psnr']:.2f} vs "
                    f"{bicubic:.2f} dB), but with {found[0]} it scores {found[1]:.2f} dB on the first images: a value-range "
                    "mismatch between training and testing. The networks take LR in [0, 1] and output "
                    "[-1, 1]; convert with sr_course.utils.convert_image, the same way in both.",
                    stacklevel=2,
                )
    # a run's own record (run.json) keeps the test scores of its checkpoints
    for name, model in models.items():
        if isinstance(model, (str, Path)):
            record_test(model, table[name])
    markdown = format_table(table, splits)
    notes = [
        f"{split}: {n['scored']} of {n['found']} images scored; the data list skipped "
        f"{n['found'] - n['scored']} (see lists/{split}.csv and create_data_lists' summary)"
        for split, n in images.items()
        if n["scored"] < n["found"]
    ]
    if perceptual is not None and lpips_weights is None:
        notes.append(
            "LPIPS here uses a random AlexNet (lpips.weights=None, offline): it checks the pipeline, "
            "its numbers are not LPIPS"
        )
    if notes:
        markdown += "\n\n" + "\n".join(f"Note: {n}." for n in notes)
    result = {"table": table, "per_image": per_image, "images": images, "notes": notes}
    if verbose:
        print(markdown)
    if out_dir is not None:
        out = Path(out_dir)
        table_csv = io.StringIO(newline="")
        writer = csv.writer(table_csv)
        writer.writerow(["split", "method", "image", "psnr", "ssim", "lpips"])
        for split, methods in per_image.items():
            for name, rows in methods.items():
                for r in rows:
                    lp = f"{r['lpips']:.4f}" if "lpips" in r else ""
                    writer.writerow(
                        [split, name, r["name"], f"{r['psnr']:.4f}", f"{r['ssim']:.6f}", lp]
                    )
        for name, text in (
            ("results.md", markdown + "\n"),
            ("results.json", json.dumps(result, indent=1)),
            ("results.csv", table_csv.getvalue()),
        ):
            with atomic_write(out / name, "w") as f:
                f.write(text)
        if verbose:
            print(f"saved {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.json'}")
    return result


def format_cell(scores: dict | None) -> str:
    """'PSNR / SSIM' or 'PSNR / SSIM / LPIPS' of one method on one split; '-' when missing."""
    if not scores:
        return "-"
    cell = f"{scores['psnr']:.2f} / {scores['ssim']:.4f}"
    return cell + (f" / {scores['lpips']:.3f}" if "lpips" in scores else "")


def format_table(table: dict, splits) -> str:
    """A Markdown table: one row per method, 'PSNR / SSIM' per split (Y channel, border = scale),
    with '/ LPIPS' (lower is better) when the table has it."""
    lpips = any("lpips" in v for scores in table.values() for v in scores.values())
    what = "PSNR / SSIM / LPIPS" if lpips else "PSNR / SSIM"
    head = "| method | " + " | ".join(f"{s} {what}" for s in splits) + " |"
    rule = "|---|" + "---|" * len(splits)
    lines = [head, rule]
    for name, scores in table.items():
        cells = [format_cell(scores.get(s)) for s in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
