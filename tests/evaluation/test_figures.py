"""Figures a student reads in a notebook: loss curves that tell a story, training patches mapped from
their own value ranges, and every figure readable at notebook width (checked in headless Chromium)."""

import base64
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from sr_course.checkpoint import save_checkpoint
from sr_course.config import load_config, to_plain_dict
from sr_course.data.datasets import SRDataset
from sr_course.evaluation.visualize import (
    HEALTHY_GAN,
    MAX_WIDTH_INCHES,
    STYLE,
    comparison_grid,
    default_methods,
    interpolation_sweep,
    plot_history,
    single_comparison,
    training_patches,
)
from sr_course.models import SRResNet
from sr_course.notebook import LivePlot


@pytest.fixture(scope="module")
def cfg(sample_root):
    return load_config("smoke", data_root=str(sample_root))


def _gan_history(n=15):
    rows = [
        {"iteration": 10 * i, "epoch": 0, "lr": 1e-4, "content": 0.01 - 1e-4 * i,
         "adversarial": 0.7 + 0.05 * i, "discriminator": 1.4 - 0.05 * i, "it_per_s": 3.0}
        for i in range(1, n + 1)
    ]  # fmt: skip
    return {"train": rows, "val": []}


def test_gan_losses_each_on_their_own_axes_with_what_a_healthy_run_looks_like():
    fig = plot_history(_gan_history(), title="SRGAN")
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["content", "adversarial", "discriminator"]
    for ax, key in zip(titled, ("content", "adversarial", "discriminator")):
        (line,) = ax.get_lines()
        assert list(line.get_ydata()) == [r[key] for r in _gan_history()["train"]]
    assert fig._suptitle.get_text() == "SRGAN"  # one title, not "SRGAN: srgan"
    assert fig._supxlabel.get_text() == HEALTHY_GAN
    assert "D's loss falls" in HEALTHY_GAN and "adversarial term rises" in HEALTHY_GAN
    assert fig.get_size_inches()[0] <= MAX_WIDTH_INCHES
    plt.close(fig)


def test_srresnet_loss_and_validation_side_by_side(tmp_path):
    history = {
        "train": [{"iteration": i, "epoch": 0, "lr": 1e-4, "loss": 1 / i} for i in range(1, 6)],
        "val": [{"iteration": 5, "psnr": 25.0, "split": "Set5"}],
    }
    fig = plot_history(history, out=tmp_path / "loss")
    assert [ax.get_title() for ax in fig.axes] == ["training loss", "validation PSNR (dB), Set5"]
    assert fig._supxlabel is None  # the GAN line only under a GAN's losses
    assert (tmp_path / "loss.png").exists() and (tmp_path / "loss.pdf").exists()
    plt.close(fig)


class _Trainer:
    def __init__(self, profile, stage, total):
        self.cfg, self.stage, self.total_iterations = load_config(profile), stage, total
        self.iteration, self.history = 0, {"train": [], "val": []}
        self.log_points = total / self.cfg.train.log_every


@pytest.mark.parametrize(
    "profile, stage, total, drawn_at",
    [
        ("smoke", "srresnet", 6, [1, 2, 3, 4, 5, 6]),  # every log point of a short run
        ("demo", "srgan", 150, [20, 40, 60, 80, 100, 120, 140, 150]),  # about 8, and the end
    ],
)
def test_the_live_plot_updates_through_the_run(monkeypatch, profile, stage, total, drawn_at):
    import IPython.display

    drawn = []

    class Handle:
        def update(self, fig):
            drawn.append(trainer.iteration)

    def display(fig, display_id=False):
        drawn.append(trainer.iteration)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    trainer, live = _Trainer(profile, stage, total), LivePlot()
    every = trainer.cfg.train.log_every
    for it in range(every, total + 1, every):
        trainer.iteration = it
        trainer.history["train"].append({"iteration": it, "epoch": 0, "lr": 1e-4, "loss": 1 / it})
        live(trainer, trainer.history["train"][-1])
    assert drawn == drawn_at


def test_training_patches_show_detail_each_mapped_from_its_own_range(cfg):
    fig = training_patches(SRDataset("train", cfg), n=3)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == ["LR 8x8"] * 3 + ["HR 32x32"] * 3
    for ax in panels:
        img = np.asarray(ax.get_images()[0].get_array(), dtype=float)
        assert img.std() > 12  # not a flat dark patch: something to look at
        assert img.max() > 60  # mapped to the display's range, not left near black
    lr, hr = panels[0].get_images()[0].get_array(), panels[3].get_images()[0].get_array()
    # the LR patch is the HR patch's bicubic x1/4: their mean brightness agrees
    assert abs(np.mean(lr) - np.mean(hr)) < 6
    plt.close(fig)


def _inline_png(fig) -> bytes:
    """The PNG the notebook's inline backend shows: figure.dpi, a tight bounding box."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@pytest.fixture(scope="module")
def notebook_figures(cfg, tmp_path_factory):
    """The course's figures as a notebook shows them: {name: PNG bytes}."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("figures")
    ckpts = []
    for name in ("psnr", "gan"):
        state = {"generator": SRResNet(**cfg.G).state_dict()}
        record = {"stage": "srresnet", "config": to_plain_dict(cfg), "models": state}
        ckpts.append(save_checkpoint(record, root / f"{name}.pt"))
    net = SRResNet(**cfg.G).eval()
    methods = default_methods({"SRResNet": net, "SRGAN": net})
    return {
        "comparison_grid": _inline_png(comparison_grid("Sample", methods, cfg)),
        "single_comparison": _inline_png(single_comparison("Sample", 0, methods, cfg)),
        "interpolation_sweep": _inline_png(interpolation_sweep(*ckpts, "Sample", 0, cfg)),
        "plot_history": _inline_png(plot_history(_gan_history(), title="SRGAN")),
        "training_patches": _inline_png(training_patches(SRDataset("train", cfg))),
    }


def test_figures_keep_9_point_text_at_notebook_width_in_jupyterlab(
    notebook_figures, tmp_path, chromium
):
    """Each figure in a notebook exported with JupyterLab's own styles, in headless Chromium at a
    1400-pixel window: JupyterLab shows it at its width or scales it down to the output area; its
    9-point text must stay at least 9 points on the screen."""
    import nbformat
    from nbconvert import HTMLExporter
    from selenium.webdriver.support.ui import WebDriverWait

    nb = nbformat.v4.new_notebook()
    for name, png in notebook_figures.items():
        out = nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": name}
        )
        nb.cells.append(nbformat.v4.new_code_cell(f"{name}(...)", outputs=[out]))
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page = tmp_path / "figures.html"
    page.write_text(html)
    driver = chromium("--window-size=1400,1000")
    driver.get(page.as_uri())
    script = (
        "const imgs = [...document.querySelectorAll('.jp-OutputArea-output img')];"
        "return imgs.every(i => i.complete && i.naturalWidth > 0) ? "
        "imgs.map(i => [i.getBoundingClientRect().width, i.naturalWidth]) : null;"
    )
    sizes = WebDriverWait(driver, 30).until(lambda d: d.execute_script(script))
    screenshot = driver.get_screenshot_as_png()
    assert len(sizes) == len(notebook_figures) and screenshot[:4] == b"\x89PNG"
    for name, (shown, natural) in zip(notebook_figures, sizes):
        points = STYLE["font.size"] * shown / natural
        assert points >= 9 - 1e-6, f"{name}: {natural} pixels shown at {shown:.0f}: {points:.1f} pt"
