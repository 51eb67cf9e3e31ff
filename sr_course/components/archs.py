"""Generators beyond SRResNet, from the course's reading list, as switchable options.

    arch         class      idea                                                        params (defaults)
    'srresnet'   Generator  SRGAN's generator; batch_norm=False gives EDSR-style blocks  1,549,462 (1,545,238 no BN)
    'rrdb'       RRDBNet    ESRGAN: residual-in-residual dense blocks, scaling 0.2     16,697,987
    'vdsr'       VDSR       20 3x3 layers on the bicubic-upsampled image, residual     668,227
    'swinir'     SwinIR     shifted-window attention groups, pixel-shuffle upsampler   929,508

Every generator follows the kit's convention: LR (N, 3, h, w) in [0, 1] -> SR (N, 3, s*h, s*w) in
[-1, 1] (a Tanh for SRResNet; the others output it directly, as their papers do, and are trained
towards [-1, 1] targets), and has `.scaling_factor`, so training, `evaluate`, `super_resolve`
and the grids work with any of them. Pick one with the config key `model.arch`
(sr_course/components/registry.py builds it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.imresize import imresize_torch
from ..errors import SettingError

# --- ESRGAN's RRDBNet (Wang et al. 2018) -----------------------------------------------------------


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing all earlier features (dense), output scaled by 0.2 plus the input."""

    def __init__(self, n_channels: int = 64, growth: int = 32, residual_scaling: float = 0.2):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(n_channels + k * growth, growth if k < 4 else n_channels, 3, padding=1)
            for k in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.residual_scaling = residual_scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for k, conv in enumerate(self.convs):
            y = conv(torch.cat(features, dim=1))
            if k < 4:
                features.append(self.act(y))
        return x + self.residual_scaling * y


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks and an outer residual scaled by 0.2."""

    def __init__(self, n_channels: int = 64, growth: int = 32, residual_scaling: float = 0.2):
        super().__init__()
        self.blocks = nn.Sequential(
            *[ResidualDenseBlock(n_channels, growth, residual_scaling) for _ in range(3)]
        )
        self.residual_scaling = residual_scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scaling * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: no batch norm, RRDB trunk, nearest-neighbour upsampling + conv (no checkerboard)."""

    def __init__(
        self,
        n_channels: int = 64,
        n_blocks: int = 23,
        growth: int = 32,
        residual_scaling: float = 0.2,
        scaling_factor: int = 4,
    ):
        super().__init__()
        if scaling_factor not in (2, 4, 8):
            raise SettingError(
                f"RRDBNet upsamples by 2, 4 or 8 (nearest x2 steps), got {scaling_factor}"
            )
        self.scaling_factor = scaling_factor
        # ESRGAN's own layer names (conv_first, trunk, trunk_conv, upconv, hr_conv, conv_last)
        self.conv_first = nn.Conv2d(3, n_channels, 3, padding=1)
        self.trunk = nn.Sequential(
            *[RRDB(n_channels, growth, residual_scaling) for _ in range(n_blocks)]
        )
        self.trunk_conv = nn.Conv2d(n_channels, n_channels, 3, padding=1)
        self.upconv = nn.ModuleList(
            nn.Conv2d(n_channels, n_channels, 3, padding=1)
            for _ in range(int(math.log2(scaling_factor)))
        )
        self.hr_conv = nn.Conv2d(n_channels, n_channels, 3, padding=1)
        self.conv_last = nn.Conv2d(n_channels, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """lr: (N, 3, h, w) in [0, 1] -> (N, 3, s*h, s*w), trained towards [-1, 1] (no Tanh)."""
        shallow = self.conv_first(lr)
        x = shallow + self.trunk_conv(self.trunk(shallow))  # the trunk learns a residual
        for conv in self.upconv:
            x = self.act(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
        return self.conv_last(self.act(self.hr_conv(x)))


# --- VDSR (Kim et al. 2016) -------------------------------------------------------------------------


class VDSR(nn.Module):
    """VDSR: the LR is first upsampled with MATLAB bicubic; 20 3x3 conv layers predict the residual.

    forward(lr, scale=None): (N, 3, h, w) in [0, 1] -> (N, 3, s*h, s*w) in [-1, 1], s = scale or
    self.scaling_factor. The same weights serve every scale (VDSR's single multi-scale model): the
    network only ever sees images already at the output size. train_scales (a config setting) is
    read by the Trainer, which cycles the training scale per batch.
    """

    def __init__(
        self, n_channels: int = 64, n_layers: int = 20, scaling_factor: int = 4, train_scales=None
    ):
        super().__init__()
        self.scaling_factor = scaling_factor
        self.train_scales = list(train_scales) if train_scales else [scaling_factor]
        layers: list[nn.Module] = [nn.Conv2d(3, n_channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(n_layers - 2):
            layers += [nn.Conv2d(n_channels, n_channels, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(n_channels, 3, 3, padding=1))
        self.residual = nn.Sequential(*layers)

    def upsample(self, lr: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        """MATLAB-bicubic upsampling of an LR in [0, 1], returned in [-1, 1] (no gradient needed)."""
        with torch.no_grad():
            up = imresize_torch(lr.float(), scale or self.scaling_factor)
        return up * 2 - 1

    def forward(self, lr: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        up = self.upsample(lr, scale).to(lr.dtype)
        return up + self.residual(up)


# --- SwinIR (Liang et al. 2021), compact, plain torch -----------------------------------------------


def window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(N, H, W, C) -> (N * H/w * W/w, w*w, C)."""
    n, h, wd, c = x.shape
    x = x.view(n, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def window_reverse(windows: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    """(N * H/w * W/w, w*w, C) -> (N, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside w x w windows with a learned relative position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.num_heads, self.window_size = num_heads, window_size
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        # One bias per head for every relative offset (dy, dx) in [-(w-1), w-1]^2.
        self.relative_bias = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_bias, std=0.02)
        coords = torch.stack(
            torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
        ).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
        self.register_buffer(
            "relative_index", rel[..., 0] * (2 * window_size - 1) + rel[..., 1], persistent=False
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (
            self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.relative_bias[self.relative_index].permute(2, 0, 1)[None]
        if (
            mask is not None
        ):  # (num_windows, n, n): -100 between pixels from different image regions
            attn = attn.view(-1, mask.shape[0], self.num_heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, self.num_heads, n, n)
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class SwinBlock(nn.Module):
    """LayerNorm -> (shifted) window attention -> residual; LayerNorm -> MLP -> residual."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float):
        super().__init__()
        self.window_size, self.shift = window_size, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def _mask(self, h: int, w: int, device) -> torch.Tensor | None:
        if not self.shift:
            return None
        ws, s = self.window_size, self.shift
        region = torch.zeros(1, h, w, 1, device=device)
        label = 0
        for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
            for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
                region[:, hs, wsl] = label
                label += 1
        ids = window_partition(region, ws).squeeze(-1)
        mask = ids[:, None, :] - ids[:, :, None]
        return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, _, c = x.shape
        y = self.norm1(x).view(n, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window_size), self._mask(h, w, x.device))
        y = window_reverse(y, self.window_size, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(n, h * w, c)
        return x + self.mlp(self.norm2(x))


class ResidualSwinGroup(nn.Module):
    """`depth` Swin blocks (shift 0, w/2, 0, w/2, ...) and a 3x3 conv, with a residual connection."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if k % 2 == 0 else window_size // 2, mlp_ratio)
            for k in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens, h, w)
        return x + self.conv(tokens.transpose(1, 2).reshape(n, c, h, w))


class SwinIR(nn.Module):
    """A compact SwinIR (the paper's lightweight x4 layout by default): shallow 3x3 conv, residual
    Swin groups, a conv with a long skip, then conv + pixel shuffle. Sizes that are not multiples of
    the window are padded (reflection) and the output is cropped back."""

    def __init__(
        self,
        embed_dim: int = 60,
        depths: tuple[int, ...] = (6, 6, 6, 6),
        num_heads: int = 6,
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        scaling_factor: int = 4,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise SettingError(
                f"SwinIR: embed_dim ({embed_dim}) must be a multiple of num_heads ({num_heads})"
            )
        self.scaling_factor, self.window_size = scaling_factor, window_size
        self.head = nn.Conv2d(3, embed_dim, 3, padding=1)
        self.groups = nn.Sequential(
            *[ResidualSwinGroup(embed_dim, d, num_heads, window_size, mlp_ratio) for d in depths]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.body_end = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.tail = nn.Sequential(
            nn.Conv2d(embed_dim, 3 * scaling_factor**2, 3, padding=1),
            nn.PixelShuffle(scaling_factor),
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        ws = self.window_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        x = F.pad(
            lr,
            (0, pad_w, 0, pad_h),
            mode="reflect" if max(pad_h, pad_w) < min(h, w) else "replicate",
        )
        x = x * 2 - 1  # work around 0 like the targets
        feats = self.head(x)
        body = self.groups(feats)
        body = self.norm(body.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        out = self.tail(feats + self.body_end(body))
        s = self.scaling_factor
        return out[..., : h * s, : w * s]
