"""Configuration: the profiles (PROFILES) as EasyDicts, and load_config() to pick one and override keys.

    paper  GPU, DIV2K: the paper's recipe (SRResNet 1e6 iterations, SRGAN 2e5) in epochs of
           800 images x 100 patches / batch 16 = 5,000 iterations.
    course GPU, DIV2K: the paper's recipe on a course's budget (SRResNet 1e5 iterations, SRGAN 1e5),
           both together projected at about 2.5 to 4 hours on a T4 (README, "GPU budget").
    demo   CPU, the built-in sample: a small generator that visibly beats bicubic in minutes.
    smoke  CPU, the built-in sample: tiny networks and a few iterations; tests and nbval use it.

The `G` and `D` sub-dicts spread into the constructors: `SRResNet(**config.G)`, `Discriminator(**config.D)`.
Pick the profile by argument, else by the `SR_PROFILE` environment variable, else DEFAULT_PROFILE.
Runs go to runs/<profile>/ (runs/course/srresnet/best.pt, runs/course/test/, runs/course/report/),
from the notebooks and from the command line alike. `SR_DATA_ROOT` and `SR_RUNS_DIR`, when set,
replace the default data and run folders (a runs_dir given that way is used as it is).
"""

from __future__ import annotations

import ast
import copy
import os

from easydict import EasyDict

from .components.registry import OPTIONS
from .course import COURSE_SETS
from .errors import SettingError, UnknownSetting

