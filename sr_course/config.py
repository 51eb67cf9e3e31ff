"""Configuration: three profiles as EasyDicts, and load_config() to pick one and override keys.

    paper  GPU, DIV2K: the paper's recipe (SRResNet 1e6 iterations, SRGAN 2e5) in epochs of
           800 images x 100 patches / batch 16 = 5,000 iterations.
    demo   CPU, the built-in sample: a small generator that visibly beats bicubic in minutes.
    smoke  CPU, the built-in sample: tiny networks and a few iterations; tests and nbval use it.

The `G` and `D` sub-dicts spread into the constructors: `SRResNet(**config.G)`, `Discriminator(**config.D)`.
Pick the profile by argument, else by the `SR_PROFILE` environment variable, else `paper`.
`SR_DATA_ROOT` and `SR_RUNS_DIR`, when set, replace the default data and run folders.
"""

from __future__ import annotations

import ast
import copy
import os

from easydict import EasyDict

BENCHMARK_SETS = ("Set5", "Set14", "B100", "Urban100")
TEST_SPLITS = (*BENCHMARK_SETS, "DIV2K_valid")

_BASE = {
    "profile": "paper",
    "seed": 0,
    "device": "auto",  # 'auto' picks cuda, then mps, then cpu
    "data_root": "data",  # where data_prep/download.py puts DIV2K and the benchmark sets
    "runs_dir": "runs",  # checkpoints, logs and figures go to <runs_dir>/<run name>/
    "scale": 4,
    "G": {
        "large_kernel_size": 9,
        "small_kernel_size": 3,
        "n_channels": 64,
        "n_blocks": 16,
        "scaling_factor": 4,
        "batch_norm": True,  # False: EDSR-style residual blocks without batch norm
    },
    "D": {"kernel_size": 3, "n_channels": 64, "n_blocks": 8, "fc_size": 1024},
    # VGG19 phi_(i,j) for the perceptual loss. weights: 'imagenet', a path to vgg19-*.pth, or None (random).
    "vgg": {"i": 5, "j": 4, "weights": "imagenet"},
    "data": {
        "train_splits": ["DIV2K_train"],
        "test_splits": list(TEST_SPLITS),
        "crop_size": 96,  # HR patch side; the LR patch is crop_size / scale
        "patches_per_image": 100,  # random patches drawn from each training image per epoch
        "num_workers": 4,
        "val_split": "Set5",  # validation after each epoch (None to skip)
        "val_images": 5,
        "cache_dir": None,  # decoded training images (.npy); default <data_root>/cache
    },
    "srresnet": {"batch_size": 16, "lr": 1e-4, "epochs": 200, "lr_decay_at": None},
    "srgan": {
        "mode": "paper",  # 'paper': G starts from a trained SRResNet; 'baseline': from scratch
        "srresnet_checkpoint": None,  # for mode 'paper'; default <runs_dir>/srresnet/best.pt
        "batch_size": 16,
        "lr": 1e-4,
        "epochs": 40,
        "lr_decay_at": 0.5,  # learning rate x0.1 at this fraction of training (paper: halfway)
        "content_loss": "vgg",  # 'vgg' (phi_(i,j) feature MSE) or 'mse' (pixels)
        "vgg_rescale": 1 / 12.75,  # the paper rescales VGG features by 1/12.75
        "adv_weight": 1e-3,
        "d_steps": 1,  # discriminator updates per generator update
        "label_smoothing": 0.0,  # one-sided: real labels become 1 - label_smoothing
    },
    "train": {
        "amp": True,  # bf16 autocast where supported, fp16 + grad scaler otherwise; CUDA only
        "channels_last": True,  # CUDA only
        "compile": False,  # torch.compile the networks (first iterations are slow)
        "deterministic": False,  # deterministic kernels: exact resume, slower
        "checkpoint_every": 1000,  # iterations between mid-epoch checkpoints (0: epoch ends only)
        "sync_bn": False,  # SyncBatchNorm across GPUs under torchrun
        "log_every": 100,  # iterations between loss log entries
        "max_iterations": None,  # stop early after this many iterations in total (tests, quick looks)
    },
}

