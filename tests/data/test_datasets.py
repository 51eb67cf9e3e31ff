import csv
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from sr_course.config import load_config
from sr_course.data.datasets import EpochSampler, SRDataset
from sr_course.data.imresize import imresize
from sr_course.data.lists import DataError, create_data_lists, read_image


def _rgb(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(base.repeat(8, 0).repeat(8, 1)[:h, :w])  # smooth-ish blocks


def _layout(root):
    """A tiny Set5-like layout with one example of every bad case."""
    hr = root / "benchmark/Set5/HR"
    lr = root / "benchmark/Set5/LR_bicubic/X4"
    hr.mkdir(parents=True)
    lr.mkdir(parents=True)
    good = _rgb(64, 48, 1)
    Image.fromarray(good).save(hr / "good.png")
    Image.fromarray(imresize(good, 0.25)).save(lr / "goodx4.png")
    Image.fromarray(_rgb(66, 50, 2)).save(hr / "odd.png")  # not a multiple of 4, LR missing: made
    Image.fromarray(_rgb(40, 40, 3)[..., 0]).save(hr / "gray.png")  # gray: kept, LR made
    (hr / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rgba = np.dstack([_rgb(32, 32, 4), np.full((32, 32), 128, np.uint8)])
    Image.fromarray(rgba).save(hr / "rgba.png")
    opaque = np.dstack([_rgb(32, 32, 5), np.full((32, 32), 255, np.uint8)])
    Image.fromarray(opaque).save(hr / "opaque.png")
    Image.fromarray(_rgb(32, 32, 6)[..., 0].astype(np.uint16) * 257).save(hr / "deep.png")
    Image.fromarray(_rgb(48, 48, 7)).save(hr / "mismatch.png")
    Image.fromarray(_rgb(10, 12, 8)).save(lr / "mismatchx4.png")
    return root


def test_lists_handle_every_bad_case(tmp_path, capsys):
    root = _layout(tmp_path)
    (summary,) = create_data_lists(root, ["Set5"])
    skipped = dict(summary.skipped)
    assert summary.found == 8
    assert skipped["corrupt.png"].startswith("cannot decode")
    assert (
        skipped["rgba.png"]
        == "RGBA image with transparent pixels: flatten it onto a background first"
    )
    assert skipped["deep.png"] == "I;16 (16-bit) image: convert it to 8-bit"
    assert skipped["mismatchx4.png"] == "LR is 12x10, expected 12x12 (HR 48x48 / 4)"
    assert sorted(summary.made) == ["grayx4.png", "oddx4.png", "opaquex4.png"]
    rows = list(csv.DictReader(open(root / "lists/Set5.csv")))
    assert [r["hr"].split("/")[-1] for r in rows] == [
        "good.png",
        "gray.png",
        "odd.png",
        "opaque.png",
    ]
    assert {r["hr"].split("/")[-1]: r["mode"] for r in rows}["gray.png"] == "L"
    # The generated LR is MATLAB bicubic of the HR cropped to a multiple of 4.
    odd = read_image(root / "benchmark/Set5/HR/odd.png")
    assert np.array_equal(
        read_image(root / "benchmark/Set5/LR_bicubic/X4/oddx4.png"), imresize(odd[:64, :48], 0.25)
    )
    out = capsys.readouterr().out
    assert (
        "Set5: 8 found, 3 LR made, 4 skipped" in out and "skipped corrupt.png: cannot decode" in out
    )


def test_lists_are_not_overwritten_without_force(tmp_path):
    root = _layout(tmp_path)
    create_data_lists(root, ["Set5"], verbose=False)
    path = root / "lists/Set5.csv"
    path.write_text("hr,lr,mode,height,width\n")
    (summary,) = create_data_lists(root, ["Set5"], verbose=False)
    assert "exists; use --force" in summary.note and path.read_text() == "hr,lr,mode,height,width\n"
    create_data_lists(root, ["Set5"], force=True, verbose=False)
    assert len(path.read_text().splitlines()) == 5


def test_training_images_too_small_are_skipped(tmp_path):
    hr = tmp_path / "DIV2K/DIV2K_train_HR"
    hr.mkdir(parents=True)
    Image.fromarray(_rgb(100, 120)).save(hr / "0001.png")
    Image.fromarray(_rgb(64, 200)).save(hr / "0002.png")
    (summary,) = create_data_lists(tmp_path, ["DIV2K_train"], crop_size=96, verbose=False)
    assert summary.skipped == [("0002.png", "200x64 is smaller than the 96-pixel training crop")]


def test_missing_data_root_names_the_download_command(tmp_path):
    cfg = load_config(
        "smoke", data_root=str(tmp_path / "nowhere"), data={"train_splits": ["DIV2K_train"]}
    )
    with pytest.raises(
        DataError, match=r"download it with `python data_prep/download.py --root .*nowhere`"
    ):
        SRDataset("train", cfg)
    with pytest.raises(DataError, match="no data found under .*download it with"):
        create_data_lists(tmp_path / "nowhere")


def test_sample_layout_is_the_real_one(sample_root):
    for split, n in (("Sample_train", 6), ("Sample", 4)):
        hrs = sorted((sample_root / "sample" / split / "HR").glob("*.png"))
        assert len(hrs) == n
        for p in hrs:
            hr = read_image(p)
            lr = read_image(sample_root / "sample" / split / "LR_bicubic/X4" / f"{p.stem}x4.png")
            assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0
            assert np.array_equal(lr, imresize(hr, 0.25))


def test_train_crops_are_aligned_and_in_range(sample_root):
    cfg = load_config(
        "smoke", data_root=str(sample_root), data={"crop_size": 32, "patches_per_image": 3}
    )
    ds = SRDataset("train", cfg)
    assert len(ds) == 6 * 3
    for i in range(len(ds)):
        lr, hr = ds[i]
        assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32)
        assert lr.min() >= 0 and lr.max() <= 1 and hr.min() >= -1 and hr.max() <= 1
        # Alignment: the LR patch is MATLAB bicubic of the HR patch's surroundings; compare the
        # HR patch, shrunk by 4, with the LR patch away from the patch border.
        hr8 = np.round((hr.numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
        lr8 = np.round(lr.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        inner = np.abs(imresize(hr8, 0.25).astype(int) - lr8.astype(int))[2:-2, 2:-2]
        assert inner.mean() < 3, f"patch {i} misaligned (mean error {inner.mean():.1f})"


def test_train_crops_exactly_match_full_image_crops(sample_root):
    """With the flip/rotation undone, the crop equals slicing the full decoded images."""
    cfg = load_config("smoke", data_root=str(sample_root))
    ds = SRDataset("train", cfg)
    full_lr = np.asarray(ds._array(0, "lr"))
    lr, _ = ds[0]
    lr8 = np.round(lr.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    found = any(
        np.array_equal(np.rot90(v, k), window)
        for v in (lr8, lr8[:, ::-1])
        for k in range(4)
        for window in [
            full_lr[y : y + 8, x : x + 8]
            for y in range(full_lr.shape[0] - 7)
            for x in range(0, full_lr.shape[1] - 7)
        ]
        if window.shape == (8, 8, 3)
    )
    assert found


def test_deterministic_with_a_seed_and_epochs_differ(sample_root):
    cfg = load_config("smoke", data_root=str(sample_root))
    a, b = SRDataset("train", cfg), SRDataset("train", cfg)
    assert all(torch.equal(a[i][1], b[i][1]) for i in range(len(a)))
    b.set_epoch(1)
    assert not all(torch.equal(a[i][1], b[i][1]) for i in range(len(a)))
    loader = torch.utils.data.DataLoader(a, batch_size=4, num_workers=2)
    batches = [hr for _, hr in loader]
    assert torch.equal(torch.cat(batches), torch.stack([a[i][1] for i in range(len(a))]))


def test_test_split_whole_images_with_names(sample_root):
    cfg = load_config("smoke", data_root=str(sample_root))
    ds = SRDataset("Sample", cfg)
    assert len(ds) == 4
    lr, hr, name = ds[1]
    assert name == "chelsea" and hr.shape[1:] == (4 * lr.shape[1], 4 * lr.shape[2])
    assert ds.is_gray(0) and not ds.is_gray(1)
    assert ds.hr_uint8(0).ndim == 2


def test_epoch_sampler_resume_and_ranks():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=4)
    assert list(s) == full[4:] and len(s) == 6
    r0, r1 = (
        EpochSampler(10, seed=3, rank=0, world_size=3),
        EpochSampler(10, seed=3, rank=1, world_size=3),
    )
    for r in (r0, r1):
        r.set_epoch(2)
    assert len(list(r0)) == len(list(r1)) == 4
    assert not set(r0) & set(r1) or len(set(r0) | set(r1)) >= 7


def _pairs(sample_root, **data):
    """(plain, changed) training patch pairs, 600 of each: the same crops without and with `data`."""
    sets = [
        SRDataset("train", load_config("smoke", data_root=str(sample_root), data=d))
        for d in ({"patches_per_image": 100}, {"patches_per_image": 100, **data})
    ]
    return [(sets[0][i], sets[1][i]) for i in range(len(sets[0]))]


def test_gray_patches_at_the_asked_rate_and_every_other_crop_unchanged(sample_root):
    n_gray = 0
    for (lr0, hr0), (lr, hr) in _pairs(sample_root, gray_probability=0.3):
        if torch.equal(hr, hr0):
            assert torch.equal(lr, lr0)
            continue
        n_gray += 1
        for patch, before in ((lr, lr0), (hr, hr0)):  # R = G = B, the luma of the same crop
            assert torch.equal(patch[0], patch[1]) and torch.equal(patch[1], patch[2])
            luma = 0.299 * before[0] + 0.587 * before[1] + 0.114 * before[2]
            assert (patch[0] - luma).abs().max() <= 1.01 / 127.5
    # 600 draws at p = 0.3: 180 expected, outside [140, 220] with probability below 1e-4
    assert 140 <= n_gray <= 220, n_gray


def test_shuffled_channels_at_the_asked_rate_alike_in_both_patches(sample_root):
    n_drawn = 0
    for (lr0, hr0), (lr, hr) in _pairs(sample_root, channel_shuffle=0.5):
        orders = [
            order
            for order in itertools.permutations(range(3))
            if torch.equal(lr, lr0[list(order)]) and torch.equal(hr, hr0[list(order)])
        ]
        assert orders, "the two patches' channels are not one order of the plain crop's"
        n_drawn += (0, 1, 2) not in orders
    # A permutation is drawn for half the 600 patches and is not the identity 5 times in 6: 250
    # expected, outside [205, 295] with probability below 1e-4.
    assert 205 <= n_drawn <= 295, n_drawn