_BASE = {
    "profile": "paper",
    "seed": 0,
    "device": "auto",  # 'auto' picks cuda, then mps, then cpu
    "data_root": "data",  # where data_prep/download.py puts DIV2K and the benchmark sets
    # Checkpoints, logs and figures go to <runs_dir>/<run name>/; unless set, runs_dir is
    # runs/<profile>, so the notebooks and the command line share one folder per profile.
    "runs_dir": "runs",
    "scale": 4,
    "G": {
        "large_kernel_size": 9,
        "small_kernel_size": 3,
        "n_channels": 64,
        "n_blocks": 16,
        "scaling_factor": 4,
        "batch_norm": True,  # False: EDSR-style residual blocks without batch norm
    },
    "D": {"kernel_size": 3, "n_channels": 64, "n_blocks": 8, "fc_size": 1024, "batch_norm": True},
    # The generator architecture (sr_course/components/registry.py): 'srresnet' (uses G above),
    # 'rrdb', 'vdsr', 'swinir'.
    "model": {
        "arch": "srresnet",
        "rrdb": {"n_channels": 64, "n_blocks": 23, "growth": 32, "residual_scaling": 0.2},
        # train_scales: VDSR's single multi-scale model; e.g. [2, 4] cycles the scale per batch.
        "vdsr": {"n_channels": 64, "n_layers": 20, "train_scales": None},
        "swinir": {
            "embed_dim": 60,
            "depths": [6, 6, 6, 6],
            "num_heads": 6,
            "window_size": 8,
            "mlp_ratio": 2.0,
        },
    },
    # VGG19 phi_(i,j) for the perceptual loss. weights: 'imagenet', a path to vgg19-*.pth, or None (random).
    "vgg": {"i": 5, "j": 4, "weights": "imagenet", "before_activation": False},  # ESRGAN: before
    # LPIPS (Zhang et al. 2018, AlexNet) beside PSNR/SSIM in `test`; lower is better. weights:
    # 'imagenet' (torchvision's AlexNet: its cache, else its download), a path to alexnet-*.pth, or
    # None (a random AlexNet: the pipeline runs offline, but the numbers are not LPIPS).
    "lpips": {"enabled": True, "weights": "imagenet"},
    "data": {
        "train_splits": ["DIV2K_train"],
        "test_splits": list(COURSE_SETS),
        "crop_size": 96,  # HR patch side; the LR patch is crop_size / scale
        "patches_per_image": 100,  # random patches drawn from each training image per epoch
        # Share of training patches made gray (R = G = B): a set without gray photographs otherwise
        # never shows the network that gray in means gray out (test sets hold gray images).
        "gray_probability": 0.0,
        # Share of training patches whose R, G and B come in a random order (the same for LR and
        # HR): the network then cannot tie a bias to one channel (a few warm photographs taught the
        # demo's networks to redden gray ones).
        "channel_shuffle": 0.0,
        "num_workers": 4,
        "val_split": "Set5",  # validation after each epoch (None to skip)
        "val_images": 5,
        "cache_dir": None,  # decoded training images (.npy); default <data_root>/cache
    },
    "srresnet": {
        "batch_size": 16,
        "lr": 1e-4,
        "epochs": 200,
        "lr_decay_at": None,
        "loss": "mse",  # 'mse' (the paper) or 'l1' (EDSR, ESRGAN's PSNR stage)
        "edge_weight": 0.0,  # weight of the image-gradient (edge) loss added to the pixel loss
        "optimizer": "adam",  # 'adam', or 'sgd' (VDSR: momentum 0.9, weight decay 1e-4)
        "grad_clip_theta": None,  # VDSR's adjustable clipping: gradients clipped to +-theta / lr (sgd)
    },
    "srgan": {
        "mode": "paper",  # 'paper': G starts from a trained SRResNet; 'baseline': from scratch
        "srresnet_checkpoint": None,  # for mode 'paper'; default <runs_dir>/srresnet/best.pt
        "batch_size": 16,
        "lr": 1e-4,
        "epochs": 40,
        "lr_decay_at": 0.5,  # learning rate x0.1 at this fraction of training (paper: halfway)
        "content_loss": "vgg",  # 'vgg' (phi_(i,j) feature MSE) or 'mse' (pixels)
        # + this x srresnet.loss's pixel loss in the content term (ESRGAN: 1e-2 with L1; paper: 0)
        "pixel_weight": 0.0,
        "vgg_rescale": 1 / 12.75,  # the paper rescales VGG features by 1/12.75
        "adv_weight": 1e-3,
        "d_steps": 1,  # discriminator updates per generator update
        "label_smoothing": 0.0,  # one-sided: real labels become 1 - label_smoothing
        "gan": "standard",  # 'standard' (the paper), 'ragan' (ESRGAN), 'wgan' (clipping), 'wgan-gp'
        "optimizer": "adam",  # 'adam', or 'rmsprop' (what WGAN with weight clipping trains with)
        "clip_value": 0.01,  # WGAN: critic weights clipped to +-clip_value after each update
        "gp_weight": 10.0,  # WGAN-GP: weight of the gradient penalty
        "edge_weight": 0.0,  # weight of the image-gradient (edge) loss in the generator's loss
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
    # The paper's networks, losses and learning rates, on a course's GPU budget: SRResNet for 1e5
    # iterations (a tenth of the paper's; PSNR is within a few tenths of a dB of its plateau there) and
    # SRGAN for 1e5 (half the paper's), its learning rate x0.1 halfway as in the paper. The projected
    # time and how it was made are in the README ("GPU budget"); the Trainer prints its own estimate
    # after its first iterations, so a slower GPU shows at once (then lower the epochs).
    "course": {
        "srresnet": {"epochs": 20},
        "srgan": {"epochs": 20, "lr_decay_at": 0.5},
        "train": {"checkpoint_every": 2000},
    },
    "demo": {
        # Tuned to beat bicubic clearly within minutes on a 2-core CPU: a small generator with
        # EDSR-style blocks (no batch norm: better for PSNR at small batches), a higher learning
        # rate with a x0.1 step at 80%, 48-pixel crops. The demo is offline, so VGG19 has random
        # weights (phi_2,2): the real perceptual loss needs ImageNet weights (paper profile).
        "device": "cpu",
        "G": {"n_channels": 32, "n_blocks": 4, "batch_norm": False},
        "D": {"n_channels": 16, "fc_size": 256},
        "vgg": {"i": 2, "j": 2, "weights": None},
        "lpips": {"weights": None},
        "data": {
            "train_splits": ["Sample_train"],
            "test_splits": ["Sample"],
            "crop_size": 48,
            "patches_per_image": 400,
            # The six training photographs are all in colour (and warm); the test split has two gray
            # ones. Without gray patches and shuffled channels the networks tinted them.
            "gray_probability": 0.2,
            "channel_shuffle": 1.0,
            "num_workers": 0,
            "val_split": None,
        },
        "srresnet": {"batch_size": 16, "lr": 2e-3, "epochs": 10, "lr_decay_at": 0.8},
        # Demo-size versions of the other generators (model.arch=...), for comparisons on a CPU.
        "model": {
            "rrdb": {"n_channels": 32, "n_blocks": 2, "growth": 16},
            "vdsr": {"n_channels": 32, "n_layers": 10},
            "swinir": {"embed_dim": 30, "depths": [2, 2], "num_heads": 3, "window_size": 8},
        },
        # SRGAN, 150 iterations from the SRResNet. A random-weight VGG's features hold neither
        # colours nor borders, and their loss is about 100x smaller than the paper's, so with the
        # paper's weights the adversarial term matched the content term and the fine-tuning drifted:
        # a colour cast on gray photographs, a bright frame, PSNR below bicubic. The pixel MSE as
        # an anchor (ESRGAN's recipe has an L1 one) and half the adversarial weight keep the
        # adversarial term near the paper's share (about a tenth of the content term).
        "srgan": {
            "batch_size": 16,
            "lr": 1e-4,
            "epochs": 1,
            "vgg_rescale": 1.0,  # random features are about 12x smaller than ImageNet ones
            "pixel_weight": 1.0,
            "adv_weight": 5e-4,
        },
        "train": {"amp": False, "channels_last": False, "checkpoint_every": 500, "log_every": 10},
    },
    "smoke": {
        "device": "cpu",
        "G": {"n_channels": 8, "n_blocks": 2},
        "D": {"n_channels": 8, "fc_size": 32},
        "vgg": {"i": 2, "j": 2, "weights": None},
        "lpips": {"weights": None},
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
        "model": {
            "rrdb": {"n_channels": 8, "n_blocks": 1, "growth": 4},
            "vdsr": {"n_channels": 8, "n_layers": 5},
            "swinir": {"embed_dim": 12, "depths": [2], "num_heads": 2, "window_size": 4},
        },
        "train": {"amp": False, "channels_last": False, "checkpoint_every": 0, "log_every": 1},
    },
}

PROFILES = tuple(_PROFILE_CHANGES)
# One line per profile, for --help (the notebooks' setup line lists PROFILES).
PROFILE_NOTES = {
    "paper": "GPU, DIV2K, the paper's recipe",
    "course": "GPU, DIV2K, the paper's recipe in about 4 T4-hours",
    "demo": "CPU, the built-in sample, minutes",
    "smoke": "CPU, the built-in sample, seconds",
}
assert set(PROFILE_NOTES) == set(PROFILES)
DEFAULT_PROFILE = "paper"  # when neither a profile nor $SR_PROFILE is given


def _merge(base: dict, changes: dict, where: str = "") -> dict:
    """Recursively apply `changes` to a copy of `base`, refusing keys that `base` does not have."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        name = f"{where}{key}"
        if key not in out:
            valid = ", ".join(sorted(out))
            raise UnknownSetting(f"unknown config key {name!r}; valid keys here: {valid}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise SettingError(
                    f"config key {name!r} is a section, not a value: set one of its keys, e.g. "
                    f"{name}.{next(iter(out[key]))}=..."
                )
            out[key] = _merge(out[key], value, where=f"{name}.")
        else:
            _check_type(name, out[key], value)
            out[key] = copy.deepcopy(value)
    return out


def lookup(config: dict, key: str, missing=None):
    """config['a']['b'] for key 'a.b'; `missing` where a part of the key is not there."""
    for part in key.split("."):
        if not isinstance(config, dict) or part not in config:
            return missing
        config = config[part]
    return config


def _check_type(name: str, default, value) -> None:
    """Refuse a value of another kind than the key's default (None is allowed where the default is
    None or text: 'not set')."""
    if default is None or value is None and isinstance(default, str):
        return
    if isinstance(default, bool):
        ok, kind, example = isinstance(value, bool), "True or False", "True"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind, example = "a whole number", str(default)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        kind, example = "a number", f"{default:g}"
    elif isinstance(default, str):
        ok, kind, example = isinstance(value, str), "text", default
    elif isinstance(default, list):
        ok, kind, example = isinstance(value, list), "a list", str(default).replace(" ", "")
    else:
        return
    if not ok:
        raise SettingError(
            f"{name}={value!r} is not valid: it must be {kind} (for example {name}={example})"
        )


def load_config(profile: str | None = None, **overrides) -> EasyDict:
    """The configuration of `profile` (else $SR_PROFILE, else 'paper') with `overrides` applied.

    Overrides are top-level keys; a section takes a dict that is merged into it:
        load_config("smoke", seed=1, srresnet={"lr": 1e-3})
    An unknown profile or key raises an error that lists the valid ones.
    """
    profile = profile or os.environ.get("SR_PROFILE") or DEFAULT_PROFILE
    if profile not in _PROFILE_CHANGES:
        raise SettingError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    cfg = _merge(_BASE, _PROFILE_CHANGES[profile])
    cfg["profile"] = profile
    cfg["runs_dir"] = f"{cfg['runs_dir']}/{profile}"
    # Folders from the environment (notebooks, graders and CI point them elsewhere); overrides win.
    for key, var in (("data_root", "SR_DATA_ROOT"), ("runs_dir", "SR_RUNS_DIR")):
        if os.environ.get(var):
            cfg[key] = os.environ[var]
    cfg = _merge(cfg, overrides)
    validate(cfg)
    return EasyDict(cfg)


def validate(cfg: dict) -> None:
    """Refuse unknown choices and combinations that do not work, saying why."""

    def choose(key: str, value, options) -> None:
        if value not in options:
            raise SettingError(
                f"{key}={value!r} is not an option; choose one of {', '.join(map(str, options))}"
            )

    def at_least(key: str, low) -> None:
        node = lookup(cfg, key)
        if node is not None and node < low:
            kind = "positive" if low == 1 else f"at least {low}" if low else "zero or more"
            raise SettingError(f"{key}={node!r} is not valid: it must be {kind}")

    for key in (
        "G.n_channels",
        "G.n_blocks",
        "G.large_kernel_size",
        "G.small_kernel_size",
        "D.n_channels",
        "D.n_blocks",
        "D.fc_size",
        "data.crop_size",
        "data.patches_per_image",
        "data.val_images",
        "srresnet.batch_size",
        "srresnet.epochs",
        "srgan.batch_size",
        "srgan.epochs",
        "srgan.d_steps",
        "train.max_iterations",
    ):
        at_least(key, 1)
    for key in (
        "seed",
        "data.num_workers",
        "train.checkpoint_every",
        "train.log_every",
        "srgan.adv_weight",
        "srgan.label_smoothing",
        "srresnet.edge_weight",
        "srgan.edge_weight",
    ):
        at_least(key, 0)
    at_least("scale", 2)
    for key in ("srresnet.lr", "srgan.lr", "srgan.vgg_rescale"):
        stage, leaf = key.split(".")
        if not cfg[stage][leaf] > 0:
            raise SettingError(f"{key}={cfg[stage][leaf]!r} is not valid: it must be above 0")
    for leaf in ("gray_probability", "channel_shuffle"):
        share = cfg["data"][leaf]
        if not (isinstance(share, (int, float)) and 0 <= share <= 1):
            raise SettingError(
                f"data.{leaf}={share!r} is not valid: it is a share of the training patches, "
                "from 0 (none) to 1 (all)"
            )
    for stage in ("srresnet", "srgan"):
        decay = cfg[stage]["lr_decay_at"]
        if decay is not None and not 0 < decay < 1:
            raise SettingError(
                f"{stage}.lr_decay_at={decay!r} is not valid: it is a fraction of training between 0 and 1 "
                "(or None for no decay)"
            )
    device = str(cfg["device"])
    if device.split(":")[0] not in ("auto", "cpu", "cuda", "mps"):
        raise SettingError(
            f"device={device!r} is not an option; choose auto, cpu, cuda, cuda:N or mps"
        )
    if cfg["data"]["crop_size"] % cfg["scale"]:
        raise SettingError(
            f"data.crop_size={cfg['data']['crop_size']} is not valid: it must be a multiple of scale "
            f"({cfg['scale']}), so that the LR patch has whole pixels"
        )
    if cfg["G"]["scaling_factor"] != cfg["scale"]:
        raise SettingError(
            f"G.scaling_factor ({cfg['G']['scaling_factor']}) must equal scale ({cfg['scale']}); set both"
        )
    for key, registry in OPTIONS.items():  # the registries' names are the options
        choose(key, lookup(cfg, key), tuple(registry))
    choose("srgan.mode", cfg["srgan"]["mode"], ("paper", "baseline"))
    gan = cfg["srgan"]["gan"]
    if cfg["srresnet"]["grad_clip_theta"] and cfg["srresnet"]["optimizer"] != "sgd":
        raise SettingError(
            "srresnet.grad_clip_theta is VDSR's clipping to +-theta/lr, made for SGD's large learning rates; "
            "set srresnet.optimizer=sgd (or grad_clip_theta=None)"
        )
    scales = cfg["model"]["vdsr"].get("train_scales")
    if scales:
        if cfg["model"]["arch"] != "vdsr":
            raise SettingError(
                "model.vdsr.train_scales trains one network on several scales, which only VDSR can do; set model.arch=vdsr"
            )
        bad = [s for s in scales if not isinstance(s, int) or s < 2 or cfg["data"]["crop_size"] % s]
        if bad:
            raise SettingError(
                f"model.vdsr.train_scales {bad}: each scale must be an integer >= 2 dividing data.crop_size "
                f"({cfg['data']['crop_size']})"
            )
    if gan in ("wgan", "wgan-gp") and cfg["srgan"]["label_smoothing"]:
        raise SettingError(
            f"srgan.label_smoothing applies to cross-entropy GANs; a {gan} critic has no labels (set it to 0)"
        )
    if gan == "wgan" and cfg["srgan"]["optimizer"] != "rmsprop":
        raise SettingError(
            "srgan.gan=wgan (weight clipping) is unstable with momentum optimisers; set srgan.optimizer=rmsprop (the WGAN paper's)"
        )
    if gan == "wgan-gp" and cfg["D"]["batch_norm"]:
        raise SettingError(
            "srgan.gan=wgan-gp penalises the critic's gradient per sample, which batch norm mixes across the "
            "batch; set D.batch_norm=False"
        )


def parse_overrides(items: list[str]) -> dict:
    """Turn CLI overrides like ['srresnet.lr=1e-3', 'data.num_workers=8'] into a nested dict.

    Values are read as Python literals (numbers, None, True, lists); anything else stays a string.
    """
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise SettingError(f"override {item!r} is not key=value (for example srresnet.lr=1e-3)")
        key, raw = item.split("=", 1)
        if not raw.strip():
            raise SettingError(f"override {item!r} has no value; write {key}=<value>")
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
