"""The experiment report a student hands in, assembled from what the kit already wrote:

    <out>/report.md              recipes of the best SRResNet and SRGAN, the test table beside bicubic and
                                 the paper, the attempts table, and the figures below, linked
    <out>/losses_<run>.png/.pdf  loss curves (and validation PSNR) of the two best runs
    <out>/grid_<split>.png/.pdf  the comparison figure of the test set (Set5 by default)
    <out>/mos_distribution.*     the rating study's score distribution, when one was scored

Sources: the runs' run.json records (sr_course/runs.py), the test results of `test` / test.ipynb
(<runs_dir>/test/results.json), the outputs kept for human evaluation (<runs_dir>/outputs), a
scored rating study (<runs_dir>/rating) and the checkpoints. Whatever is missing (no SRGAN run yet,
a test set not downloaded, no test results, no outputs kept) is said in the report, not raised.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt

from ..config import lookup
from ..course import COURSE_SETS
from ..data.lists import DataError
from ..utils import atomic_write, format_duration
from .evaluate import format_table
from .runs import find_runs, runs_table, score_on
from .visualize import comparison_grid, default_methods, plot_history

# Ledig et al. 2017, Table 2: PSNR (dB) / SSIM, x4, Y channel.
PAPER = {
    "SRResNet (paper)": {
        "Set5": (32.05, 0.9019),
        "Set14": (28.49, 0.8184),
        "B100": (27.58, 0.7620),
    },
    "SRGAN (paper)": {"Set5": (29.40, 0.8472), "Set14": (26.02, 0.7397), "B100": (25.16, 0.6688)},
}
# The settings a reader of the report needs to know for each stage (beside what changed).
RECIPE_KEYS = {
    "srresnet": ("srresnet.lr", "srresnet.batch_size", "srresnet.epochs", "srresnet.lr_decay_at",
                 "srresnet.loss", "data.crop_size", "model.arch"),
    "srgan": ("srgan.mode", "srgan.lr", "srgan.batch_size", "srgan.epochs", "srgan.lr_decay_at",
              "srgan.content_loss", "srgan.pixel_weight", "srgan.adv_weight", "srgan.gan", "srgan.d_steps",
              "srgan.label_smoothing", "data.crop_size", "model.arch"),
}  # fmt: skip


def best_run(root, stage: str, split: str):
    """(folder, record, scores, scored by) of the stage's run with the best PSNR on split; a run
    without scores only when none has any; None when the stage has no run."""

    found = [(f, r, *score_on(r, split)) for f, r in find_runs(root) if r.get("stage") == stage]
    if not found:
        return None
    return max(found, key=lambda x: (x[2] is not None, x[2]["psnr"] if x[2] else 0.0))


def _recipe(folder: Path, record: dict, scores, source: str, split: str) -> list[str]:

    stage = record["stage"]
    lines = [
        f"- run: `{folder.name}` ({record['iteration']:,} of {record['total_iterations']:,} iterations"
        + ("" if record.get("finished") else ", unfinished")
        + f", {format_duration(record.get('train_seconds', 0))} on {record.get('gpu') or record.get('device')})",
        "- settings: "
        + ", ".join(f"{k}={lookup(record['config'], k)}" for k in RECIPE_KEYS[stage]),
    ]
    changes = record.get("changes", {})
    lines.append(
        "- changed from the paper's recipe: "
        + (", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changes.items()) or "nothing")
    )
    if scores:
        lines.append(f"- {split}: {scores['psnr']:.2f} dB / SSIM {scores['ssim']:.4f} ({source})")
    else:
        lines.append(f"- {split}: not scored yet (run the test on its checkpoint)")
    return lines


def _test_table(results: dict) -> list[str]:
    """The test results beside bicubic and the paper's rows, over the five sets (missing: -), with
    the evaluation's notes (skipped images, a random LPIPS backbone)."""

    table = dict(results["table"])
    splits = [s for s in COURSE_SETS if s in results["per_image"]] or list(results["per_image"])
    extra = [s for s in results["per_image"] if s not in splits]
    splits += extra
    for name, scores in PAPER.items():
        if any(s in scores for s in splits):
            table[name] = {s: {"psnr": p, "ssim": q} for s, (p, q) in scores.items()}
    lines = format_table(table, splits).splitlines()
    if not any(name in table for name in PAPER):
        lines += ["", "The paper's rows (Table 2) are for Set5, Set14 and B100, not tested here."]
    for note in results.get("notes", []):
        lines += ["", f"Note: {note}."]
    missing = [s for s in COURSE_SETS if s not in results["per_image"]]
    if missing:
        lines += [
            "",
            f"Not tested: {', '.join(missing)} (the course's five sets; download them with "
            "`python data_prep/download.py` and test again).",
        ]
    return lines


