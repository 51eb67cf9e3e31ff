"""VGG19's convolutional part, torchvision's `vgg19().features`, without the rest of VGG19.

    layers() -> list[nn.Module]          the 37 layers of vgg19().features, in order (on torch's
                                         current device: meta for a layout without memory)
    features(n_layers, weights) -> nn.Sequential
                                         the first n_layers, with ImageNet weights (weights=
                                         'imagenet' or a path) or torchvision's random ones (None)

torchvision builds the whole network, its 124-million-parameter classifier included, even when only
the first layers are wanted: 2.5-2.9 s of CPU and some 600 MB each time. With weights, the layers are
laid out without memory and filled from the file. Without (the offline profiles, the tests), the
layers get exactly the values torchvision's `vgg19(weights=None)` gives them, and torch's random
stream is left exactly where torchvision leaves it: the classifier's draws are skipped by drawing
the same number of values into a small buffer, not by building it (so every result of the offline
profiles stays the same; tests/test_models.py compares both with torchvision's).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .utils import torchvision_state_dict

URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# torchvision's configuration "E" (VGG19): output channels of each 3x3 convolution, "M" a max-pool.
CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", *(512, 512, 512, 512, "M") * 2)
# torchvision's classifier after the features: its Linear layers' (in, out) features.
CLASSIFIER = ((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000))


def layers() -> list[nn.Module]:
    """The layers of vgg19().features, in its order, built as torchvision's make_layers builds them
    (each Conv2d's own initialisation draws from the random stream, as there)."""
    out, channels = [], 3
    for v in CONFIG:
        if v == "M":
            out.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return out


def features(n_layers: int, weights: str | os.PathLike | None) -> nn.Sequential:
    """The first `n_layers` layers of vgg19().features: ImageNet weights ('imagenet': torchvision's
    cache, else its download; or a path to a vgg19-*.pth file in torchvision's key format), or
    torchvision's random initialisation (None)."""
    if weights is None:
        return _random(n_layers)
    import torchvision  # only for the weights' cache and download

    with torch.device("meta"):  # every value is loaded below
        kept = nn.Sequential(*layers()[:n_layers])
    kept = kept.to_empty(device="cpu")
    state = torchvision_state_dict(
        weights, torchvision.models.VGG19_Weights.IMAGENET1K_V1, URL, "VGG19", "vgg.weights"
    )
    wanted = {k: v for k, v in state.items() if k.startswith("features.")}
    own = {f"features.{k}": v for k, v in kept.state_dict().items()}
    missing = sorted(set(own) - set(wanted))
    if missing:
        raise ValueError(
            f"VGG19 weights {weights} lack {len(missing)} needed key(s): {', '.join(missing)}; "
            f"use torchvision's vgg19-dcbb9e9d.pth ({URL})"
        )
    kept.load_state_dict({k[len("features.") :]: wanted[k] for k in own}, strict=True)
    return kept


def _random(n_layers: int) -> nn.Sequential:
    """torchvision's vgg19(weights=None).features[:n_layers], drawing exactly what it draws."""
    all_layers = layers()  # the convolutions' own initialisation
    # The classifier's Linear layers' own initialisation: a uniform weight and a uniform bias each.
    _skip_draws(sum(i * o + o for i, o in CLASSIFIER))
    for m in all_layers:  # VGG's initialisation, in its order: the features' convolutions ...
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
    _skip_draws(sum(i * o for i, o in CLASSIFIER))  # ... then the Linear weights, normal(0, 0.01)
    return nn.Sequential(*all_layers[:n_layers])


def _skip_draws(n: int, chunk: int = 1 << 20) -> None:
    """Move torch's CPU random stream on by n 32-bit draws: what uniform_ makes of n float32 values,
    and normal_ of a tensor whose size is a multiple of 16, as the classifier's are (it draws n
    uniforms first, and 16 more only for a remainder). random_ on uint8 draws the same, 1.4x faster."""
    buffer = torch.empty(min(n, chunk), dtype=torch.uint8)
    for start in range(0, n, chunk):
        buffer[: min(chunk, n - start)].random_()
