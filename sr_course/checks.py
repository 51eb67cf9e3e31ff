"""Self-checks that the notebooks call after each TODO (CS231n style).

Each check prints one stable line, `<What>: OK (...)`, that nbval compares with the reference output,
or raises CheckFailed with a message that says what is wrong and which TODO to look at.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from . import vgg19
from .contract import stand_in
from .course import CHECKS, STUDENT_FILES, TODOS
from .data.imresize import imresize

# Each check imports the student files it needs when it runs, not when this module is imported: the
# notebooks and the kit's conftest import checks before the student's code is done, and a file that
# does not compile yet must fail its own checks only (the other files' checks still run).


class CheckFailed(AssertionError):
    """A self-check found a problem; the message names the TODO and what to fix."""


# What is wrong, in the words the grader uses too (sr_course/grading/probes.py judges with these sentences),
# so a student who sees a self-check pass and a grader who finds the same mistake say the same thing.
MESSAGES = {
    "leaky slope": "negative values are not scaled as a LeakyReLU with slope 0.2 would "
    "(paper Fig. 4: the discriminator's activations)",
    "residual skip": "with conv2's output zeroed the block does not return its input: the identity "
    "skip connection is missing or misplaced (paper Fig. 4, the elementwise sum)",
    "pixel shuffle": "the pixels are not rearranged like a pixel shuffle: each group of r^2 channels "
    "must become an r x r block of one channel (Shi et al. 2016; torch's PixelShuffle)",
    "sr range": "its output leaves [-1, 1], the range of the HR targets: look at the last layer "
    "(paper Fig. 4)",
    "long skip": "with the residual part's output zeroed it does not pass the first block's features "
    "on to the upscaling: the long skip connection around the residual blocks and the conv block "
    "after them is missing or misplaced (paper Fig. 4)",
    "d strides": "its conv blocks produce feature maps of heights {got} where the paper's give "
    "{want}: check which blocks have stride 2 and the channel counts (Fig. 4)",
    "d logit": "it returns values in [0, 1] instead of a logit: the losses are BCE with logits and "
    "apply the sigmoid themselves, so the network must end with the last Linear layer",
    "g label": "generator_adversarial_loss scores the fakes against the label 'fake' (0): the "
    "generator wants D to call its images real (paper Eq. 6)",
    "unstable": "{what} is {value} for large logits: compute it stably (BCE with logits, not "
    "log(sigmoid(x)))",
    "sr grad": "VGGContentLoss sends no gradient back to sr, so the generator cannot learn from "
    "it: only the HR branch, the fixed target, may be computed without gradients",
    "gan d touched": "srgan_step: the generator's update reaches the discriminator (D gets gradients "
    "or changes during the G step): keep D frozen while G learns",
    "gan d frozen": "srgan_step leaves the discriminator's parameters frozen after the generator's "
    "update",
    "gan g changed": "srgan_step changes the generator when update_generator=False",
    "gan detached": "srgan_step returns losses that still hold their graphs: return detached tensors",
    "gan hook": "srgan_step does not run t.adversarial's hook once, right after the discriminator's update "
    "(WGAN clips the critic's weights there)",
}


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _not_implemented(what: str, err: NotImplementedError) -> CheckFailed:
    return CheckFailed(
        f"{what} is not implemented yet ({err}); fill in its TODO box in {_todo_file(err)}"
    )


def _todo_file(err: NotImplementedError) -> str:
    """The student file of the unfinished TODO a stub's message ("TODO: <name>: ...") names."""
    name = str(err).removeprefix("TODO: ").split(":")[0]
    return next((f"sr_course/{file}" for todo, file in open_todos() if todo == name), "sr_course/")


def open_todos() -> list[tuple[str, str]]:
    """(TODO name, file) of every TODO still a stub, in course order (COURSE_ORDER)."""
    here = Path(__file__).parent
    found = []
    for name in STUDENT_FILES:
        text = (here / name).read_text(encoding="utf-8")
        for m in re.finditer(r"raise NotImplementedError\(\s*['\"]TODO: ([^:'\"]+):", text):
            if m.group(1) not in [t for t, _ in found]:
                found.append((m.group(1), name))
    return sorted(found, key=lambda f: COURSE_ORDER.index(f[0]) if f[0] in COURSE_ORDER else 99)


