"""The adversarial half of SRGAN's training step, chosen by `srgan.gan`: a loss pair and the critic's
hook. The student's one step (solver.srgan_step) calls it; the variants beyond the paper plug in here,
so they work as soon as that step works. sr_course/components/registry.py picks one by name.

    t.adversarial.generator_loss(D, sr, hr)      G's adversarial loss (the caller freezes D)
    t.adversarial.discriminator_loss(D, hr, sr)  D's loss on real HR and generated SR (sr detached)
    t.adversarial.after_discriminator_step(D)    runs after D's update (WGAN: weight clipping)

    'standard'  the paper: cross-entropy on D's logits (losses.generator_adversarial_loss and
                losses.discriminator_loss, the student's TODOs), with one-sided label smoothing
    'ragan'     relativistic average GAN (ESRGAN): "is real more real than the average fake?"
    'wgan'      Wasserstein critic, weights clipped to +-clip_value after each update (RMSProp)
    'wgan-gp'   Wasserstein critic with WGAN-GP's gradient penalty (no batch norm in D)

sr and hr are (N, 3, H, W) in [-1, 1]; D returns (N, 1) logits or critic scores (no sigmoid).
"""

from __future__ import annotations

import torch

from .. import losses


class StandardGAN:
    """The paper's adversarial losses (Eq. 2 for D, Eq. 6 for G)."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def generator_loss(self, D, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        # looked up on the module at call time, so the student's current version is the one used
        return losses.generator_adversarial_loss(D(sr).float())

    def discriminator_loss(self, D, hr: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
        return losses.discriminator_loss(D(hr).float(), D(sr).float(), self.label_smoothing)

    def after_discriminator_step(self, D) -> None:
        pass


class RelativisticGAN(StandardGAN):
    """ESRGAN's relativistic average GAN (Eq. 2 and 3 of Wang et al. 2018)."""

    def generator_loss(self, D, sr, hr):
        return ragan_generator_loss(D(hr).float(), D(sr).float())

    def discriminator_loss(self, D, hr, sr):
        return ragan_discriminator_loss(D(hr).float(), D(sr).float())


class WassersteinGAN(StandardGAN):
    """A Wasserstein critic, kept (roughly) 1-Lipschitz by weight clipping (clip_value) or by
    WGAN-GP's gradient penalty (gp_weight)."""

    def __init__(self, clip_value: float | None = None, gp_weight: float = 0.0):
        self.clip_value, self.gp_weight = clip_value, gp_weight

    def generator_loss(self, D, sr, hr):
        return wgan_generator_loss(D(sr).float())

    def discriminator_loss(self, D, hr, sr):
        loss = wgan_critic_loss(D(hr).float(), D(sr).float())
        if self.gp_weight:
            with torch.autocast(hr.device.type, enabled=False):  # a gradient of a gradient: fp32
                loss = loss + self.gp_weight * gradient_penalty(D, hr.float(), sr.float())
        return loss

    @torch.no_grad()
    def after_discriminator_step(self, D) -> None:
        if self.clip_value:
            for p in D.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


# --- the variants' losses -------------------------------------------------------------------------


def ragan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Relativistic average D (ESRGAN Eq. 2): real should look more real than the average fake and
    fake less real than the average real. It is the paper's cross-entropy (losses.discriminator_loss,
    no smoothing) on the relativistic logits C(r) - E[C(f)] and C(f) - E[C(r)], halved: the mean of
    the two terms, as ESRGAN writes it."""
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return losses.discriminator_loss(real_rel, fake_rel) / 2


def ragan_generator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side (ESRGAN Eq. 3): the same terms with the targets swapped. Real logits are
    treated as constants (the discriminator is not trained by this loss)."""
    return ragan_discriminator_loss(fake_logits, real_logits.detach())


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic maximises E[C(real)] - E[C(fake)] (no sigmoid, no log): loss = E[C(f)] - E[C(r)]."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator maximises E[C(fake)]: loss = -E[C(f)]."""
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x C(x)||_2 - 1)^2] at random points x on the lines
    between real and fake samples. Returns the penalty (multiply by its weight, 10 in the paper)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
