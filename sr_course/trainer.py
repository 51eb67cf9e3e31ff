"""The Trainer: everything around the training steps of sr_course/solver.py.

    Trainer(config, stage)             builds networks, losses, optimisers and data from a config;
                                       resume, checkpoints, validation, logging, the NaN guard,
                                       Ctrl-C, DDP; fit() is the epoch loop (it calls solver.py's
                                       train_srresnet_epoch / train_srgan_epoch)

Exact resume: a checkpoint holds the weights, optimiser/scheduler/grad-scaler states, RNG states, the
epoch and how many batches of it are done. Training samples are a pure function of (seed, epoch,
index) and the sampler can start mid-epoch, so a run killed at any point and resumed from its last
checkpoint ends with the same weights as an uninterrupted run (CPU, deterministic settings).

GPU speed: bf16 autocast where supported (fp16 + GradScaler otherwise), channels_last, optional
torch.compile, pinned memory with non-blocking copies, and no host synchronisation per iteration:
losses are summed on the device and read only every `log_every` iterations (or at a checkpoint).

Several GPUs: `torchrun --nproc_per_node=N -m sr_course train-srresnet ...` runs DistributedDataParallel
with one shard of every epoch per process; rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import losses
from .adversarial import build_adversarial
from .archs import build_generator
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import lookup, to_plain_dict
from .datasets import EpochSampler, SRDataset
from .losses import VGGContentLoss, pixel_mse
from .models import Discriminator, TruncatedVGG19, count_parameters
from .runs import RECORD, write_record
from .solver import train_srgan_epoch, train_srresnet_epoch
from .utils import get_device, seed_everything

STAGES = ("srresnet", "srgan")
STUDENT_FILES = ("models.py", "losses.py", "solver.py")


def code_fingerprint() -> dict[str, str]:
    """A short SHA-256 of each student file: a checkpoint remembers the code its weights came from,
    so a resumed run can say when that code has changed since."""
    import hashlib

    here = Path(__file__).parent
    return {n: hashlib.sha256((here / n).read_bytes()).hexdigest()[:16] for n in STUDENT_FILES}


def format_duration(seconds: float) -> str:
    """3725 -> '1 h 02 min'; 95 -> '1 min 35 s'; 7 -> '7 s'."""
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    return f"{m} min {s:02d} s" if m else f"{s} s"


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite; the message says where and what to try."""


class RunLockedError(RuntimeError):
    """Another training holds the run folder's lock."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after saving last.pt; the message says how to continue."""


# --- the trainer ---------------------------------------------------------------------------------


