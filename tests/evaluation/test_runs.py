"""Run records (run.json), the `runs` table, and the SR outputs kept for human evaluation."""

import csv
import json
import os

import numpy as np
import pytest

from sr_course.cli import main
from sr_course.config import load_config
from sr_course.data.datasets import SRDataset
from sr_course.data.lists import read_image
from sr_course.evaluation.evaluate import evaluate
from sr_course.evaluation.outputs import save_outputs
from sr_course.evaluation.runs import read_record, runs_table
from sr_course.train.trainer import Trainer


@pytest.fixture(scope="module")
def two_runs(sample_root, tmp_path_factory):
    """Two smoke SRResNet runs that differ in one setting, trained once for the module."""
    runs = tmp_path_factory.mktemp("runs")
    made = {}
    for name, changes in (("base", {}), ("wide", {"G": {"n_channels": 16}})):
        cfg = load_config("smoke", data_root=str(sample_root), runs_dir=str(runs), **changes)
        Trainer(cfg, "srresnet", out_dir=runs / name, progress=False).fit()
        made[name] = cfg
    return runs, made


def test_each_run_records_its_recipe_progress_losses_and_scores(two_runs):
    runs, made = two_runs
    base, wide = read_record(runs / "base" / "run.json"), read_record(runs / "wide" / "run.json")
    cfg = made["base"]
    assert base["name"] == "base" and base["stage"] == "srresnet" and base["profile"] == "smoke"
    assert base["device"] == "cpu" and base["gpu"] is None
    assert base["iteration"] == base["total_iterations"] > 0 and base["finished"] is True
    assert base["epoch"] == cfg.srresnet.epochs
    assert base["train_seconds"] > 0
    assert (
        base["config"]["G"] == dict(cfg.G) and base["config"]["srresnet"]["lr"] == cfg.srresnet.lr
    )
    # what differs from the paper's recipe: the smoke profile's own changes, and wide's one more
    assert base["changes"]["srresnet.lr"] == [1e-4, cfg.srresnet.lr]
    assert base["changes"]["G.n_channels"] == [64, 8]
    assert wide["changes"]["G.n_channels"] == [64, 16]
    assert {k for k in wide["changes"]} == {k for k in base["changes"]}
    assert not any(
        k.startswith(("srgan.", "D.", "vgg.", "model.", "train.amp")) for k in base["changes"]
    )
    # the loss history: one record per log point, with the iteration and the loss
    assert len(base["losses"]) == base["total_iterations"] // cfg.train.log_every
    assert [r["iteration"] for r in base["losses"]][-1] == base["iteration"]
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in base["losses"])
    # validation after each epoch, and the best of them
    assert [r["epoch"] for r in base["validation"]] == list(range(1, cfg.srresnet.epochs + 1))
    assert base["best"] == max(base["validation"], key=lambda r: r["psnr"])
    assert base["test"] == {}


def test_testing_a_checkpoint_adds_its_scores_to_its_run_record(two_runs, tmp_path):
    runs, made = two_runs
    result = evaluate({"wide": runs / "wide" / "last.pt"}, ["Sample"], made["wide"], verbose=False)
    record = read_record(runs / "wide" / "run.json")
    assert record["test"] == {"last.pt": {"Sample": result["table"]["wide"]["Sample"]}}


def test_runs_table_lists_every_attempt_best_first(two_runs, capsys, monkeypatch):
    runs, _ = two_runs
    scores = {}
    for name in ("base", "wide"):
        r = read_record(runs / name / "run.json")
        test = r["test"].get("last.pt", {}).get("Sample")
        scores[name] = (test or r["best"])["psnr"]
    record_base = read_record(runs / "base" / "run.json")
    table = runs_table(runs, "Sample").splitlines()
    assert table[0] == (
        "| run | stage | changed from the paper | iterations | time | Sample PSNR | Sample SSIM "
        "| scored by |"
    )
    rows = [line.split(" | ") for line in table[2:]]
    assert [r[0].lstrip("| ") for r in rows] == sorted(scores, key=scores.get, reverse=True)
    row = dict(zip(("base", "wide"), sorted(rows, key=lambda r: r[0])))
    assert row["wide"][2].startswith("G.n_blocks=2, G.n_channels=16, data.crop_size=32")
    assert row["wide"][2].endswith("more)")
    assert (
        row["base"][3] == f"{record_base['total_iterations']} / {record_base['total_iterations']}"
    )
    assert float(row["base"][5]) == pytest.approx(scores["base"], abs=0.005)
    assert main(["runs", str(runs), "--split", "Sample"]) == 0
    heading = f"runs under {runs}, best PSNR on Sample first:"
    assert capsys.readouterr().out.splitlines() == [heading, *table]
    # Without a folder, `runs` reads SR_RUNS_DIR like every other command, and says so.
    monkeypatch.setenv("SR_RUNS_DIR", str(runs))
    assert main(["runs", "--split", "Sample"]) == 0
    assert capsys.readouterr().out.splitlines() == [heading, *table]


