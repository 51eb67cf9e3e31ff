"""What the grader runs for each student TODO, and how it judges the outputs (instructor-only).

A probe has two halves that never meet in one process:

    run(ctx) -> dict      runs in the sandbox, on the student's module (ctx.models / ctx.losses /
                          ctx.solver), with the reference's version of the TODOs it builds on;
                          it only produces outputs (tensors, numbers, strings)
    judge(s, r) -> str    runs in the grader, comparing the student's outputs `s` with the
                          reference's `r` (the same run() on the reference modules, in a separate
                          process); None means right, otherwise one sentence that says what is
                          wrong and where to look

What a judge may trust: the student's code shares its process with run(), so anything run() records
about the student's code (a counter, a flag, an input it kept) could be rewritten by that code. A
probe passes only when every output, on inputs drawn from this grading run's seed (RUN_SEED), equals
the reference's, compared strictly (`same`: the same keys, lengths, shapes and values); what run()
records about the code's conduct only picks the sentence that explains a failure.

A TODO that builds on others (the manifest's builds_on) runs with STAND_INS in their place: modules
with the same constructor arguments and state_dict keys that compute something else on purpose, so
one mistake costs one TODO and no working solution of another TODO is ever in the sandbox.

Networks are judged by behaviour, not size: both get the same weights, made from each state_dict
key's name and shape (`fill_weights`), and their outputs are compared in train and eval mode at
several sizes. The state_dict keys are part of each TODO's contract (checkpoints rely on them), so a
network whose keys differ gets a sentence listing the missing and unexpected ones.

This module imports nothing from sr_course at import time: the sandbox loads it on its own, before
the kit is on its path. Which TODOs there are, and what each builds on, is the course manifest's
(sr_course/course.py); PROBES has one list of probes per TODO there.
"""

from __future__ import annotations

import importlib
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

RUN_SEED = 0  # set by the runner from the grading run's job, before any probe runs


@dataclass(frozen=True)
class Probe:
    todo: str
    name: str
    run: Callable  # (ctx) -> dict of outputs
    judge: Callable  # (student outputs, reference outputs) -> sentence or None
    rtol: float = 1e-4
    atol: float = 1e-5

    def verdict(self, s, r) -> str | None:
        """None when the student's outputs equal the reference's (strictly: `same`) and the judge
        finds nothing wrong; otherwise the judge's sentence, or a plain one when it has none."""
        equal = same(s, r, self.rtol, self.atol)
        try:
            sentence = self.judge(s, r)
        except Exception as err:  # noqa: BLE001 - outputs of the wrong kind
            return (
                f"{self.todo} ({self.name}): its outputs have the wrong kind or shape "
                f"({type(err).__name__}): check the return values against the docstring"
            )
        if equal and sentence is None:
            return None
        return sentence or (
            f"{self.todo} ({self.name}): its outputs differ from the reference's on this run's "
            "inputs: compare it with its TODO box"
        )


