import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import sr_course.data.imresize as imr
from sr_course.data.imresize import imresize, imresize_torch

VECTORS = json.loads((Path(__file__).parent / "matlab_imresize_vectors.json").read_text())["cases"]


def _exact_uint8(img: np.ndarray, scale=None, output_shape=None, method="bicubic") -> np.ndarray:
    """The all-double reference route (what the GPU path runs) for integer images."""
    x = torch.from_numpy(img.astype(np.int16))
    return imr._resize_hw(x, 0, scale, output_shape, method, True, 255).numpy().astype(np.uint8)


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_matlab_vectors(case):
    x = np.array(case["input"], dtype=np.float64)
    y = imresize(x, output_shape=tuple(case["output_size"]), antialiasing=case["antialiasing"])
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, np.array(case["expected"]), rtol=0, atol=1e-10)


def test_matlab_vectors_in_torch_float64_are_bit_identical():
    for case in VECTORS:
        x = np.array(case["input"], dtype=np.float64)
        kw = dict(output_shape=tuple(case["output_size"]), antialiasing=case["antialiasing"])
        t = imresize_torch(torch.from_numpy(x)[None], **kw)[0].numpy()
        assert np.array_equal(t, imresize(x, **kw))


def test_uint8_rounds_after_each_pass():
    # A case where MATLAB's per-pass uint8 rounding differs from resizing in float and rounding once.
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    y = imresize(img, 0.25)
    assert y.dtype == np.uint8 and y.shape == (16, 12, 3)
    once = np.clip(np.floor(imresize(img.astype(np.float64), 0.25) + 0.5), 0, 255).astype(np.uint8)
    assert (y != once).sum() > 0
    # ... and the per-pass route is exactly: resize rows in double, round, resize columns, round.
    rows = imresize(img.astype(np.float64), output_shape=(16, 48))
    rows = np.clip(np.floor(rows + 0.5), 0, 255)
    both = imresize(rows, output_shape=(16, 12))
    assert np.array_equal(y, np.clip(np.floor(both + 0.5), 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    "shape, scale",
    [
        ((204, 300, 3), 0.25),
        ((51, 75, 3), 4),
        ((101, 77, 3), 0.25),
        ((33, 47), 1 / 3),
        ((50, 61, 3), 0.75),
        ((9, 5, 3), 0.5),
        ((7, 7), 2.5),
        ((3, 3), 0.25),
        ((40, 40, 3), 0.2),
    ],
)
def test_fast_uint8_path_is_bit_identical_to_double(shape, scale):
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(imresize(img, scale), _exact_uint8(img, scale))


@pytest.mark.parametrize("workers", [2, 3, 4])
@pytest.mark.parametrize(
    "shape, scale", [((339, 510, 3), 0.25), ((85, 128, 3), 4), ((97, 61), 1 / 3)]
)
def test_rows_split_across_threads_are_bit_identical(monkeypatch, workers, shape, scale):
    """Each pass's output rows split into `workers` parts, computed in threads of their own."""
    monkeypatch.setattr(imr, "_workers", lambda n_pixels, threads: workers)
    img = np.random.default_rng(workers + sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(imresize(img, scale), _exact_uint8(img, scale))


def test_a_resize_uses_its_share_of_the_cores_and_one_thread_for_small_images():
    assert imr._workers(2040 * 1356 * 3, threads=2) == 2
    assert imr._workers(2040 * 1356 * 3, threads=16) == imr.MAX_WORKERS
    assert imr._workers(2040 * 1356 * 3, threads=1) == 1  # a loader's worker: the policy's 1
    assert imr._workers(96 * 96 * 3, threads=8) == 1  # a training patch


@pytest.mark.parametrize("height", [96, 400])  # 400: the first pass rounds in two chunks of rows
def test_fast_path_near_half_values_are_recomputed(monkeypatch, height):
    # Smooth ramps make many outputs land within the float32 error band around .5.
    ramp = (np.add.outer(np.arange(height), np.arange(128)) % 256).astype(np.uint8)
    img = np.stack([ramp, np.roll(ramp, 37, axis=0), 255 - ramp], axis=2)
    recomputed = []  # (pass's output length, output rows recomputed in double)
    exact_rows = imr._exact_rows

    def counted(x, p, rows, cols):
        recomputed.append((p.out_len, rows.tolist()))
        return exact_rows(x, p, rows, cols)

    monkeypatch.setattr(imr, "_exact_rows", counted)
    assert np.array_equal(imresize(img, 0.25), _exact_uint8(img, 0.25))
    first_pass = [rows for out_len, rows in recomputed if out_len == height // 4]
    assert sum(map(len, first_pass)) > 50  # the case is real: many values were near .5
    if height // 4 > imr._CHUNK_ROWS:  # values near .5 were recomputed in the second chunk too
        assert max(max(rows) for rows in first_pass) >= imr._CHUNK_ROWS


@pytest.mark.parametrize(
    "shape, scale, convolved",
    [
        ((96, 128, 3), 0.25, True),  # rows then columns; the columns' pass is a convolution
        ((128, 96, 3), (0.5, 0.25), True),  # columns first (smaller scale), then rows by 1/2
        ((96, 128), 1 / 3, True),  # (no value of this ramp lands near .5 in the second pass)
        ((96, 128, 3), 4, False),  # enlarging: each output phase has weights of its own
        ((90, 121, 3), 0.3, False),  # 1/0.3 is no whole step
    ],
)
def test_a_shrink_by_a_whole_step_convolves_its_second_pass_exactly(
    monkeypatch, shape, scale, convolved
):
    """The second pass of a shrink by 1/s is one strided convolution over the first pass's rounded
    values (with the mirrored border around them), and its values near .5 are recomputed."""
    ramp = (np.add.outer(np.arange(shape[0]), np.arange(shape[1]) * 3) % 256).astype(np.uint8)
    img = ramp if len(shape) == 2 else np.stack([ramp, 255 - ramp, np.roll(ramp, 7, axis=1)], 2)
    calls, recomputed = [], []
    conv, exact_rows = imr._pass_uint8_conv, imr._exact_rows

    def counted_conv(padded, dim, p, out, workers=1):
        calls.append(p.out_len)
        return conv(padded, dim, p, out, workers)

    def counted_rows(x, p, rows, cols):
        recomputed.append((p.out_len, len(rows)))
        return exact_rows(x, p, rows, cols)

    monkeypatch.setattr(imr, "_pass_uint8_conv", counted_conv)
    monkeypatch.setattr(imr, "_exact_rows", counted_rows)
    assert np.array_equal(imresize(img, scale), _exact_uint8(img, scale))
    assert bool(calls) == convolved
    if convolved and scale != 1 / 3:  # the convolution's own values near .5 were recomputed
        assert sum(n for out_len, n in recomputed if out_len == calls[0]) > 1000


def test_a_forked_child_resizes_while_the_parent_holds_the_workspace_lock():
    """A DataLoader worker forked while another thread of the parent takes a workspace: the child
    does not wait forever on a lock that no thread of its own holds."""
    img = np.random.default_rng(9).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    expected = imresize(img, 0.25)
    with imr._WORKSPACE_LOCK:  # as if another thread were taking a workspace at the fork
        pid = os.fork()
        if pid == 0:  # the child: one thread, as a DataLoader worker
            code = 1
            try:
                torch.set_num_threads(1)
                code = 0 if np.array_equal(imresize(img, 0.25), expected) else 2
            finally:
                os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done[0] == pid, "the forked child was still waiting after 60 s"
    assert os.waitstatus_to_exitcode(done[1]) == 0


@pytest.mark.parametrize("value", [0, 1, 128, 254, 255])
@pytest.mark.parametrize("scale", [0.25, 0.5, 3, 1 / 3])
def test_constant_images_are_preserved(value, scale):
    img = np.full((30, 22, 3), value, dtype=np.uint8)
    out = imresize(img, scale)
    assert np.all(out == value)
    assert np.allclose(imresize(img.astype(np.float64), scale), value, atol=1e-12)


def test_uint16_is_rounded_to_uint16():
    img = np.random.default_rng(0).integers(0, 65536, (20, 24, 3), dtype=np.uint16)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint16 and out.shape == (10, 12, 3)
    ref = np.clip(np.floor(imresize(img.astype(np.float64), output_shape=(10, 24)) + 0.5), 0, 65535)
    ref = np.clip(np.floor(imresize(ref, output_shape=(10, 12)) + 0.5), 0, 65535)
    assert np.array_equal(out, ref.astype(np.uint16))


def test_sizes_odd_shapes_and_output_shape():
    img = np.random.default_rng(1).random((13, 17))
    assert imresize(img, 0.25).shape == (4, 5)  # ceil(13/4), ceil(17/4)
    assert imresize(img, 2).shape == (26, 34)
    assert imresize(img, output_shape=(5, 30)).shape == (5, 30)
    assert imresize(img, (0.5, 2.0)).shape == (7, 34)
    assert imresize(img[..., None].repeat(3, axis=2), 0.5).shape == (7, 9, 3)


def test_dimension_order_smaller_scale_first():
    # Rows shrink (1/2) and columns grow (x2): columns are resized after rows. Checked by doing the
    # two passes by hand in the other order with uint8 rounding in between, which differs.
    img = np.random.default_rng(2).integers(0, 256, (16, 16), dtype=np.uint8)
    y = imresize(img, output_shape=(8, 32))
    rows_first = np.clip(np.floor(imresize(img.astype(float), output_shape=(8, 16)) + 0.5), 0, 255)
    rows_first = np.clip(np.floor(imresize(rows_first, output_shape=(8, 32)) + 0.5), 0, 255)
    cols_first = np.clip(np.floor(imresize(img.astype(float), output_shape=(16, 32)) + 0.5), 0, 255)
    cols_first = np.clip(np.floor(imresize(cols_first, output_shape=(8, 32)) + 0.5), 0, 255)
    assert np.array_equal(y, rows_first.astype(np.uint8))
    assert not np.array_equal(rows_first, cols_first)


def test_bilinear_and_nearest():
    x = np.arange(16, dtype=np.float64).reshape(4, 4)
    near = imresize(x, 2, method="nearest")
    assert np.array_equal(near, x.repeat(2, 0).repeat(2, 1))
    assert np.array_equal(imresize(x, 0.5, method="nearest"), x[1::2, 1::2])
    lin = imresize(x, output_shape=(4, 7), method="bilinear")
    # A linear ramp stays linear away from the mirrored border.
    assert np.allclose(np.diff(lin[:, 1:-1], axis=1), np.diff(lin[:, 1:-1], axis=1)[0, 0])


def test_torch_matches_numpy():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (2, 3, 37, 29), dtype=np.uint8)
    t8 = imresize_torch(torch.from_numpy(img), 0.25)
    assert t8.dtype == torch.uint8 and t8.shape == (2, 3, 10, 8)
    for n in range(2):
        ref = imresize(img[n].transpose(1, 2, 0), 0.25).transpose(2, 0, 1)
        assert np.array_equal(t8[n].numpy(), ref)
    f64 = imresize_torch(torch.from_numpy(img[0]).double(), 3)
    assert np.array_equal(
        f64.numpy(), imresize(img[0].astype(np.float64).transpose(1, 2, 0), 3).transpose(2, 0, 1)
    )
    f32 = imresize_torch(torch.from_numpy(img).float(), 0.25)
    assert f32.dtype == torch.float32
    assert (f32.double() - imresize_torch(torch.from_numpy(img).double(), 0.25)).abs().max() < 1e-4


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: imresize([[1, 2], [3, 4]], 0.5),
            TypeError,
            "imresize: expected a NumPy array, got list",
        ),
        (
            lambda: imresize(np.zeros((2, 4, 4, 3)), 0.5),
            ValueError,
            r"expected an \(H, W\) or \(H, W, C\) array, got shape \(2, 4, 4, 3\)",
        ),
        (lambda: imresize(np.zeros((4, 4)), 0), ValueError, "scale must be a positive number"),
        (lambda: imresize(np.zeros((4, 4)), -0.5), ValueError, "scale must be a positive number"),
        (
            lambda: imresize(np.zeros((0, 4)), 0.5),
            ValueError,
            r"the image is empty \(shape \(0, 4\)\)",
        ),
        (
            lambda: imresize(np.zeros((4, 4), dtype=np.int32), 0.5),
            TypeError,
            "unsupported dtype int32; use uint8, uint16, float32 or float64",
        ),
        (
            lambda: imresize(np.zeros((4, 4)), 0.5, method="lanczos3"),
            ValueError,
            "unknown method 'lanczos3'; choose one of bicubic, bilinear, nearest",
        ),
        (
            lambda: imresize(np.zeros((4, 4)), 0.5, output_shape=(2, 2)),
            ValueError,
            "give exactly one of scale or output_shape",
        ),
        (
            lambda: imresize(np.zeros((4, 4)), output_shape=(2, 0)),
            ValueError,
            "output_shape must be two positive integers",
        ),
        (lambda: imresize(torch.zeros(4, 4), 0.5), TypeError, "for tensors use imresize_torch"),
        (
            lambda: imresize_torch(np.zeros((3, 4, 4)), 0.5),
            TypeError,
            "expected a torch tensor, got ndarray",
        ),
        (
            lambda: imresize_torch(torch.zeros(4, 4), 0.5),
            ValueError,
            r"expected \(C, H, W\) or \(N, C, H, W\)",
        ),
        (
            lambda: imresize_torch(torch.zeros(3, 4, 4, dtype=torch.int32), 0.5),
            TypeError,
            "unsupported dtype torch.int32",
        ),
    ],
)
def test_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()
