"""One row in a registry or the manifest is all a new choice needs: the config, the Trainer, the data
lists and the datasets follow."""

import numpy as np
import pytest
import torch

from sr_course.components import registry
from sr_course.config import load_config
from sr_course.course import SPLITS, Split
from sr_course.data.datasets import SRDataset
from sr_course.data.lists import create_data_lists, write_png
from sr_course.train.trainer import Trainer


def test_a_new_pixel_loss_is_one_registry_row(sample_root, tmp_path, monkeypatch):
    calls = []

    def charbonnier(sr, hr):
        calls.append(sr.shape)
        return torch.sqrt((sr - hr) ** 2 + 1e-6).mean()

    with pytest.raises(ValueError, match="srresnet.loss='charbonnier' is not an option"):
        load_config("smoke", srresnet={"loss": "charbonnier"})
    monkeypatch.setitem(registry.PIXEL_LOSSES, "charbonnier", lambda: charbonnier)
    cfg = load_config(
        "smoke",
        data_root=str(sample_root),
        runs_dir=str(tmp_path),
        srresnet={"loss": "charbonnier", "epochs": 1},
        data={"val_split": None},
    )
    trainer = Trainer(cfg, "srresnet", progress=False)
    trainer.fit()
    assert len(calls) == trainer.iteration == 3
    assert calls[0] == (4, 3, 32, 32)


def test_a_new_test_set_is_one_manifest_row(tmp_path, monkeypatch):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for k in range(3):
        write_png(
            rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), root / f"extra/Mine/HR/{k}.png"
        )
    monkeypatch.setitem(SPLITS, "Mine", Split("test", "extra/Mine/HR", "extra/Mine/LR_bicubic/X4"))
    (summary,) = create_data_lists(root, ["Mine"], verbose=False)
    assert (summary.found, len(summary.made), summary.skipped) == (3, 3, [])
    ds = SRDataset("Mine", load_config("smoke", data_root=str(root)))
    assert len(ds) == 3 and ds.lr_uint8(0).shape == (12, 16, 3)
