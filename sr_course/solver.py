"""The training steps: what a student reads and changes (the SRGAN step is a TODO).

Read top to bottom:
    optimizer_step, frozen             the two helpers the steps use
    srresnet_step / srgan_step         one optimisation step each
    train_srresnet_epoch / train_srgan_epoch    one epoch each: the training regime

`t` is what every step receives: the networks, optimisers, losses and settings of the run, the
batches (`t.epoch_batches()`) and the book-keeping after each step (`t.end_step(losses)`:
counters, schedules, logging, checkpoints). Its full list is the step contract
(sr_course/contract.py, StepContext): the Trainer offers exactly that, and so does the small
stand-in the self-checks use. Designing your own regime (a warm-up, several discriminator updates
per generator update, ...) happens here.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .contract import StepContext


# --- steps and epochs ------------------------------------------------------------------------------


def optimizer_step(loss: torch.Tensor, optimizer, scaler, before_step=None) -> None:
    """One update: zero the gradients, backpropagate the (loss-scaled, under fp16) loss, run
    `before_step` (gradient clipping), step the optimiser and update the loss scale."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if before_step is not None:
        before_step()
    scaler.step(optimizer)
    scaler.update()


def srresnet_step(t: StepContext, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
    """One SRResNet step: lr (N, 3, h, w) in [0, 1], hr (N, 3, 4h, 4w) in [-1, 1]."""
    with t.autocast():
        sr = t.G(lr)
    loss = t.pixel_loss(sr.float(), hr)  # pixel MSE in the paper (srresnet.loss)
    optimizer_step(loss, t.opt_g, t.scaler_g, before_step=t.clip_gradients)
    return {"loss": loss.detach()}


@contextlib.contextmanager
def frozen(module: nn.Module):
    """No parameter gradients for `module` inside the block (the G step must not train D)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def srgan_step(
    t: StepContext, lr: torch.Tensor, hr: torch.Tensor, update_generator: bool = True
) -> dict[str, torch.Tensor]:
    """One SRGAN step: a generator update (when update_generator), then a discriminator update.

    lr (N, 3, h, w) in [0, 1], hr (N, 3, 4h, 4w) in [-1, 1]. Returns the losses of the step as
    detached scalars: {"content", "adversarial", "discriminator"} (only "discriminator" when the
    generator was not updated). What t offers: the networks t.G and t.D (t.D_raw is D without the
    DDP wrapper: use it wherever D must not be trained), t.content_loss(sr, hr), t.adversarial (the
    loss pair chosen by srgan.gan, and its hook after D's update; see sr_course/components/adversarial.py),
    t.cfg.srgan.adv_weight, the optimisers t.opt_g / t.opt_d with their grad scalers t.scaler_g /
    t.scaler_d, t.autocast() for mixed precision; optimizer_step() and frozen() above.
    """
    # TODO [SRGAN step]: one generator update, then one discriminator update (paper Sec. 2.1-2.2).
    #   The two players take turns. The generator is trained on the perceptual loss of Eq. 3, a
    #   content term plus a small adversarial term weighted by adv_weight; while it learns, the
    #   discriminator is only a judge: no gradient may reach D's weights. Then the discriminator is
    #   trained to tell the HR images (real) from this step's generated images (fake); the fakes must
    #   not carry gradients back into G. Every variant of srgan.gan (the paper's, RaGAN, WGAN,
    #   WGAN-GP) comes from t.adversarial, so your step works for all of them; the critic's hook runs
    #   after D's update. Mind the argument order, which differs between the two:
    #       t.adversarial.generator_loss(D, sr, hr)         the generator's adversarial term
    #       t.adversarial.discriminator_loss(D, hr, sr)     D's loss: real images first, then fakes
    #       t.adversarial.after_discriminator_step(D)       the critic's hook
    #   With update_generator=False (several D updates per G update, srgan.d_steps) G's weights must
    #   not change (its batch-norm running statistics may: G still makes this step's fakes).
    #   Think about: which tensors need gradients in each update, and what each optimiser may touch.
    #   Self-check: checks.check_srgan_step() prints "SRGAN step: OK".
    # BEGIN SOLUTION
    s = t.cfg.srgan
    out = {}
    if update_generator:
        with t.autocast():
            sr = t.G(lr)
        with frozen(t.D_raw), t.autocast():
            content = t.content_loss(sr.float(), hr)
            adversarial = t.adversarial.generator_loss(t.D_raw, sr, hr)
        g_loss = content + s.adv_weight * adversarial
        optimizer_step(g_loss, t.opt_g, t.scaler_g)
        out = {"content": content.detach(), "adversarial": adversarial.detach()}
    else:
        with torch.no_grad(), t.autocast():
            sr = t.G(lr)
    with t.autocast():
        d_loss = t.adversarial.discriminator_loss(t.D, hr, sr.detach())
    optimizer_step(d_loss, t.opt_d, t.scaler_d)
    t.adversarial.after_discriminator_step(t.D_raw)
    out["discriminator"] = d_loss.detach()
    return out
    # END SOLUTION


def train_srresnet_epoch(t: StepContext) -> None:
    """One epoch of SRResNet training (from where the epoch was left off, when resuming)."""
    t.G.train()
    for lr, hr in t.epoch_batches():
        t.end_step(srresnet_step(t, lr, hr))


def train_srgan_epoch(t: StepContext) -> None:
    """One epoch of SRGAN training: every batch updates D; every d_steps-th batch also updates G."""
    t.G.train()
    t.D.train()
    d_steps = max(1, int(t.cfg.srgan.d_steps))
    for lr, hr in t.epoch_batches():
        t.end_step(srgan_step(t, lr, hr, update_generator=t.iteration % d_steps == 0))
