import re

import numpy as np
import pytest
import torch
from PIL import Image

from sr_course.config import load_config
from sr_course.data.imresize import imresize, imresize_torch
from sr_course.evaluation.evaluate import evaluate
from sr_course.evaluation.inference import super_resolve
from sr_course.evaluation.visualize import comparison_grid, default_methods, plot_history
from sr_course.models import SRResNet


@pytest.fixture(scope="module")
def cfg(sample_root):
    return load_config("smoke", data_root=str(sample_root))


class BicubicNet(torch.nn.Module):
    """Bicubic as a 'model': LR in [0, 1] -> MATLAB bicubic x4 in [-1, 1] (or in [0, 1] if wrong_range;
    with wants_input='[-1,1]' it was trained on LR in [-1, 1])."""

    scaling_factor = 4

    def __init__(self, wrong_range=False, wants_input="[0,1]"):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.wrong_range = wrong_range
        self.wants_input = wants_input

    def forward(self, x):
        if self.wants_input == "[-1,1]":
            x = (x + 1) / 2
        lr8 = torch.floor(x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
        up = imresize_torch(lr8, 4).float() / 255
        return up if self.wrong_range else up * 2 - 1


def test_evaluate_bicubic_model_reproduces_the_bicubic_row(cfg, tmp_path):
    result = evaluate(
        {"bicubic-net": BicubicNet()}, ["Sample"], cfg, out_dir=tmp_path, verbose=False
    )
    table = result["table"]
    assert table["bicubic-net"]["Sample"] == table["bicubic"]["Sample"]
    assert len(result["per_image"]["Sample"]["bicubic"]) == 4
    assert 20 < table["bicubic"]["Sample"]["psnr"] < 40
    assert (
        (tmp_path / "results.md").read_text().startswith("| method | Sample PSNR / SSIM / LPIPS |")
    )
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + 2 * 4


def test_bicubic_row_is_matlab_bicubic_of_the_lr(cfg):
    from sr_course.data.datasets import SRDataset
    from sr_course.evaluation.metrics import score_sr

    ds = SRDataset("Sample", cfg)
    result = evaluate({}, ["Sample"], cfg, verbose=False)
    first = result["per_image"]["Sample"]["bicubic"][1]
    assert first["name"] == "chelsea"
    assert first["psnr"] == score_sr(imresize(ds.lr_uint8(1), 4), ds.hr_uint8(1))[0]


def test_far_below_bicubic_warning_on_a_model_fed_the_wrong_range(cfg):
    with pytest.warns(UserWarning) as caught:
        evaluate({"wrong-range": BicubicNet(wrong_range=True)}, ["Sample"], cfg, verbose=False)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("wrong-range scores 1")
    assert "dB below bicubic on Sample (" in message
    assert re.search(
        r"but with its output read as \[0, 1\] it scores 2\d\.\d\d dB on the first images: a "
        r"value-range mismatch between training and testing",
        message,
    )
    # (for a linear model such as bicubic, reading the output as [0, 1] undoes exactly an input in
    # [0, 1] given to a model trained on [-1, 1], so either reading may be the one named)
    with pytest.warns(
        UserWarning, match=r"it scores 2\d\.\d\d dB on the first images: a value-range"
    ):
        evaluate({"m": BicubicNet(wants_input="[-1,1]")}, ["Sample"], cfg, verbose=False)


def test_no_range_warning_for_a_model_that_is_only_undertrained(cfg, recwarn):
    # The fault: a correct but barely trained model got the "value-range mismatch" warning.
    torch.manual_seed(0)
    untrained = SRResNet(n_channels=8, n_blocks=1).eval()
    result = evaluate({"untrained": untrained}, ["Sample"], cfg, verbose=False)
    table = result["table"]
    assert table["bicubic"]["Sample"]["psnr"] - table["untrained"]["Sample"]["psnr"] > 3
    assert [str(w.message) for w in recwarn] == []


def test_tiled_equals_untiled_within_one_gray_level_on_an_odd_size():
    torch.manual_seed(0)
    model = SRResNet().eval()
    lr = np.random.default_rng(0).integers(0, 256, (45, 67, 3), dtype=np.uint8)
    lr = imresize(imresize(lr, 0.5), output_shape=(45, 67))  # smoother, photo-like
    full = super_resolve(model, lr)
    tiled = super_resolve(model, lr, tile=16)
    assert full.shape == tiled.shape == (180, 268, 3) and full.dtype == np.uint8
    assert np.abs(full.astype(int) - tiled.astype(int)).max() <= 1


def test_super_resolve_inputs():
    model = SRResNet(n_channels=8, n_blocks=1).eval()
    gray = np.zeros((10, 12), np.uint8)
    assert super_resolve(model, gray).shape == (40, 48, 3)
    assert super_resolve(model, Image.new("RGB", (12, 10))).shape == (40, 48, 3)
    with pytest.raises(
        TypeError, match="lr must be a PIL image or a uint8 numpy array, got ndarray of float64"
    ):
        super_resolve(model, np.zeros((10, 12, 3)))


def test_grid_png_and_pdf_with_every_panel(cfg, tmp_path):
    methods = default_methods({"Net": BicubicNet()})
    fig = comparison_grid("Sample", methods, cfg, out=tmp_path / "grid", images=[1, 2])
    png = Image.open(tmp_path / "grid.png")
    w, h = (fig.get_size_inches() * 220).round().astype(int)
    assert abs(png.size[0] - w) <= 1 and abs(png.size[1] - h) <= 1  # figure inches x 220 dpi
    assert png.info["dpi"][0] == pytest.approx(220, abs=1)
    h = png.size[1]
    assert (tmp_path / "grid.pdf").read_bytes()[:5] == b"%PDF-"
    arr = np.asarray(png.convert("RGB")).astype(float)
    main = [ax for ax in fig.axes if ax.get_title() or ax.get_xlabel()]
    assert len(main) == 2 * 4
    renderer_scale = 220 / fig.dpi
    for ax in main:
        x0, y0, x1, y1 = (
            (np.array(ax.get_window_extent().extents) * renderer_scale).round().astype(int)
        )
        panel = arr[h - y1 : h - y0, x0:x1]
        assert panel.std() > 10, f"panel {ax.get_title() or ax.get_xlabel()} looks empty"
    labels = [ax.get_xlabel() for ax in main]
    assert labels[-1] == "PSNR / SSIM" and labels[2] == labels[1]  # the 'Net' column equals Bicubic
    assert [ax.get_title() for ax in main[:4]] == ["LR (nearest)", "Bicubic", "Net", "HR"]


def test_grid_takes_a_fixed_zoom_region_and_refuses_one_outside_the_image(cfg, tmp_path, capsys):
    from matplotlib.patches import Rectangle

    from sr_course.cli import main

    fig = comparison_grid("Sample", default_methods({}), cfg, images=[0], zoom=(10, 20, 30))
    boxes = [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 3 and all(
        (b.get_x(), b.get_y(), b.get_width()) == (19.5, 9.5, 30) for b in boxes
    )
    args = ["grid", "--profile", "smoke", f"data_root={cfg.data_root}", "--split", "Sample"]
    args += ["--out", str(tmp_path), "--images", "0"]
    assert main([*args, "--zoom", "10", "20", "30"]) == 0
    assert (tmp_path / "grid_Sample.png").is_file() and (tmp_path / "grid_Sample.pdf").is_file()
    capsys.readouterr()
    assert main([*args, "--zoom", "0", "0", "5000"]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"error: zoom region \(top 0, left 0, size 5000\) does not fit image 0 of Sample \(\w+, "
        r"\d+x\d+ HR pixels\): choose one inside it\n",
        err,
    ), err


def test_plot_history(tmp_path):
    history = {
        "train": [{"iteration": i, "epoch": 0, "lr": 1e-4, "loss": 1 / i} for i in range(1, 6)],
        "val": [{"iteration": 5, "psnr": 25.0}],
    }
    fig = plot_history(history, out=tmp_path / "loss")
    assert len(fig.axes) == 2 and (tmp_path / "loss.png").exists()


def test_zoom_region_lands_on_detail_not_on_noise_in_a_flat_area():
    """A weak model's noise in a flat dark area (the cameraman's coat) differs most from the others,
    but the inset must show where the HR image has detail and the methods differ there."""
    from scipy.ndimage import uniform_filter

    from sr_course.evaluation.visualize import pick_zoom_region

    rng = np.random.default_rng(0)
    hr = np.full((96, 96), 20.0)
    hr[:, 48:] = 128 + 100 * np.sign(np.sin(np.arange(48) * 1.3))[None, :]  # stripes on the right
    noisy = hr.copy()
    noisy[:, :40] += rng.normal(0, 40, (96, 40))  # strong noise in the flat left half
    blurred = hr.copy()
    blurred[:, 48:] = (0.85 * hr + 0.15 * uniform_filter(hr, 5))[:, 48:]  # a little detail lost
    images = [np.clip(im, 0, 255).astype(np.uint8) for im in (noisy, blurred)]
    top, left, size = pick_zoom_region(images, 24)
    assert left + size <= 48  # without the HR: the noise wins
    top, left, size = pick_zoom_region(images, 24, hr=hr.astype(np.uint8))
    assert size == 24 and left >= 48 - 4  # with it: the stripes, where the blur differs
