"""The GPU path: precision modes against fp32, tiled inference, the CUDA imresize, and checkpoints that
move between devices. Marked `cuda` and skipped without a CUDA GPU (CI has none): run them on a GPU
machine with `pytest -m cuda tests/train/test_cuda.py`.

Tolerances: one training step from the same weights and batch, compared with fp32's on the loss
and on the generator's gradients (the relative error of all of them together). The weights after
the step are not compared element by element: Adam's first update is lr * g / (|g| + eps), about
+-lr for every weight whatever |g| is, so a gradient near zero whose sign flips with the order of a
sum moves its weight by 2 lr (what an H100 showed for channels_last on 2026-12-05). What is checked
of the weights is that every mode took the step: most of them moved by lr.

bf16 keeps 8 bits of mantissa and fp16 10, so the loss is compared within 2% / 1% of fp32's. The
gradients' tolerances are about twice to three times what the same step gave under the CPU's
autocast (2026-12-05): SRResNet 1.8% (bf16) and 0.8% (fp16); SRGAN 23% and 10%, because its
content term is a difference of two VGG features computed in low precision, and with the smoke
profile's random VGG that difference is small beside the features. channels_last alone changes
only the order of the sums; fp32 convolutions may run in TF32 on the GPU (cuDNN's default),
whose kernels differ between the two layouts, hence 1e-2. A gradient that is missing, scaled by
the loss scale or of the wrong sign is off by 1 or more.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_course.config import load_config
from sr_course.train.trainer import Trainer

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

# name: (train.amp, train.channels_last, forced AMP dtype, loss rtol, {stage: gradients rtol})
MODES = {
    "channels_last": (False, True, None, 1e-4, {"srresnet": 1e-2, "srgan": 1e-2}),
    "bf16": (True, False, torch.bfloat16, 2e-2, {"srresnet": 6e-2, "srgan": 0.5}),
    "bf16 + channels_last": (True, True, torch.bfloat16, 2e-2, {"srresnet": 6e-2, "srgan": 0.5}),
    "fp16 + grad scaler": (True, False, torch.float16, 1e-2, {"srresnet": 3e-2, "srgan": 0.3}),
}


def _trainer(tmp_path, stage, amp, channels_last, name, **changes):
    cfg = load_config(
        "smoke",
        device="cuda",
        data_root=str(tmp_path / "data"),
        runs_dir=str(tmp_path / name),
        train={"amp": amp, "channels_last": channels_last},
        srgan={"mode": "baseline"},
        **changes,
    )
    return Trainer(cfg, stage, progress=False)


def _one_step(t, stage, dtype):
    """(losses, the generator's gradients, its weights' change) of one step on a fixed batch."""
    from sr_course.solver import srgan_step, srresnet_step

    if dtype is not None:
        t.amp_dtype = dtype  # force the mode under test (bf16 is picked where supported)
        # A first loss scale of 2**10, not the default 2**16: a first step that overflows is skipped,
        # as the scaler is meant to do, and would leave no step to compare.
        scaler = dict(init_scale=2.0**10, enabled=dtype == torch.float16)
        t.scaler_g = torch.amp.GradScaler("cuda", **scaler)
        if t.D_raw is not None:
            t.scaler_d = torch.amp.GradScaler("cuda", **scaler)
    torch.manual_seed(0)
    lr = torch.rand(4, 3, 8, 8, device="cuda")
    hr = torch.rand(4, 3, 32, 32, device="cuda") * 2 - 1
    if t.memory_format == torch.channels_last:
        lr, hr = (
            lr.contiguous(memory_format=torch.channels_last),
            hr.contiguous(memory_format=torch.channels_last),
        )
    before = [p.detach().float().cpu().clone() for p in t.G_raw.parameters()]
    step = srresnet_step if stage == "srresnet" else srgan_step
    losses = step(t, lr, hr)
    # the step leaves its gradients in place (it zeroes them first); the grad scaler unscales them
    grads = torch.cat([p.grad.float().flatten().cpu() for p in t.G_raw.parameters()])
    moved = torch.cat(
        [(p.detach().float().cpu() - b).flatten() for p, b in zip(t.G_raw.parameters(), before)]
    )
    return {k: float(v) for k, v in losses.items()}, grads, moved


@pytest.mark.parametrize("stage", ["srresnet", "srgan"])
@pytest.mark.parametrize("mode", list(MODES))
def test_precision_modes_match_fp32(tmp_path, stage, mode):
    amp, channels_last, dtype, loss_rtol, grad_rtol = MODES[mode]
    grad_rtol = grad_rtol[stage]
    if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    ref_losses, ref_grads, _ = _one_step(
        _trainer(tmp_path, stage, False, False, "fp32"), stage, None
    )
    losses, grads, moved = _one_step(
        _trainer(tmp_path, stage, amp, channels_last, "mode"), stage, dtype
    )
    for key, value in ref_losses.items():
        assert losses[key] == pytest.approx(value, rel=loss_rtol, abs=1e-5), key
    error = float((grads - ref_grads).norm() / ref_grads.norm())
    assert error <= grad_rtol, f"{mode}: the gradients differ from fp32's by {error:.2e} (relative)"
    lr = load_config("smoke")[stage].lr
    assert float(moved.abs().median()) == pytest.approx(lr, rel=1e-2), "the step was not taken"


def test_tiled_inference_matches_untiled_on_cuda():
    from sr_course.evaluation.inference import super_resolve
    from sr_course.models import SRResNet

    torch.manual_seed(0)
    model = SRResNet(n_channels=16, n_blocks=2).cuda().eval()
    lr = np.random.default_rng(0).integers(0, 256, (61, 47, 3), dtype=np.uint8)
    whole = super_resolve(model, lr, tile=0).astype(int)
    tiled = super_resolve(model, lr, tile=24).astype(int)
    assert whole.shape == (244, 188, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_cuda_imresize_is_bit_exact_on_uint8():
    from sr_course.data.imresize import imresize, imresize_torch

    img = np.random.default_rng(1).integers(0, 256, (137, 91, 3), dtype=np.uint8)
    for scale in (0.25, 0.5, 4):
        want = imresize(img, scale)
        x = torch.from_numpy(img).permute(2, 0, 1).cuda()
        got = imresize_torch(x, scale).permute(1, 2, 0).cpu().numpy()
        assert got.dtype == np.uint8 and np.array_equal(got, want), scale


def test_checkpoint_moves_between_gpu_and_cpu(tmp_path):
    """Two iterations on the GPU, two more resumed on the CPU, two more back on the GPU."""

    def trainer(device, iterations):
        cfg = load_config(
            "smoke",
            device=device,
            data_root=str(tmp_path / "data"),
            runs_dir=str(tmp_path / "runs"),
            train={"amp": False, "channels_last": False, "max_iterations": iterations},
        )
        return Trainer(cfg, "srresnet", resume="auto", progress=False)

    trainer("cuda", 2).fit()
    cpu = trainer("cpu", 4)
    assert cpu.iteration == 2 and next(cpu.G_raw.parameters()).device.type == "cpu"
    cpu.fit()
    gpu = trainer("cuda", 6)
    assert gpu.iteration == 4 and next(gpu.G_raw.parameters()).is_cuda
    assert all(v["exp_avg"].is_cuda for v in gpu.opt_g.state_dict()["state"].values())
    gpu.fit()
    assert gpu.iteration == 6