def _build(what: str, make):
    """make() -> the student's module; an unfinished TODO becomes the check's one sentence."""
    try:
        return make()
    except NotImplementedError as err:
        raise _not_implemented(what, err) from None


def check_conv_block() -> None:
    """ConvolutionalBlock: 'same' padding and stride, its layers, the LeakyReLU slope."""
    from . import models

    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)
    conv = _build(
        "ConvolutionalBlock",
        lambda: models.ConvolutionalBlock(
            8, 16, 3, stride=2, batch_norm=True, activation="leakyrelu"
        ),
    )
    y = conv(x)
    _expect(
        y.shape == (2, 16, 6, 6),
        f"ConvolutionalBlock(8, 16, 3, stride=2) maps (2, 8, 12, 12) to {tuple(y.shape)}, expected (2, 16, 6, 6): "
        "a 'same' convolution with stride 2 halves the height and width; check its stride and padding",
    )
    leaky = models.ConvolutionalBlock(4, 4, 1, activation="leakyrelu")
    with torch.no_grad():  # an identity convolution: the block is then its activation alone
        leaky.block[0].weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        leaky.block[0].bias.zero_()
        z = torch.randn(1, 4, 5, 5)
        _expect(
            torch.allclose(leaky(z), torch.where(z > 0, z, 0.2 * z), atol=1e-6),
            f"ConvolutionalBlock: {MESSAGES['leaky slope']}",
        )
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in conv.modules())
    _expect(
        n_bn == 1, f"ConvolutionalBlock(batch_norm=True) should hold one BatchNorm2d, found {n_bn}"
    )
    print("ConvolutionalBlock: OK")


def check_subpixel_block() -> None:
    """SubPixelConvolutionalBlock: x2 upscaling by a pixel shuffle."""
    from . import models

    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)
    sub = _build("SubPixelConvolutionalBlock", lambda: models.SubPixelConvolutionalBlock(3, 8, 2))
    y = sub(x)
    _expect(
        y.shape == (2, 8, 24, 24),
        f"SubPixelConvolutionalBlock(3, 8, 2) gave {tuple(y.shape)}, expected (2, 8, 24, 24)",
    )
    print("SubPixelConvolutionalBlock: OK")


def check_residual_block() -> None:
    """ResidualBlock (built from your ConvolutionalBlock): shape and the identity skip."""
    from . import models

    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)
    res = _build("ResidualBlock", lambda: models.ResidualBlock(3, 8))
    y = res(x)
    _expect(
        y.shape == x.shape, f"ResidualBlock changed the shape: {tuple(x.shape)} -> {tuple(y.shape)}"
    )
    with torch.no_grad():
        for m in res.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.zero_()
                m.bias.zero_()
    _expect(torch.equal(res(x), x), f"ResidualBlock: {MESSAGES['residual skip']}")
    print("ResidualBlock: OK")


def check_srresnet() -> None:
    """The default SRResNet: exact parameter count, shapes, output range."""
    from . import models

    try:
        model = models.SRResNet()
    except NotImplementedError as err:
        raise _not_implemented("SRResNet", err) from None
    n = models.count_parameters(model)
    _expect(
        n == 1_549_462,
        f"SRResNet has {n:,} parameters, the paper's network has 1,549,462: compare your layers with Fig. 4",
    )
    n_plain = models.count_parameters(models.SRResNet(batch_norm=False))
    _expect(
        n_plain == 1_545_238,
        f"SRResNet(batch_norm=False) has {n_plain:,} parameters, expected 1,545,238: with "
        "batch_norm=False no conv block of the network has batch norm (body_end's neither)",
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
        f"SRResNet: {MESSAGES['sr range']}",
    )
    # The long skip: with the residual part's output zeroed, head's features reach the upscaling.
    small = models.SRResNet(n_channels=8, n_blocks=2).eval()
    lr = torch.rand(1, 3, 6, 6)
    hook = small.body_end.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    with torch.no_grad():
        got = small(lr)
        hook.remove()
        want = small.tail(small.upscale(small.head(lr)))
    _expect(torch.allclose(got, want, atol=1e-5), f"SRResNet: {MESSAGES['long skip']}")
    print(f"SRResNet: OK ({n:,} parameters)")


