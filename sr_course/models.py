"""The networks of SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017, arXiv:1609.04802), written to be read top to bottom.

    SRResNet / Generator   LR (N, 3, h, w) in [0, 1]  ->  SR (N, 3, s*h, s*w) in [-1, 1]
    Discriminator          image (N, 3, H, W) in [-1, 1]  ->  logit (N, 1), > 0 means "real"
    TruncatedVGG19         image (N, 3, H, W) in [-1, 1]  ->  VGG19 features phi_(i,j), frozen

Parameter counts with the default arguments: SRResNet 1,549,462; Discriminator 23,565,505.
In the student kit each body to write is a `raise NotImplementedError` under a TODO box that says
what to build.
"""

from __future__ import annotations

import math  # noqa: F401 (at hand for your TODOs; unused while they are stubs)
import os

import torch
from torch import nn

from .utils import convert_image
from .vgg19 import features as vgg19_features

ACTIVATIONS = ("prelu", "leakyrelu", "tanh")


class ConvolutionalBlock(nn.Module):
    """Convolution -> optional BatchNorm -> optional activation, 'same' padding.

    (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        batch_norm: bool = False,
        activation: str | None = None,
    ):
        super().__init__()
        if activation is not None and activation.lower() not in ACTIVATIONS:
            raise ValueError(f"activation must be None or one of {ACTIVATIONS}, got {activation!r}")
        # TODO [ConvolutionalBlock]: build the conv -> (batch norm) -> (activation) unit of Fig. 4.
        #   Every layer of both networks in Fig. 4 is one of these: a convolution with kernel size k,
        #   n output channels and stride s (the figure's "k9n64s1"), optionally followed by batch
        #   normalisation, then optionally by an activation: PReLU in the generator, LeakyReLU with
        #   slope 0.2 in the discriminator, Tanh at the generator's end (Sec. 3.2). torch.nn has a
        #   module for each.
        #   'Same' padding: with stride 1 the output keeps the input's height and width; with stride s
        #   it has ceil(H / s) rows. Work out the padding an odd kernel size needs for that.
        #   Shapes: (N, in_channels, H, W) -> (N, out_channels, ceil(H / s), ceil(W / s)).
        #   Checkpoint names: the layers, in that order, form one nn.Sequential named self.block
        #   (keys block.0.weight for the convolution, block.1.* for what follows, ...).
        #   Self-check: checks.check_conv_block() prints "ConvolutionalBlock: OK".
        # BEGIN SOLUTION
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2
            )
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        if activation is not None:
            layers.append(
                {"prelu": nn.PReLU, "leakyrelu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}[
                    activation.lower()
                ]()
            )
        self.block = nn.Sequential(*layers)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class SubPixelConvolutionalBlock(nn.Module):
    """Upscale x2 (by default) with a convolution and a pixel shuffle, then PReLU.

    (N, n_channels, H, W) -> (N, n_channels, scaling_factor * H, scaling_factor * W).
    """

    def __init__(self, kernel_size: int = 3, n_channels: int = 64, scaling_factor: int = 2):
        super().__init__()
        # TODO [SubPixelConvolutionalBlock]: build an upscaling block by a factor r = scaling_factor.
        #   Enlarging the image first and convolving after is costly and starts from a blurred image.
        #   A sub-pixel convolution (Shi et al. 2016) works at the low resolution instead: a
        #   convolution that keeps H and W produces r^2 times as many channels, and a pixel shuffle
        #   rearranges each group of r^2 channels into an r x r block of one channel,
        #   (N, C * r^2, H, W) -> (N, C, r * H, r * W); torch.nn has a module for that step.
        #   The paper follows it with a PReLU (Fig. 4, the two "PixelShuffler x2" blocks).
        #   Shapes: (N, n_channels, H, W) -> (N, n_channels, r * H, r * W).
        #   Checkpoint names: self.conv, self.pixel_shuffle, self.prelu.
        #   Self-check: checks.check_subpixel_block() prints "SubPixelConvolutionalBlock: OK".
        # BEGIN SOLUTION
        self.conv = nn.Conv2d(
            n_channels, n_channels * scaling_factor**2, kernel_size, padding=kernel_size // 2
        )
        self.pixel_shuffle = nn.PixelShuffle(scaling_factor)
        self.prelu = nn.PReLU()
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO [SubPixelConvolutionalBlock]: the forward pass, (N, C, H, W) -> (N, C, r * H, r * W).
        # BEGIN SOLUTION
        return self.prelu(self.pixel_shuffle(self.conv(x)))
        # END SOLUTION


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN plus the input (an identity skip). (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, kernel_size: int = 3, n_channels: int = 64, batch_norm: bool = True):
        super().__init__()
        # TODO [ResidualBlock]: build the two convolutional blocks of a residual block.
        #   A residual block (He et al. 2016) learns a correction F(x) and returns its input plus that
        #   correction. With 16 blocks in a row, the identity path carries the gradient to the first
        #   layers, and a block with nothing to add only has to learn F = 0. In SRResNet, F is two
        #   convolutions with n_channels channels and the small kernel, each followed by batch norm
        #   (when batch_norm is True), with a PReLU between them and nothing after the second: the
        #   sum comes right after it. Build them from your ConvolutionalBlock.
        #   Shapes: (N, C, H, W) -> (N, C, H, W).
        #   Checkpoint names: self.conv1, self.conv2.
        #   Paper: Fig. 4, the B residual blocks. Self-check: checks.check_residual_block() prints
        #   "ResidualBlock: OK".
        # BEGIN SOLUTION
        self.conv1 = ConvolutionalBlock(
            n_channels, n_channels, kernel_size, batch_norm=batch_norm, activation="prelu"
        )
        self.conv2 = ConvolutionalBlock(
            n_channels, n_channels, kernel_size, batch_norm=batch_norm, activation=None
        )
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO [ResidualBlock]: the forward pass: the block's correction of its input, added to it.
        # BEGIN SOLUTION
        return x + self.conv2(self.conv1(x))
        # END SOLUTION


class SRResNet(nn.Module):
    """SRResNet: LR (N, 3, h, w) in [0, 1] -> SR (N, 3, s*h, s*w) in [-1, 1] (Tanh output).

    batch_norm=False gives EDSR-style residual blocks (Lim et al. 2017), which train better for PSNR.
    """

    def __init__(
        self,
        large_kernel_size: int = 9,
        small_kernel_size: int = 3,
        n_channels: int = 64,
        n_blocks: int = 16,
        scaling_factor: int = 4,
        batch_norm: bool = True,
    ):
        super().__init__()
        if scaling_factor not in (2, 4, 8):
            raise ValueError(
                f"scaling_factor must be 2, 4 or 8 (each sub-pixel block upscales by 2), got {scaling_factor}"
            )
        self.scaling_factor = scaling_factor
        # TODO [SRResNet]: build the generator network of Fig. 4 from your blocks, in five parts.
        #   self.head      the first conv block: RGB to n_channels features, large kernel, PReLU
        #   self.body      n_blocks residual blocks in a row (an nn.Sequential)
        #   self.body_end  a conv block with the small kernel, batch norm (when batch_norm is True)
        #                  and no activation; its output is added to head's features: the long skip
        #                  connection over the whole body
        #   self.upscale   as many x2 sub-pixel blocks as it takes to reach scaling_factor (an
        #                  nn.Sequential; x4 needs two)
        #   self.tail      the last conv block: back to 3 channels, large kernel, Tanh, so that the
        #                  output has the range of the HR targets, [-1, 1]
        #   Why upscale at the end: the residual blocks then run at the LR size, 16 times cheaper
        #   than at the SR size for x4.
        #   Shapes (x4): (N, 3, h, w) -> head, body: (N, 64, h, w) -> upscale: (N, 64, 4h, 4w)
        #   -> tail: (N, 3, 4h, 4w). The five names are the checkpoint's keys (head.block.0.weight,
        #   body.0.conv1.block.0.weight, ...); trained weights only load into these names.
        #   batch_norm=False (EDSR-style, 1,545,238 parameters) leaves batch norm out everywhere.
        #   Paper: Fig. 4, Sec. 3.2. Self-check: checks.check_srresnet() prints
        #   "SRResNet: OK (1,549,462 parameters)".
        # BEGIN SOLUTION
        n_upscale = int(math.log2(scaling_factor))
        self.head = ConvolutionalBlock(3, n_channels, large_kernel_size, activation="prelu")
        self.body = nn.Sequential(
            *[ResidualBlock(small_kernel_size, n_channels, batch_norm) for _ in range(n_blocks)]
        )
        self.body_end = ConvolutionalBlock(
            n_channels, n_channels, small_kernel_size, batch_norm=batch_norm
        )
        self.upscale = nn.Sequential(
            *[
                SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2)
                for _ in range(n_upscale)
            ]
        )
        self.tail = ConvolutionalBlock(n_channels, 3, large_kernel_size, activation="tanh")
        # END SOLUTION

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """lr: (N, 3, h, w) in [0, 1] -> (N, 3, s*h, s*w) in [-1, 1]."""
        # TODO [SRResNet]: the forward pass through the five parts, with the long skip connection.
        # BEGIN SOLUTION
        features = self.head(lr)
        features = features + self.body_end(self.body(features))
        return self.tail(self.upscale(features))
        # END SOLUTION


class Generator(SRResNet):
    """SRGAN's generator: the SRResNet network (same arguments, same state_dict keys), which the paper
    initialises from a trained SRResNet before adversarial training
    (sr_course.checkpoint.initialize_with_srresnet does that)."""


class Discriminator(nn.Module):
    """SRGAN's discriminator: image (N, 3, H, W) in [-1, 1] -> logit (N, 1) (no sigmoid: use
    BCE-with-logits). Any H, W >= 16 works thanks to the adaptive pooling. batch_norm=False drops the
    batch norms (a WGAN-GP critic needs that: its gradient penalty is per sample)."""

    def __init__(
        self,
        kernel_size: int = 3,
        n_channels: int = 64,
        n_blocks: int = 8,
        fc_size: int = 1024,
        batch_norm: bool = True,
    ):
        super().__init__()
        # TODO [Discriminator]: build the discriminator network of Fig. 4.
        #   D looks at an image and says how real it looks. It is a VGG-like stack of n_blocks conv
        #   blocks, all with LeakyReLU (slope 0.2) and batch norm except the first, which has none.
        #   The width starts at n_channels and doubles every second block (64, 64, 128, 128, ... in
        #   the paper), and every second block has stride 2 and halves the image: read in Fig. 4
        #   which ones ("k3n64s2"). batch_norm=False drops every batch norm (a WGAN-GP critic).
        #   Then two dense layers: fc_size units with LeakyReLU (slope 0.2), and a single output, a
        #   logit: no sigmoid, the losses apply it themselves (stably).
        #   The paper trains D on 96 x 96 crops only; so that it can score any size, put an adaptive
        #   average pooling to 6 x 6 (96 / 16) between the conv blocks and the dense layers.
        #   Shapes: (N, 3, 96, 96) -> conv blocks (N, 512, 6, 6) -> flattened (N, 18432)
        #   -> (N, fc_size) -> (N, 1).
        #   Checkpoint names: self.features (an nn.Sequential of your conv blocks), self.pool,
        #   self.fc1, self.leaky_relu, self.fc2.
        #   Self-check: checks.check_discriminator() prints "Discriminator: OK (23,565,505 parameters)".
        # BEGIN SOLUTION
        blocks = []
        in_channels = 3
        for i in range(n_blocks):
            out_channels = n_channels * 2 ** (i // 2)
            blocks.append(
                ConvolutionalBlock(
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride=1 if i % 2 == 0 else 2,
                    batch_norm=batch_norm and i > 0,
                    activation="leakyrelu",
                )
            )
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.fc1 = nn.Linear(in_channels * 6 * 6, fc_size)
        self.leaky_relu = nn.LeakyReLU(0.2)
        self.fc2 = nn.Linear(fc_size, 1)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) in [-1, 1] -> (N, 1) logits."""
        # TODO [Discriminator]: the forward pass, image (N, 3, H, W) in [-1, 1] -> logit (N, 1).
        # BEGIN SOLUTION
        x = self.pool(self.features(x))
        return self.fc2(self.leaky_relu(self.fc1(torch.flatten(x, 1))))
        # END SOLUTION


