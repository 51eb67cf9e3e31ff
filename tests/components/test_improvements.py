"""Beyond SRGAN: the switchable architectures, losses and GAN variants, and network interpolation."""

import math

import pytest
import torch

from sr_course.components.adversarial import (
    gradient_penalty,
    ragan_discriminator_loss,
    ragan_generator_loss,
    wgan_critic_loss,
    wgan_generator_loss,
)
from sr_course.components.archs import VDSR, RRDBNet, SwinIR
from sr_course.components.registry import build_generator
from sr_course.config import load_config
from sr_course.data.imresize import imresize_torch
from sr_course.losses import edge_loss, pixel_l1
from sr_course.models import Discriminator, SRResNet, TruncatedVGG19, count_parameters

# --- architectures ---------------------------------------------------------------------------------


def test_parameter_counts_of_the_documented_defaults():
    assert count_parameters(SRResNet(batch_norm=False)) == 1_545_238
    assert count_parameters(RRDBNet()) == 16_697_987  # ESRGAN's published x4 RRDBNet
    assert count_parameters(VDSR()) == 668_227
    assert count_parameters(SwinIR()) == 929_508
    assert count_parameters(Discriminator(batch_norm=False)) == 23_561_793


@pytest.mark.parametrize("arch", ["srresnet", "rrdb", "vdsr", "swinir"])
def test_every_arch_maps_lr_to_4x_and_builds_from_config(arch):
    cfg = load_config("smoke", model={"arch": arch})
    model = build_generator(cfg)
    assert model.scaling_factor == 4
    assert model(torch.rand(2, 3, 10, 13)).shape == (2, 3, 40, 52)


def test_vdsr_is_bicubic_plus_residual_and_serves_several_scales():
    model = VDSR(n_channels=8, n_layers=4)
    torch.nn.init.zeros_(model.residual[-1].weight)
    torch.nn.init.zeros_(model.residual[-1].bias)
    lr = torch.rand(1, 3, 9, 7)
    for scale in (2, 3, 4):
        out = model(lr, scale=scale)
        assert out.shape == (1, 3, 9 * scale, 7 * scale)
        assert torch.allclose(
            out, imresize_torch(lr, scale) * 2 - 1, atol=1e-6
        )  # zero residual: bicubic


@pytest.mark.parametrize("size", [(8, 8), (13, 11), (5, 17), (3, 3)])
def test_swinir_pads_sizes_that_are_not_multiples_of_the_window(size):
    model = SwinIR(embed_dim=12, depths=(2, 2), num_heads=3, window_size=4)
    assert model(torch.rand(1, 3, *size)).shape == (1, 3, 4 * size[0], 4 * size[1])


def test_swinir_shifted_windows_alternate_and_mask_only_shifted_blocks():
    model = SwinIR(embed_dim=12, depths=(4,), num_heads=3, window_size=4)
    shifts = [block.shift for block in model.groups[0].blocks]
    assert shifts == [0, 2, 0, 2]
    assert model.groups[0].blocks[0]._mask(8, 8, "cpu") is None
    mask = model.groups[0].blocks[1]._mask(8, 8, "cpu")
    assert mask.shape == (4, 16, 16)  # 4 windows of 4x4 pixels
    assert (mask[0] == 0).all() and (mask[-1] == -100).any()  # only windows that wrap mix regions


def test_swinir_relative_position_bias_is_used():
    model = SwinIR(embed_dim=12, depths=(2,), num_heads=3, window_size=4).eval()
    x = torch.rand(1, 3, 8, 8)
    before = model(x)
    with torch.no_grad():
        model.groups[0].blocks[0].attn.relative_bias.add_(
            torch.randn_like(model.groups[0].blocks[0].attn.relative_bias)
        )
    assert not torch.allclose(before, model(x))


def test_vgg_before_activation_keeps_the_convolution_output():
    after, before = (
        TruncatedVGG19(5, 4, weights=None),
        TruncatedVGG19(5, 4, weights=None, before_activation=True),
    )
    assert len(before.features) == len(after.features) - 1
    assert isinstance(after.features[-1], torch.nn.ReLU)
    assert isinstance(before.features[-1], torch.nn.Conv2d)


# --- losses against hand-computed values --------------------------------------------------------------


def test_l1_and_edge_losses():
    assert pixel_l1(
        torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    ).item() == pytest.approx(0.625)
    ramp = (
        torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 4, 5) * 0.3
    )  # gradient 0.3 along x, 0 along y
    assert edge_loss(ramp, torch.zeros_like(ramp)).item() == pytest.approx(0.3)
    assert edge_loss(ramp, ramp + 7).item() == pytest.approx(
        0, abs=1e-6
    )  # a constant offset has no edges