def same(s, r, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Are the student's outputs `s` the reference's `r`? The same structure (dict keys, list
    lengths, types), tensors of the same shape and close values (NaN where the reference has NaN),
    numbers close, everything else equal. Nothing the student's record leaves out or adds passes."""
    if isinstance(r, torch.Tensor):
        if not isinstance(s, torch.Tensor) or s.shape != r.shape or s.layout != torch.strided:
            return False
        if r.is_floating_point():
            return s.is_floating_point() and bool(
                torch.allclose(s.double(), r.double(), rtol=rtol, atol=atol, equal_nan=True)
            )
        return s.dtype == r.dtype and bool(torch.equal(s, r))
    if isinstance(r, dict):
        return (
            isinstance(s, dict)
            and list(s) == list(r)
            and all(same(s[k], r[k], rtol, atol) for k in r)
        )
    if isinstance(r, (list, tuple)):
        return (
            type(s) is type(r)
            and len(s) == len(r)
            and all(same(a, b, rtol, atol) for a, b in zip(s, r, strict=True))
        )
    if isinstance(r, bool) or r is None or isinstance(r, (str, int)):
        return type(s) is type(r) and s == r
    if isinstance(r, float):
        if type(s) is not float:
            return False
        if math.isnan(r):
            return math.isnan(s)
        return math.isclose(s, r, rel_tol=rtol, abs_tol=atol)
    return False


# --- stand-ins: the TODOs a TODO builds on, computed differently on purpose -----------------------


class StandInConvolutionalBlock(nn.Module):
    """ConvolutionalBlock's arguments, output shape and state_dict keys (block.0 the convolution,
    then batch norm, then a PReLU's slope); a different computation (flipped kernels, batch norm as a
    plain affine map, other slopes), so it is no solution of that TODO."""

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, batch_norm=False, activation=None
    ):
        super().__init__()
        act = activation.lower() if isinstance(activation, str) else activation
        if act not in (None, "prelu", "leakyrelu", "tanh"):
            raise ValueError(
                f"activation must be None or prelu, leakyrelu, tanh, got {activation!r}"
            )
        self.block = nn.Sequential()
        self.block.add_module(
            "0", nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2)
        )
        if batch_norm:
            self.block.add_module(str(len(self.block)), nn.BatchNorm2d(out_channels))
        if act == "prelu":
            self.block.add_module(str(len(self.block)), nn.PReLU())
        self.batch_norm, self.act = batch_norm, act

    def forward(self, x):
        conv = self.block[0]
        y = 2.5 * nn.functional.conv2d(
            x, conv.weight.flip(-1, -2), conv.bias, conv.stride, conv.padding
        )
        if self.batch_norm:
            y = y * self.block[1].weight.view(1, -1, 1, 1) + self.block[1].bias.view(1, -1, 1, 1)
        if self.act == "prelu":
            y = torch.where(y > 0, y, 0.5 * self.block[-1].weight * y)
        elif self.act == "leakyrelu":
            y = torch.where(y > 0, y, 0.35 * y)
        elif self.act == "tanh":
            y = torch.tanh(0.9 * y)
        return y


class StandInSubPixelConvolutionalBlock(nn.Module):
    """SubPixelConvolutionalBlock's arguments, shapes and keys (conv, prelu); it rearranges the
    channels in another order than a pixel shuffle."""

    def __init__(self, kernel_size=3, n_channels=64, scaling_factor=2):
        super().__init__()
        self.r = scaling_factor
        self.conv = nn.Conv2d(
            n_channels, n_channels * scaling_factor**2, kernel_size, padding=kernel_size // 2
        )
        self.pixel_shuffle = nn.Identity()
        self.prelu = nn.PReLU()

    def forward(self, x):
        n, c, h, w = x.shape
        y = self.conv(x).view(n, c, self.r, self.r, h, w).permute(0, 1, 4, 3, 5, 2)
        y = y.reshape(n, c, h * self.r, w * self.r)
        return torch.where(y > 0, y, 0.5 * self.prelu.weight * y)


class StandInResidualBlock(nn.Module):
    """ResidualBlock's arguments, shapes and keys (conv1, conv2); half the correction is added."""

    def __init__(self, kernel_size=3, n_channels=64, batch_norm=True):
        super().__init__()
        self.conv1 = StandInConvolutionalBlock(
            n_channels, n_channels, kernel_size, batch_norm=batch_norm, activation="prelu"
        )
        self.conv2 = StandInConvolutionalBlock(
            n_channels, n_channels, kernel_size, batch_norm=batch_norm
        )

    def forward(self, x):
        return x + 0.5 * self.conv2(self.conv1(x))


