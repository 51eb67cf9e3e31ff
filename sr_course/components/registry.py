"""Name -> factory registries: what each config choice builds.

    ARCHITECTURES[model.arch](config)                       the generator
    PIXEL_LOSSES[srresnet.loss]()                           SRResNet's pixel loss (sr, hr) -> scalar
    CONTENT_LOSSES[srgan.content_loss](config, device, fmt)  SRGAN's content loss (sr, hr) -> scalar
    GAN_OBJECTIVES[srgan.gan](config.srgan)                 the loss pair and hook of the GAN step
    OPTIMIZERS[stage][<stage>.optimizer](params, config)    an optimiser for one network

sr and hr are (N, 3, H, W) in [-1, 1]. OPTIONS maps each config key to its registry: the config's
option lists (config.validate) are these keys, so a new entry here is a new choice there.

The registries name their parts when imported, and import the student's files (models.py,
losses.py, and the GAN objectives, which call the student's losses) only when a part is built: a
config then loads, and its options are checked, while a student file does not compile yet (the
notebooks' setup cell, the other files' self-checks, a grader's kernels).

Adding a loss: write it (sr_course/losses.py, beyond the TODOs), add one row to PIXEL_LOSSES or
CONTENT_LOSSES. Adding an architecture: its module in this folder, one row in ARCHITECTURES, its
settings under model.<name> in the config.
"""

from __future__ import annotations

import torch

from .archs import VDSR, RRDBNet, SwinIR


def _losses():
    from .. import losses  # the student's file, when a loss is built (see the module docstring)

    return losses


def _models():
    from .. import models  # the student's file, when a network is built

    return models


def _adversarial():
    from . import adversarial  # calls the student's losses; imported when an objective is built

    return adversarial


ARCHITECTURES = {
    "srresnet": lambda c: _models().Generator(**c.G),
    "rrdb": lambda c: RRDBNet(scaling_factor=int(c.scale), **c.model.rrdb),
    "vdsr": lambda c: VDSR(scaling_factor=int(c.scale), **c.model.vdsr),
    "swinir": lambda c: SwinIR(scaling_factor=int(c.scale), **c.model.swinir),
}

# Looked up on the losses module when built, so the student's current version is the one used.
PIXEL_LOSSES = {
    "mse": lambda: _losses().pixel_mse,
    "l1": lambda: _losses().pixel_l1,
}


def _vgg_content_loss(c, device, memory_format) -> torch.nn.Module:
    """l_VGG/(i,j): MSE of VGG19 features phi_(vgg.i, vgg.j), rescaled by srgan.vgg_rescale."""
    v = c.vgg
    vgg = _models().TruncatedVGG19(v.i, v.j, v.weights, before_activation=v.before_activation)
    return _losses().VGGContentLoss(
        vgg.to(device, memory_format=memory_format), c.srgan.vgg_rescale
    )


# VGG features, or any pixel loss of PIXEL_LOSSES on the pixels themselves.
CONTENT_LOSSES = {
    "vgg": _vgg_content_loss,
    **{
        name: (lambda c, device, memory_format, pick=pick: pick())
        for name, pick in PIXEL_LOSSES.items()
    },
}

GAN_OBJECTIVES = {
    "standard": lambda s: _adversarial().StandardGAN(s.label_smoothing),
    "ragan": lambda s: _adversarial().RelativisticGAN(),
    "wgan": lambda s: _adversarial().WassersteinGAN(clip_value=s.clip_value),
    "wgan-gp": lambda s: _adversarial().WassersteinGAN(gp_weight=s.gp_weight),
}


def _adam(params, c, stage):
    # WGAN-GP's own recipe trains both networks with Adam(0, 0.9); every other GAN with the defaults.
    wgan_gp = stage == "srgan" and c.srgan.gan == "wgan-gp"
    return torch.optim.Adam(params, lr=c[stage].lr, betas=(0.0, 0.9) if wgan_gp else (0.9, 0.999))


OPTIMIZERS = {
    "srresnet": {
        "adam": _adam,
        # VDSR's recipe: momentum 0.9, weight decay 1e-4 (with its adjustable gradient clipping).
        "sgd": lambda p, c, stage: torch.optim.SGD(
            p, lr=c[stage].lr, momentum=0.9, weight_decay=1e-4
        ),
    },
    "srgan": {
        "adam": _adam,
        # What WGAN with weight clipping trains with (momentum destabilises the clipped critic).
        "rmsprop": lambda p, c, stage: torch.optim.RMSprop(p, lr=c[stage].lr),
    },
}

OPTIONS = {
    "model.arch": ARCHITECTURES,
    "srresnet.loss": PIXEL_LOSSES,
    "srresnet.optimizer": OPTIMIZERS["srresnet"],
    "srgan.content_loss": CONTENT_LOSSES,
    "srgan.gan": GAN_OBJECTIVES,
    "srgan.optimizer": OPTIMIZERS["srgan"],
}


def build_generator(config) -> torch.nn.Module:
    """The generator `config.model.arch` names (SRResNet takes `config.G`)."""
    return ARCHITECTURES[config.model.arch](config)


def build_adversarial(config):
    """The GAN objective `config.srgan.gan` names."""
    return GAN_OBJECTIVES[config.srgan.gan](config.srgan)