def test_ragan_losses():
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [1.0]])
    # E[C(fake)] = 0, E[C(real)] = 1: relative logits real - 0 = (2, 0), fake - 1 = (-2, 0).
    sp = lambda z: math.log1p(math.exp(z))  # noqa: E731  softplus; BCE(z, 1) = sp(-z), BCE(z, 0) = sp(z)
    d_expected = ((sp(-2) + sp(0)) / 2 + (sp(-2) + sp(0)) / 2) / 2
    g_expected = ((sp(2) + sp(0)) / 2 + (sp(2) + sp(0)) / 2) / 2
    assert ragan_discriminator_loss(real, fake).item() == pytest.approx(d_expected, abs=1e-6)
    assert ragan_generator_loss(real, fake).item() == pytest.approx(g_expected, abs=1e-6)


def test_wgan_losses_and_gradient_penalty_on_a_known_function():
    real, fake = torch.tensor([[3.0], [1.0]]), torch.tensor([[0.5], [-0.5]])
    assert wgan_critic_loss(real, fake).item() == pytest.approx(0.0 - 2.0)
    assert wgan_generator_loss(fake).item() == pytest.approx(0.0)
    # A linear critic C(x) = sum(a * x) has gradient a everywhere: penalty (||a|| - 1)^2.
    a = torch.full((1, 3, 2, 2), 0.5)  # ||a|| = sqrt(12 * 0.25) = sqrt(3)

    def critic(x):
        return (a * x).flatten(1).sum(dim=1, keepdim=True)

    penalty = gradient_penalty(critic, torch.rand(4, 3, 2, 2), torch.rand(4, 3, 2, 2))
    assert penalty.item() == pytest.approx((math.sqrt(3) - 1) ** 2, rel=1e-5)


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"srgan": {"gan": "wgan"}}, "srgan.gan=wgan .* set srgan.optimizer=rmsprop"),
        ({"srgan": {"gan": "wgan-gp"}}, "srgan.gan=wgan-gp .* set D.batch_norm=False"),
        (
            {"srgan": {"gan": "wgan-gp", "label_smoothing": 0.1}, "D": {"batch_norm": False}},
            "label_smoothing applies to cross-entropy GANs",
        ),
        ({"srresnet": {"grad_clip_theta": 0.01}}, "set srresnet.optimizer=sgd"),
        (
            {"model": {"arch": "edsr"}},
            "model.arch='edsr' is not an option; choose one of srresnet, rrdb, vdsr, swinir",
        ),
        ({"srresnet": {"loss": "huber"}}, "srresnet.loss='huber' is not an option"),
    ],
)
def test_incompatible_options_are_refused_with_a_reason(changes, message):
    with pytest.raises(ValueError, match=message):
        load_config("smoke", **changes)


# --- a few optimisation steps lower each mode's loss ---------------------------------------------------


def _fixed_batch(trainer, n=8):
    items = [trainer.dataset[i] for i in range(n)]
    return torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])


PSNR_MODES = {
    "edsr-style": {"G": {"batch_norm": False}},
    "rrdb": {"model": {"arch": "rrdb"}},
    "vdsr": {
        "model": {"arch": "vdsr"},
        "srresnet": {"optimizer": "sgd", "lr": 0.05, "grad_clip_theta": 0.01},
    },
    "swinir": {"model": {"arch": "swinir"}},
    "l1+edge": {"srresnet": {"loss": "l1", "edge_weight": 0.5}},
}


@pytest.mark.parametrize("mode", list(PSNR_MODES))
def test_psnr_modes_lower_their_loss(mode, sample_root, tmp_path):
    from sr_course.solver import srresnet_step
    from sr_course.train.trainer import Trainer

    changes = PSNR_MODES[mode]
    cfg = load_config(
        "smoke",
        data_root=str(sample_root),
        runs_dir=str(tmp_path),
        data={"val_split": None},
        **changes,
    )
    t = Trainer(cfg, "srresnet", progress=False)
    lr, hr = _fixed_batch(t)
    t.G.train()
    first = srresnet_step(t, lr, hr)["loss"].item()
    for _ in range(15):
        last = srresnet_step(t, lr, hr)["loss"].item()
    assert last < first, (mode, first, last)


GAN_MODES = {
    "standard": {},
    "ragan": {"srgan": {"gan": "ragan"}},
    "wgan": {"srgan": {"gan": "wgan", "optimizer": "rmsprop"}},
    "wgan-gp": {"srgan": {"gan": "wgan-gp"}, "D": {"batch_norm": False}},
}


