"""Faults and bad input, one test (or a few) per item of the fault audit: each reproduces what went
wrong (a wrong result, a lost or stale file, a traceback) and checks the one clear outcome instead.

Downloads (item 2) are in test_download.py against a local server; a changed learning rate on
resume (item 1) is in test_training.py.
"""

import csv
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import sr_course.cli.test as test_command
from sr_course.checkpoint import (
    CheckpointError,
    convert_legacy_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from sr_course.cli import main
from sr_course.config import load_config
from sr_course.data.datasets import SRDataset
from sr_course.data.download import DownloadError
from sr_course.data.imresize import imresize
from sr_course.data.lists import DataError, create_data_lists, read_image
from sr_course.errors import UserError
from sr_course.evaluation.evaluate import evaluate
from sr_course.evaluation.inference import super_resolve
from sr_course.evaluation.rating import RatingError
from sr_course.models import SRResNet
from sr_course.train.guard import DivergenceError, RunLockedError
from sr_course.train.trainer import Trainer
from sr_course.utils import to_uint8

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def own_root(sample_root, tmp_path):
    """A copy of the sample this test may change."""
    root = tmp_path / "data"
    shutil.copytree(sample_root / "sample", root / "sample")
    return root


def _cfg(root, runs, **changes):
    return load_config("smoke", data_root=str(root), runs_dir=str(runs), **changes)


def _cli(capsys, *argv):
    """main(argv) in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _checkpoint(path: Path) -> Path:
    model = SRResNet(n_channels=8, n_blocks=1)
    save_checkpoint(
        {
            "stage": "srresnet",
            "epoch": 1,
            "batch_in_epoch": 0,
            "iteration": 3,
            "config": {
                "profile": "smoke",
                "scale": 4,
                "G": {**load_config("smoke").G, "n_channels": 8, "n_blocks": 1},
            },
            "models": {"generator": model.state_dict()},
        },
        path,
    )
    return path


# --- 3. scale other than 4 --------------------------------------------------------------------


def test_scale_2_trains_on_x2_pairs_made_from_the_hr(own_root, tmp_path):
    # The fault: x4 LR crops were paired with x2 HR crops; training ran on garbage pairs.
    cfg = _cfg(own_root, tmp_path, scale=2, G={"scaling_factor": 2}, train={"max_iterations": 3})
    ds = SRDataset("train", cfg)
    hr = ds.hr_uint8(0)
    assert np.array_equal(np.asarray(ds._array(0, "lr")), imresize(hr, 0.5))
    lr, hr_patch = ds[0]
    assert lr.shape == (3, 16, 16) and hr_patch.shape == (3, 32, 32)
    test = SRDataset("Sample", cfg)
    for i in range(len(test)):
        h, w = test.hr_uint8(i).shape[:2]
        assert test.lr_uint8(i).shape[:2] == (h // 2, w // 2)
    cached = sorted(p.name.split(".")[1] for p in (own_root / "cache" / "Sample_train").iterdir())
    assert "lr_x2" in cached and "lr" not in cached  # the x4 LR files are not what trains
    trainer = Trainer(cfg, "srresnet", progress=False)
    trainer.fit()
    assert trainer.G_raw.scaling_factor == 2
    assert [r["iteration"] for r in trainer.history["val"]] == [3]  # validation at x2 works too
    assert np.isfinite(trainer.history["val"][0]["psnr"])


# --- 4. replaced training images ----------------------------------------------------------------


def test_a_replaced_training_image_is_decoded_again(own_root, tmp_path):
    cfg = _cfg(own_root, tmp_path)
    ds = SRDataset("train", cfg)
    old = np.asarray(ds._array(0, "hr")).copy()
    hr_path = own_root / ds.rows[0]["hr"]
    new = 255 - read_image(hr_path)  # same size, other pixels
    Image.fromarray(new).save(hr_path)
    os.utime(hr_path, ns=(time.time_ns(), time.time_ns() + 10**9))  # mtime surely moves on
    create_data_lists(own_root, ["Sample_train"], force=True, verbose=False)
    fresh = SRDataset("train", cfg)
    got = np.asarray(fresh._array(0, "hr"))
    assert not np.array_equal(got, old)
    assert np.array_equal(got, new[: got.shape[0], : got.shape[1]])
    stem = Path(ds.rows[0]["hr"]).stem
    assert len(list((own_root / "cache" / "Sample_train").glob(f"{stem}.hr.*.npy"))) == 1


# --- 5. one run per folder ------------------------------------------------------------------------


def test_resume_from_into_a_folder_holding_another_run_is_refused(sample_root, tmp_path, capsys):
    common = ["--profile", "smoke", f"data_root={sample_root}", "data.val_split=None"]
    for run in ("a", "b"):
        code, _, err = _cli(capsys, "train-srresnet", "--out", tmp_path / run, *common)
        assert code == 0, err
    b_before = (tmp_path / "b" / "last.pt").read_bytes()
    code, _, err = _cli(
        capsys,
        "train-srresnet",
        "--resume-from",
        tmp_path / "a" / "last.pt",
        "--out",
        tmp_path / "b",
        *common,
        "srresnet.epochs=3",
    )
    assert code == 1
    assert _one_error_line(err) == (
        f"error: {tmp_path / 'b'} already holds a run ({tmp_path / 'b' / 'last.pt'}); resuming "
        f"{tmp_path / 'a' / 'last.pt'} into it would overwrite it: choose another --out, or --resume "
        f"to continue {tmp_path / 'b'}'s own run"
    )
    assert (tmp_path / "b" / "last.pt").read_bytes() == b_before
    # resuming a run from its own last.pt by path is what --resume means, and is fine
    code, _, _ = _cli(
        capsys,
        "train-srresnet",
        "--resume-from",
        tmp_path / "b" / "last.pt",
        "--out",
        tmp_path / "b",
        *common,
        "srresnet.epochs=3",
    )
    assert code == 0 and load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 3


def test_a_folder_with_best_pt_alone_is_never_overwritten(sample_root, tmp_path, capsys):
    # The faults: a finished run's folder holding only best.pt was overwritten by a new run or
    # --resume; after a disk-full failure at the first save (best.pt written, last.pt not),
    # --resume restarted at iteration 0 and overwrote best.pt.
    run = tmp_path / "run"
    best = _checkpoint(run / "best.pt").read_bytes()
    common = ["train-srresnet", "--out", run, "--profile", "smoke", f"data_root={sample_root}"]
    for extra, verb in (([], "a new run"), (["--resume"], "resuming")):
        code, _, err = _cli(capsys, *common, *extra)
        assert code == 1
        assert _one_error_line(err) == (
            f"error: {run} holds best.pt but no last.pt to resume from; {verb} would start at "
            "iteration 0 and overwrite best.pt: pass --fresh to start over with it kept in "
            "earlier-<k>/ (fresh=True in Python), or choose another --out"
        )
        assert (run / "best.pt").read_bytes() == best
    other = _checkpoint(tmp_path / "other" / "last.pt")
    code, _, err = _cli(capsys, *common, "--resume-from", other)
    assert code == 1 and "already holds a run" in _one_error_line(err)
    assert (run / "best.pt").read_bytes() == best


def test_two_trainings_into_one_folder_are_prevented_by_a_lock(sample_root, tmp_path):
    import fcntl

    cfg = _cfg(sample_root, tmp_path, data={"val_split": None})
    trainer = Trainer(cfg, "srresnet", progress=False)
    (tmp_path / "srresnet").mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "srresnet" / ".lock", "a+") as other:  # a second training's hold
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write("process 4242")
        other.flush()
        with pytest.raises(RunLockedError) as err:
            trainer.fit()
        fcntl.flock(other, fcntl.LOCK_UN)
    assert str(err.value) == (
        f"another training is writing to {tmp_path / 'srresnet'} (process 4242 holds "
        f"{tmp_path / 'srresnet' / '.lock'}): wait for it to end, or choose another --out"
    )
    assert not (tmp_path / "srresnet" / "last.pt").exists()
    trainer.fit()  # the lock is free again
    assert load_checkpoint(tmp_path / "srresnet" / "last.pt")["iteration"] == 6


# --- 6. corrupt checkpoints are not "the old format" ---------------------------------------------


def _flip_a_weight_byte(checkpoint: bytes) -> bytes:
    """The checkpoint with one byte of a tensor's data changed, its size and zip structure kept."""
    with zipfile.ZipFile(io.BytesIO(checkpoint)) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest tensor
    raw = bytearray(checkpoint)
    h = info.header_offset
    name_len, extra_len = struct.unpack("<HH", raw[h + 26 : h + 30])  # the local file header
    raw[h + 30 + name_len + extra_len + info.file_size // 2] ^= 0xFF
    return bytes(raw)


def test_corrupt_and_empty_checkpoints_are_told_from_old_pickles(tmp_path):
    good = _checkpoint(tmp_path / "good.pt").read_bytes()
    cases = {
        "empty.pt": (b"", "is empty (0 bytes): it is not a checkpoint any more"),
        "cut.pt": (good[: len(good) // 2], "is cut short or corrupt ("),
        "garbage.pt": (b"not a checkpoint at all" * 50, "is damaged and cannot be read ("),
        # The fault: damaged bytes of the same size loaded as wrong weights (9.99 dB, not 15.66).
        "flipped.pt": (_flip_a_weight_byte(good), "fails its CRC check"),
    }
    for name, (data, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        assert words in str(err.value), name
        assert "convert-checkpoint" not in str(err.value), name
        assert "old format" not in str(err.value), name
    with pytest.raises(
        CheckpointError, match="is empty \\(0 bytes\\): there is nothing to convert"
    ):
        convert_legacy_checkpoint(tmp_path / "empty.pt", tmp_path / "new.pt")


def test_converter_without_the_old_code_gives_a_hint(tmp_path, monkeypatch):
    old_code = tmp_path / "oldcode"
    old_code.mkdir()
    (old_code / "old_models_for_test.py").write_text(
        "import torch\n\nclass OldNet(torch.nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.conv = torch.nn.Conv2d(3, 3, 3)\n"
    )
    monkeypatch.syspath_prepend(str(old_code))
    import old_models_for_test

    torch.save({"epoch": 1, "model": old_models_for_test.OldNet()}, tmp_path / "old.pth")
    monkeypatch.delitem(sys.modules, "old_models_for_test")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(old_code)])
    with pytest.raises(CheckpointError) as err:
        convert_legacy_checkpoint(tmp_path / "old.pth", tmp_path / "new.pt")
    assert str(err.value).startswith(
        f"{tmp_path / 'old.pth'} holds modules pickled from the course's old code, which is not "
        "importable here (No module named 'old_models_for_test'): run the conversion in the folder"
    )


# --- 7. failures late in a run ----------------------------------------------------------------


def test_a_test_image_too_small_for_ssim_is_refused_when_the_lists_are_made(tmp_path):
    hr_dir = tmp_path / "benchmark" / "Set5" / "HR"
    hr_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(hr_dir / "fine.png")
    Image.fromarray(rng.integers(0, 256, (16, 40, 3), dtype=np.uint8)).save(hr_dir / "tiny.png")
    (summary,) = create_data_lists(tmp_path, ["Set5"], verbose=False)
    assert summary.skipped == [
        (
            "tiny.png",
            "40x16 is too small to score: SSIM's 11x11 window needs at least 19x19 pixels with the "
            "4-pixel border removed",
        )
    ]
    cfg = load_config("smoke", data_root=str(tmp_path))
    result = evaluate({}, ["Set5"], cfg, verbose=False)  # scores without dying on tiny.png
    assert result["images"] == {"Set5": {"scored": 1, "found": 2}}


def test_a_kill_between_best_and_last_never_leaves_best_stale(sample_root, tmp_path, monkeypatch):
    import sr_course.train.trainer as trainer_module

    # (settings under which the smoke run's validation PSNR rises in its second epoch)
    cfg = _cfg(
        sample_root, tmp_path, srresnet={"epochs": 2, "lr": 3e-4}, data={"patches_per_image": 8}
    )
    trainer = Trainer(cfg, "srresnet", progress=False)
    real_save, written, killed = trainer_module.save_checkpoint, [], []

    class Killed(BaseException):
        pass

    def save_then_die(state, path):
        # the last epoch's save writes two files; the process dies between them
        if trainer.iteration == trainer.total_iterations and written and not killed:
            killed.append(Path(path).name)
            raise Killed
        if trainer.iteration == trainer.total_iterations:
            written.append(Path(path).name)
        return real_save(state, path)

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        trainer.fit()
    assert written == ["best.pt"] and killed == ["last.pt"]  # the run improved in its last epoch
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    resumed = Trainer(cfg, "srresnet", resume="auto", progress=False)
    resumed.fit()
    best, last = (
        load_checkpoint(tmp_path / "srresnet/best.pt"),
        load_checkpoint(tmp_path / "srresnet/last.pt"),
    )
    top = max(last["history"]["val"], key=lambda r: r["psnr"])
    assert best["iteration"] == top["iteration"] == last["iteration"]
    assert best["best_psnr"] == last["best_psnr"] == top["psnr"]


def test_unfinished_checkpoint_files_are_removed(sample_root, tmp_path, capsys):
    run = tmp_path / "srresnet"
    run.mkdir(parents=True)
    for k in range(3):  # what kills during saves leave behind
        (run / f".last.pt.abc{k}.tmp").write_bytes(b"x" * 1_000_000)
    (run / "notes.txt").write_text("mine")
    Trainer(_cfg(sample_root, tmp_path, data={"val_split": None}), "srresnet", progress=False).fit()
    assert sorted(p.name for p in run.iterdir()) == [".lock", "last.pt", "notes.txt", "run.json"]
    assert (
        f"removed 3 unfinished checkpoint file(s) (3.0 MB) left in {run} by interrupted saves"
        in capsys.readouterr().out
    )


# --- 8. a sentence, not a traceback -------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["srresnet.lr=abc"], "srresnet.lr='abc' is not valid: it must be a number"),
        (["srresnet.lr="], "override 'srresnet.lr=' has no value; write srresnet.lr=<value>"),
        (["G=3"], "config key 'G' is a section, not a value: set one of its keys"),
        (["data.crop_size=0"], "data.crop_size=0 is not valid: it must be positive"),
        (["data.crop_size=30"], "data.crop_size=30 is not valid: it must be a multiple of scale"),
        (["srresnet.batch_size=2.5"], "srresnet.batch_size=2.5 is not valid: it must be a whole"),
        (["train.checkpoint_every=-3"], "train.checkpoint_every=-3 is not valid: it must be zero"),
        (["srgan.lr_decay_at=2"], "srgan.lr_decay_at=2 is not valid: it is a fraction"),
        (["device=gpu"], "device='gpu' is not an option; choose auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_bad_settings_get_one_sentence(overrides, message, capsys, tmp_path):
    code, _, err = _cli(
        capsys, "train-srresnet", "--profile", "smoke", "--out", tmp_path, *overrides
    )
    assert code == 1
    assert _one_error_line(err).startswith(f"error: {message}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_sentence(sample_root, capsys, tmp_path):
    code, _, err = _cli(
        capsys, "train-srresnet", "--profile", "smoke", "--out", tmp_path, "device=cuda"
    )
    assert code == 1
    assert _one_error_line(err) == (
        "error: device='cuda' was asked for but no CUDA GPU is visible; use device=cpu (or device=auto)"
    )


def test_bad_tile_and_image_index_are_one_sentence(sample_root, capsys, tmp_path):
    ckpt = _checkpoint(tmp_path / "g.pt")
    with pytest.raises(SystemExit) as exit_:
        main(["super-resolve", str(ckpt), "x.png", "--tile", "-1"])
    assert exit_.value.code == 2
    assert "error: argument --tile: '-1' is not a tile size: give the LR pixels per tile side" in (
        capsys.readouterr().err
    )
    code, _, err = _cli(
        capsys, "grid", "--profile", "smoke", f"data_root={sample_root}", "--split", "Sample",
        "--images", "99", "--out", tmp_path,
    )  # fmt: skip
    assert code == 1
    assert _one_error_line(err) == "error: images [99]: Sample has 4 images, numbered 0 to 3"
    with pytest.raises(ValueError, match="tile=-1 is not valid"):
        super_resolve(
            SRResNet(n_channels=8, n_blocks=1).eval(), np.zeros((20, 20, 3), np.uint8), -1
        )


def test_a_full_disk_during_a_save_is_one_sentence(tmp_path, monkeypatch):
    import errno

    import sr_course.utils as utils

    path = save_checkpoint({"stage": "srresnet", "iteration": 1}, tmp_path / "last.pt")
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        """A file on a disk with 1 kB left."""

        def __init__(self, f):
            self.f, self.left = f, 1000

        def write(self, data):
            if len(data) > self.left:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    monkeypatch.setattr(utils.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(CheckpointError) as err:
        save_checkpoint({"stage": "srresnet", "weights": torch.zeros(10_000)}, path)
    assert str(err.value) == (
        f"cannot write checkpoint {path}: the disk is full (the previous last.pt is intact); free "
        "some space on that disk or set another --out, then resume"
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_unreadable_images_are_named_in_full(tmp_path, capsys):
    deep = tmp_path / ("a-very-long-folder-name-" * 5) / "sub"
    deep.mkdir(parents=True)
    missing = deep / "missing.png"
    with pytest.raises(FileNotFoundError, match=f"^image {missing} does not exist$"):
        read_image(missing)
    ckpt = _checkpoint(tmp_path / "g.pt")
    good = tmp_path / "in" / "good.png"
    good.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 12, 3), np.uint8)).save(good)
    truncated = tmp_path / "in" / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    code, out, err = _cli(capsys, "super-resolve", ckpt, truncated, good, "--out", tmp_path / "o")
    assert code == 1
    assert f"skipped {truncated}: cannot decode (" in err
    assert "error: 1 of 2 images could not be read (named above)" in err
    assert (tmp_path / "o" / "good_x4.png").exists()  # one bad file does not stop the batch


# --- 9. batch inference -------------------------------------------------------------------------


def test_super_resolve_takes_folders_and_keeps_every_output(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "g.pt")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for path in (a / "x.png", a / "x.jpg", b / "x.png", a / "y.png"):
        images[path] = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
        Image.fromarray(images[path]).save(path, quality=100)
    (a / "notes.txt").write_text("not an image")
    code, out, _ = _cli(capsys, "super-resolve", ckpt, a, b / "x.png", "--out", tmp_path / "o")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["a_x_png_x4.png", "b_x_png_x4.png", "x_jpg_x4.png", "y_x4.png"]
    assert len(out.splitlines()) == 4
    code, _, err = _cli(capsys, "super-resolve", ckpt, tmp_path / "nowhere")
    assert _one_error_line(err) == f"error: input image {tmp_path / 'nowhere'} does not exist"


def test_tiled_output_goes_straight_to_uint8_and_matches_the_tensor_path():
    torch.manual_seed(0)
    model = SRResNet(n_channels=8, n_blocks=1).eval()
    lr = np.random.default_rng(1).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    from sr_course.evaluation.inference import lr_tensor as _lr_tensor
    from sr_course.evaluation.inference import super_resolve_tensor

    expected = to_uint8(super_resolve_tensor(model, _lr_tensor(lr), tile=16))
    assert np.array_equal(super_resolve(model, lr, tile=16), expected)


# --- 10. evaluation honesty ---------------------------------------------------------------------


def test_results_say_n_of_n_and_are_quoted(own_root, tmp_path):
    hr_dir = own_root / "sample" / "Sample" / "HR"
    Image.fromarray(np.zeros((12, 30, 3), np.uint8)).save(hr_dir / "tiny.png")
    (own_root / "lists").mkdir(exist_ok=True)
    create_data_lists(own_root, ["Sample"], force=True, verbose=False)
    cfg = _cfg(own_root, tmp_path)
    ckpt = _checkpoint(tmp_path / "g.pt")
    result = evaluate({"ours, v2": ckpt}, ["Sample"], cfg, out_dir=tmp_path / "t", verbose=False)
    assert result["images"] == {"Sample": {"scored": 4, "found": 5}}
    md = (tmp_path / "t" / "results.md").read_text()
    assert "Note: Sample: 4 of 5 images scored; the data list skipped 1" in md
    with open(tmp_path / "t" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"bicubic", "ours, v2"} and len(rows) == 8
    assert all(float(r["psnr"]) > 0 for r in rows)


def test_test_command_tells_models_from_settings_and_refuses_twins(sample_root, tmp_path, capsys):
    a = _checkpoint(tmp_path / "run" / "best.pt")
    b = _checkpoint(tmp_path / "run" / "last.pt")
    common = ["test", "--profile", "smoke", "--splits", "Sample", "--out", tmp_path / "t"]
    code, out, err = _cli(capsys, *common, "--models", f"m={a}", f"data_root={sample_root}")
    assert code == 0, err
    assert "| m |" in out and "| data_root |" not in out
    code, _, err = _cli(capsys, *common, "--models", a, b, f"data_root={sample_root}")
    assert code == 1
    assert _one_error_line(err) == (
        f"error: two models are named 'run' ({a} and {b}); give each its own name: --models "
        f"A={a} B={b}"
    )


def test_missing_lpips_weights_offline_are_one_line_and_a_bug_keeps_its_traceback(
    sample_root, tmp_path, capsys, monkeypatch
):
    # The fault: `test` on the paper profile offline ended in a traceback; and main() treated every
    # KeyError and ValueError as the user's, which hid real bugs.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    common = ["test", "--profile", "paper", "--splits", "Sample", "--out", tmp_path / "t"]
    code, _, err = _cli(capsys, *common, f"data_root={sample_root}")
    assert code == 1
    line = _one_error_line(err)
    assert line.startswith(
        "error: AlexNet ImageNet weights (for LPIPS) are not in torchvision's cache and could not "
        "be downloaded (OSError)."
    ), line
    assert "lpips.weights=" in line

    def buggy(args):
        return {}["a key the code forgot"]  # a bug, not the user's mistake

    monkeypatch.setattr(test_command, "run", buggy)
    with pytest.raises(KeyError, match="a key the code forgot"):
        main(["test", "--profile", "smoke", f"data_root={sample_root}"])


def test_every_expected_failure_is_a_user_error():
    for kind in (
        CheckpointError,
        DownloadError,
        DataError,
        RatingError,
        DivergenceError,
        RunLockedError,
    ):
        assert issubclass(kind, UserError), kind
    with pytest.raises(UserError, match="unknown config key 'srresnet.lrr'"):
        load_config("smoke", srresnet={"lrr": 1})
    with pytest.raises(ValueError):  # still the builtin a notebook would catch
        load_config("smoke", data={"crop_size": 0})


def test_a_failed_write_keeps_the_previous_results(sample_root, tmp_path, monkeypatch):
    # The fault: `test` opened results.csv for writing first and left it empty when it failed.
    import sr_course.utils as utils

    cfg = load_config("smoke", data_root=str(sample_root))
    evaluate({}, ["Sample"], cfg, out_dir=tmp_path, verbose=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_fsync = utils.os.fsync

    def fsync_fails_for_the_csv(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and "results.csv" in os.readlink(
            f"/proc/self/fd/{fd}"
        ):
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(utils.os, "fsync", fsync_fails_for_the_csv)
    with pytest.raises(OSError):
        evaluate({}, ["Sample"], cfg, out_dir=tmp_path, verbose=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # intact, no .tmp left


def _png16_rgb(path: Path, h: int, w: int) -> None:
    """A 48-bit RGB PNG (Pillow cannot write one)."""
    import struct

    rows = b"".join(b"\x00" + np.full(w * 3, 40000, ">u2").tobytes() for _ in range(h))

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_rgb_is_refused_as_the_docs_say(tmp_path):
    hr_dir = tmp_path / "benchmark" / "Set5" / "HR"
    hr_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(hr_dir / "fine.png")
    _png16_rgb(hr_dir / "deep_rgb.png", 40, 40)
    (summary,) = create_data_lists(tmp_path, ["Set5"], verbose=False)
    assert summary.skipped == [("deep_rgb.png", "16-bit RGB image: convert it to 8-bit")]


# --- 11. Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_saves_a_checkpoint_and_says_so_in_one_line(sample_root, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "sr_course", "train-srresnet", "--profile", "smoke", "--out", str(out),
        f"data_root={sample_root}", "data.val_split=None", "data.patches_per_image=400",
        "srresnet.epochs=1", "train.log_every=1", "train.deterministic=True", "data.num_workers=2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    for line in proc.stdout:  # wait until it trains (a line every few log points)
        logged = re.search(r" it (\d+)/", line)
        if logged:
            break
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the loader's workers get it too
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    line = _one_error_line(stderr)
    assert line.startswith("srresnet: interrupted at iteration ")
    assert line.endswith(
        f"; saved {out / 'last.pt'}: continue with --resume (resume='auto' in Python)"
    )
    stopped = int(line.split("iteration ")[1].split(";")[0])
    state = load_checkpoint(out / "last.pt")
    assert state["iteration"] == stopped and int(logged[1]) <= stopped < int(logged[1]) + 150
    resumed = subprocess.run(
        [*cmd, "--resume", "train.max_iterations=" + str(stopped + 2)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out / "last.pt")["iteration"] == stopped + 2
