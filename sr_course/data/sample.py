"""The built-in sample dataset: real photographs bundled with scikit-image (no network needed).

    <data_root>/sample/Sample_train/HR/*.png, LR_bicubic/X4/*x4.png   6 photographs for training
    <data_root>/sample/Sample/HR/*.png,       LR_bicubic/X4/*x4.png   4 for testing (2 gray, like Set14's)

The layout is the benchmark package's, and the LR images are MATLAB-bicubic x1/4 of the HR made by
our imresize, so every code path (lists, caching, crops, evaluation) is the one the real data takes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from skimage import data as skimage_data

from ..course import SPLITS
from .lists import create_data_lists, crop_to_multiple, write_png

# name -> (scikit-image loader, crop as (top, left, height, width) or None); all bundled offline.
TRAIN_IMAGES = {
    "astronaut": ("astronaut", None),
    "rocket": ("rocket", None),
    "motorcycle": ("stereo_motorcycle", None),
    "hubble": ("hubble_deep_field", None),
    "ihc": ("immunohistochemistry", None),
    "retina": ("retina", (320, 320, 768, 768)),
}
TEST_IMAGES = {
    "chelsea": ("chelsea", None),
    "coffee": ("coffee", None),
    "camera": ("camera", None),
    "coins": ("coins", None),
}


def _load(loader: str, crop) -> np.ndarray:
    img = getattr(skimage_data, loader)()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    if crop is not None:
        t, left, h, w = crop
        img = img[t : t + h, left : left + w]
    return np.ascontiguousarray(img.astype(np.uint8))


def build_sample(
    data_root: str | os.PathLike = "data", force: bool = False, verbose: bool = True
) -> Path:
    """Write the sample splits under <data_root>/sample and their data lists; idempotent."""
    root = Path(data_root)
    for split, images in (("Sample_train", TRAIN_IMAGES), ("Sample", TEST_IMAGES)):
        hr_dir = root / SPLITS[split].hr
        for name, (loader, crop) in images.items():
            path = hr_dir / f"{name}.png"
            if force or not path.exists():
                write_png(crop_to_multiple(_load(loader, crop), 4), path)
    create_data_lists(root, ["Sample_train", "Sample"], force=True, verbose=verbose)
    return root / "sample"