_PROFILE_CHANGES = {
    "paper": {},
    "demo": {
        # Tuned to beat bicubic clearly within minutes on a 2-core CPU: a small generator with
        # EDSR-style blocks (no batch norm: better for PSNR at small batches), a higher learning
        # rate with a x0.1 step at 80%, 48-pixel crops. The demo is offline, so VGG19 has random
        # weights (phi_2,2): the real perceptual loss needs ImageNet weights (paper profile).
        "device": "cpu",
        "G": {"n_channels": 32, "n_blocks": 4, "batch_norm": False},
        "D": {"n_channels": 16, "fc_size": 256},
        "vgg": {"i": 2, "j": 2, "weights": None},
        "data": {
            "train_splits": ["Sample_train"],
            "test_splits": ["Sample"],
            "crop_size": 48,
            "patches_per_image": 400,
            "num_workers": 0,
            "val_split": None,
        },
        "srresnet": {"batch_size": 16, "lr": 2e-3, "epochs": 10, "lr_decay_at": 0.8},
        # Random-weight VGG features are about 12x smaller than ImageNet ones, so the paper's 1/12.75
        # rescaling would leave the content loss negligible beside the adversarial one.
        "srgan": {"batch_size": 16, "lr": 1e-4, "epochs": 1, "vgg_rescale": 1.0},
        "train": {"amp": False, "channels_last": False, "checkpoint_every": 500, "log_every": 50},
    },
    "smoke": {
        "device": "cpu",
        "G": {"n_channels": 8, "n_blocks": 2},
        "D": {"n_channels": 8, "fc_size": 32},
        "vgg": {"i": 2, "j": 2, "weights": None},
        "data": {
            "train_splits": ["Sample_train"],
            "test_splits": ["Sample"],
            "crop_size": 32,
            "patches_per_image": 2,
            "num_workers": 0,
            "val_split": "Sample",
            "val_images": 2,
        },
        "srresnet": {"batch_size": 4, "lr": 1e-3, "epochs": 2},
        "srgan": {"batch_size": 4, "lr": 1e-4, "epochs": 2},
        "train": {"amp": False, "channels_last": False, "checkpoint_every": 0, "log_every": 1},
    },
}

PROFILES = tuple(_PROFILE_CHANGES)


def _merge(base: dict, changes: dict, where: str = "") -> dict:
    """Recursively apply `changes` to a copy of `base`, refusing keys that `base` does not have."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        name = f"{where}{key}"
        if key not in out:
            valid = ", ".join(sorted(out))
            raise KeyError(f"unknown config key {name!r}; valid keys here: {valid}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise TypeError(
                    f"config key {name!r} is a section; give a dict, e.g. {name}.<key>=<value>"
                )
            out[key] = _merge(out[key], value, where=f"{name}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(profile: str | None = None, **overrides) -> EasyDict:
    """The configuration of `profile` (else $SR_PROFILE, else 'paper') with `overrides` applied.

    Overrides are top-level keys; a section takes a dict that is merged into it:
        load_config("smoke", seed=1, srresnet={"lr": 1e-3})
    An unknown profile or key raises an error that lists the valid ones.
    """
    profile = profile or os.environ.get("SR_PROFILE") or "paper"
    if profile not in _PROFILE_CHANGES:
        raise ValueError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    cfg = _merge(_BASE, _PROFILE_CHANGES[profile])
    cfg["profile"] = profile
    # Folders from the environment (notebooks, graders and CI point them elsewhere); overrides win.
    for key, var in (("data_root", "SR_DATA_ROOT"), ("runs_dir", "SR_RUNS_DIR")):
        if os.environ.get(var):
            cfg[key] = os.environ[var]
    cfg = _merge(cfg, overrides)
    if cfg["G"]["scaling_factor"] != cfg["scale"]:
        raise ValueError(
            f"G.scaling_factor ({cfg['G']['scaling_factor']}) must equal scale ({cfg['scale']}); set both"
        )
    return EasyDict(cfg)


def parse_overrides(items: list[str]) -> dict:
    """Turn CLI overrides like ['srresnet.lr=1e-3', 'data.num_workers=8'] into a nested dict.

    Values are read as Python literals (numbers, None, True, lists); anything else stays a string.
    """
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (for example srresnet.lr=1e-3)")
        key, raw = item.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def to_plain_dict(cfg) -> dict:
    """A plain-dict deep copy of a config (for checkpoints and JSON)."""
    if isinstance(cfg, dict):
        return {k: to_plain_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_plain_dict(v) for v in cfg]
    return cfg
