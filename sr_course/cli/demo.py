"""`python -m sr_course demo`: the whole pipeline on the built-in sample, offline, on a CPU.

    1. build the sample dataset (real photographs from scikit-image) if it is missing
    2. train SRResNet (demo profile: about 1,500 iterations)
    3. train SRGAN from it (the paper's recipe: generator initialised from SRResNet; the demo
       profile's length, 150 iterations, as in the notebooks)
    4. evaluate on the Sample test split beside bicubic (MATLAB protocol)
    5. keep every test image's x4 output for human evaluation
    6. write the report a student would hand in (sr_course/evaluation/report.py), whose
       comparison grid is also <out>/grid.png

Writes <out>/results.json:
    {"sets": {"Sample": {"bicubic": {"psnr": .., "ssim": .., "lpips": ..}, "srresnet": {..},
              "srgan": {..}}}, "seconds": ..}
and <out>/grid.png (+ grid.pdf), with checkpoints (and run.json) in <out>/srresnet and <out>/srgan,
the evaluation's tables in <out>/test, the outputs in <out>/outputs and the report in <out>/report:
<out> is laid out like a profile's runs folder (`python -m sr_course runs <out>` and
`report --runs <out>` read it). Re-running resumes (or reuses) the trained models, and when none
was trained again keeps the results, figures and report it made; --fresh starts over.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..config import load_config
from ..data.sample import build_sample
from ..evaluation.evaluate import evaluate
from ..evaluation.outputs import save_outputs
from ..evaluation.report import write_report
from ..evaluation.visualize import comparison_grid, default_methods
from ..train.trainer import Trainer
from ..utils import atomic_write


def run_demo(
    out_dir="runs/demo",
    data_root=None,
    fresh: bool = False,
    iterations: int | None = None,
    profile: str = "demo",
) -> dict:
    """Run the demo and return the results dict. `iterations` caps each training stage (for quick
    tests); the default trains the demo profile's full length."""
    start = time.perf_counter()
    out = Path(out_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    overrides = {"runs_dir": str(out)}
    if data_root:
        overrides["data_root"] = str(data_root)
    cfg = load_config(profile, **overrides)
    print(
        f"== sr_course demo: profile {cfg.profile}, data in {cfg.data_root}/sample, results in {out}"
    )

    if not (Path(cfg.data_root) / "lists" / "Sample.csv").exists():
        print("== 1. building the sample dataset (scikit-image photographs, MATLAB-bicubic LR)")
        build_sample(cfg.data_root)
    else:
        print("== 1. sample dataset: already built")

    print("== 2. SRResNet")
    cfg_g = load_config(profile, **overrides, train={"max_iterations": iterations})
    trainer = Trainer(cfg_g, "srresnet", resume="auto")
    trainer.fit()
    srresnet_ckpt = trainer.out_dir / "last.pt"

    print("== 3. SRGAN, initialised from the SRResNet")
    cfg_gan = load_config(
        profile,
        **overrides,
        srgan={"mode": "paper", "srresnet_checkpoint": str(srresnet_ckpt)},
        train={"max_iterations": iterations},
    )
    gan = Trainer(cfg_gan, "srgan", resume="auto")
    gan.fit()

    # The checkpoints, not the networks in memory: their scores then go into each run's run.json.
    models = {"srresnet": srresnet_ckpt, "srgan": gan.out_dir / "last.pt"}
    results_file = out / "results.json"
    made = [results_file, out / "grid.png", out / "grid.pdf", out / "report" / "report.md"]
    if all(f.exists() for f in made) and results_file.stat().st_mtime > max(
        p.stat().st_mtime for p in models.values()
    ):
        # Nothing was trained this time: the results, figures and report still hold.
        print(f"== 4-6. results, figures and report are up to date: {results_file}")
        return json.loads(results_file.read_text())

    print("== 4. evaluation (Y channel, 4-pixel border, 8-bit output) beside bicubic")
    splits = list(cfg.data.test_splits)
    result = evaluate(models, splits, cfg, out_dir=out / "test")
    sets = {
        split: {name: result["table"][name][split] for name in ("bicubic", *models)}
        for split in splits
    }

    print("== 5. the outputs for human evaluation")
    save_outputs(models, splits, cfg, out / "outputs", verbose=False)

    print("== 6. report, and the comparison grid")
    report = write_report(cfg)
    # The report draws the grid of these two checkpoints (its best runs: the demo has one each);
    # drawing it again for <out>/grid.* would double the demo's slowest step.
    png, pdf = out / "grid.png", out / "grid.pdf"
    drawn = [report.parent / f"grid_{splits[0]}{s}" for s in (".png", ".pdf")]
    if all(f.exists() for f in drawn):
        for source, target in zip(drawn, (png, pdf)):
            shutil.copyfile(source, target)
    else:
        methods = default_methods({"SRResNet": models["srresnet"], "SRGAN": models["srgan"]})
        comparison_grid(splits[0], methods, cfg, out=out / "grid")

    seconds = time.perf_counter() - start
    results = {"sets": sets, "seconds": round(seconds, 1)}
    with atomic_write(out / "results.json", "w") as f:
        f.write(json.dumps(results, indent=1) + "\n")
    for split, rows in sets.items():
        gain = rows["srresnet"]["psnr"] - rows["bicubic"]["psnr"]
        print(
            f"{split}: SRResNet {rows['srresnet']['psnr']:.2f} dB vs bicubic {rows['bicubic']['psnr']:.2f} dB ({gain:+.2f} dB)"
        )
    print(f"demo done in {seconds:.0f} s: {out / 'results.json'}, {png}, {pdf}, {report}")
    return results


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on the built-in sample, offline, on a CPU (a few minutes)",
        description="Builds the sample dataset, trains SRResNet and (briefly) SRGAN with the demo profile, "
        "evaluates beside bicubic and draws the comparison grid. Writes <out>/results.json and <out>/grid.png.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--data-root", help="data root (default: the demo profile's, data/)")
    p.add_argument(
        "--fresh", action="store_true", help="delete <out> first instead of reusing trained models"
    )
    p.add_argument(
        "--iterations",
        type=int,
        help="cap each training stage at this many iterations (quick look)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    run_demo(args.out, data_root=args.data_root, fresh=args.fresh, iterations=args.iterations)
    return 0
