"""Training-step throughput of SRResNet and SRGAN (batch 16, HR crop 96, paper-size networks) for
fp32, AMP, AMP + channels_last and + torch.compile, on the CPU and on a CUDA GPU when there is one.

    python bench/bench_train.py [--steps 5] [--devices cpu cuda] [--cpu-compile]

Runs the kit's own step functions (sr_course.solver.srresnet_step / srgan_step) on random batches
already on the device (the loader is measured by bench_loader.py). One JSON line per figure:
iterations per second and peak memory. AMP is CUDA-only (bf16 where supported, else fp16 + scaler);
on the CPU only fp32 (and compile with --cpu-compile) are measured. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import emit, machine  # noqa: E402

from sr_course.components.registry import build_adversarial
from sr_course.config import load_config
from sr_course.losses import VGGContentLoss, pixel_mse
from sr_course.models import Discriminator, Generator, TruncatedVGG19
from sr_course.solver import srgan_step, srresnet_step

SETTINGS = {
    "fp32": dict(amp=False, channels_last=False, compile=False),
    "amp": dict(amp=True, channels_last=False, compile=False),
    "amp+channels_last": dict(amp=True, channels_last=True, compile=False),
    "amp+channels_last+compile": dict(amp=True, channels_last=True, compile=True),
}


def make_trainer(stage: str, device: torch.device, amp: bool, channels_last: bool, compile: bool):
    """The parts of a Trainer that the step functions use, built like Trainer builds them."""
    cfg = load_config("paper")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    amp_dtype = None
    if amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaling = amp_dtype == torch.float16
    g = Generator(**cfg.G).to(device, memory_format=fmt)
    t = SimpleNamespace(
        cfg=cfg,
        G=torch.compile(g) if compile else g,
        G_raw=g,
        opt_g=torch.optim.Adam(g.parameters(), 1e-4),
        pixel_loss=pixel_mse,
        clip_gradients=lambda: None,
        scaler_g=torch.amp.GradScaler("cuda", enabled=scaling),
        scaler_d=torch.amp.GradScaler("cuda", enabled=scaling),
        autocast=(lambda: torch.autocast("cuda", dtype=amp_dtype))
        if amp_dtype
        else contextlib.nullcontext,
        memory_format=fmt,
    )
    if stage == "srgan":
        d = Discriminator(**cfg.D).to(device, memory_format=fmt)
        t.D_raw, t.D = d, torch.compile(d) if compile else d
        t.opt_d = torch.optim.Adam(d.parameters(), 1e-4)
        vgg = TruncatedVGG19(5, 4, weights=None).to(
            device, memory_format=fmt
        )  # speed does not depend on weights
        t.content_loss = VGGContentLoss(vgg)
        t.adversarial = build_adversarial(cfg)
    return t


def measure(stage: str, device: torch.device, setting: str, steps: int, warmup: int) -> dict:
    t = make_trainer(stage, device, **SETTINGS[setting])
    lr = torch.rand(16, 3, 24, 24, device=device).to(memory_format=t.memory_format)
    hr = (torch.rand(16, 3, 96, 96, device=device) * 2 - 1).to(memory_format=t.memory_format)
    step = (
        (lambda: srresnet_step(t, lr, hr))
        if stage == "srresnet"
        else (lambda: srgan_step(t, lr, hr))
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {"it_per_s": round(steps / seconds, 3), "peak_gib": round(peak, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--stages", nargs="+", default=["srresnet", "srgan"])
    parser.add_argument(
        "--cpu-compile",
        action="store_true",
        help="also time torch.compile on the CPU (slow to compile)",
    )
    args = parser.parse_args()
    where = machine()
    for name in args.devices:
        if name == "cuda" and not torch.cuda.is_available():
            emit(bench="train", device="cuda", skipped="no CUDA GPU visible", machine=where)
            continue
        device = torch.device(name)
        settings = (
            list(SETTINGS)
            if name == "cuda"
            else ["fp32"] + (["amp+channels_last+compile"] if args.cpu_compile else [])
        )
        for stage in args.stages:
            base = None
            for setting in settings:
                warmup = args.warmup + (3 if SETTINGS[setting]["compile"] else 0)
                result = measure(stage, device, setting, args.steps, warmup)
                base = base or result["it_per_s"]
                emit(
                    bench="train",
                    stage=stage,
                    device=name,
                    setting=setting,
                    batch=16,
                    crop=96,
                    **result,
                    speedup_vs_fp32=round(result["it_per_s"] / base, 2),
                    machine=where,
                )


if __name__ == "__main__":
    main()