class StandInAdversarial:
    """t.adversarial for the SRGAN step's probes: a loss pair of another form than the paper's and a
    hook that shrinks D's weights, so its place in the step shows in D's weights."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def generator_loss(self, D, sr, hr):
        return 0.7 * nn.functional.softplus(-D(sr).float()).mean()

    def discriminator_loss(self, D, hr, sr):
        real, fake = D(hr).float(), D(sr).float()
        s = self.label_smoothing
        return (
            nn.functional.softplus(-real).mean() * (1 - s)
            + 1.3 * nn.functional.softplus(fake).mean()
        )

    @torch.no_grad()
    def after_discriminator_step(self, D) -> None:
        for p in D.parameters():
            p.mul_(0.9)


# {TODO: {module-level name: its stand-in}} for every TODO another builds on (course.TODOS' builds_on).
STAND_INS: dict[str, dict] = {
    "ConvolutionalBlock": {"ConvolutionalBlock": StandInConvolutionalBlock},
    "SubPixelConvolutionalBlock": {"SubPixelConvolutionalBlock": StandInSubPixelConvolutionalBlock},
    "ResidualBlock": {"ResidualBlock": StandInResidualBlock},
    "adversarial losses": {},  # the SRGAN step's probes hand the step a StandInAdversarial
}


# --- shared helpers --------------------------------------------------------------------------------


def fill_weights(module: nn.Module, seed: int = 0) -> None:
    """Give `module` weights that depend only on each state_dict key's name and shape, so two
    networks with the same keys get the same weights whoever wrote them."""
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if not value.is_floating_point():
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()) + seed + RUN_SEED)
            if value.dim() >= 2:
                fan_in = value[0].numel()
                new = torch.randn(value.shape, generator=g) / math.sqrt(fan_in)
            elif key.endswith(("running_var", "weight")):  # BN scales and variances, PReLU slopes
                new = torch.rand(value.shape, generator=g) + 0.5
            else:
                new = (torch.rand(value.shape, generator=g) - 0.5) * 0.4
            value.copy_(new)


def _message(key: str) -> str:
    """A sentence shared with the notebooks' self-checks (judges run in the grader, where sr_course
    is importable; the sandbox never calls them, so the import waits for the first judge)."""
    from sr_course.checks import MESSAGES

    return MESSAGES[key]


def _inputs(shapes, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed + RUN_SEED)
    return [torch.randn(s, generator=g) * scale for s in shapes]


def _state(net: nn.Module) -> list:
    return [[k, list(v.shape)] for k, v in net.state_dict().items()]


def _run_net(build, inputs, zero_hook: str | None = None) -> dict:
    """Build a network, record its state_dict layout, give it the shared weights and record its
    outputs in eval mode, then in train mode, for each input."""
    torch.manual_seed(0)
    net = build()
    out = {"state": _state(net)}
    fill_weights(net)
    for mode in ("eval", "train"):
        net.train(mode == "train")
        with torch.no_grad():
            for k, x in enumerate(inputs):
                out[f"{mode} {k}"] = net(x.clone())
    return out


def _keys_sentence(what: str, s: list, r: list) -> str | None:
    """None when the state_dict layouts match, else a sentence naming the differences."""
    if s == r:
        return None
    sk, rk = {k: tuple(v) for k, v in s}, {k: tuple(v) for k, v in r}
    missing = [k for k in rk if k not in sk]
    unexpected = [k for k in sk if k not in rk]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else ""))
        if unexpected:
            parts.append(
                "unexpected " + ", ".join(unexpected[:6]) + (" ..." if len(unexpected) > 6 else "")
            )
        return (
            f"{what}: its state_dict keys break the checkpoint contract ({'; '.join(parts)}): "
            "compare the layers, their order and the attribute names with the TODO box"
        )
    for k in rk:
        if sk[k] != rk[k]:
            return (
                f"{what}: {k} has shape {tuple(sk[k])}, expected {tuple(rk[k])}: "
                "check the channels and kernel sizes of that layer"
            )
    return (
        f"{what}: its state_dict keys are in another order than expected: "
        "build the layers in the order of the TODO box"
    )


def _first_difference(s: dict, r: dict, keys, atol=1e-4, rtol=1e-4) -> tuple[str, float] | None:
    """The first output (by key) where the student's tensor differs from the reference's."""
    for key in keys:
        a, b = s.get(key), r[key]
        if not isinstance(a, torch.Tensor) or a.shape != b.shape:
            return key, math.inf
        if not torch.allclose(a.float(), b.float(), atol=atol, rtol=rtol):
            return key, float((a.float() - b.float()).abs().max())
    return None


def _shape_of(s: dict, r: dict, keys) -> str | None:
    for key in keys:
        a, b = s.get(key), r[key]
        if isinstance(a, torch.Tensor) and a.shape != b.shape:
            return f"{key}: {tuple(a.shape)} instead of {tuple(b.shape)}"
    return None


def _net_judge(what: str, shapes, hints: Callable | None = None):
    """Judge of a network probe: keys first, then output shapes, then values (with hints)."""

    def judge(s: dict, r: dict) -> str | None:
        problem = _keys_sentence(what, s["state"], r["state"])
        if problem:
            return problem
        keys = [k for k in r if k != "state" and isinstance(r[k], torch.Tensor)]
        shape = _shape_of(s, r, keys)
        if shape:
            mode, k = shape.split(":")[0].split()
            return (
                f"{what}: the output for an input of shape {shapes[int(k)]} has the wrong shape "
                f"({shape.split(': ')[1]}): check strides, padding and upscaling factors"
            )
        diff = _first_difference(s, r, keys)
        if diff is None:
            return None
        hint = hints(s, r) if hints else None
        if hint:
            return f"{what}: {hint}"
        key, err = diff
        mode, k = key.split()
        return (
            f"{what}: with the same weights as the reference its output differs ({mode} mode, input "
            f"{shapes[int(k)]}, largest difference {err:.3g}): check the order of the operations in "
            "forward() and each layer's settings against the TODO box"
        )

    return judge


# --- ConvolutionalBlock ----------------------------------------------------------------------------

_CB_CASES = [  # (in, out, kernel, stride, batch_norm, activation)
    (5, 7, 3, 1, False, None),
    (5, 7, 3, 2, True, "prelu"),
    (4, 6, 9, 1, True, "leakyrelu"),
    (4, 3, 3, 2, False, "tanh"),
    (3, 4, 1, 1, False, "LeakyReLU"),
]


def _cb_probe(case):
    cin, cout, k, stride, bn, act = case
    shapes = [(2, cin, 13, 11), (1, cin, 8, 8)]
    what = (
        f"ConvolutionalBlock({cin}, {cout}, {k}, stride={stride}, batch_norm={bn}, "
        f"activation={act!r})"
    )

    def run(ctx):
        build = lambda: ctx.models.ConvolutionalBlock(  # noqa: E731
            cin, cout, k, stride=stride, batch_norm=bn, activation=act
        )
        return _run_net(build, _inputs(shapes, seed=k + stride, scale=3.0))

    def hints(s, r):
        if act and act.lower() == "leakyrelu":
            return _message("leaky slope")
        if act == "tanh" and any(
            float(s[k].abs().max()) > 1 for k in s if isinstance(s[k], torch.Tensor)
        ):
            return "with activation='tanh' the output must lie in [-1, 1]"
        return None

    return Probe(
        "ConvolutionalBlock",
        f"conv {cin}->{cout} k{k} s{stride} {act}",
        run,
        _net_judge(what, shapes, hints),
    )


# --- SubPixelConvolutionalBlock --------------------------------------------------------------------

_SP_CASES = [(3, 8, 2), (3, 4, 3), (5, 6, 2)]


def _sp_probe(case):
    k, c, s = case
    shapes = [(2, c, 5, 7), (1, c, 4, 4)]
    what = f"SubPixelConvolutionalBlock({k}, {c}, {s})"

    def run(ctx):
        build = lambda: ctx.models.SubPixelConvolutionalBlock(k, c, s)  # noqa: E731
        return _run_net(build, _inputs(shapes, seed=k * c + s))

    def hints(s_, r):
        return _message("pixel shuffle")

    return Probe(
        "SubPixelConvolutionalBlock", f"x{s} k{k} c{c}", run, _net_judge(what, shapes, hints)
    )


# --- ResidualBlock ---------------------------------------------------------------------------------

_RB_CASES = [(3, 8, True), (3, 6, False), (5, 4, True)]


def _rb_probe(case):
    k, c, bn = case
    shapes = [(2, c, 9, 7), (1, c, 6, 6)]
    what = f"ResidualBlock({k}, {c}, batch_norm={bn})"

    def run(ctx):
        build = lambda: ctx.models.ResidualBlock(k, c, batch_norm=bn)  # noqa: E731
        out = _run_net(build, _inputs(shapes, seed=k + c))
        # The skip connection alone: with conv2's output zeroed, the block must return its input.
        net = build()
        fill_weights(net)
        net.eval()
        net.conv2.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        with torch.no_grad():
            out["skip"] = net(_inputs(shapes[:1], seed=99)[0])
        out["skip input"] = _inputs(shapes[:1], seed=99)[0]
        return out

    def hints(s, r):
        if "skip" in s and not torch.allclose(s["skip"], s["skip input"], atol=1e-6):
            return _message("residual skip")
        return None

    return Probe("ResidualBlock", f"k{k} c{c} bn {bn}", run, _net_judge(what, shapes, hints))


# --- SRResNet --------------------------------------------------------------------------------------

_SR_CASES = [  # kwargs, input shapes
    (dict(n_channels=8, n_blocks=2, scaling_factor=4), [(1, 3, 7, 9), (2, 3, 6, 6)]),
    (dict(n_channels=6, n_blocks=3, scaling_factor=2), [(1, 3, 5, 8)]),
    (
        dict(large_kernel_size=5, small_kernel_size=3, n_channels=4, n_blocks=1, scaling_factor=8),
        [(1, 3, 4, 5)],
    ),
    (dict(n_channels=8, n_blocks=2, scaling_factor=4, batch_norm=False), [(1, 3, 6, 7)]),
]


def _sr_probe(case):
    kwargs, shapes = case
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    what = f"SRResNet({args})"

    def run(ctx):
        build = lambda: ctx.models.SRResNet(**kwargs)  # noqa: E731
        inputs = [x.sigmoid() for x in _inputs(shapes, seed=len(args))]  # LR in [0, 1]
        out = _run_net(build, inputs)
        # The long skip alone: with body_end's output zeroed, head's features go on to the upscaling.
        net = build()
        fill_weights(net)
        net.eval()
        net.body_end.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
        with torch.no_grad():
            out["no body"] = net(inputs[0])
        return out

    def hints(s, r):
        if any(float(s[k].abs().max()) > 1 for k in s if k.startswith(("eval", "train"))):
            return _message("sr range")
        if not torch.allclose(s["no body"], r["no body"], atol=1e-4, rtol=1e-4):
            return _message("long skip")
        return None

    return Probe("SRResNet", args, run, _net_judge(what, shapes, hints))


# --- Discriminator ---------------------------------------------------------------------------------

_D_CASES = [
    (dict(n_channels=4, fc_size=16), [(2, 3, 48, 48), (1, 3, 40, 56)]),
    (dict(kernel_size=3, n_channels=3, n_blocks=6, fc_size=8), [(2, 3, 32, 36)]),
    (dict(n_channels=4, fc_size=16, batch_norm=False), [(2, 3, 24, 24)]),
]


def _d_probe(case):
    kwargs, shapes = case
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    what = f"Discriminator({args})"

    def run(ctx):
        build = lambda: ctx.models.Discriminator(**kwargs)  # noqa: E731
        inputs = [x.tanh() for x in _inputs(shapes, seed=len(args))]  # images in [-1, 1]
        out = _run_net(build, inputs)
        # Feature-map sizes after each conv block, in the order they run.
        net = build()
        sizes = []
        for m in net.modules():
            if isinstance(m, ctx.models.ConvolutionalBlock):
                m.register_forward_hook(lambda m, i, o: sizes.append(list(o.shape[1:])))
        with torch.no_grad():
            net.eval()(inputs[0])
        out["block sizes"] = sizes
        return out

    def hints(s, r):
        if s["block sizes"] != r["block sizes"]:
            got = [x[1] for x in s["block sizes"]]
            want = [x[1] for x in r["block sizes"]]
            return _message("d strides").format(got=got, want=want)
        keys = [k for k in r if k.startswith(("eval", "train"))]
        if all(
            isinstance(s.get(k), torch.Tensor)
            and s[k].shape == r[k].shape
            and torch.allclose(s[k].float(), torch.sigmoid(r[k].float()), atol=1e-4)
            for k in keys
        ):
            return _message("d logit")
        return None

    return Probe("Discriminator", args, run, _net_judge(what, shapes, hints))


# --- TruncatedVGG19 --------------------------------------------------------------------------------

_VGG_BLOCKS = {1: 2, 2: 2, 3: 4, 4: 4, 5: 4}


def _vgg_probe(block):
    def run(ctx):
        return {
            "layers": [
                ctx.models.vgg19_truncation_index(block, j)
                for j in range(1, _VGG_BLOCKS[block] + 1)
            ]
        }

    def judge(s, r):
        from sr_course.checks import vgg_truncation_problem  # in the grader only, as _message

        for j, (a, b) in enumerate(zip(s["layers"], r["layers"]), 1):
            if a != b:
                return vgg_truncation_problem(block, j, a) or f"phi_({block},{j}): {a} is wrong"
        return None

    return Probe("TruncatedVGG19", f"block {block}", run, judge)


# --- losses ----------------------------------------------------------------------------------------


def _loss_record(fn, *tensors, data: tuple[int, ...] = ()):
    """Value and input gradients of a loss: fn(*tensors) -> scalar. The inputs at the positions in
    `data` are given without gradients, as training gives them (the HR target is always data): a
    probe judges only the gradients training uses."""
    leaves = [t.clone().requires_grad_(k not in data) for k, t in enumerate(tensors)]
    value = fn(*leaves)
    if value.requires_grad:  # else no input gets a gradient: the judge says which should have
        value.backward()
    return {
        "value": value.detach(),
        "shape": list(value.shape),
        "grads": [t.grad if t.grad is not None else torch.tensor(float("nan")) for t in leaves],
        "has grad": [t.grad is not None for t in leaves],
    }


def _loss_judge(what: str, note: str, rtol=1e-5, atol=1e-6, extra: Callable | None = None):
    def judge(s, r):
        if s["shape"] != []:
            return (
                f"{what} must return a scalar (a mean), got a tensor of shape {tuple(s['shape'])}"
            )
        if not torch.isfinite(s["value"]):
            return _message("unstable").format(what=what, value=float(s["value"]))
        if extra:
            hint = extra(s, r)
            if hint:
                return hint
        if not torch.allclose(s["value"], r["value"], rtol=rtol, atol=atol):
            return f"{what} is {float(s['value']):.6g}, expected {float(r['value']):.6g}: {note}"
        if s["has grad"] != r["has grad"]:
            return f"{what}: gradients reach the wrong inputs: {note}"
        for a, b in zip(s["grads"], r["grads"]):
            if a.shape != b.shape or not torch.allclose(
                torch.nan_to_num(a), torch.nan_to_num(b), rtol=1e-4, atol=1e-7
            ):
                return f"{what} has the right value but the wrong gradient: {note}"
        return None

    return judge


def _mse_probe(k):
    shapes = [(2, 3, 6, 5), (1, 1, 4, 4), (3, 3, 2, 7)][k]

    def run(ctx):
        sr, hr = (x.tanh() for x in _inputs([shapes, shapes], seed=k))
        return _loss_record(ctx.losses.pixel_mse, sr, hr, data=(1,))

    return Probe(
        "pixel_mse",
        f"case {k}",
        run,
        _loss_judge(
            f"pixel_mse on {shapes} tensors",
            "it must be the mean of the squared differences over every element (paper Eq. 4)",
        ),
    )


class _FeatureNet(nn.Module):
    """A small frozen stand-in for VGG19: (N, 3, H, W) -> (N, 6, H/2, W/2)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3 + RUN_SEED)
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return torch.relu(self.conv(x))


