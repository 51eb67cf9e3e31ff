"""Grading tests: one group per student TODO, tagged @pytest.mark.todo("<id>").

Hidden from students: `python -m sr_course release` leaves this file out of the student kit, and
`python -m sr_course grade` runs it against a submission's sr_course files to score each TODO.
"""

import math

import pytest
import torch

from sr_course import checks
from sr_course.losses import (
    VGGContentLoss,
    discriminator_loss,
    generator_adversarial_loss,
    pixel_mse,
)
from sr_course.models import (
    ConvolutionalBlock,
    Discriminator,
    ResidualBlock,
    SRResNet,
    SubPixelConvolutionalBlock,
    count_parameters,
    vgg19_truncation_index,
)

todo = pytest.mark.todo


@todo("ConvolutionalBlock")
def test_conv_block_shapes_and_layers():
    x = torch.randn(2, 5, 13, 13)
    assert ConvolutionalBlock(5, 7, 3)(x).shape == (2, 7, 13, 13)
    assert ConvolutionalBlock(5, 7, 9)(x).shape == (2, 7, 13, 13)
    assert ConvolutionalBlock(5, 7, 3, stride=2)(x).shape == (2, 7, 7, 7)
    assert count_parameters(ConvolutionalBlock(5, 7, 3, batch_norm=True)) == 5 * 7 * 9 + 7 + 14
    assert count_parameters(ConvolutionalBlock(5, 7, 3, activation="prelu")) == 5 * 7 * 9 + 7 + 1


@todo("ConvolutionalBlock")
def test_conv_block_activations():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8) * 10
    tanh = ConvolutionalBlock(4, 4, 3, activation="tanh")(x)
    assert tanh.abs().max() <= 1
    block = ConvolutionalBlock(4, 4, 1, activation="leakyrelu")
    with torch.no_grad():
        block.block[0].weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        block.block[0].bias.zero_()
    assert torch.allclose(block(x), torch.where(x > 0, x, 0.2 * x))


@todo("SubPixelConvolutionalBlock")
def test_subpixel_block():
    block = SubPixelConvolutionalBlock(3, 64, 2)
    assert count_parameters(block) == 64 * 256 * 9 + 256 + 1
    assert block(torch.rand(1, 64, 5, 7)).shape == (1, 64, 10, 14)
    assert SubPixelConvolutionalBlock(3, 8, 3)(torch.rand(1, 8, 4, 4)).shape == (1, 8, 12, 12)


@todo("ResidualBlock")
def test_residual_block():
    block = ResidualBlock(3, 64)
    assert count_parameters(block) == 2 * (64 * 64 * 9 + 64 + 128) + 1
    x = torch.randn(2, 64, 6, 6)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.zero_()
                m.bias.zero_()
    assert torch.equal(block(x), x)
    assert count_parameters(ResidualBlock(3, 16, batch_norm=False)) == 2 * (16 * 16 * 9 + 16) + 1


@todo("SRResNet")
def test_srresnet():
    checks.check_srresnet()
    assert SRResNet(n_channels=8, n_blocks=2, scaling_factor=2)(torch.rand(1, 3, 9, 11)).shape == (
        1,
        3,
        18,
        22,
    )
    assert SRResNet(n_channels=8, n_blocks=2, scaling_factor=8)(torch.rand(1, 3, 5, 6)).shape == (
        1,
        3,
        40,
        48,
    )
    assert count_parameters(SRResNet(batch_norm=False)) == 1_549_462 - 33 * 128


@todo("Discriminator")
def test_discriminator():
    checks.check_discriminator()
    d = Discriminator(n_channels=8, fc_size=16)
    logits = d(torch.rand(3, 3, 48, 40) * 2 - 1)
    assert logits.shape == (3, 1)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) == 7


@todo("TruncatedVGG19")
def test_vgg_truncation():
    expected = {
        (1, 1): 2,
        (1, 2): 4,
        (2, 1): 7,
        (2, 2): 9,
        (3, 1): 12,
        (3, 4): 18,
        (4, 1): 21,
        (4, 4): 27,
        (5, 1): 30,
        (5, 4): 36,
    }
    assert {k: vgg19_truncation_index(*k) for k in expected} == expected


@todo("pixel_mse")
def test_pixel_mse():
    sr = torch.zeros(2, 3, 4, 4)
    hr = torch.linspace(-1, 1, 96).view(2, 3, 4, 4)
    assert pixel_mse(sr, hr).item() == pytest.approx((hr**2).mean().item())
    assert pixel_mse(hr, hr).item() == 0


@todo("VGGContentLoss")
def test_vgg_content_loss():
    sr = torch.zeros(1, 3, 4, 4, requires_grad=True)
    hr = torch.full((1, 3, 4, 4), 0.6, requires_grad=True)
    loss = VGGContentLoss(torch.nn.Identity(), rescale=1 / 12.75)(sr, hr)
    assert loss.item() == pytest.approx(0.36 / 12.75**2)
    loss.backward()
    assert hr.grad is None and sr.grad is not None


@todo("adversarial losses")
def test_adversarial_losses():
    assert generator_adversarial_loss(torch.tensor([[0.0], [2.0]])).item() == pytest.approx(
        (math.log(2) + math.log1p(math.exp(-2))) / 2
    )
    assert discriminator_loss(torch.zeros(2, 1), torch.zeros(2, 1)).item() == pytest.approx(
        2 * math.log(2)
    )
    expected = (
        0.9 * math.log1p(math.exp(-2))
        + 0.1 * (2 + math.log1p(math.exp(-2)))
        + math.log1p(math.exp(-1))
    )
    assert discriminator_loss(
        torch.tensor([[2.0]]), torch.tensor([[-1.0]]), 0.1
    ).item() == pytest.approx(expected, abs=1e-6)


@todo("SRGAN step")
def test_srgan_step(monkeypatch):
    """Graded on its own: stand-in networks and reference adversarial losses, so the score does not
    depend on the student's other TODOs."""
    import torch.nn.functional as F

    from sr_course import solver

    monkeypatch.setattr(
        solver,
        "generator_adversarial_loss",
        lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)),
    )
    monkeypatch.setattr(
        solver,
        "discriminator_loss",
        lambda r, f, s=0.0: (
            F.binary_cross_entropy_with_logits(r, torch.full_like(r, 1 - s))
            + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        ),
    )
    torch.manual_seed(0)
    g = torch.nn.Sequential(
        torch.nn.Conv2d(3, 48, 3, padding=1), torch.nn.PixelShuffle(4), torch.nn.Tanh()
    )
    d = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2),
        torch.nn.LeakyReLU(0.2),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 1),
    )
    checks.check_srgan_step(g, d)