@pytest.mark.parametrize("mode", list(GAN_MODES))
def test_gan_modes_lower_the_discriminator_loss(mode, sample_root, tmp_path):
    from sr_course.solver import srgan_step
    from sr_course.train.trainer import Trainer

    changes = {"srgan": {"mode": "baseline", "lr": 1e-3, **GAN_MODES[mode].get("srgan", {})}}
    if "D" in GAN_MODES[mode]:
        changes["D"] = GAN_MODES[mode]["D"]
    cfg = load_config(
        "smoke",
        data_root=str(sample_root),
        runs_dir=str(tmp_path),
        data={"val_split": None},
        **changes,
    )
    t = Trainer(cfg, "srgan", progress=False)
    step = srgan_step  # one step for every variant: the objective comes from t.adversarial
    lr, hr = _fixed_batch(t)
    torch.manual_seed(0)
    first = step(t, lr, hr, update_generator=False)["discriminator"].item()
    for _ in range(10):
        last = step(t, lr, hr, update_generator=False)["discriminator"].item()
    assert last < first, (mode, first, last)
    out = step(t, lr, hr, update_generator=True)
    assert set(out) == {"content", "adversarial", "discriminator"} and all(
        torch.isfinite(v) for v in out.values()
    )
    if mode == "wgan":
        assert max(p.abs().max().item() for p in t.D_raw.parameters()) <= 0.01 + 1e-7


# --- network interpolation ---------------------------------------------------------------------------


def test_interpolation_reproduces_the_endpoints_exactly(tmp_path):
    from sr_course.checkpoint import save_checkpoint
    from sr_course.config import to_plain_dict
    from sr_course.evaluation.inference import interpolate_generators

    cfg = load_config("smoke")
    torch.manual_seed(0)
    a, b = build_generator(cfg), build_generator(cfg)
    for name, model in (("psnr", a), ("gan", b)):
        save_checkpoint(
            {
                "stage": "srresnet",
                "config": to_plain_dict(cfg),
                "models": {"generator": model.state_dict()},
            },
            tmp_path / f"{name}.pt",
        )
    for alpha, expected in ((0.0, a), (1.0, b)):
        got = interpolate_generators(tmp_path / "psnr.pt", tmp_path / "gan.pt", alpha).state_dict()
        assert all(torch.equal(got[k], v) for k, v in expected.state_dict().items())
    half = interpolate_generators(tmp_path / "psnr.pt", tmp_path / "gan.pt", 0.5).state_dict()
    k = "head.block.0.weight"
    assert torch.allclose(half[k], (a.state_dict()[k] + b.state_dict()[k]) / 2)


def test_vdsr_multiscale_training_cycles_the_scale(sample_root, tmp_path):
    from sr_course.train.trainer import Trainer

    cfg = load_config(
        "smoke",
        data_root=str(sample_root),
        runs_dir=str(tmp_path),
        data={"val_split": None},
        model={"arch": "vdsr", "vdsr": {"train_scales": [2, 4]}},
    )
    t = Trainer(cfg, "srresnet", progress=False)
    seen = []
    for lr, hr in t.epoch_batches():
        seen.append((lr.shape[-1], t.G_raw.scaling_factor, hr.shape[-1]))
        assert t.G(lr).shape == hr.shape  # the network follows the batch's scale
        lr01 = ((hr + 1) / 2).clamp(0, 1)
        if t.G_raw.scaling_factor == 2:  # LR made on the fly: MATLAB bicubic, 8-bit values
            assert torch.allclose(
                lr, torch.floor(imresize_torch(lr01, 0.5).clamp(0, 1) * 255 + 0.5) / 255
            )
        t.iteration += 1
    assert seen == [(16, 2, 32), (8, 4, 32), (16, 2, 32)]
    assert t.G_raw.scaling_factor == 4  # back to the configured scale after the epoch
    t.iteration = 0
    t.fit()
    assert t.iteration == 6


def test_train_scales_are_validated():
    with pytest.raises(ValueError, match="only VDSR can do; set model.arch=vdsr"):
        load_config("smoke", model={"vdsr": {"train_scales": [2, 4]}})
    with pytest.raises(
        ValueError,
        match=r"train_scales \[3\]: each scale must be an integer >= 2 dividing data.crop_size \(32\)",
    ):
        load_config("smoke", model={"arch": "vdsr", "vdsr": {"train_scales": [2, 3, 4]}})


def test_the_pixel_anchor_adds_the_pixel_loss_to_the_content_term():
    from sr_course.train.build import build_run

    torch.manual_seed(0)
    sr, hr = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(1)  # the random VGG's weights: the same in each run built below
    plain = build_run(load_config("smoke"), "srgan", 10).content_loss(sr, hr)
    for loss, pixel in (("mse", ((sr - hr) ** 2).mean()), ("l1", (sr - hr).abs().mean())):
        cfg = load_config("smoke", srgan={"pixel_weight": 0.5}, srresnet={"loss": loss})
        torch.manual_seed(1)
        anchored = build_run(cfg, "srgan", 10).content_loss(sr, hr)
        assert anchored.item() == pytest.approx(plain.item() + 0.5 * pixel.item(), rel=1e-6)