def _vgg_loss_probe(rescale):
    def run(ctx):
        sr, hr = (x.tanh() for x in _inputs([(2, 3, 8, 8), (2, 3, 8, 8)], seed=5))
        loss = ctx.losses.VGGContentLoss(_FeatureNet(), rescale=rescale)
        return _loss_record(loss, sr, hr, data=(1,))

    def extra(s, r):
        if not s["has grad"][0]:
            return _message("sr grad")
        return None

    return Probe(
        "VGGContentLoss",
        f"rescale {rescale:.4g}",
        run,
        _loss_judge(
            f"VGGContentLoss(rescale={rescale:.4g})",
            "it must be the MSE between the features of SR and HR, each multiplied by rescale "
            "(paper Eq. 5 and Sec. 3.2)",
            extra=extra,
        ),
    )


def _g_adv_probe():
    def run(ctx):
        logits = torch.tensor([[-120.0], [-3.0], [0.0], [0.5], [2.0], [40.0]])
        return _loss_record(ctx.losses.generator_adversarial_loss, logits)

    def extra(s, r):
        logits = torch.tensor([[-120.0], [-3.0], [0.0], [0.5], [2.0], [40.0]])
        zeros = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, torch.zeros_like(logits)
        )
        if torch.allclose(s["value"], zeros):
            return _message("g label")
        return None

    return Probe(
        "adversarial losses",
        "generator",
        run,
        _loss_judge(
            "generator_adversarial_loss",
            "it must be -log D(G(LR)) averaged over the batch, from logits (paper Eq. 6)",
            extra=extra,
        ),
    )