# VGG19's convolutions per block, before each max-pool: (i, number of convs j can take).
VGG19_BLOCKS = {1: 2, 2: 2, 3: 4, 4: 4, 5: 4}


def vgg19_truncation_index(i: int, j: int) -> int:
    """How many layers of torchvision's vgg19().features phi_(i,j) keeps: all layers up to and
    including the ReLU after the j-th convolution before the i-th max-pool."""
    if i not in VGG19_BLOCKS or not (isinstance(j, int) and 1 <= j <= VGG19_BLOCKS[i]):
        choices = ", ".join(f"({b},{k})" for b, n in VGG19_BLOCKS.items() for k in range(1, n + 1))
        raise ValueError(f"VGG19 has no phi_({i},{j}); valid (i, j): {choices}")
    # TODO [TruncatedVGG19]: how many layers of torchvision's VGG19 `features` phi_(i,j) keeps.
    #   The content loss compares images through phi_(i,j), "the feature map obtained by the j-th
    #   convolution (after activation) before the i-th maxpooling layer" of VGG19 (Sec. 2.2.2).
    #   torchvision's vgg19().features is one flat nn.Sequential of Conv2d, ReLU and MaxPool2d
    #   layers; VGG19_BLOCKS says how many convolutions each block has before its max-pool.
    #   Return the length of the prefix of that Sequential whose last layer is the ReLU of phi_(i,j).
    #   A worked example: phi_(1,1) keeps 2 layers (the first Conv2d and its ReLU).
    #   print(torchvision.models.vgg19().features) lists the layers with their indices.
    #   Self-check: checks.check_vgg() prints "TruncatedVGG19: OK".
    # BEGIN SOLUTION
    layers_before_block = sum(2 * VGG19_BLOCKS[b] + 1 for b in range(1, i))
    return layers_before_block + 2 * j
    # END SOLUTION