# What to run for a missing part, with the report's profile: the commands then write where the
# report reads (runs/<profile>/outputs, runs/<profile>/rating).
_OUTPUTS_HINT = (
    "`python -m sr_course outputs --profile {profile} --models srresnet=... srgan=... --splits "
    "{split}` (or the super_resolution notebook) keeps them."
)
_RATING_HINT = (
    "`python -m sr_course rate --profile {profile} --split {split} --models srresnet=... "
    "srgan=...` writes a blind rating page; `rate --profile {profile} --score ratings/*.json` "
    "turns the raters' files into the MOS per method."
)


def _outputs_of(index: Path, split: str) -> str:
    """'5 images x 3 methods (bicubic, srresnet, srgan)' of split in an outputs index, or ''."""
    with open(index, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    if not rows:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    images = {r["image"] for r in rows}
    return f"{len(images)} images x {len(methods)} methods ({', '.join(methods)})"


def write_report(
    config, out_dir=None, runs_dir=None, split: str | None = None, verbose=True
) -> Path:
    """Write the report folder (default <runs_dir>/report); returns the path of report.md."""
    runs = Path(runs_dir or config.runs_dir)
    out = Path(out_dir) if out_dir is not None else runs / "report"
    out.mkdir(parents=True, exist_ok=True)
    splits = list(config.data.test_splits)
    split = split or ("Set5" if "Set5" in splits else splits[0])
    md = [f"# Experiment report: {split} and the test sets", ""]
    missing = []
    checkpoints = {}
    for stage, title in (("srresnet", "SRResNet"), ("srgan", "SRGAN")):
        md += [f"## {title}: the best run", ""]
        best = best_run(runs, stage, split)
        if best is None:
            md += [
                f"No {title} run under `{runs}` yet (train it, then write the report again).",
                "",
            ]
            missing.append(f"an {title} run")
            continue
        folder, record, scores, source = best
        md += _recipe(folder, record, scores, source, split) + [""]
        history = {"train": record.get("losses", []), "val": record.get("validation", [])}
        if history["train"]:
            named = folder.name.lower() not in (stage, title.lower())
            label = f"{title}: {folder.name}" if named else title
            plt.close(plot_history(history, out / f"losses_{stage}", title=label))
            md += [f"![{title} losses](losses_{stage}.png)", ""]
        ckpt = next((folder / n for n in ("best.pt", "last.pt") if (folder / n).exists()), None)
        if ckpt is not None:
            checkpoints[title] = ckpt
    md += [
        "## Test results (PSNR dB / SSIM on the Y channel, LPIPS on RGB (lower is better), "
        "4-pixel border)",
        "",
    ]
    results_path = runs / "test" / "results.json"
    try:
        results = json.loads(results_path.read_text())
        md += _test_table(results) + [""]
    except (OSError, ValueError):
        md += [
            f"No test results at `{results_path}`: run the evaluation of test.ipynb (or "
            "`python -m sr_course test --models ...`) first.",
            "",
        ]
        missing.append("test results")
    md += ["## Attempts", "", runs_table(runs, split), ""]
    md += ["## Human evaluation", ""]
    index = runs / "outputs" / "index.csv"  # `outputs` / super_resolution.ipynb (outputs.py)
    kept = _outputs_of(index, split) if index.exists() else ""
    if kept:
        md += [
            f"The x4 output of every {split} image, per method, for rating by eye: "
            f"`{index.parent}` ({kept}; the scores of each image in `index.csv`).",
            "",
        ]
    else:
        hint = _OUTPUTS_HINT.format(profile=config.profile, split=split)
        md += [f"No {split} outputs kept yet for human evaluation: {hint}", ""]
        missing.append(f"the {split} outputs for human evaluation")
    mos = runs / "rating" / "mos.md"
    if mos.exists():  # a blind rating study scored with `rate --score` (sr_course/rating.py)
        md += ["### Mean opinion score (1-5)", "", mos.read_text().strip(), ""]
        for suffix in (".png", ".pdf"):
            shutil.copy2(
                mos.with_name("mos_distribution" + suffix), out / ("mos_distribution" + suffix)
            )
        md += ["![score distribution](mos_distribution.png)", ""]
    else:
        hint = _RATING_HINT.format(profile=config.profile, split=split)
        md += [f"No rating study scored yet (optional): {hint}", ""]
    md += [f"## {split}: comparison", ""]
    try:
        plt.close(
            comparison_grid(split, default_methods(checkpoints), config, out=out / f"grid_{split}")
        )
        md += [f"![{split} comparison](grid_{split}.png)", ""]
    except (DataError, FileNotFoundError, ValueError) as err:
        md += [f"No comparison figure: {err}", ""]
        missing.append(f"the {split} figure")
    if missing:
        md += ["## Missing", "", "Not yet in this report: " + "; ".join(missing) + ".", ""]
    path = out / "report.md"
    with atomic_write(path, "w") as f:
        f.write("\n".join(md))
    if verbose:
        files = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".pdf"))
        print(f"report written to {path} with {len(files)} figure files ({', '.join(files)})")
    return path
