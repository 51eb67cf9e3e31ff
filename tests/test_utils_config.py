import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_course.config import load_config, parse_overrides
from sr_course.models import Discriminator, SRResNet
from sr_course.utils import AverageMeter, convert_image, get_device, seed_everything

RANGES = ["[0,255]", "[0,1]", "[-1,1]"]


@pytest.mark.parametrize("source", RANGES)
@pytest.mark.parametrize("target", RANGES)
def test_convert_round_trips(source, target):
    x01 = torch.rand(2, 3, 8, 9)
    x = convert_image(x01, "[0,1]", source)
    back = convert_image(convert_image(x, source, target), target, "[0,1]")
    assert back.shape == x01.shape
    assert (back - x01).abs().max() < 1 / 255


def test_convert_pil_round_trip():
    arr = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    t = convert_image(img, "pil", "[-1,1]")
    assert t.shape == (3, 7, 5)
    assert np.array_equal(np.asarray(convert_image(t, "[-1,1]", "pil")), arr)
    batch = convert_image([img, img], "pil", "[0,1]")
    assert batch.shape == (2, 3, 7, 5)
    assert len(convert_image(batch, "[0,1]", "pil")) == 2


def test_y_channel_known_pixels():
    # White -> 235, black -> 16, pure red/green/blue -> 16 + the BT.601 coefficient.
    pixels = torch.tensor(
        [[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float64
    )
    img = pixels.t().reshape(3, 1, 5)
    y = convert_image(img, "[0,1]", "y-channel").flatten()
    expected = torch.tensor(
        [16 + 65.481 + 128.553 + 24.966, 16, 16 + 65.481, 16 + 128.553, 16 + 24.966]
    )
    assert torch.allclose(y, expected.double(), atol=1e-10)
    assert convert_image(img[None], "[0,1]", "y-channel").shape == (1, 1, 1, 5)


def test_imagenet_norm():
    x = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1).expand(3, 2, 2)
    assert convert_image(x, "[0,1]", "imagenet-norm").abs().max() < 1e-6


def test_convert_bad_input_messages():
    with pytest.raises(ValueError) as err:
        convert_image(torch.rand(4, 8, 8), "[0,1]", "[-1,1]")
    assert str(err.value) == (
        "convert_image: expected a (3, H, W) image or an (N, 3, H, W) batch of RGB images, got shape (4, 8, 8)"
    )
    with pytest.raises(ValueError, match=r"unknown source '0-1'; choose one of pil, \[0,255\]"):
        convert_image(torch.rand(3, 2, 2), "0-1", "[0,1]")
    with pytest.raises(ValueError, match="unknown target 'ycbcr'"):
        convert_image(torch.rand(3, 2, 2), "[0,1]", "ycbcr")
    with pytest.raises(ValueError, match="use img.convert\\('RGB'\\)"):
        convert_image(Image.new("L", (4, 4)), "pil", "[0,1]")


def test_average_meter():
    m = AverageMeter()
    m.update(1.0, 2)
    m.update(4.0, 1)
    assert m.avg == pytest.approx(2.0) and m.count == 3 and m.val == 4.0


def test_seed_everything_repeats():
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_get_device():
    assert get_device("cpu").type == "cpu"
    assert get_device().type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is visible; use device=cpu"):
            get_device("cuda")


@pytest.mark.parametrize("profile", ["paper", "demo", "smoke"])
def test_profiles_build_models(profile):
    cfg = load_config(profile)
    assert cfg.profile == profile
    assert SRResNet(**cfg.G)(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    Discriminator(**cfg.D)


def test_paper_profile_is_the_paper():
    cfg = load_config("paper")
    assert SRResNet(**cfg.G).state_dict().keys() == SRResNet().state_dict().keys()
    assert cfg.srresnet.lr == 1e-4 and cfg.srresnet.batch_size == 16 and cfg.data.crop_size == 96
    assert cfg.srgan.adv_weight == 1e-3 and cfg.vgg.i == 5 and cfg.vgg.j == 4


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("SR_PROFILE", "demo")
    assert load_config().profile == "demo"
    assert load_config("smoke").profile == "smoke"


def test_runs_go_to_one_folder_per_profile_from_notebooks_and_the_command_line(monkeypatch):
    """A run trained from a shell (nohup ... train-srresnet --profile course) is the one the
    notebooks of that profile find, and the other way round."""
    from sr_course.cli import build_parser
    from sr_course.cli.common import out_folder as _out
    from sr_course.notebook import KIT_ROOT, setup

    monkeypatch.delenv("SR_RUNS_DIR", raising=False)
    assert load_config("course").runs_dir == "runs/course"
    assert load_config("smoke", runs_dir="elsewhere").runs_dir == "elsewhere"  # as given
    monkeypatch.chdir(KIT_ROOT)  # setup() makes the kit's root the working folder
    assert setup("course").runs_dir == "runs/course"
    assert Path.cwd() == KIT_ROOT
    args = build_parser().parse_args(["test", "--profile", "course"])
    assert _out(args, load_config("course")).as_posix() == "runs/course/test"
    args = build_parser().parse_args(["outputs", "--out", "mine"])
    assert _out(args, load_config("course")).as_posix() == "mine"
    monkeypatch.setenv("SR_RUNS_DIR", "/somewhere/runs")
    assert load_config("course").runs_dir == "/somewhere/runs"  # graders and CI: used as it is


def test_overrides():
    cfg = load_config("smoke", seed=7, srresnet={"lr": 0.5})
    assert cfg.seed == 7 and cfg.srresnet.lr == 0.5 and cfg.srresnet.batch_size == 4
    nested = parse_overrides(["srresnet.lr=1e-3", "data.val_split=None", "runs_dir=out/x"])
    assert nested == {"srresnet": {"lr": 1e-3}, "data": {"val_split": None}, "runs_dir": "out/x"}
    assert load_config("smoke", **nested).data.val_split is None


def test_bad_config_messages():
    with pytest.raises(ValueError) as err:
        load_config("fast")
    assert str(err.value) == "unknown profile 'fast'; choose one of: paper, course, demo, smoke"
    with pytest.raises(KeyError) as err:
        load_config("smoke", srresnet={"learning_rate": 1})
    assert err.value.args[0] == (
        "unknown config key 'srresnet.learning_rate'; valid keys here: batch_size, edge_weight, epochs, "
        "grad_clip_theta, loss, lr, lr_decay_at, optimizer"
    )
    with pytest.raises(ValueError, match="not key=value"):
        parse_overrides(["lr"])
    for leaf, share in (("gray_probability", 1.5), ("channel_shuffle", -0.1)):
        with pytest.raises(ValueError) as err:
            load_config("smoke", data={leaf: share})
        assert str(err.value) == (
            f"data.{leaf}={share} is not valid: it is a share of the training patches, "
            "from 0 (none) to 1 (all)"
        )


def test_no_profile_env_leaks():
    assert os.environ.get("SR_PROFILE") == "smoke"  # set by conftest for the whole suite
