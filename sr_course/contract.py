"""The step contract: what the training steps of sr_course/solver.py may use of `t`.

The Trainer offers exactly this; so does `stand_in()`, the small object the self-checks, the
grader's probes and the tests hand to a step. A step that uses anything else works nowhere, and a
stand-in says so in one sentence naming the attribute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class StepContext(Protocol):
    """What a step receives as `t`.

    cfg                   the run's config (EasyDict): t.cfg.srgan.adv_weight, t.cfg.srgan.d_steps, ...
    G, D                  the networks to train (D: None for SRResNet); maybe DDP-wrapped
    D_raw                 D without the DDP wrapper: use it wherever D must not be trained
    opt_g, opt_d          their optimisers
    scaler_g, scaler_d    their grad scalers (disabled unless fp16): optimizer_step() uses them
    pixel_loss(sr, hr)    SRResNet's loss; sr, hr (N, 3, H, W) in [-1, 1] -> scalar
    content_loss(sr, hr)  SRGAN's content loss (VGG features by default, + srgan.pixel_weight x
                          the pixel loss), same shapes
    adversarial           the GAN objective of srgan.gan: .generator_loss(D, sr, hr),
                          .discriminator_loss(D, hr, sr), .after_discriminator_step(D)
                          (sr_course/components/adversarial.py)
    iteration             optimiser steps done so far
    autocast()            a context for the forward passes (mixed precision on CUDA)
    clip_gradients()      the recipe's gradient clipping, for optimizer_step(before_step=...)
    epoch_batches()       this epoch's (lr (N, 3, h, w) in [0, 1], hr (N, 3, 4h, 4w) in [-1, 1])
    end_step(losses)      the book-keeping after each step (counters, schedules, logs, saves)
    """

    cfg: Any
    G: nn.Module
    D: nn.Module | None
    D_raw: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    pixel_loss: Loss
    content_loss: Loss | None
    adversarial: Any
    iteration: int

    def autocast(self) -> contextlib.AbstractContextManager: ...

    def clip_gradients(self) -> None: ...

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def end_step(self, losses: dict[str, torch.Tensor]) -> None: ...


# Every name of the contract, in the order above (the tests compare the Trainer and the stand-in with it).
CONTRACT = (*StepContext.__annotations__, "autocast", "clip_gradients", "epoch_batches", "end_step")


class _Settings(dict):
    """Attribute access to nested settings, like the config's EasyDict (t.cfg.srgan.adv_weight)."""

    def __getattr__(self, name):
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(
                f"the stand-in's settings have no {name!r}; they hold {', '.join(self)}"
            ) from None
        return _Settings(value) if isinstance(value, dict) else value


Optimizers = tuple[torch.optim.Optimizer | None, torch.optim.Optimizer | None]


@dataclass
class StandIn:
    """A StepContext without a Trainer: build it with stand_in()."""

    G: nn.Module
    D: nn.Module | None = None
    # (opt_g, opt_d), or a function that builds them, called when the step first uses either.
    optimizers: Optimizers | Callable[[], Optimizers] = (None, None)
    pixel_loss: Loss | None = None
    content_loss: Loss | None = None
    adversarial: Any = None
    cfg: Any = None
    batches: list = field(default_factory=list)
    iteration: int = 0
    logged: list = field(default_factory=list)  # what end_step() received, step by step

    def __post_init__(self):
        self.D_raw = self.D
        # Disabled scalers: scale() returns the loss unchanged and step() just steps (fp32 on a CPU).
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=False)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=False)

    @property
    def opt_g(self) -> torch.optim.Optimizer | None:
        return self._optimizers()[0]

    @property
    def opt_d(self) -> torch.optim.Optimizer | None:
        return self._optimizers()[1]

    def _optimizers(self) -> Optimizers:
        if callable(self.optimizers):
            self.optimizers = self.optimizers()
        return self.optimizers

    def autocast(self):
        return contextlib.nullcontext()

    def clip_gradients(self) -> None:
        pass  # no clipping in the paper's recipe

    def epoch_batches(self):
        yield from self.batches

    def end_step(self, losses: dict[str, torch.Tensor]) -> None:
        self.iteration += 1
        self.logged.append(losses)

    def __getattr__(self, name: str):
        # Only called for names the stand-in lacks: say what the contract holds instead.
        raise AttributeError(
            f"the training step used t.{name}, which is not part of what a step receives: t offers "
            f"{', '.join(CONTRACT)} (the step contract, sr_course/contract.py)"
        )


def stand_in(
    G: nn.Module,
    D: nn.Module | None = None,
    opt_g: torch.optim.Optimizer | None = None,
    opt_d: torch.optim.Optimizer | None = None,
    pixel_loss: Loss | None = None,
    content_loss: Loss | None = None,
    adversarial: Any = None,
    batches: list | None = None,
    optimizers: Callable[[], Optimizers] | None = None,
    **srgan,
) -> StandIn:
    """A StepContext around the given networks, for checks and tests of the steps.

    optimizers: instead of opt_g and opt_d, a function that returns (opt_g, opt_d), called when the
    step first uses t.opt_g or t.opt_d. An optimiser's first construction in a process imports
    torch._dynamo (about 1.3 s of CPU): a step that never reaches the optimisers (an unfinished
    TODO's stub, code that fails first) then does not pay it.
    srgan: the SRGAN settings the step reads from t.cfg.srgan (adv_weight, label_smoothing,
    d_steps; the paper's by default).
    """
    if optimizers is not None and (opt_g is not None or opt_d is not None):
        raise ValueError("stand_in: give opt_g and opt_d, or optimizers, not both")
    settings = {"adv_weight": 1e-3, "label_smoothing": 0.0, "d_steps": 1, **srgan}
    return StandIn(
        G=G,
        D=D,
        optimizers=optimizers or (opt_g, opt_d),
        pixel_loss=pixel_loss,
        content_loss=content_loss,
        adversarial=adversarial,
        cfg=_Settings(srgan=settings),
        batches=list(batches or []),
    )