def _d_loss_probe(smoothing):
    def run(ctx):
        real = torch.tensor([[3.0], [-1.0], [0.2], [-150.0]])
        fake = torch.tensor([[-2.0], [0.7], [1.5], [90.0]])
        return _loss_record(
            lambda a, b: ctx.losses.discriminator_loss(a, b, label_smoothing=smoothing), real, fake
        )

    return Probe(
        "adversarial losses",
        f"discriminator, smoothing {smoothing}",
        run,
        _loss_judge(
            f"discriminator_loss(label_smoothing={smoothing})",
            "it must be the BCE with logits of the real logits against 1 - label_smoothing plus that "
            "of the fake logits against 0, each a mean over the batch (paper Eq. 2)",
        ),
    )


# --- the SRGAN step --------------------------------------------------------------------------------


def _gan_nets():
    torch.manual_seed(7 + RUN_SEED)
    g = nn.Sequential(nn.Conv2d(3, 48, 3, padding=1), nn.PixelShuffle(4), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2),
        nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 1),
    )
    return g, d


def _snapshot(net):
    return [p.detach().clone() for p in net.parameters()]


def _gan_probe(adv_weight, smoothing):
    def run(ctx):
        g, d = _gan_nets()
        seen = {}

        def optimizers():  # built when the step first uses one (the kit's stub never does)
            opt_g = torch.optim.SGD(g.parameters(), lr=0.5)
            opt_d = torch.optim.SGD(d.parameters(), lr=0.5)
            step_g, step_d = opt_g.step, opt_d.step

            def watched_g(*a, **k):  # what D looks like while G takes its step
                seen["D grads during G step"] = any(
                    p.grad is not None and bool(p.grad.abs().sum() > 0) for p in d.parameters()
                )
                seen["D at G step"] = _snapshot(d)
                seen["G steps"] = seen.get("G steps", 0) + 1
                return step_g(*a, **k)

            def watched_d(*a, **k):
                seen["G at D step"] = _snapshot(g)
                seen["D steps"] = seen.get("D steps", 0) + 1
                return step_d(*a, **k)

            opt_g.step, opt_d.step = watched_g, watched_d
            return opt_g, opt_d

        adversarial = StandInAdversarial(smoothing)
        hook = adversarial.after_discriminator_step

        def watched_hook(D):  # the critic's hook must run after D's update (WGAN clips there)
            seen.setdefault("D steps at hook", []).append(seen.get("D steps", 0))
            return hook(D)

        adversarial.after_discriminator_step = watched_hook
        contract = importlib.import_module("sr_course.contract")
        t = contract.stand_in(
            g,
            d,
            optimizers=optimizers,
            content_loss=lambda sr, hr: ((sr - hr) ** 2).mean(),
            adversarial=adversarial,
            adv_weight=adv_weight,
            label_smoothing=smoothing,
        )
        lr, hr = _inputs([(2, 3, 6, 6), (2, 3, 24, 24)], seed=11)
        lr, hr = lr.sigmoid(), hr.tanh()
        d0 = _snapshot(d)
        out = ctx.solver.srgan_step(t, lr, hr, update_generator=True)
        rec = {
            "keys 1": sorted(out),
            "losses 1": {k: float(v) for k, v in out.items()},
            "detached 1": all(not getattr(v, "requires_grad", False) for v in out.values()),
            "G 1": _snapshot(g),
            "D 1": _snapshot(d),
            "D untouched during G step": "D at G step" in seen
            and all(torch.equal(a, b) for a, b in zip(seen["D at G step"], d0)),
            "D grads during G step": seen.get("D grads during G step", False),
            "G stepped before D": "G at D step" in seen
            and not all(
                torch.equal(a, b) for a, b in zip(seen["G at D step"], _gan_nets()[0].parameters())
            ),
            "steps 1": [seen.get("G steps", 0), seen.get("D steps", 0)],
            "D trainable": all(p.requires_grad for p in d.parameters()),
            "hook 1": list(seen.get("D steps at hook", [])),
        }
        g1 = _snapshot(g)
        out = ctx.solver.srgan_step(t, lr, hr, update_generator=False)
        rec.update(
            {
                "keys 2": sorted(out),
                "losses 2": {k: float(v) for k, v in out.items()},
                "G unchanged 2": all(torch.equal(a, b) for a, b in zip(g1, g.parameters())),
                "D 2": _snapshot(d),
                "steps 2": [seen.get("G steps", 0), seen.get("D steps", 0)],
                "hook 2": list(seen.get("D steps at hook", [])),
            }
        )
        return rec

    def judge(s, r):
        where = "srgan_step"
        if s["keys 1"] != r["keys 1"] or s["keys 2"] != r["keys 2"]:
            return (
                f"{where} returns {s['keys 1']} (and {s['keys 2']} without the generator update), "
                f"expected {r['keys 1']} and {r['keys 2']}: see its docstring"
            )
        if s["steps 1"] != [1, 1] or s["steps 2"] != [1, 2]:
            return (
                f"{where} stepped the optimisers (G, D) {s['steps 1']} times in a full step and "
                f"{[b - a for a, b in zip(s['steps 1'], s['steps 2'])]} times with "
                "update_generator=False; expected once each, and only D without the generator update"
            )
        if not s["D untouched during G step"] or s["D grads during G step"]:
            return _message("gan d touched")
        if not s["D trainable"]:
            return _message("gan d frozen")
        if not s["G unchanged 2"]:
            return _message("gan g changed")
        if not s["detached 1"]:
            return _message("gan detached")
        if s["hook 1"] != r["hook 1"] or s["hook 2"] != r["hook 2"]:
            return _message("gan hook")
        for key in ("content", "adversarial"):
            a, b = s["losses 1"][key], r["losses 1"][key]
            if not math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6):
                return (
                    f"{where}: the {key} loss is {a:.6g}, expected {b:.6g}: it must be computed on "
                    "G(lr) before the update, with t.content_loss and t.adversarial's generator loss"
                )
        if not all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(s["G 1"], r["G 1"])):
            return (
                f"{where}: the generator's update differs from the reference's although both losses "
                "match: it must minimise the perceptual loss content + adv_weight * adversarial (Eq. 3) "
                "with one step of t.opt_g"
            )
        if not s["G stepped before D"]:
            return (
                f"{where}: the discriminator learns before the generator's update; "
                "the generator's update comes first, then the discriminator's"
            )
        for n in (1, 2):
            a, b = s[f"losses {n}"]["discriminator"], r[f"losses {n}"]["discriminator"]
            if not math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6):
                return (
                    f"{where}: the discriminator loss is {a:.6g}, expected {b:.6g}: t.adversarial's "
                    "discriminator loss must see the HR images as real and this step's generator output, "
                    "detached, as fake (paper Eq. 2)"
                )
        for n in (1, 2):
            if not all(
                torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(s[f"D {n}"], r[f"D {n}"])
            ):
                return (
                    f"{where}: the discriminator's update differs from the reference's although its "
                    "loss matches: update D with one step of t.opt_d on the discriminator loss alone"
                )
        return None

    return Probe("SRGAN step", f"adv_weight {adv_weight}, smoothing {smoothing}", run, judge)


# --- all probes, by TODO ---------------------------------------------------------------------------

PROBES: dict[str, list[Probe]] = {
    "ConvolutionalBlock": [_cb_probe(c) for c in _CB_CASES],
    "SubPixelConvolutionalBlock": [_sp_probe(c) for c in _SP_CASES],
    "ResidualBlock": [_rb_probe(c) for c in _RB_CASES],
    "SRResNet": [_sr_probe(c) for c in _SR_CASES],
    "Discriminator": [_d_probe(c) for c in _D_CASES],
    "TruncatedVGG19": [_vgg_probe(b) for b in _VGG_BLOCKS],
    "pixel_mse": [_mse_probe(k) for k in range(3)],
    "VGGContentLoss": [_vgg_loss_probe(1 / 12.75), _vgg_loss_probe(0.5)],
    "adversarial losses": [_g_adv_probe(), _d_loss_probe(0.0), _d_loss_probe(0.1)],
    "SRGAN step": [_gan_probe(0.05, 0.1), _gan_probe(1e-3, 0.0)],
}
