"""The Trainer: everything around the training steps of sr_course/solver.py.

    Trainer(config, stage)   data, precision, the run (sr_course/train/build.py: networks,
                             optimisers, schedules, losses), resume (resume.py), the run guard
                             (guard.py: lock, Ctrl-C, NaN); it is the `t` the steps receive (the
                             step contract, sr_course/contract.py)
    .fit()                   the loop: solver.py's epochs, then validation and a checkpoint each

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
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import save_checkpoint
from ..data.datasets import EpochSampler, SRDataset
from ..data.imresize import imresize_torch
from ..errors import SettingError, WouldOverwrite
from ..evaluation.inference import super_resolve_tensor
from ..evaluation.metrics import score_sr
from ..evaluation.runs import write_record
from ..models import count_parameters
from ..solver import train_srgan_epoch, train_srresnet_epoch
from ..utils import format_duration, get_device, seed_everything, to_uint8
from . import resume as checkpoints
from .build import STAGES, build_run
from .guard import DivergenceError, RunGuard, TrainingInterrupted

EPOCHS = {"srresnet": train_srresnet_epoch, "srgan": train_srgan_epoch}


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
        from IPython import get_ipython  # only where IPython is installed and running
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


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
            raise SettingError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
        if fresh and resume not in (None, "auto", True):
            raise SettingError(
                "fresh=True (--fresh) starts from scratch; it cannot resume a checkpoint too"
            )
        self.cfg, self.stage, self.recipe = config, stage, config[stage]
        self.rank, self.world_size, self.device = _distributed_setup(config.device)
        self.is_main = self.rank == 0
        self.out_dir = Path(out_dir) if out_dir else Path(config.runs_dir) / stage
        self.on_log, self.progress, self._bar = on_log, progress, None
        if fresh and self.is_main:
            checkpoints.move_earlier_run_aside(self.out_dir, self.log)
        tcfg = config.train
        seed_everything(config.seed, deterministic=tcfg.deterministic)
        self._setup_precision(tcfg)
        self._setup_data()

        # Networks, optimisers, schedules and losses, each from its own config section.
        self.iterations_per_epoch = len(self.loader)
        planned = int(self.recipe.epochs) * self.iterations_per_epoch
        # max_iterations stops a run early; the schedule still follows the planned length.
        self.total_iterations = min(planned, int(tcfg.max_iterations or planned))
        # The run's log points: console lines and live plots are spread over them.
        self.log_points = self.total_iterations / max(1, tcfg.log_every or 1)
        run = build_run(config, stage, planned, self.device, self.memory_format)
        self.G_raw, self.opt_g, self.sched_g = run.G, run.opt_g, run.sched_g
        self.D_raw, self.opt_d, self.sched_d = run.D, run.opt_d, run.sched_d
        self.pixel_loss, self.content_loss, self.adversarial = (
            run.pixel_loss,
            run.content_loss,
            run.adversarial,
        )
        vdsr_scales = config.model.vdsr.get("train_scales") if config.model.arch == "vdsr" else None
        self.train_scales = [int(x) for x in vdsr_scales] if vdsr_scales else [int(config.scale)]

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
        self._t_log = time.perf_counter()
        self._fit_start_iteration = 0  # set again by fit(); the time estimate counts from there
        self.estimate: dict | None = None
        self.guard = RunGuard(
            self.out_dir, self.log, self.device, self.is_main, single_process=self.world_size == 1
        )

        own_last, own_best = self.out_dir / "last.pt", self.out_dir / "best.pt"
        held = next((p for p in (own_last, own_best) if p.exists()), None)
        if resume not in (None, "auto", True) and held is not None:
            if Path(resume).resolve() != own_last.resolve():
                raise WouldOverwrite(
                    f"{self.out_dir} already holds a run ({held}); resuming {resume} into it would "
                    f"overwrite it: choose another --out, or --resume to continue {self.out_dir}'s own run"
                )
        self.resumed_from = checkpoints.resume(self, resume) if resume else None
        if resume is None and own_last.exists():
            raise WouldOverwrite(
                f"{own_last} exists: pass --resume to continue that run "
                "(resume='auto' in Python), or choose another --out"
            )
        if self.resumed_from is None and own_best.exists() and not own_last.exists():
            # A finished run whose last.pt was removed, or a run whose first save failed: starting
            # at iteration 0 would overwrite the best model it has.
            raise WouldOverwrite(
                f"{self.out_dir} holds best.pt but no last.pt to resume from; "
                f"{'resuming' if resume else 'a new run'} would start at iteration 0 and overwrite "
                "best.pt: pass --fresh to start over with it kept in earlier-<k>/ (fresh=True in "
                "Python), or choose another --out"
            )
        if stage == "srgan" and self.resumed_from is None:
            checkpoints.initialise_generator(self)
        self._wrap_networks(tcfg)

    # -- setup --

    def _setup_precision(self, tcfg) -> None:
        """Mixed precision (CUDA only): bf16 where the GPU has it, else fp16 with loss scaling."""
        cuda = self.device.type == "cuda"
        self.amp_dtype = None
        if tcfg.amp and cuda:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaling = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=scaling)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=scaling)
        self.memory_format = (
            torch.channels_last if (tcfg.channels_last and cuda) else torch.contiguous_format
        )

    def _setup_data(self) -> None:
        """The training patches; each rank reads its own shard of every epoch."""
        config = self.cfg
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
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=workers > 0,
        )
        if len(self.loader) == 0:
            raise SettingError(
                f"{self.stage}.batch_size={self.recipe.batch_size} is larger than the {len(self.sampler)} training "
                "samples per epoch; lower the batch size or raise data.patches_per_image"
            )

    def _wrap_networks(self, tcfg) -> None:
        """DDP and torch.compile wrappers, last, so checkpoints always hold the plain modules."""
        self.G, self.D = self.G_raw, self.D_raw
        if self.world_size > 1:
            if tcfg.sync_bn:
                self.G_raw = nn.SyncBatchNorm.convert_sync_batchnorm(self.G_raw)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G = nn.parallel.DistributedDataParallel(self.G_raw, device_ids=ids)
            if self.D_raw is not None:
                self.D = nn.parallel.DistributedDataParallel(self.D_raw, device_ids=ids)
        if tcfg.compile:
            self.G = torch.compile(self.G)
            if self.D is not None:
                self.D = torch.compile(self.D)

    # -- the loop --

    def fit(self) -> dict:
        """Train until the configured number of epochs (or train.max_iterations); returns the history."""
        run_epoch, epochs = EPOCHS[self.stage], int(self.recipe.epochs)
        self.log(self.describe())
        self._fit_start_iteration = self.iteration
        self._t_train = time.perf_counter()
        if self.iteration >= self.total_iterations:
            self.log(f"{self.stage}: already trained ({self.iteration} iterations); nothing to do")
            return self.history
        self._bar = self._progress_bar()
        try:
            with self.guard.holding():
                while self.epoch < epochs and self.iteration < self.total_iterations:
                    run_epoch(self)
                    self._log_losses()
                    if self.batch_in_epoch >= self.iterations_per_epoch:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
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
            self.guard.watch(value)
        self._count += 1
        if self._bar is not None:
            self._bar.update(1)
        self._estimate_time()
        tcfg = self.cfg.train
        if tcfg.log_every and self.iteration % tcfg.log_every == 0:
            self._log_losses()
        if tcfg.checkpoint_every and self.iteration % tcfg.checkpoint_every == 0:
            self.save()
        if self.guard.stop_requested:
            self.guard.stop_requested = False
            if self.last_saved_iteration != self.iteration:
                self.save()
            raise TrainingInterrupted(
                f"{self.stage}: interrupted at iteration {self.iteration}; saved "
                f"{self.out_dir / 'last.pt'}: continue with --resume (resume='auto' in Python)"
            )

    def _progress_bar(self):
        use_bar = (
            self.progress if self.progress is not None else (_in_notebook() or sys.stderr.isatty())
        )
        if not (use_bar and self.is_main):
            return None
        return tqdm(total=self.total_iterations, initial=self.iteration, desc=self.stage, unit="it")

    # -- what the steps use (the step contract, sr_course/contract.py) --

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def clip_gradients(self) -> None:
        """VDSR's adjustable clipping: each gradient clipped to +-theta / (current learning rate)."""
        theta = self.recipe.get("grad_clip_theta")
        if theta:
            self.scaler_g.unscale_(self.opt_g)
            lr = self.opt_g.param_groups[0]["lr"]
            torch.nn.utils.clip_grad_value_(self.G_raw.parameters(), theta / lr)

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
        lr = imresize_torch(((hr.float() + 1) / 2).clamp(0, 1), 1 / scale)
        return (torch.floor(lr.clamp(0, 1) * 255 + 0.5) / 255).to(hr.dtype)

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
            # Without a bar, a line for about 30 of the log points (plots get every one).
            quiet = len(self.history["train"]) % max(1, round(self.log_points / 30))
            if self._bar:
                self._bar.set_postfix({k: f"{record[k]:.4g}" for k in sums}, refresh=False)
            elif not quiet or self.iteration >= self.total_iterations:
                losses = " ".join(f"{k} {record[k]:.4g}" for k in sums)
                self.log(
                    f"[{self.stage}] epoch {self.epoch + 1} it {self.iteration}/{self.total_iterations} {losses} ({record['it_per_s']:.2f} it/s)"
                )

    # -- checkpoints, validation, logging --

    def _check_finite(self) -> None:
        if self.guard.diverged:
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

    def state_dict(self) -> dict:
        return checkpoints.training_state(self)

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
            f"  checkpoints: {self.out_dir / 'last.pt'}"
            f"{' (and best.pt, by validation PSNR)' if self.cfg.data.val_split else ''}"
        )

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
