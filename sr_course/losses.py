"""Losses of SRResNet and SRGAN (Ledig et al. 2017, Sec. 2.2).

    pixel_mse(sr, hr)                          l_MSE: mean squared error of the pixels
    VGGContentLoss(vgg, rescale)(sr, hr)       l_VGG/(i,j): MSE of VGG19 features phi_(i,j)
    generator_adversarial_loss(fake_logits)    l_Gen: -log D(G(LR)), as BCE with logits against "real"
    discriminator_loss(real, fake, smoothing)  the discriminator's cross-entropy on real and fake

sr and hr are (N, 3, H, W) in [-1, 1]; logits are (N, 1), any real number (no sigmoid applied).
The SRGAN perceptual loss is content + 1e-3 * adversarial (Eq. 3).

Beyond the paper (switchable in the config, see README "Beyond SRGAN"):
    pixel_l1                  L1 pixel loss (EDSR; ESRGAN's PSNR-oriented stage)
    edge_loss                 L1 between image gradients: keeps edges sharp

The GAN variants (RaGAN, WGAN, WGAN-GP) and their losses are in sr_course/adversarial.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pixel_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all pixels and channels: (N, 3, H, W) x 2 -> scalar."""
    # TODO [pixel_mse]: the mean of (sr - hr)^2 over every element.
    #   Paper: Eq. 4 (l_MSE). Values in [-1, 1], so the loss lies in [0, 4].
    #   Self-check: checks.check_losses() prints "Losses: OK".
    # BEGIN SOLUTION
    return F.mse_loss(sr, hr)
    # END SOLUTION


class VGGContentLoss(nn.Module):
    """MSE between VGG19 features of SR and HR: (N, 3, H, W) in [-1, 1] x 2 -> scalar.

    rescale multiplies the features before the MSE; the paper uses 1/12.75 so that the VGG loss is on
    a scale comparable to the pixel MSE (the loss is then divided by 12.75**2). Gradients flow into
    sr only: the HR features are a fixed target.
    """

    def __init__(self, vgg: nn.Module, rescale: float = 1 / 12.75):
        super().__init__()
        self.vgg = vgg
        self.rescale = rescale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        # TODO [VGGContentLoss]: MSE between rescale * vgg(sr) and rescale * vgg(hr).
        #   - compute the HR features under torch.no_grad() (they are the target);
        #   - shapes: (N, 3, H, W) -> features (N, 512, H/16, W/16) for phi_(5,4).
        #   Paper: Eq. 5 (l_VGG/i,j), Sec. 3.2 (the 1/12.75 rescaling).
        #   Self-check: checks.check_losses() prints "Losses: OK".
        # BEGIN SOLUTION
        with torch.no_grad():
            target = self.vgg(hr) * self.rescale
        return F.mse_loss(self.vgg(sr) * self.rescale, target)
        # END SOLUTION


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss: it wants D to call its images real. (N, 1) -> scalar."""
    # TODO [adversarial losses]: BCE with logits between fake_logits and a target of ones.
    #   This is -log(sigmoid(D(G(LR)))) averaged over the batch (Eq. 6), computed stably.
    #   Self-check: checks.check_losses() prints "Losses: OK".
    # BEGIN SOLUTION
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    # END SOLUTION


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The discriminator's cross-entropy: real -> 1 (or 1 - label_smoothing), fake -> 0. -> scalar.

    One-sided label smoothing (Salimans et al. 2016) softens only the real targets.
    """
    # TODO [adversarial losses]: the discriminator's loss on real and fake logits.
    #   BCE with logits of real_logits against (1 - label_smoothing)
    #   plus BCE with logits of fake_logits against 0 (each a mean over the batch).
    #   Paper: Eq. 2, the discriminator's side of the min-max game.
    #   Self-check: checks.check_losses() prints "Losses: OK".
    # BEGIN SOLUTION
    real = F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, 1.0 - label_smoothing)
    )
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
    # END SOLUTION


# --- beyond the paper (not student TODOs) ---------------------------------------------------------


def pixel_l1(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all pixels: (N, 3, H, W) x 2 -> scalar."""
    return F.l1_loss(sr, hr)


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along width and height: (N, C, H, W) -> (N, C, H, W-1), (N, C, H-1, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def edge_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Edge-preserving loss: L1 between the image gradients of SR and HR (mean over both directions)."""
    (sx, sy), (hx, hy) = image_gradients(sr), image_gradients(hr)
    return F.l1_loss(sx, hx) + F.l1_loss(sy, hy)
