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

The GAN variants (RaGAN, WGAN, WGAN-GP) and their losses are in sr_course/components/adversarial.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pixel_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all pixels and channels: (N, 3, H, W) x 2 -> scalar."""
    # TODO [pixel_mse]: the pixel-wise MSE loss l_MSE of Eq. 4.
    #   The mean of the squared differences over every element of the batch (images, channels,
    #   pixels): a scalar tensor that gradients flow back through. Both images are in [-1, 1], so
    #   the loss lies in [0, 4]. SRResNet is trained on this loss alone (Sec. 3.2).
    #   Self-check: checks.check_pixel_loss() prints "pixel_mse: OK".
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
        # TODO [VGGContentLoss]: the VGG content loss l_VGG/i,j of Eq. 5.
        #   Compare the images in VGG19's feature space instead of pixel by pixel: the MSE between
        #   the features of sr and of hr (self.vgg is a frozen TruncatedVGG19), each multiplied by
        #   self.rescale (Sec. 3.2 rescales the features by 1/12.75, which puts this loss on the
        #   scale of the pixel MSE).
        #   Shapes: (N, 3, H, W) in [-1, 1] -> phi_(5,4) features (N, 512, H/16, W/16) -> scalar.
        #   Only the generator learns from this loss: gradients must reach sr, while the HR features
        #   are a fixed target. What does the HR branch need, then (and what does that save)?
        #   Self-check: checks.check_vgg_loss() prints "VGGContentLoss: OK".
        # BEGIN SOLUTION
        with torch.no_grad():
            target = self.vgg(hr) * self.rescale
        return F.mse_loss(self.vgg(sr) * self.rescale, target)
        # END SOLUTION


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss: it wants D to call its images real. (N, 1) -> scalar."""
    # TODO [adversarial losses]: the generator's adversarial loss l_Gen of Eq. 6.
    #   -log D(G(LR)), averaged over the batch, where D(.) is the probability that an image is
    #   real: the loss is small when D takes the generated images for real ones. Our discriminator
    #   returns logits, so D(.) = sigmoid(logit). Mind the numbers: for a logit of -120, sigmoid
    #   rounds to 0 in float32 and log(0) = -inf, though the true loss is a finite 120;
    #   torch.nn.functional has losses that take logits and stay exact there.
    #   Shapes: (N, 1) logits, any real numbers -> scalar.
    #   Self-check: checks.check_adversarial_losses() prints "adversarial losses: OK".
    # BEGIN SOLUTION
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    # END SOLUTION


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """The discriminator's cross-entropy: real -> 1 (or 1 - label_smoothing), fake -> 0. -> scalar.

    One-sided label smoothing (Salimans et al. 2016) softens only the real targets.
    """
    # TODO [adversarial losses]: the discriminator's cross-entropy, its side of Eq. 2.
    #   D is a binary classifier: the HR images are real (target 1), the generated ones fake
    #   (target 0). Its loss is the binary cross-entropy of the real logits plus that of the fake
    #   logits, each a mean over its batch, computed from logits as stably as the generator's.
    #   One-sided label smoothing (Salimans et al. 2016) lowers the real images' target to
    #   1 - label_smoothing, so that D does not grow over-confident; the fakes' target stays 0.
    #   Shapes: (N, 1) logits x 2 -> scalar.
    #   Self-check: checks.check_adversarial_losses() prints "adversarial losses: OK".
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
