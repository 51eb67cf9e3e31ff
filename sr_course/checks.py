"""Self-checks that the notebooks call after each TODO (CS231n style).

Each check prints one stable line, `<What>: OK (...)`, that nbval compares with the reference output,
or raises CheckFailed with a message that says what is wrong and which TODO to look at.
"""

from __future__ import annotations

import numpy as np
import torch


class CheckFailed(AssertionError):
    """A self-check found a problem; the message names the TODO and what to fix."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _not_implemented(what: str, err: NotImplementedError) -> CheckFailed:
    return CheckFailed(f"{what} is not implemented yet ({err}); fill in its TODO in sr_course/")


def check_blocks() -> None:
    """ConvolutionalBlock, SubPixelConvolutionalBlock and ResidualBlock shapes and behaviour."""
    from .models import ConvolutionalBlock, ResidualBlock, SubPixelConvolutionalBlock

    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)
    try:
        conv = ConvolutionalBlock(8, 16, 3, stride=2, batch_norm=True, activation="leakyrelu")
        sub = SubPixelConvolutionalBlock(3, 8, 2)
        res = ResidualBlock(3, 8)
    except NotImplementedError as err:
        raise _not_implemented("a building block", err) from None
    y = conv(x)
    _expect(
        y.shape == (2, 16, 6, 6),
        f"ConvolutionalBlock(8, 16, 3, stride=2) gave {tuple(y.shape)}, expected (2, 16, 6, 6): check stride and padding=kernel_size // 2",
    )
    _expect(
        bool((y < 0).any()) and bool((y.min() > -10).all()),
        "ConvolutionalBlock with 'leakyrelu' should keep small negative values (slope 0.2)",
    )
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in conv.modules())
    _expect(
        n_bn == 1, f"ConvolutionalBlock(batch_norm=True) should hold one BatchNorm2d, found {n_bn}"
    )
    y = sub(x)
    _expect(
        y.shape == (2, 8, 24, 24),
        f"SubPixelConvolutionalBlock(3, 8, 2) gave {tuple(y.shape)}, expected (2, 8, 24, 24)",
    )
    y = res(x)
    _expect(
        y.shape == x.shape, f"ResidualBlock changed the shape: {tuple(x.shape)} -> {tuple(y.shape)}"
    )
    with torch.no_grad():
        for m in res.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.zero_()
                m.bias.zero_()
    _expect(
        torch.equal(res(x), x),
        "ResidualBlock: with its last layers zeroed the output must equal the input; is the skip connection (x + ...) there?",
    )
    print("Blocks: OK")


def check_srresnet() -> None:
    """The default SRResNet: exact parameter count, shapes, output range."""
    from .models import SRResNet, count_parameters

    try:
        model = SRResNet()
    except NotImplementedError as err:
        raise _not_implemented("SRResNet", err) from None
    n = count_parameters(model)
    _expect(
        n == 1_549_462,
        f"SRResNet has {n:,} parameters, the paper's network has 1,549,462: compare your layers with Fig. 4",
    )
    with torch.no_grad():
        y = model(torch.rand(1, 3, 24, 24))
        # An extreme input: without the final Tanh the output leaves [-1, 1] at once.
        extreme = model(torch.full((1, 3, 24, 24), 1000.0))
    _expect(
        y.shape == (1, 3, 96, 96),
        f"SRResNet maps (1, 3, 24, 24) to {tuple(y.shape)}, expected (1, 3, 96, 96)",
    )
    _expect(
        float(y.abs().max()) <= 1.0 and float(extreme.abs().max()) <= 1.0,
        "SRResNet output must lie in [-1, 1]: the last block needs activation='tanh'",
    )
    print(f"SRResNet: OK ({n:,} parameters)")


def check_discriminator() -> None:
    """The default Discriminator: exact parameter count and (N, 1) logits for several sizes."""
    from .models import Discriminator, count_parameters

    try:
        model = Discriminator()
    except NotImplementedError as err:
        raise _not_implemented("Discriminator", err) from None
    n = count_parameters(model)
    _expect(
        n == 23_565_505,
        f"Discriminator has {n:,} parameters, expected 23,565,505: check channels, strides and fc sizes",
    )
    with torch.no_grad():
        for size in (96, 64):
            y = model(torch.rand(2, 3, size, size))
            _expect(
                y.shape == (2, 1),
                f"Discriminator maps (2, 3, {size}, {size}) to {tuple(y.shape)}, expected (2, 1) logits",
            )
    print(f"Discriminator: OK ({n:,} parameters)")


def check_vgg() -> None:
    """The VGG19 truncation phi_(i,j)."""
    from .models import vgg19_truncation_index

    try:
        got = {(i, j): vgg19_truncation_index(i, j) for i, j in ((5, 4), (2, 2), (1, 1), (3, 4))}
    except NotImplementedError as err:
        raise _not_implemented("vgg19_truncation_index", err) from None
    expected = {(5, 4): 36, (2, 2): 9, (1, 1): 2, (3, 4): 18}
    for key, value in expected.items():
        _expect(
            got[key] == value,
            f"phi_{key} should keep {value} layers of vgg19().features, got {got[key]}",
        )
    print("TruncatedVGG19: OK (phi_5,4 keeps 36 layers)")


def check_imresize() -> None:
    """MATLAB parity of imresize on a known case."""
    from .imresize import imresize

    # MATLAB's own output of imresize(reshape(0:63, 8, 8)', [2, 2]) (bicubic, antialiasing on).
    matlab = np.array([[12.3837890625, 16.6318359375], [46.3681640625, 50.6162109375]])
    y = imresize(np.arange(64, dtype=np.float64).reshape(8, 8), output_shape=(2, 2))
    _expect(
        np.allclose(y, matlab, rtol=0, atol=1e-10),
        f"imresize(arange(64), (2, 2)) gave {y.tolist()}, MATLAB gives {matlab.tolist()}",
    )
    img = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    _expect(imresize(img, 0.25).dtype == np.uint8, "imresize of a uint8 image must return uint8")
    print("imresize: OK (MATLAB bicubic)")


def check_losses() -> None:
    """pixel_mse, VGGContentLoss and the adversarial losses against hand-computed values."""
    import math

    from .losses import VGGContentLoss, discriminator_loss, generator_adversarial_loss, pixel_mse

    try:
        mse = pixel_mse(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)).item()
        sr = torch.zeros(1, 3, 4, 4, requires_grad=True)
        hr = torch.ones(1, 3, 4, 4, requires_grad=True)
        vgg_loss = VGGContentLoss(torch.nn.Identity(), rescale=0.5)(sr, hr)
        g_adv = generator_adversarial_loss(torch.zeros(2, 1)).item()
        d_loss = discriminator_loss(
            torch.tensor([[2.0]]), torch.tensor([[-1.0]]), label_smoothing=0.1
        ).item()
    except NotImplementedError as err:
        raise _not_implemented("a loss", err) from None
    _expect(
        abs(mse - 0.25) < 1e-7, f"pixel_mse of 0 vs 0.5 everywhere should be 0.25, got {mse:.6g}"
    )
    _expect(
        abs(vgg_loss.item() - 0.25) < 1e-7,
        f"VGGContentLoss(identity, rescale=0.5) of 0 vs 1 should be 0.25 (features x rescale, then MSE), got {vgg_loss.item():.6g}",
    )
    vgg_loss.backward()
    _expect(
        hr.grad is None,
        "VGGContentLoss must not send gradients into the HR image: compute its features under torch.no_grad()",
    )
    _expect(
        abs(g_adv - math.log(2)) < 1e-6,
        f"generator_adversarial_loss(logit 0) should be log 2 = 0.6931, got {g_adv:.4f}: BCE with logits against ones",
    )
    expected = (
        0.9 * math.log1p(math.exp(-2))
        + 0.1 * (2 + math.log1p(math.exp(-2)))
        + math.log1p(math.exp(-1))
    )
    _expect(
        abs(d_loss - expected) < 1e-5,
        f"discriminator_loss(real 2, fake -1, smoothing 0.1) should be {expected:.4f}, got {d_loss:.4f}: real targets 1 - smoothing, fake targets 0, sum of the two means",
    )
    print("Losses: OK")


def check_srgan_step(generator=None, discriminator=None) -> None:
    """One SRGAN step on tiny networks (yours by default): both networks learn, and the generator's
    update leaves the discriminator trainable."""
    from types import SimpleNamespace

    from easydict import EasyDict

    from .losses import pixel_mse
    from .models import Discriminator, Generator
    from .solver import srgan_step

    torch.manual_seed(0)
    try:
        g = generator or Generator(n_channels=8, n_blocks=1)
        d = discriminator or Discriminator(n_channels=8, fc_size=16)
    except NotImplementedError as err:
        raise _not_implemented("a network the SRGAN step needs", err) from None
    t = SimpleNamespace(
        G=g,
        D=d,
        D_raw=d,
        content_loss=pixel_mse,
        cfg=EasyDict(srgan={"adv_weight": 1e-3, "label_smoothing": 0.0}),
        opt_g=torch.optim.Adam(g.parameters(), 1e-3),
        opt_d=torch.optim.Adam(d.parameters(), 1e-3),
        scaler_g=torch.amp.GradScaler("cuda", enabled=False),
        scaler_d=torch.amp.GradScaler("cuda", enabled=False),
        autocast=lambda: torch.autocast("cpu", enabled=False),
    )
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = [p.detach().clone() for p in d.parameters()]
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32) * 2 - 1
    try:
        out = srgan_step(t, lr, hr, update_generator=True)
        d_only = srgan_step(t, lr, hr, update_generator=False)
    except NotImplementedError as err:
        raise _not_implemented("the SRGAN step", err) from None
    except Exception as err:
        raise CheckFailed(
            f"srgan_step failed: {type(err).__name__}: {str(err).splitlines()[0]} (a gradient error usually "
            "means a network was left frozen, or sr was not detached for the discriminator's update)"
        ) from err
    _expect(
        set(out) == {"content", "adversarial", "discriminator"},
        f"srgan_step should return content, adversarial and discriminator losses, got {sorted(out)}",
    )
    _expect(
        all(torch.isfinite(v) for v in out.values()),
        f"srgan_step returned non-finite losses: {out}",
    )
    _expect(
        any(not torch.equal(a, b) for a, b in zip(g0, g.parameters())),
        "the generator did not change: step t.opt_g",
    )
    _expect(
        any(not torch.equal(a, b) for a, b in zip(d0, d.parameters())),
        "the discriminator did not change: step t.opt_d",
    )
    _expect(
        all(p.requires_grad for p in d.parameters()),
        "the discriminator's parameters must be trainable again after the G step (use `with frozen(t.D_raw):`)",
    )
    _expect(
        set(d_only) == {"discriminator"},
        f"with update_generator=False only the discriminator loss is returned, got {sorted(d_only)}",
    )
    print("SRGAN step: OK")


def run_all() -> None:
    """Every check, in course order."""
    for check in (
        check_blocks,
        check_srresnet,
        check_discriminator,
        check_vgg,
        check_losses,
        check_srgan_step,
        check_imresize,
    ):
        check()