def _distributed_setup(device_name: str | None):
    """(rank, world_size, device); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, get_device(device_name)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name not in ("cpu",)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:
        return False


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Everything one training run needs, built from a config.

    stage: 'srresnet' or 'srgan'. out_dir: where last.pt / best.pt go (default <runs_dir>/<stage>).
    resume: None (refuse to overwrite an existing last.pt), 'auto' (continue from out_dir/last.pt
    when it exists), or a checkpoint path. fresh=True: move an earlier run's last.pt and best.pt
    aside (into out_dir/earlier-<k>/) and start from scratch (after changing your model code).
    on_log(trainer, record) is called at every log point (notebooks draw live loss plots with it).
    """

    def __init__(
        self,
        config,
        stage: str = "srresnet",
        out_dir=None,
        resume=None,
        on_log=None,
        progress: bool | None = None,
        fresh: bool = False,
    ):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
        if fresh and resume not in (None, "auto", True):
            raise ValueError(
                "fresh=True (--fresh) starts from scratch; it cannot resume a checkpoint too"
            )
        self.cfg, self.stage, self.recipe = config, stage, config[stage]
        self.rank, self.world_size, self.device = _distributed_setup(config.device)
        self.is_main = self.rank == 0
        self.out_dir = Path(out_dir) if out_dir else Path(config.runs_dir) / stage
        self._bar = None
        if fresh and self.is_main:
            self._move_earlier_run_aside()
        self.on_log = on_log
        self.progress = progress
        tcfg = config.train
        seed_everything(config.seed, deterministic=tcfg.deterministic)
        cuda = self.device.type == "cuda"

        # Mixed precision (CUDA only): bf16 where the GPU has it, else fp16 with loss scaling.
        self.amp_dtype = None
        if tcfg.amp and cuda:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaling = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=scaling)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=scaling)
        self.memory_format = (
            torch.channels_last if (tcfg.channels_last and cuda) else torch.contiguous_format
        )

        # Data: each rank reads its own shard of every epoch.
        self.dataset = SRDataset("train", config)
        self.sampler = EpochSampler(
            len(self.dataset), config.seed, True, self.rank, self.world_size, epoch_in_index=True
        )
        workers = int(config.data.num_workers)
        self.loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=int(self.recipe.batch_size),
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=cuda,
            drop_last=True,
            persistent_workers=workers > 0,
        )
        if len(self.loader) == 0:
            raise ValueError(
                f"{stage}.batch_size={self.recipe.batch_size} is larger than the {len(self.sampler)} training "
                "samples per epoch; lower the batch size or raise data.patches_per_image"
            )

        # Networks and optimisers.
        self.G_raw = build_generator(config).to(self.device, memory_format=self.memory_format)
        self.opt_g = self._optimizer(self.G_raw.parameters())
        self.pixel_loss = self._pixel_loss()
        vdsr_scales = config.model.vdsr.get("train_scales") if config.model.arch == "vdsr" else None
        self.train_scales = [int(x) for x in vdsr_scales] if vdsr_scales else [int(config.scale)]
        self.iterations_per_epoch = len(self.loader)
        planned = int(self.recipe.epochs) * self.iterations_per_epoch
        # max_iterations stops a run early; the schedule still follows the planned length.
        self.total_iterations = min(planned, int(tcfg.max_iterations or planned))
        milestones = []
        if self.recipe.get("lr_decay_at"):
            milestones = [max(1, int(self.recipe.lr_decay_at * planned))]
        self.sched_g = torch.optim.lr_scheduler.MultiStepLR(self.opt_g, milestones, gamma=0.1)
        self.D_raw = self.opt_d = self.sched_d = None
        if stage == "srgan":
            self.D_raw = Discriminator(**config.D).to(self.device, memory_format=self.memory_format)
            self.opt_d = self._optimizer(self.D_raw.parameters())
            self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, milestones, gamma=0.1)
            self.content_loss = self._content_loss()
            self.adversarial = build_adversarial(config)

        # Progress counters and history (all restored on resume).
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch completed
        self.iteration = 0
        self.history: dict[str, list] = {"train": [], "val": []}
        self.train_seconds = 0.0  # wall time spent training, over all sessions of this run
        self._t_train = time.perf_counter()
        self.best_psnr = -math.inf
        self.last_saved_iteration = None
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self._t_log = time.perf_counter()
        self._fit_start_iteration = 0  # set again by fit(); the time estimate counts from there
        self.estimate: dict | None = None
        self._bar = None

        own_last = self.out_dir / "last.pt"
        if resume not in (None, "auto", True) and own_last.exists():
            if Path(resume).resolve() != own_last.resolve():
                raise FileExistsError(
                    f"{self.out_dir} already holds a run ({own_last}); resuming {resume} into it would "
                    f"overwrite it: choose another --out, or --resume to continue {self.out_dir}'s own run"
                )
        self.resumed_from = self._resume(resume) if resume else None
        if resume is None and own_last.exists():
            raise FileExistsError(
                f"{own_last} exists: pass --resume to continue that run "
                "(resume='auto' in Python), or choose another --out"
            )
        if stage == "srgan" and self.resumed_from is None:
            self._initialise_generator()

        # Wrappers last, so checkpoints always hold the plain modules' state_dicts.
        self.G, self.D = self.G_raw, self.D_raw
        if self.world_size > 1:
            if tcfg.sync_bn:
                self.G_raw = nn.SyncBatchNorm.convert_sync_batchnorm(self.G_raw)
            ids = [self.device.index] if cuda else None
            self.G = nn.parallel.DistributedDataParallel(self.G_raw, device_ids=ids)
            if self.D_raw is not None:
                self.D = nn.parallel.DistributedDataParallel(self.D_raw, device_ids=ids)
        if tcfg.compile:
            self.G = torch.compile(self.G)
            if self.D is not None:
                self.D = torch.compile(self.D)

    # -- setup helpers --

    def _optimizer(self, params):
        """Adam (the paper); SGD with momentum for VDSR's recipe; RMSProp for WGAN with clipping."""
        name, lr = self.recipe.optimizer, self.recipe.lr
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
        if name == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        betas = (
            (0.0, 0.9)
            if self.stage == "srgan" and self.cfg.srgan.gan == "wgan-gp"
            else (0.9, 0.999)
        )
        return torch.optim.Adam(params, lr=lr, betas=betas)

    def _pixel_loss(self):
        """The PSNR stage's loss: MSE (the paper) or L1, plus edge_weight x the edge loss."""
        r = self.cfg.srresnet
        base = pixel_mse if r.loss == "mse" else losses.pixel_l1
        if not r.edge_weight:
            return base
        return lambda sr, hr: base(sr, hr) + r.edge_weight * losses.edge_loss(sr, hr)

    def _content_loss(self):
        """SRGAN's content loss: VGG features (after or before the activation), MSE or L1 pixels,
        plus srgan.edge_weight x the edge loss."""
        c, s = self.cfg, self.cfg.srgan
        if s.content_loss == "vgg":
            vgg = TruncatedVGG19(
                c.vgg.i, c.vgg.j, c.vgg.weights, before_activation=c.vgg.before_activation
            )
            base = VGGContentLoss(
                vgg.to(self.device, memory_format=self.memory_format), s.vgg_rescale
            )
        else:
            base = pixel_mse if s.content_loss == "mse" else losses.pixel_l1
        if not s.edge_weight:
            return base
        return lambda sr, hr: base(sr, hr) + s.edge_weight * losses.edge_loss(sr, hr)

    def clip_gradients(self) -> None:
        """VDSR's adjustable clipping: each gradient clipped to +-theta / (current learning rate)."""
        theta = self.recipe.get("grad_clip_theta")
        if theta:
            self.scaler_g.unscale_(self.opt_g)
            lr = self.opt_g.param_groups[0]["lr"]
            torch.nn.utils.clip_grad_value_(self.G_raw.parameters(), theta / lr)

    def _initialise_generator(self) -> None:
        mode = self.cfg.srgan.mode
        if mode == "baseline":
            self.log(
                "SRGAN mode 'baseline': generator and discriminator trained together from scratch"
            )
            return
        if mode != "paper":
            raise ValueError(f"srgan.mode must be 'paper' or 'baseline', got {mode!r}")
        path = (
            self.cfg.srgan.srresnet_checkpoint or Path(self.cfg.runs_dir) / "srresnet" / "best.pt"
        )
        if (
            not Path(path).exists()
            and Path(path).name == "best.pt"
            and Path(path).with_name("last.pt").exists()
        ):
            path = Path(path).with_name("last.pt")
        if not Path(path).exists():
            raise CheckpointError(
                f"SRGAN mode 'paper' starts from a trained SRResNet, but {path} does not exist: train it first "
                "(python -m sr_course train-srresnet), set srgan.srresnet_checkpoint=PATH, or use srgan.mode=baseline"
            )
        if self.is_main and hasattr(self.G_raw, "initialize_with_srresnet"):
            self.G_raw.initialize_with_srresnet(path)
        else:
            self.G_raw.load_state_dict(load_checkpoint(path)["models"]["generator"])
            self.log(f"generator initialised from {path}")

    def _move_earlier_run_aside(self) -> None:
        names = ("last.pt", "best.pt", RECORD)
        found = [self.out_dir / n for n in names if (self.out_dir / n).exists()]
        if not found:
            return
        k = 1
        while (self.out_dir / f"earlier-{k}").exists():
            k += 1
        aside = self.out_dir / f"earlier-{k}"
        aside.mkdir(parents=True)
        for path in found:
            os.replace(path, aside / path.name)
        self.log(
            f"fresh start: moved the earlier run's {', '.join(p.name for p in found)} to {aside}"
        )

    def _note_changed_code(self, saved: dict | None, path) -> None:
        """Say so when the student files differ from those the checkpoint's weights came from."""
        now = code_fingerprint()
        changed = [n for n in STUDENT_FILES if saved and saved.get(n) not in (None, now[n])]
        if changed:
            self.log(
                f"note: {', '.join(f'sr_course/{n}' for n in changed)} changed since {path} was written, so "
                "its weights come from your earlier code. To train from scratch with the code as it is now, "
                "start fresh: Trainer(..., fresh=True) in a notebook, --fresh on the command line (the "
                "earlier checkpoints are kept in a subfolder)"
            )

    def _resume(self, resume) -> str | None:
        path = self.out_dir / "last.pt" if resume in ("auto", True) else Path(resume)
        if not path.exists():
            if resume in ("auto", True):
                return None
            raise CheckpointError(f"cannot resume: checkpoint {path} does not exist")
        state = load_checkpoint(path, map_location=self.device)
        if state.get("stage") != self.stage:
            raise CheckpointError(
                f"{path} is a {state.get('stage')!r} checkpoint; this run trains {self.stage!r}"
            )
        self._refuse_fixed_changes(state.get("config") or {}, path)
        self._note_changed_code(state.get("code"), path)
        try:
            self.G_raw.load_state_dict(state["models"]["generator"])
            if self.D_raw is not None:
                self.D_raw.load_state_dict(state["models"]["discriminator"])
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(
                f"{path} does not fit this configuration ({str(err).splitlines()[0]}); the run was made with "
                f"G={state['config'].get('G')} D={state['config'].get('D')}. Resume with the same settings or "
                "start a new run with another --out"
            ) from None
        self.opt_g.load_state_dict(state["optimizers"]["generator"])
        self.sched_g.load_state_dict(state["schedulers"]["generator"])
        self.scaler_g.load_state_dict(state["scalers"]["generator"])
        if self.D_raw is not None:
            self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
            self.sched_d.load_state_dict(state["schedulers"]["discriminator"])
            self.scaler_d.load_state_dict(state["scalers"]["discriminator"])
        self.epoch, self.batch_in_epoch, self.iteration = (
            state["epoch"],
            state["batch_in_epoch"],
            state["iteration"],
        )
        self.history, self.best_psnr = state["history"], state["best_psnr"]
        self.train_seconds = float(state.get("train_seconds", 0.0))
        _set_rng_state(state["rng"])
        self.last_saved_iteration = self.iteration
        self.log(
            f"resumed from {path} (epoch {self.epoch}, batch {self.batch_in_epoch}, iteration {self.iteration})"
        )
        self._apply_recipe_changes(state.get("config") or {})
        return str(path)

    # Settings a resumed run cannot change, and why (the learning rate, the loss weights, logging,
    # checkpoints, validation and mixed precision can: they act from the next step on).
    RESUME_FIXED = {
        "scale": "the weights were trained for it",
        "G": "the weights were trained for it",
        "D": "the weights were trained for it",
        "model": "the weights were trained for it",
        "seed": "the order of the training samples depends on it",
        "data.train_splits": "the order of the training samples depends on it",
        "data.crop_size": "the order of the training samples depends on it",
        "data.patches_per_image": "the order of the training samples depends on it",
        "{stage}.batch_size": "the position inside the epoch is counted in batches of it",
        "{stage}.optimizer": "the optimiser's saved state belongs to it",
    }

    def _refuse_fixed_changes(self, saved: dict, path) -> None:
        current = to_plain_dict(self.cfg)
        for key, reason in self.RESUME_FIXED.items():
            key = key.format(stage=self.stage)
            old, new = lookup(saved, key), lookup(current, key)
            if old is not None and old != new:
                raise CheckpointError(
                    f"{path} was trained with {key}={old}; it cannot change on resume ({reason}). "
                    f"Resume with {key}={old}, or start a new run with another --out"
                )

    def _apply_recipe_changes(self, saved: dict) -> None:
        """Apply a changed learning rate (keeping the decay already done) and say in one line what
        changed in the stage's recipe since the checkpoint was written."""
        old_recipe, changes = saved.get(self.stage) or {}, []
        for key, new in self.recipe.items():
            old = old_recipe.get(key, new)
            if old != new:
                changes.append(f"{self.stage}.{key} {old} -> {new}")
        old_lr, new_lr = old_recipe.get("lr", self.recipe.lr), self.recipe.lr
        if old_lr != new_lr:
            pairs = [(self.opt_g, self.sched_g)]
            if self.opt_d is not None:
                pairs.append((self.opt_d, self.sched_d))
            for opt, sched in pairs:
                for group in opt.param_groups:
                    group["lr"] *= new_lr / old_lr
                    group["initial_lr"] = new_lr
                sched.base_lrs = [new_lr for _ in sched.base_lrs]
                sched._last_lr = [group["lr"] for group in opt.param_groups]
        if changes:
            self.log(
                f"resumed with changed settings: {', '.join(changes)} (applied from the next step)"
            )

    # -- helpers used by the steps and epochs --

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def epoch_batches(self):
        """This rank's batches of the current epoch, from where it was left off, on the device.

        VDSR with model.vdsr.train_scales: batch k is trained at scale train_scales[iteration % n];
        its LR is made from the HR patch (MATLAB bicubic, rounded to 8 bits like a saved LR image)
        and the network's scaling_factor follows, so one network learns every scale.
        """
        batch = int(self.recipe.batch_size)
        self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * batch)
        try:
            for lr, hr in self.loader:
                if self.iteration >= self.total_iterations:
                    return
                lr = lr.to(self.device, non_blocking=True, memory_format=self.memory_format)
                hr = hr.to(self.device, non_blocking=True, memory_format=self.memory_format)
                scale = self.train_scales[self.iteration % len(self.train_scales)]
                if scale != self.cfg.scale:
                    lr = self._lr_from_hr(hr, scale)
                self.G_raw.scaling_factor = scale
                yield lr, hr
        finally:
            self.G_raw.scaling_factor = int(self.cfg.scale)

    @staticmethod
    def _lr_from_hr(hr: torch.Tensor, scale: int) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> MATLAB-bicubic (N, 3, H/scale, W/scale) in [0, 1], 8-bit values."""
        from .imresize import imresize_torch

        lr = imresize_torch(((hr.float() + 1) / 2).clamp(0, 1), 1 / scale)
        return (torch.floor(lr.clamp(0, 1) * 255 + 0.5) / 255).to(hr.dtype)

    def end_step(self, losses: dict[str, torch.Tensor]) -> None:
        """Book-keeping after each optimiser step: counters, schedules, device-side loss sums,
        and (every few iterations) logging, the NaN check and mid-epoch checkpoints."""
        self.iteration += 1
        self.batch_in_epoch += 1
        self.sched_g.step()
        if self.sched_d is not None:
            self.sched_d.step()
        for name, value in losses.items():
            value = value.float()
            self._sums[name] = self._sums.get(name, 0) + value
            self._nonfinite |= ~torch.isfinite(value)
        self._count += 1
        if self._bar is not None:
            self._bar.update(1)
        self._estimate_time()
        tcfg = self.cfg.train
        if tcfg.log_every and self.iteration % tcfg.log_every == 0:
            self._log_losses()
        if tcfg.checkpoint_every and self.iteration % tcfg.checkpoint_every == 0:
            self.save()
        self._stop_if_asked()

    # Iterations of this fit() skipped (warm-up: cuDNN autotuning, torch.compile), then timed.
    ESTIMATE_AFTER, ESTIMATE_OVER = 5, 20

    def _estimate_time(self) -> None:
        """Once per fit(): time ESTIMATE_OVER iterations after the warm-up and say how long the rest
        of the run's training steps will take at that speed."""
        done = self.iteration - self._fit_start_iteration
        if done not in (self.ESTIMATE_AFTER, self.ESTIMATE_AFTER + self.ESTIMATE_OVER):
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if done == self.ESTIMATE_AFTER:
            self._t_estimate = now
            return
        rate = self.ESTIMATE_OVER / max(now - self._t_estimate, 1e-9)
        left = self.total_iterations - self.iteration
        self.estimate = {"it_per_s": rate, "iterations_left": left, "seconds_left": left / rate}
        first = self.iteration - self.ESTIMATE_OVER + 1
        self.log(
            f"[{self.stage}] {rate:.2f} it/s over iterations {first}-{self.iteration}: the remaining "
            f"{left:,} iterations take about {format_duration(left / rate)} at this pace"
        )

    def _check_finite(self) -> None:
        if bool(self._nonfinite):  # one host sync, only here
            last = self.out_dir / "last.pt"
            kept = (
                f"the last good checkpoint {last} (iteration {self.last_saved_iteration}) is intact"
                if last.exists()
                else "no checkpoint was written"
            )
            raise DivergenceError(
                f"{self.stage}: the loss became NaN or infinite by iteration {self.iteration}; {kept}. "
                f"Lower the learning rate ({self.stage}.lr={self.recipe.lr:g} now) or turn off mixed precision "
                "(train.amp=False), then resume."
            )

    def _log_losses(self) -> None:
        if not self._count:
            return
        self._check_finite()
        sums = self._sums
        if self.world_size > 1:
            for v in sums.values():
                dist.all_reduce(v)
        record = {
            "iteration": self.iteration,
            "epoch": self.epoch,
            "lr": self.opt_g.param_groups[0]["lr"],
        }
        record.update({k: float(v) / (self._count * self.world_size) for k, v in sums.items()})
        now = time.perf_counter()
        record["it_per_s"] = self._count / max(now - self._t_log, 1e-9)
        self._t_log = now
        self._sums, self._count = {}, 0
        if self.is_main:
            self.history["train"].append(record)
            if self.on_log:
                self.on_log(self, record)
            if not self._bar:
                losses = " ".join(f"{k} {record[k]:.4g}" for k in sums)
                self.log(
                    f"[{self.stage}] epoch {self.epoch + 1} it {self.iteration}/{self.total_iterations} {losses} ({record['it_per_s']:.2f} it/s)"
                )
            else:
                self._bar.set_postfix({k: f"{record[k]:.4g}" for k in sums}, refresh=False)

    # -- checkpoints, validation, logging --

    def state_dict(self) -> dict:
        models = {"generator": self.G_raw.state_dict()}
        optimizers = {"generator": self.opt_g.state_dict()}
        schedulers = {"generator": self.sched_g.state_dict()}
        scalers = {"generator": self.scaler_g.state_dict()}
        if self.D_raw is not None:
            models["discriminator"] = self.D_raw.state_dict()
            optimizers["discriminator"] = self.opt_d.state_dict()
            schedulers["discriminator"] = self.sched_d.state_dict()
            scalers["discriminator"] = self.scaler_d.state_dict()
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "iteration": self.iteration,
            "config": to_plain_dict(self.cfg),
            "models": models,
            "optimizers": optimizers,
            "schedulers": schedulers,
            "scalers": scalers,
            "rng": _rng_state(),
            "code": code_fingerprint(),
            "history": self.history,
            "best_psnr": self.best_psnr,
            "train_seconds": self.train_seconds,
        }

    def save(self, best: bool = False) -> None:
        """Write out_dir/best.pt (when best) and last.pt atomically, after checking the losses are
        finite."""
        self._check_finite()
        now = time.perf_counter()
        self.train_seconds += now - self._t_train
        self._t_train = now
        if self.is_main:
            state = self.state_dict()
            # best.pt first: a kill between the two writes leaves last.pt one step behind, so the
            # resumed run validates again and rewrites best.pt (the other order leaves it stale).
            if best:
                save_checkpoint(state, self.out_dir / "best.pt")
            save_checkpoint(state, self.out_dir / "last.pt")
            write_record(self)  # run.json: the run's recipe, progress, losses and scores
        self.last_saved_iteration = self.iteration
        if self.world_size > 1:
            dist.barrier()

    @torch.no_grad()
    def validate(self) -> dict | None:
        """PSNR/SSIM (Y channel, border crop) on the first data.val_images images of data.val_split."""
        split = self.cfg.data.val_split
        if not split or not self.is_main:
            return None
        from .inference import super_resolve_tensor, to_uint8
        from .metrics import score_sr

        if not hasattr(self, "_val_set"):
            self._val_set = SRDataset(split, self.cfg)
        ds = self._val_set
        self.G_raw.eval()
        scores = []
        for i in range(min(int(self.cfg.data.val_images), len(ds))):
            lr, _, _ = ds[i]
            sr = to_uint8(super_resolve_tensor(self.G_raw, lr[None]))
            scores.append(score_sr(sr, ds.hr_uint8(i), self.cfg.scale))
        self.G_raw.train()
        record = {
            "iteration": self.iteration,
            "epoch": self.epoch,
            "split": split,
            "psnr": float(np.mean([p for p, _ in scores])),
            "ssim": float(np.mean([s for _, s in scores])),
        }
        self.history["val"].append(record)
        self.log(
            f"[{self.stage}] validation on {split} ({len(scores)} images): PSNR {record['psnr']:.2f} dB, SSIM {record['ssim']:.4f}"
        )
        return record

    def log(self, message: str) -> None:
        if self.is_main:
            if self._bar:
                self._bar.write(message)
            else:
                print(message, flush=True)

    def describe(self) -> str:
        g = count_parameters(self.G_raw)
        d = f", D {count_parameters(self.D_raw):,} parameters" if self.D_raw is not None else ""
        amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16 + grad scaler"}[
            self.amp_dtype
        ]
        return (
            f"{self.stage}: profile {self.cfg.profile}, device {self.device}"
            f"{f' x {self.world_size} processes' if self.world_size > 1 else ''}, G {g:,} parameters{d}\n"
            f"  {len(self.dataset.rows)} training images x {self.cfg.data.patches_per_image} patches, "
            f"batch {self.recipe.batch_size}: {self.iterations_per_epoch} iterations per epoch, "
            f"{self.total_iterations} in all; mixed precision {amp}, "
            f"channels_last {self.memory_format == torch.channels_last}, compile {bool(self.cfg.train.compile)}\n"
            f"  checkpoints: {self.out_dir / 'last.pt'} (and best.pt)"
        )

    # -- the loop --

    def fit(self) -> dict:
        """Train until the configured number of epochs (or train.max_iterations); returns the history."""
        run_epoch = train_srresnet_epoch if self.stage == "srresnet" else train_srgan_epoch
        epochs = int(self.recipe.epochs)
        self.log(self.describe())
        self._fit_start_iteration = self.iteration
        self._t_train = time.perf_counter()
        if self.iteration >= self.total_iterations:
            self.log(f"{self.stage}: already trained ({self.iteration} iterations); nothing to do")
            return self.history
        use_bar = (
            self.progress if self.progress is not None else (_in_notebook() or sys.stderr.isatty())
        )
        self._bar = None
        if use_bar and self.is_main:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total_iterations, initial=self.iteration, desc=self.stage, unit="it"
            )
        try:
            with self._run_lock(), self._stop_on_ctrl_c():
                self._remove_unfinished_saves()
                while self.epoch < epochs and self.iteration < self.total_iterations:
                    run_epoch(self)
                    self._log_losses()
                    if self.batch_in_epoch >= self.iterations_per_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    record = self.validate()
                    improved = record is not None and record["psnr"] > self.best_psnr
                    if improved:
                        self.best_psnr = record["psnr"]
                    self.save(best=improved)
        finally:
            if self._bar:
                self._bar.close()
                self._bar = None
        self.log(f"{self.stage}: done, {self.iteration} iterations; checkpoints in {self.out_dir}")
        return self.history

    @contextlib.contextmanager
    def _run_lock(self):
        """Hold out_dir/.lock while training, so two runs never write one folder at once.

        An OS lock (flock): the kernel drops it when the process dies, so a killed run leaves none.
        """
        if not self.is_main:
            yield
            return
        try:
            import fcntl
        except ImportError:  # not on Windows: no lock there
            yield
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / ".lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise RunLockedError(
                    f"another training is writing to {self.out_dir} ({holder} holds {path}): wait for "
                    "it to end, or choose another --out"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"process {os.getpid()}")
            f.flush()
            try:
                yield
            finally:
                f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    def _remove_unfinished_saves(self) -> None:
        """Delete the temporary files of saves that a kill cut short (the lock says none is running)."""
        if not self.is_main:
            return
        left = [p for p in self.out_dir.glob(".*.pt.*.tmp") if p.is_file()]
        if left:
            size = sum(p.stat().st_size for p in left)
            for p in left:
                p.unlink(missing_ok=True)
            self.log(
                f"removed {len(left)} unfinished checkpoint file(s) ({size / 1e6:.1f} MB) left in "
                f"{self.out_dir} by interrupted saves"
            )

    @contextlib.contextmanager
    def _stop_on_ctrl_c(self):
        """Ctrl-C (SIGINT; a notebook's interrupt) finishes the current step, saves last.pt and raises
        TrainingInterrupted; a second Ctrl-C stops at once. Single process only (under torchrun the
        ranks would stop at different steps)."""
        import signal
        import threading

        self._stop_requested = False
        if self.world_size > 1 or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame):
            if self._stop_requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self._stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _stop_if_asked(self) -> None:
        if getattr(self, "_stop_requested", False):
            self._stop_requested = False
            if self.last_saved_iteration != self.iteration:
                self.save()
            raise TrainingInterrupted(
                f"{self.stage}: interrupted at iteration {self.iteration}; saved "
                f"{self.out_dir / 'last.pt'}: continue with --resume (resume='auto' in Python)"
            )

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
