"""What a GAN fine-tuning can leave on its outputs beside PSNR, SSIM and LPIPS, read off the kept
outputs (evaluation/outputs.py) against the HR images: a colour cast on gray photographs, a frame
along the borders, and how much texture it draws.

    look(sr_dir, hr_dir) -> {"gray_cast": .., "border_ratio": .., "texture": ..}

gray_cast     on the gray HR images (PNG mode "L"), inside an 8-pixel border: the largest gap between
              one of the output's channel means and another's or the HR's mean, in gray levels
              (0: a gray output of the HR's brightness); 0.0 when no HR image is gray
border_ratio  mean |SR - HR| on the outer 8 pixels over the mean inside them (a bright or dark frame
              raises it; bicubic's is about 0.7 on the built-in sample)
texture       mean |horizontal difference| of the output over the HR's (1: the HR's amount of
              texture; bicubic blurs the sample's to about 0.35)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

BORDER = 8  # pixels: the frame that border_ratio reads and gray_cast leaves out


def look(sr_dir: str | Path, hr_dir: str | Path) -> dict[str, float]:
    """The three figures over the PNG outputs in `sr_dir`, each against the HR of the same name in
    `hr_dir`; gray_cast is the worst gray image's, the other two are means over the images."""
    cast, ratios, texture = [], [], []
    outputs = sorted(Path(sr_dir).glob("*.png"))
    if not outputs:
        raise FileNotFoundError(f"look: no PNG outputs in {sr_dir}")
    for png in outputs:
        with Image.open(png) as sr_image, Image.open(Path(hr_dir) / png.name) as hr_image:
            sr = np.asarray(sr_image.convert("RGB"), dtype=np.float64)
            hr = np.asarray(hr_image.convert("RGB"), dtype=np.float64)
            gray = hr_image.mode == "L"
        error = np.abs(sr - hr).mean(axis=2)
        inner = np.zeros(error.shape, bool)
        inner[BORDER:-BORDER, BORDER:-BORDER] = True
        ratios.append(error[~inner].mean() / max(error[inner].mean(), 1e-12))  # 0 for SR == HR
        texture.append(
            np.abs(np.diff(sr.mean(2), axis=1)).mean() / np.abs(np.diff(hr.mean(2), axis=1)).mean()
        )
        if gray:
            means = [*sr[inner].mean(axis=0), hr[inner].mean()]
            cast.append(max(means) - min(means))
    return {
        "gray_cast": round(float(max(cast, default=0.0)), 2),
        "border_ratio": round(float(np.mean(ratios)), 3),
        "texture": round(float(np.mean(texture)), 3),
    }
