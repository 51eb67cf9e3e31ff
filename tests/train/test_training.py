import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sr_course.checkpoint import (
    CheckpointError,
    convert_legacy_checkpoint,
    initialize_with_srresnet,
    load_checkpoint,
    save_checkpoint,
)
from sr_course.config import load_config
from sr_course.losses import (
    VGGContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
    pixel_mse,
)
from sr_course.models import Generator, SRResNet
from sr_course.train.guard import DivergenceError
from sr_course.train.trainer import Trainer
from sr_course.utils import format_duration

REPO = Path(__file__).resolve().parents[2]


def _cfg(sample_root, runs, **changes):
    base = {"data_root": str(sample_root), "runs_dir": str(runs)}
    base.update(changes)
    return load_config("smoke", **base)


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- losses against hand-computed values --------------------------------------------------------


def test_pixel_mse():
    sr = torch.zeros(1, 3, 2, 2)
    hr = torch.tensor([1.0, -1.0, 0.5, 0.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    assert pixel_mse(sr, hr).item() == pytest.approx((1 + 1 + 0.25 + 0) / 4)


def test_vgg_content_loss_rescaling_and_no_grad_into_hr():
    loss_fn = VGGContentLoss(torch.nn.Identity(), rescale=1 / 12.75)
    sr = torch.zeros(2, 3, 4, 4, requires_grad=True)
    hr = torch.full((2, 3, 4, 4), 0.5, requires_grad=True)
    loss = loss_fn(sr, hr)
    assert loss.item() == pytest.approx(0.25 / 12.75**2)
    loss.backward()
    assert sr.grad is not None and hr.grad is None
    assert VGGContentLoss(torch.nn.Identity(), rescale=1.0)(sr, hr).item() == pytest.approx(0.25)


def test_adversarial_losses():
    assert generator_adversarial_loss(torch.zeros(4, 1)).item() == pytest.approx(math.log(2))
    assert generator_adversarial_loss(torch.tensor([[2.0]])).item() == pytest.approx(
        math.log1p(math.exp(-2))
    )
    assert discriminator_loss(torch.zeros(3, 1), torch.zeros(3, 1)).item() == pytest.approx(
        2 * math.log(2)
    )
    # Real logit 2 against a smoothed target 0.9, fake logit -1 against 0.
    expected = (
        0.9 * math.log1p(math.exp(-2))
        + 0.1 * (2 + math.log1p(math.exp(-2)))
        + math.log1p(math.exp(-1))
    )
    got = discriminator_loss(torch.tensor([[2.0]]), torch.tensor([[-1.0]]), label_smoothing=0.1)
    assert got.item() == pytest.approx(expected, abs=1e-6)


# --- training ------------------------------------------------------------------------------------


def test_one_epoch_lowers_the_loss(sample_root, tmp_path):
    cfg = _cfg(
        sample_root,
        tmp_path,
        data={"patches_per_image": 16, "val_split": None},
        srresnet={"epochs": 1},
    )
    trainer = Trainer(cfg, "srresnet", progress=False)
    torch.manual_seed(0)
    batch = [trainer.dataset[i] for i in range(0, len(trainer.dataset), 7)]
    lr, hr = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])

    def loss():
        trainer.G_raw.eval()
        with torch.no_grad():
            return pixel_mse(trainer.G_raw(lr), hr).item()

    before = loss()
    trainer.fit()
    after = loss()
    assert after < 0.8 * before, (before, after)
    assert [r["iteration"] for r in trainer.history["train"]] == list(range(1, 25))


def _train_cli(out, sample_root, *extra):
    cmd = [
        sys.executable,
        "-m",
        "sr_course",
        "train-srresnet",
        "--profile",
        "smoke",
        "--out",
        str(out),
    ]
    cmd += [
        f"data_root={sample_root}",
        "G.n_channels=16",
        "G.n_blocks=3",
        "data.patches_per_image=20",
        "data.val_split=None",
        "train.deterministic=True",
        "train.checkpoint_every=2",
        "train.log_every=5",
        *extra,
    ]
    return cmd