def check_discriminator() -> None:
    """The default Discriminator: exact parameter count and (N, 1) logits for several sizes."""
    from . import models

    try:
        model = models.Discriminator()
    except NotImplementedError as err:
        raise _not_implemented("Discriminator", err) from None
    n = models.count_parameters(model)
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

    small = models.Discriminator(n_channels=4, fc_size=8).eval()
    heights = []
    for m in small.modules():
        if isinstance(m, models.ConvolutionalBlock):
            m.register_forward_hook(lambda m, i, o: heights.append(o.shape[2]))
    with torch.no_grad():
        small(torch.rand(1, 3, 96, 96) * 2 - 1)
        want = [96, 48, 48, 24, 24, 12, 12, 6]
        _expect(
            heights == want,
            "Discriminator: " + MESSAGES["d strides"].format(got=heights, want=want),
        )
        for (
            p
        ) in small.parameters():  # large weights: a logit then leaves [0, 1], a probability cannot
            p.mul_(20)
        logits = small(torch.rand(8, 3, 48, 48) * 2 - 1)
    _expect(
        not bool(((logits >= 0) & (logits <= 1)).all()), f"Discriminator: {MESSAGES['d logit']}"
    )
    print(f"Discriminator: OK ({n:,} parameters)")


def vgg_truncation_problem(i: int, j: int, n) -> str | None:
    """What is wrong with n as the number of layers of vgg19().features that phi_(i,j) keeps, in
    one sentence (None when n is right): where the kept layers end, and where phi_(i,j) ends."""
    from . import models

    # Only the layers' kinds matter: laid out on the meta device, without memory. They are
    # torchvision's vgg19().features (tests/test_models.py compares the two), without its import.
    with torch.device("meta"):
        layers = vgg19.layers()
    # phi_(i,j)'s convolution, counted from 1
    k = sum(models.VGG19_BLOCKS[b] for b in range(1, i)) + j
    where = f"phi_({i},{j}) ends at the ReLU after convolution {k} (convolution {j} of block {i})"
    if not isinstance(n, int) or not 1 <= n <= len(layers):
        return f"vgg19_truncation_index({i}, {j}) = {n!r} is not a number of layers of vgg19().features (1 to {len(layers)}); {where}"
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in layers[:n])
    last = layers[n - 1]
    if isinstance(last, torch.nn.ReLU) and convs == k:
        return None
    if isinstance(last, torch.nn.Conv2d):
        end = f"convolution {convs} itself, before its activation"
    elif isinstance(last, torch.nn.ReLU):
        end = f"the ReLU after convolution {convs}"
    else:
        end = f"the max-pool after convolution {convs}"
    return (
        f"vgg19_truncation_index({i}, {j}) = {n}: the first {n} layers of vgg19().features end at "
        f"{end}, but {where}; print(torchvision.models.vgg19().features) lists the layers with "
        "their indices"
    )


def check_vgg() -> None:
    """The VGG19 truncation phi_(i,j), compared with vgg19().features' layer list."""
    from . import models

    for i, j in ((1, 1), (2, 2), (3, 4), (5, 4)):
        try:
            n = models.vgg19_truncation_index(i, j)
        except NotImplementedError as err:
            raise _not_implemented("vgg19_truncation_index", err) from None
        problem = vgg_truncation_problem(i, j, n)
        _expect(problem is None, problem or "")
    print("TruncatedVGG19: OK")


def check_imresize() -> None:
    """MATLAB parity of imresize on a known case."""

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


def check_pixel_loss() -> None:
    """pixel_mse against a hand-computed value (notebook 1: the loss SRResNet trains on)."""
    from . import losses

    try:
        sr = torch.zeros(1, 3, 2, 2, requires_grad=True)
        mse = losses.pixel_mse(sr, torch.full((1, 3, 2, 2), 0.5))
    except NotImplementedError as err:
        raise _not_implemented("pixel_mse", err) from None
    _expect(
        mse.dim() == 0 and abs(mse.item() - 0.25) < 1e-7,
        f"pixel_mse of 0 vs 0.5 everywhere should be the scalar 0.25, got {mse.detach().tolist()}",
    )
    _expect(mse.requires_grad, "pixel_mse returns a tensor without a graph: no gradient reaches sr")
    print("pixel_mse: OK")