class TruncatedVGG19(nn.Module):
    """VGG19 features phi_(i,j), frozen and in eval mode, for the perceptual (content) loss.

    forward: (N, 3, H, W) in [-1, 1] -> (N, C, H / 2**(i-1), W / 2**(i-1)); the ImageNet
    normalisation VGG19 was trained with is applied here and nowhere else.

    before_activation=True stops at the convolution itself (ESRGAN's perceptual loss).
    weights: 'imagenet' (torchvision's VGG19_Weights.IMAGENET1K_V1: its cache, else its download),
             a path to a `vgg19-*.pth` file in torchvision's key format, or None (random; for tests).
    """

    def __init__(
        self,
        i: int = 5,
        j: int = 4,
        weights: str | os.PathLike | None = "imagenet",
        before_activation: bool = False,
    ):
        super().__init__()
        self.i, self.j = i, j
        # ESRGAN takes the features before the ReLU: they are denser and keep brightness information.
        n_layers = vgg19_truncation_index(i, j) - int(before_activation)
        # torchvision's layers, without its classifier (sr_course/vgg19.py)
        self.features = vgg19_features(n_layers, weights)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        """Always stays in eval mode: the truncated VGG19 is a fixed feature extractor."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(convert_image(x, "[-1,1]", "imagenet-norm"))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