def test_sigkill_and_resume_gives_bit_identical_weights(sample_root, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(
        _train_cli(tmp_path / "ref", sample_root),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ref.returncode == 0, ref.stderr
    total = load_checkpoint(tmp_path / "ref/last.pt")["iteration"]
    assert total == 60  # 6 images x 20 patches / batch 4 = 30 per epoch, 2 epochs

    proc = subprocess.Popen(
        _train_cli(tmp_path / "run", sample_root),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while not (tmp_path / "run/last.pt").exists():
        assert proc.poll() is None and time.time() < deadline, (
            "the run ended before its first checkpoint"
        )
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(tmp_path / "run/last.pt")["iteration"]
    assert killed_at < total, "the run finished before it was killed; nothing was tested"

    resumed = subprocess.run(
        _train_cli(tmp_path / "run", sample_root, "--resume"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {tmp_path / 'run/last.pt'}" in resumed.stdout
    a, b = load_checkpoint(tmp_path / "ref/last.pt"), load_checkpoint(tmp_path / "run/last.pt")
    assert b["iteration"] == total
    assert _weights_equal(a["models"]["generator"], b["models"]["generator"])
    assert (
        a["optimizers"]["generator"]["state"][0]["step"]
        == b["optimizers"]["generator"]["state"][0]["step"]
    )


def test_srgan_resume_mid_run_is_exact(sample_root, tmp_path):
    changes = {
        "srgan": {"mode": "baseline", "epochs": 2, "d_steps": 2},
        "data": {"val_split": None},
    }
    full = Trainer(
        _cfg(sample_root, tmp_path, **changes), "srgan", out_dir=tmp_path / "full", progress=False
    )
    full.fit()
    part = Trainer(
        _cfg(sample_root, tmp_path, train={"max_iterations": 4}, **changes),
        "srgan",
        out_dir=tmp_path / "part",
        progress=False,
    )
    part.fit()
    assert part.iteration == 4 and part.batch_in_epoch == 1  # stopped inside the second epoch
    rest = Trainer(
        _cfg(sample_root, tmp_path, **changes),
        "srgan",
        out_dir=tmp_path / "part",
        resume="auto",
        progress=False,
    )
    rest.fit()
    assert rest.iteration == full.iteration == 6
    assert _weights_equal(full.G_raw.state_dict(), rest.G_raw.state_dict())
    assert _weights_equal(full.D_raw.state_dict(), rest.D_raw.state_dict())
    assert rest.opt_g.param_groups[0]["lr"] == pytest.approx(1e-5)  # x0.1 after the halfway point


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(
        {"stage": "srresnet", "iteration": 1, "models": {"generator": {"w": torch.ones(3)}}}, path
    )
    before = path.read_bytes()

    def killed_mid_write(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # stands for a kill in the middle of torch.save

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"stage": "srresnet", "iteration": 2}, path)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_old_pickled_checkpoint_is_refused_with_a_way_out(tmp_path):
    old = tmp_path / "checkpoint_srresnet.pth.tar"
    model = SRResNet()
    torch.save({"epoch": 9, "model": model, "optimizer": torch.optim.Adam(model.parameters())}, old)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(old)
    msg = str(err.value)
    assert "holds pickled Python objects (the course's old format saved whole nn.Modules)" in msg
    assert "python -m sr_course convert-checkpoint OLD.pth NEW.pt" in msg
    new = convert_legacy_checkpoint(old, tmp_path / "converted.pt")
    state = load_checkpoint(new)
    assert state["stage"] == "srresnet" and state["epoch"] == 10
    assert _weights_equal(state["models"]["generator"], model.state_dict())


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(sample_root, tmp_path):
    cfg = _cfg(sample_root, tmp_path, data={"val_split": None}, srresnet={"epochs": 1})
    Trainer(cfg, "srresnet", progress=False).fit()
    good = (tmp_path / "srresnet/last.pt").read_bytes()
    cfg = _cfg(sample_root, tmp_path, data={"val_split": None}, srresnet={"epochs": 2})
    trainer = Trainer(cfg, "srresnet", resume="auto", progress=False)
    with torch.no_grad():
        trainer.G_raw.head.block[0].weight.fill_(float("nan"))
    with pytest.raises(DivergenceError) as err:
        trainer.fit()
    assert "the loss became NaN or infinite by iteration 4" in str(err.value)
    assert (
        f"the last good checkpoint {tmp_path / 'srresnet/last.pt'} (iteration 3) is intact"
        in str(err.value)
    )
    assert "Lower the learning rate (srresnet.lr=0.001 now)" in str(err.value)
    assert (tmp_path / "srresnet/last.pt").read_bytes() == good


def test_existing_run_is_not_overwritten(sample_root, tmp_path):
    cfg = _cfg(sample_root, tmp_path, data={"val_split": None}, srresnet={"epochs": 1})
    Trainer(cfg, "srresnet", progress=False).fit()
    with pytest.raises(FileExistsError, match="last.pt exists: pass --resume to continue that run"):
        Trainer(cfg, "srresnet", progress=False)


def test_initialize_with_srresnet_from_a_real_checkpoint(sample_root, tmp_path, capsys):
    cfg = _cfg(sample_root, tmp_path, data={"val_split": None}, srresnet={"epochs": 1})
    trainer = Trainer(cfg, "srresnet", progress=False)
    trainer.fit()
    g = Generator(**cfg.G)
    info = initialize_with_srresnet(g, tmp_path / "srresnet/last.pt")
    assert _weights_equal(g.state_dict(), trainer.G_raw.state_dict())
    assert info["iteration"] == 3 and info["parameters"] == 11_576
    assert "Generator initialised from" in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="does not fit this Generator"):
        initialize_with_srresnet(Generator(), tmp_path / "srresnet/last.pt")


def test_ddp_two_processes_on_cpu_end_identical(sample_root, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(REPO / "tests/train/ddp_worker.py"),
        str(sample_root),
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rank 0 of 2: 6 iterations, 12 samples" in result.stdout  # 24 samples split over 2 ranks
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert _weights_equal(w0, w1)
    assert (tmp_path / "run/last.pt").exists()


def test_trainer_estimates_the_remaining_time_after_its_warm_up(sample_root, tmp_path, capsys):
    cfg = _cfg(sample_root, tmp_path, data={"val_split": None}, srresnet={"epochs": 12})
    trainer = Trainer(cfg, "srresnet", progress=False)
    assert trainer.total_iterations == 36 and trainer.estimate is None
    trainer.fit()
    after = Trainer.ESTIMATE_AFTER + Trainer.ESTIMATE_OVER
    assert trainer.estimate["iterations_left"] == 36 - after
    rate = trainer.estimate["it_per_s"]
    assert trainer.estimate["seconds_left"] == pytest.approx((36 - after) / rate)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " it/s over iterations " in ln]
    assert lines == [
        f"[srresnet] {rate:.2f} it/s over iterations {Trainer.ESTIMATE_AFTER + 1}-{after}: the "
        f"remaining {36 - after} iterations take about {format_duration((36 - after) / rate)} at this pace"
    ]


def test_format_duration():
    assert [format_duration(s) for s in (7, 95, 3725, 14400)] == [
        "7 s",
        "1 min 35 s",
        "1 h 02 min",
        "4 h 00 min",
    ]


def test_course_profile_is_the_paper_recipe_on_a_shorter_schedule():
    paper, course = load_config("paper"), load_config("course")
    assert course.G == paper.G and course.D == paper.D and course.vgg == paper.vgg
    assert course.data == paper.data
    for stage in ("srresnet", "srgan"):
        differ = {k for k in paper[stage] if paper[stage][k] != course[stage][k]}
        assert differ == {"epochs"}, stage
    # 800 DIV2K images x 100 patches / batch 16 = 5,000 iterations per epoch
    per_epoch = 800 * paper.data.patches_per_image // paper.srresnet.batch_size
    assert course.srresnet.epochs * per_epoch == 100_000
    assert course.srgan.epochs * per_epoch == 100_000 and course.srgan.lr_decay_at == 0.5


def test_resume_applies_a_new_learning_rate_and_refuses_a_new_batch_size(
    sample_root, tmp_path, capsys
):
    """Recovering from a divergence: lower the learning rate and resume (issue: the old rate came back)."""
    first = Trainer(
        _cfg(sample_root, tmp_path, train={"max_iterations": 2}), "srresnet", progress=False
    )
    first.fit()
    assert first.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)
    lowered = _cfg(sample_root, tmp_path, srresnet={"lr": 1e-4}, train={"max_iterations": 4})
    resumed = Trainer(lowered, "srresnet", resume="auto", progress=False)
    assert resumed.iteration == 2
    assert resumed.opt_g.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert resumed.sched_g.get_last_lr() == [pytest.approx(1e-4)]
    assert (
        "resumed with changed settings: srresnet.lr 0.001 -> 0.0001 (applied from the next step)"
        in capsys.readouterr().out
    )
    resumed.fit()
    assert load_checkpoint(tmp_path / "srresnet" / "last.pt")["optimizers"]["generator"][
        "param_groups"
    ][0]["lr"] == pytest.approx(1e-4)

    bigger = _cfg(sample_root, tmp_path, srresnet={"batch_size": 2})
    with pytest.raises(CheckpointError) as err:
        Trainer(bigger, "srresnet", resume="auto", progress=False)
    assert str(err.value) == (
        f"{tmp_path / 'srresnet' / 'last.pt'} was trained with srresnet.batch_size=4; it cannot change "
        "on resume (the position inside the epoch is counted in batches of it). Resume with "
        "srresnet.batch_size=4, or start a new run with another --out"
    )


def test_changed_model_code_is_noticed_on_resume_and_fresh_starts_over(
    sample_root, tmp_path, capsys, monkeypatch
):
    # The fault: re-running a training cell after fixing a bug said "already trained; nothing to do"
    # and kept the weights trained with the buggy model.
    import sr_course.train.resume as trainer_module

    cfg = _cfg(sample_root, tmp_path, data={"val_split": None}, srresnet={"epochs": 1})
    Trainer(cfg, "srresnet", progress=False).fit()
    first = load_checkpoint(tmp_path / "srresnet/last.pt")
    assert first["code"] == trainer_module.code_fingerprint()
    real = trainer_module.code_fingerprint()
    monkeypatch.setattr(trainer_module, "code_fingerprint", lambda: {**real, "models.py": "0" * 16})
    capsys.readouterr()
    Trainer(cfg, "srresnet", resume="auto", progress=False).fit()
    out = capsys.readouterr().out
    assert (
        f"note: sr_course/models.py changed since {tmp_path / 'srresnet/last.pt'} was written, so its "
        "weights come from your earlier code. To train from scratch with the code as it is now, start "
        "fresh: Trainer(..., fresh=True) in a notebook, --fresh on the command line"
    ) in out
    assert "already trained (3 iterations); nothing to do" in out
    trainer = Trainer(cfg, "srresnet", resume="auto", fresh=True, progress=False)
    assert trainer.iteration == 0
    assert (
        f"fresh start: moved the earlier run's last.pt, run.json to {tmp_path / 'srresnet/earlier-1'}"
        in capsys.readouterr().out
    )
    trainer.fit()
    kept = load_checkpoint(tmp_path / "srresnet/earlier-1/last.pt")
    assert _weights_equal(kept["models"]["generator"], first["models"]["generator"])
    assert load_checkpoint(tmp_path / "srresnet/last.pt")["code"]["models.py"] == "0" * 16