def test_runs_table_without_runs_says_so(tmp_path):
    assert runs_table(tmp_path) == (
        f"no runs under {tmp_path} (a run folder holds run.json once training saved a checkpoint)"
    )


def test_outputs_keeps_every_test_image_per_model_with_an_index(two_runs, tmp_path, capsys):
    runs, made = two_runs
    cfg, ckpt = made["base"], runs / "base" / "last.pt"
    out = tmp_path / "outputs"
    rows = save_outputs({"base": ckpt}, ["Sample"], cfg, out, verbose=False)
    ds = SRDataset("Sample", cfg)
    names = [ds.name(i) for i in range(len(ds))]
    for method in ("bicubic", "base"):
        for i, name in enumerate(names):
            png = read_image(out / method / "Sample" / f"{name}.png")
            assert png.shape[:2] == ds.hr_uint8(i).shape[:2] and png.dtype == np.uint8
    # the index's scores are the evaluation's, image by image
    scored = evaluate({"base": ckpt}, ["Sample"], cfg, verbose=False)["per_image"]["Sample"]
    with open(out / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert index == [{k: str(v) for k, v in r.items()} for r in rows]
    assert json.loads((out / "index.json").read_text()) == rows
    for method in ("bicubic", "base"):
        got = [r for r in rows if r["method"] == method]
        assert [r["image"] for r in got] == names
        assert [r["psnr"] for r in got] == pytest.approx(
            [s["psnr"] for s in scored[method]], abs=1e-4
        )
        assert all(r["file"] == f"{method}/Sample/{r['image']}.png" for r in got)

    # running again keeps the PNGs (same checkpoint); a changed checkpoint is written anew
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    save_outputs({"base": ckpt}, ["Sample"], cfg, out, verbose=True)
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"Sample / bicubic: 0 written, {len(names)} kept -> {out / 'bicubic' / 'Sample'}",
        f"Sample / base: 0 written, {len(names)} kept -> {out / 'base' / 'Sample'}",
    ]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamp
    Trainer(
        load_config(
            "smoke", data_root=cfg.data_root, runs_dir=cfg.runs_dir, srresnet={"epochs": 3}
        ),
        "srresnet",
        out_dir=runs / "base",
        resume="auto",
        progress=False,
    ).fit()
    capsys.readouterr()
    save_outputs({"base": ckpt}, ["Sample"], cfg, out, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Sample / bicubic: 0 written") and lines[1].startswith(
        f"Sample / base: {len(names)} written, 0 kept"
    )
    assert all(os.path.getmtime(p) * 1e9 >= stamp[p] for p in out.glob("base/Sample/*.png"))