def check_vgg_loss() -> None:
    """VGGContentLoss against a hand-computed value, and its gradient into sr (notebook 2)."""
    from . import losses

    sr = torch.zeros(1, 3, 4, 4, requires_grad=True)
    hr = torch.ones(1, 3, 4, 4)  # data, as in training
    vgg_loss = _build(
        "VGGContentLoss", lambda: losses.VGGContentLoss(torch.nn.Identity(), rescale=0.5)(sr, hr)
    )
    _expect(
        abs(vgg_loss.item() - 0.25) < 1e-7,
        f"VGGContentLoss(identity, rescale=0.5) of 0 vs 1 should be 0.25 (features x rescale, then MSE), got {vgg_loss.item():.6g}",
    )
    _expect(vgg_loss.requires_grad, MESSAGES["sr grad"])
    vgg_loss.backward()
    _expect(sr.grad is not None and bool(sr.grad.abs().sum() > 0), MESSAGES["sr grad"])
    print("VGGContentLoss: OK")


def check_adversarial_losses() -> None:
    """generator_adversarial_loss and discriminator_loss against hand-computed values."""
    from . import losses

    g_adv = _build(
        "generator_adversarial_loss",
        lambda: losses.generator_adversarial_loss(torch.tensor([[0.0], [2.0]])).item(),
    )
    g_far = losses.generator_adversarial_loss(torch.tensor([[-120.0]])).item()
    d_loss = _build(
        "discriminator_loss",
        lambda: losses.discriminator_loss(
            torch.tensor([[2.0]]), torch.tensor([[-1.0]]), label_smoothing=0.1
        ).item(),
    )
    g_want = (math.log(2) + math.log1p(math.exp(-2))) / 2
    g_wrong = (math.log(2) + 2 + math.log1p(math.exp(-2))) / 2
    _expect(abs(g_adv - g_wrong) > 1e-4, MESSAGES["g label"])
    _expect(
        abs(g_adv - g_want) < 1e-6,
        f"generator_adversarial_loss(logits 0 and 2) should be {g_want:.4f}, got {g_adv:.4f}: "
        "it must be -log D(G(LR)) averaged over the batch (paper Eq. 6)",
    )
    _expect(
        math.isfinite(g_far) and abs(g_far - 120) < 1e-3,
        MESSAGES["unstable"].format(what="generator_adversarial_loss(logit -120)", value=g_far),
    )
    expected = (
        0.9 * math.log1p(math.exp(-2))
        + 0.1 * (2 + math.log1p(math.exp(-2)))
        + math.log1p(math.exp(-1))
    )
    _expect(
        abs(d_loss - expected) < 1e-5,
        f"discriminator_loss(real 2, fake -1, smoothing 0.1) should be {expected:.4f}, got {d_loss:.4f}: "
        "D's cross-entropy on real images (targets 1 - label_smoothing) and on fakes (paper Eq. 2)",
    )
    print("adversarial losses: OK")


