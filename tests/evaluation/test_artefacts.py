"""The artefacts read off kept outputs: a colour cast on gray images, a frame, texture."""

import numpy as np
import pytest
from PIL import Image

from sr_course.evaluation.artefacts import look


def _save(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / f"{name}.png")


def test_look_measures_a_cast_a_frame_and_texture(tmp_path, rng):
    hr_gray = rng.integers(60, 200, (64, 64), dtype=np.uint8)
    hr_rgb = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    _save(tmp_path / "hr", "gray", hr_gray)
    _save(tmp_path / "hr", "colour", hr_rgb)
    # The HR itself: no cast, the same error everywhere (none), the HR's texture.
    _save(tmp_path / "same", "gray", np.repeat(hr_gray[..., None], 3, 2))
    _save(tmp_path / "same", "colour", hr_rgb)
    assert look(tmp_path / "same", tmp_path / "hr") == {
        "gray_cast": 0.0,
        "border_ratio": 0.0,
        "texture": 1.0,
    }
    # Red raised by 3 levels on the gray image, and a frame 40 levels brighter on both.
    cast = np.repeat(hr_gray[..., None], 3, 2).astype(int)
    cast[..., 0] += 3
    noisy = hr_rgb.astype(int) + rng.integers(-2, 3, hr_rgb.shape)
    for image in (cast, noisy):
        image[:8] += 40
        image[-8:] += 40
        image[:, :8] += 40
        image[:, -8:] += 40
    _save(tmp_path / "sr", "gray", np.clip(cast, 0, 255).astype(np.uint8))
    _save(tmp_path / "sr", "colour", np.clip(noisy, 0, 255).astype(np.uint8))
    found = look(tmp_path / "sr", tmp_path / "hr")
    assert found["gray_cast"] == pytest.approx(3.0)
    assert found["border_ratio"] > 5
    with pytest.raises(FileNotFoundError, match="look: no PNG outputs in"):
        look(tmp_path / "hr" / "none", tmp_path / "hr")
