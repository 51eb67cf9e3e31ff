"""build_run(): what one training stage needs, each part from its own config section.

    networks     model.* / G.* / D.*        the generator (registry ARCHITECTURES), SRGAN's discriminator
    optimisers   <stage>.optimizer, .lr     one per network (registry OPTIMIZERS)
    schedules    <stage>.lr_decay_at        x0.1 at that fraction of the planned iterations
    losses       srresnet.loss, .edge_weight; srgan.content_loss, .pixel_weight, .gan, .edge_weight, vgg.*
                 (registries PIXEL_LOSSES, CONTENT_LOSSES, GAN_OBJECTIVES)

The Trainer (sr_course/train/trainer.py) wraps the result with data, precision, checkpoints and the
loop; the registries are in sr_course/components/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from ..components.adversarial import StandardGAN
from ..components.registry import (
    CONTENT_LOSSES,
    OPTIMIZERS,
    PIXEL_LOSSES,
    build_adversarial,
    build_generator,
)
from ..errors import SettingError
from ..models import Discriminator

STAGES = ("srresnet", "srgan")


@dataclass
class Run:
    """The networks, optimisers, schedules and losses of one stage (D's are None for SRResNet).

    pixel_loss and content_loss map (sr, hr), both (N, 3, H, W) in [-1, 1], to a scalar.
    """

    G: nn.Module
    opt_g: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    pixel_loss: object
    D: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    sched_d: torch.optim.lr_scheduler.LRScheduler | None = None
    content_loss: object = None
    adversarial: StandardGAN | None = None


def plus(base, weight: float, term):
    """The loss `base` + `weight` x the loss `term`; `base` itself when the weight is 0."""
    if not weight:
        return base
    return lambda sr, hr: base(sr, hr) + weight * term(sr, hr)


def schedule(optimizer, recipe, planned_iterations: int):
    """Learning rate x0.1 at recipe.lr_decay_at x the planned iterations (none when it is None)."""
    decay = recipe.get("lr_decay_at")
    milestones = [max(1, int(decay * planned_iterations))] if decay else []
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)


def build_run(
    config,
    stage: str,
    planned_iterations: int,
    device: torch.device | str = "cpu",
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Run:
    """Everything stage `stage` ('srresnet' or 'srgan') trains with, on `device`.

    planned_iterations: the stage's full length (epochs x iterations per epoch), which the learning
    rate schedule follows even when train.max_iterations stops the run early.
    """
    if stage not in STAGES:
        raise SettingError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    recipe = config[stage]
    optimizer = OPTIMIZERS[stage][recipe.optimizer]
    G = build_generator(config).to(device, memory_format=memory_format)
    opt_g = optimizer(G.parameters(), config, stage)
    r = config.srresnet
    run = Run(
        G=G,
        opt_g=opt_g,
        sched_g=schedule(opt_g, recipe, planned_iterations),
        pixel_loss=plus(PIXEL_LOSSES[r.loss](), r.edge_weight, losses.edge_loss),
    )
    if stage == "srgan":
        s = config.srgan
        run.D = Discriminator(**config.D).to(device, memory_format=memory_format)
        run.opt_d = optimizer(run.D.parameters(), config, stage)
        run.sched_d = schedule(run.opt_d, recipe, planned_iterations)
        content = CONTENT_LOSSES[s.content_loss](config, device, memory_format)
        # ESRGAN's anchor: a pixel term (srresnet.loss's) that holds colours and borders where the
        # feature loss leaves them free (a random-weight VGG's features do).
        content = plus(content, s.pixel_weight, PIXEL_LOSSES[r.loss]())
        run.content_loss = plus(content, s.edge_weight, losses.edge_loss)
        run.adversarial = build_adversarial(config)
    return run