def check_srgan_step(generator=None, discriminator=None) -> None:
    """One SRGAN step on tiny networks (yours by default): both networks learn, and the generator's
    update leaves the discriminator trainable."""
    from . import losses, models, solver
    from .components.adversarial import StandardGAN

    torch.manual_seed(0)
    try:
        g = generator or models.Generator(n_channels=8, n_blocks=1)
        d = discriminator or models.Discriminator(n_channels=8, fc_size=16)
    except NotImplementedError as err:
        raise _not_implemented("a network the SRGAN step needs", err) from None
    adversarial = StandardGAN()
    hooked = []  # how many D updates had run each time the critic's hook ran

    def hook(D):
        hooked.append(seen.get("d steps", 0))

    adversarial.after_discriminator_step = hook
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = [p.detach().clone() for p in d.parameters()]
    seen = {}

    def optimizers():  # built when the step first uses one (the kit's stub never does)
        opt_g, opt_d = (
            torch.optim.Adam(g.parameters(), 1e-3),
            torch.optim.Adam(d.parameters(), 1e-3),
        )
        g_step, d_step = opt_g.step, opt_d.step

        def watched_g_step(*args, **kwargs):  # what D looks like while G takes its step
            seen["d touched"] = any(
                p.grad is not None and bool(p.grad.abs().sum() > 0) for p in d.parameters()
            ) or any(not torch.equal(a, b) for a, b in zip(d0, d.parameters()))
            return g_step(*args, **kwargs)

        def watched_d_step(*args, **kwargs):
            seen["d steps"] = seen.get("d steps", 0) + 1
            return d_step(*args, **kwargs)

        opt_g.step, opt_d.step = watched_g_step, watched_d_step
        return opt_g, opt_d

    t = stand_in(
        g,
        d,
        optimizers=optimizers,
        pixel_loss=losses.pixel_mse,
        content_loss=losses.pixel_mse,
        adversarial=adversarial,
    )
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32) * 2 - 1
    try:
        out = solver.srgan_step(t, lr, hr, update_generator=True)
        g1 = [p.detach().clone() for p in g.parameters()]
        d_only = solver.srgan_step(t, lr, hr, update_generator=False)
    except NotImplementedError as err:
        raise _not_implemented("the SRGAN step", err) from None
    except Exception as err:
        text = (str(err).splitlines() or [""])[0][:300]
        hint = (
            " (a gradient error usually means a network was left frozen, or the fakes were not "
            "detached for the discriminator's update)"
            if "grad" in text
            else ""
        )
        raise CheckFailed(f"srgan_step failed: {type(err).__name__}: {text}{hint}") from err
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
    _expect(not seen.get("d touched", False), MESSAGES["gan d touched"])
    _expect(all(p.requires_grad for p in d.parameters()), MESSAGES["gan d frozen"])
    _expect(all(torch.equal(a, b) for a, b in zip(g1, g.parameters())), MESSAGES["gan g changed"])
    _expect(
        all(not getattr(v, "requires_grad", False) for v in out.values()), MESSAGES["gan detached"]
    )
    _expect(hooked == [1, 2], MESSAGES["gan hook"])
    _expect(
        set(d_only) == {"discriminator"},
        f"with update_generator=False only the discriminator loss is returned, got {sorted(d_only)}",
    )
    print("SRGAN step: OK")


# The self-checks in course order, from the course manifest: (check, what it prints before ": OK",
# the TODOs it covers, the notebook whose check cell runs it). The grader counts a check cell only
# when it found those TODOs right.
COURSE = tuple(
    (check, TODOS[todos[0]].label, todos, TODOS[todos[0]].notebook)
    for check, todos in CHECKS.items()
)
COURSE_ORDER = tuple(TODOS)


def run_all() -> int:
    """Every self-check in course order, one line each ("ConvolutionalBlock: OK" or what is
    wrong), then how many pass and, if any fails, the first TODO to work on. A check that crashes
    (your code raised while it ran) is reported in its line like any failure, and the later checks
    still run. Returns the number failed."""
    failed = []
    for name, label, todos, notebook in COURSE:
        try:
            globals()[name]()
        except CheckFailed as err:
            print(f"{label}: not yet: {err}")
            failed.append((todos, notebook))
        except Exception as err:  # the student's code raised: one line, not a traceback
            text = (str(err).splitlines() or [""])[0][:300]
            print(f"{label}: not yet: your code raised {type(err).__name__}: {text}")
            failed.append((todos, notebook))
    try:
        check_imresize()
    except CheckFailed as err:  # not a TODO: the installation itself is broken
        print(f"imresize: FAILED: {err} (reinstall the kit)")
        failed.append(((), None))
    passed = len(COURSE) + 1 - len(failed)
    print(f"{passed} of {len(COURSE) + 1} self-checks pass", end="")
    todos, notebook = next(((t, n) for t, n in failed if t), ((), None))
    print(f"; next: TODO {todos[0]} (notebook {notebook})" if todos else "")
    return len(failed)