def test_outputs_command_writes_the_same_files(two_runs, tmp_path, sample_root):
    runs, _ = two_runs
    out = tmp_path / "cli"
    code = main(
        [
            "outputs", "--profile", "smoke", f"data_root={sample_root}", "--splits", "Sample",
            "--models", f"mine={runs / 'wide' / 'best.pt'}", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    assert sorted(p.relative_to(out).parts[0] for p in out.glob("*/Sample")) == ["bicubic", "mine"]
    assert json.loads((out / "mine" / "Sample" / "source.json").read_text())["source"].startswith(
        "sha256:"
    )


def test_report_assembles_recipes_tables_and_figures(two_runs, tmp_path, capsys):
    from sr_course.evaluation.report import write_report

    runs, made = two_runs
    cfg = made["base"]
    gan_cfg = load_config(
        "smoke",
        data_root=cfg.data_root,
        runs_dir=str(runs),
        srgan={"srresnet_checkpoint": str(runs / "base" / "best.pt"), "adv_weight": 0.01},
    )
    Trainer(gan_cfg, "srgan", out_dir=runs / "gan", progress=False).fit()
    evaluate(
        {"base": runs / "base" / "best.pt", "gan": runs / "gan" / "best.pt"},
        ["Sample"],
        cfg,
        out_dir=runs / "test",
        verbose=False,
    )
    capsys.readouterr()
    path = write_report(gan_cfg, out_dir=tmp_path / "report")
    text = path.read_text()
    assert path == tmp_path / "report" / "report.md"
    best_srresnet = max(("base", "wide"), key=lambda n: _test_or_val(runs / n, "Sample"))
    assert f"## SRResNet: the best run\n\n- run: `{best_srresnet}` (" in text
    assert "## SRGAN: the best run\n\n- run: `gan` (" in text
    assert "srgan.adv_weight=0.01" in text and "srgan.adv_weight 0.001 -> 0.01" in text
    table = text.split("## Test results")[1].split("## Attempts")[0]
    assert "| method | Sample PSNR / SSIM / LPIPS |" in table
    for row in ("| bicubic | ", "| base | ", "| gan | "):
        assert row in table
    # no empty paper rows: the paper has no Sample column; the random LPIPS backbone is said
    assert "(paper)" not in table
    assert "The paper's rows (Table 2) are for Set5, Set14 and B100, not tested here." in table
    assert "Note: LPIPS here uses a random AlexNet (lpips.weights=None, offline)" in table
    assert "Not tested: Set5, Set14, B100, Urban100, DIV2K_valid" in table
    assert runs_table(runs, "Sample") in text
    # the evaluation settings are not part of a recipe
    assert "lpips" not in text.split("## Test results")[0]
    assert "srgan.srresnet_checkpoint" not in text
    human = text.split("## Human evaluation")[1].split("## Sample: comparison")[0]
    assert (
        "No Sample outputs kept yet for human evaluation: `python -m sr_course outputs --profile "
        "smoke --models srresnet=... srgan=... --splits Sample`"
    ) in human
    # the report's own profile, so the commands write where the report reads (the fault: no --profile)
    assert (
        "No rating study scored yet (optional): `python -m sr_course rate --profile smoke --split "
        "Sample --models srresnet=... srgan=...` writes a blind rating page; `rate --profile smoke "
        "--score ratings/*.json`"
    ) in human
    assert text.endswith(
        "## Missing\n\nNot yet in this report: the Sample outputs for human evaluation.\n"
    )
    save_outputs(
        {"base": runs / "base" / "best.pt"}, ["Sample"], cfg, runs / "outputs", verbose=False
    )
    text = write_report(gan_cfg, out_dir=tmp_path / "report", verbose=False).read_text()
    assert (
        f"The x4 output of every Sample image, per method, for rating by eye: `{runs / 'outputs'}` "
        "(4 images x 2 methods (bicubic, base); the scores of each image in `index.csv`)."
    ) in text
    assert "## Missing" not in text
    files = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert files == [
        "grid_Sample.pdf", "grid_Sample.png", "losses_srgan.pdf", "losses_srgan.png",
        "losses_srresnet.pdf", "losses_srresnet.png", "report.md",
    ]  # fmt: skip
    for name in ("grid_Sample.png", "losses_srgan.png", "losses_srresnet.png"):
        assert f"]({name})" in text
    assert capsys.readouterr().out.startswith(f"report written to {path} with 6 figure files")


def _test_or_val(folder, split):
    record = read_record(folder / "run.json")
    test = record["test"].get("best.pt", {}).get(split) or record["test"].get("last.pt", {}).get(
        split
    )
    return (test or record["best"])["psnr"]


def test_report_without_runs_or_results_says_what_is_missing(sample_root, tmp_path):
    from sr_course.evaluation.report import write_report

    cfg = load_config("smoke", data_root=str(sample_root), runs_dir=str(tmp_path / "runs"))
    text = write_report(cfg, verbose=False).read_text()
    assert f"No SRResNet run under `{tmp_path / 'runs'}` yet" in text
    assert f"No test results at `{tmp_path / 'runs' / 'test' / 'results.json'}`" in text
    assert text.endswith(
        "## Missing\n\nNot yet in this report: an SRResNet run; an SRGAN run; test results; the "
        "Sample outputs for human evaluation.\n"
    )
    assert (tmp_path / "runs" / "report" / "grid_Sample.png").exists()  # bicubic and HR still shown
