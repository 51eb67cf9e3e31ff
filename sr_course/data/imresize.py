"""MATLAB-exact `imresize` for NumPy arrays and torch tensors.

The course's LR images are MATLAB `imresize(HR, 0.25)`; PIL, OpenCV, torch and scikit-image resize
differently, so this module reproduces MATLAB's algorithm (Image Processing Toolbox, `imresize.m`):

- kernels: Keys cubic with a = -0.5 (support 4), triangle (bilinear, support 2), box (nearest, support 1);
  when shrinking with antialiasing the kernel is stretched: h(x) = s * k(s * x), width / s;
- output pixel x (1-based) maps to u = x / s + 0.5 * (1 - 1 / s); taps start at floor(u - width / 2),
  ceil(width) + 2 of them; weights normalised to sum 1; indices outside the image mirror symmetrically
  (1..n, n..1); tap columns that are zero for every output are dropped;
- one 1-D pass per dimension, the dimension with the smaller scale first (rows first on a tie);
- integer input (uint8, uint16): each pass is computed in double and converted back to the integer type
  (clip, round half away from zero) before the next pass. Float input: double throughout, no rounding.

Speed. A uint8 pass on the CPU runs as small banded float32 matrix products, a few output rows at a
time, so the data stays in cache and BLAS does the arithmetic; a large image's output rows are split
into one part per thread of the process's share of the cores (torch's thread count). A second pass
whose outputs all have the same weights, one step apart (a shrink by 1/s, as x0.25 is), is one
strided depthwise convolution over the first pass's rounded values, kept in float32 with the
mirrored border laid out around them. Float32 differs from double by less than a bound computed
from the weights, so only values within that bound of a .5 rounding boundary can round
differently; exactly those are recomputed in double, tap by tap. The result is bit-identical to
the all-double computation (the tests compare the two). The scratch buffers are kept from call to
call (_Workspace): allocated afresh, their pages fault again on every call.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..threads import single_threaded

METHODS = ("bicubic", "bilinear", "nearest")
_INTEGER_DTYPES = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --- kernels (MATLAB's expressions) -------------------------------------------------------------


def _cubic(x: np.ndarray) -> np.ndarray:
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((1 < absx) & (absx <= 2))


def _triangle(x: np.ndarray) -> np.ndarray:
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    return ((-0.5 <= x) & (x < 0.5)).astype(np.float64)


_KERNELS = {"bicubic": (_cubic, 4.0), "bilinear": (_triangle, 2.0), "nearest": (_box, 1.0)}


# --- per-dimension plan ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # hashed by identity: plans are cached
class _Pass:
    """Weights and source indices of one 1-D pass, in_len -> out_len."""

    in_len: int
    weights: np.ndarray  # (out_len, T) float64, rows sum to 1
    indices: np.ndarray  # (out_len, T) int64, 0-based, already mirrored into [0, in_len)
    raw_start: np.ndarray  # (out_len,) int64, 0-based first tap before mirroring
    offsets: np.ndarray  # (T,) int64, tap positions relative to raw_start

    @property
    def out_len(self) -> int:
        return self.weights.shape[0]


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """MATLAB's symmetric padding of 0-based indices: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ..."""
    aux = np.concatenate([np.arange(n), np.arange(n - 1, -1, -1)])
    return aux[np.mod(index, 2 * n)]


@functools.lru_cache(maxsize=128)
def _plan(in_len: int, out_len: int, scale: float, method: str, antialiasing: bool) -> _Pass:
    kernel, width = _KERNELS[method]
    if scale < 1 and antialiasing:

        def h(x):
            return scale * kernel(scale * x)

        width = width / scale
    else:
        h = kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    n_taps = int(math.ceil(width)) + 2
    idx1 = left[:, None] + np.arange(n_taps, dtype=np.float64)[None, :]  # 1-based, unmirrored
    weights = h(u[:, None] - idx1)
    weights = weights / weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    raw = idx1[:, keep].astype(np.int64) - 1
    raw_start = raw[:, 0].copy()
    offsets = raw[0] - raw[0, 0]  # the same for every row: kept columns are shared
    return _Pass(in_len, weights, _mirror(raw, in_len), raw_start, offsets)


# --- one pass along dimension 0 of a 2-D tensor (L, M) -------------------------------------------


def _round_to_integer(v: torch.Tensor, max_value: int) -> torch.Tensor:
    """Round half away from zero and clip to [0, max_value]; exact for float64 input.

    (For negative values half-up and half-away-from-zero differ only on values that clip to 0.)
    """
    r = torch.floor(v)
    r += (v - r) >= 0.5
    return r.clamp_(0, max_value)


def _pass_exact(x: torch.Tensor, p: _Pass, dtype: torch.dtype) -> torch.Tensor:
    """sum_t w[:, t] * x[idx[:, t]] accumulated tap by tap (MATLAB's order) in `dtype`."""
    w = torch.from_numpy(p.weights).to(device=x.device, dtype=dtype)
    idx = torch.from_numpy(p.indices).to(x.device)
    acc = None
    for t in range(w.shape[1]):
        term = w[:, t : t + 1] * x.index_select(0, idx[:, t]).to(dtype)
        acc = term if acc is None else acc + term
    return acc


# Output rows per rounding chunk: the float32 chunk (rows x M) stays in L2 for DIV2K widths.
_CHUNK_ROWS = 64
# Output rows per block in the fast path: small blocks keep each banded matrix nearly dense.
_BLOCK_ROWS_DOWN = 8
_BLOCK_ROWS_UP = 32
# Threads for one uint8 resize (_workers): a part below this many input values costs more to hand
# to a thread than it saves; more than MAX_WORKERS parts no longer pay on a DIV2K image.
MIN_PIXELS_PER_THREAD = 256 * 256 * 3
MAX_WORKERS = 4


class _Workspace:
    """Scratch buffers kept from one call to the next, grown when a larger image needs more. A DIV2K
    resize uses some 20 MB of temporaries; allocated afresh each call, the memory goes back to the
    system between calls and every 4 KB of it costs a page fault when touched again (on one thread
    17.4 ms a call against 14.8 ms kept). Held for the process's life: 49 MB after DIV2K-size images
    shrunk and enlarged with 2 threads."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def get(self, name: str, shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A contiguous tensor of `shape` (uninitialised) that is this workspace's `name`."""
        n = math.prod(shape)
        buf = self._buffers.get((name, dtype))
        if buf is None or buf.numel() < n:
            buf = self._buffers[(name, dtype)] = torch.empty(n, dtype=dtype)
        return buf[:n].view(*shape)


_FREE_WORKSPACES: list[_Workspace] = []
_WORKSPACE_LOCK = threading.Lock()


def _workspaces_after_fork() -> None:
    """A forked child (a DataLoader worker) starts with a lock of its own: another thread of the
    parent may have held this one at the fork, and would never release it in the child."""
    global _WORKSPACE_LOCK
    _WORKSPACE_LOCK = threading.Lock()
    _FREE_WORKSPACES.clear()  # the parent's buffers, shared copy-on-write until written


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workspaces_after_fork)


@contextlib.contextmanager
def _workspace():
    """A workspace that no other thread uses until this one gives it back (callers may resize from
    several threads at once, and each part of a pass runs in a thread of its own)."""
    with _WORKSPACE_LOCK:
        ws = _FREE_WORKSPACES.pop() if _FREE_WORKSPACES else _Workspace()
    try:
        yield ws
    finally:
        with _WORKSPACE_LOCK:
            _FREE_WORKSPACES.append(ws)


@functools.lru_cache(maxsize=32)
def _blocks(p: _Pass) -> list[tuple[int, int, int, int, torch.Tensor]]:
    """Split a pass into blocks of output rows (i0, i1) with the raw input range [first, last] they
    read and the dense (i1 - i0, last - first + 1) float32 weight matrix of the block."""
    n_b = _BLOCK_ROWS_DOWN if p.out_len < p.in_len else _BLOCK_ROWS_UP
    raw = p.raw_start[:, None] + p.offsets[None, :]
    w32 = p.weights.astype(np.float32)
    out, shared = [], {}
    for i0 in range(0, p.out_len, n_b):
        i1 = min(p.out_len, i0 + n_b)
        first, last = int(raw[i0:i1].min()), int(raw[i0:i1].max())
        local = raw[i0:i1] - first
        key = (i1 - i0, local.tobytes(), w32[i0:i1].tobytes())
        if key not in shared:  # uniform plans share one matrix between all blocks
            m = np.zeros((i1 - i0, last - first + 1), dtype=np.float32)
            np.add.at(m, (np.arange(i1 - i0)[:, None], local), w32[i0:i1])
            shared[key] = torch.from_numpy(m)
        out.append((i0, i1, first, last, shared[key]))
    return out


@functools.lru_cache(maxsize=32)
def _conv_step(p: _Pass) -> int | None:
    """The step s when the pass is one strided convolution: every output has the same weights and
    its taps start s inputs after the previous output's (a shrink by 1/s), the first at or before
    the image's first row. None otherwise (enlarging, a scale that is not 1/s, one output)."""
    if p.out_len < 2 or p.raw_start[0] > 0 or not np.all(p.weights == p.weights[0]):
        return None
    steps = np.diff(p.raw_start)
    return int(steps[0]) if steps[0] >= 1 and np.all(steps == steps[0]) else None


def _border(p: _Pass) -> tuple[int, int]:
    """Mirrored inputs a convolution pass reads before the first input and after the last."""
    last = int(p.raw_start[-1] + p.offsets[-1])
    return max(0, -int(p.raw_start[0])), max(0, last - (p.in_len - 1))


def _margin(p: _Pass) -> float:
    """The band around .5 where a float32 value of the pass may round unlike its double value.

    Float32 error bound for a sum of T products of |w| * 255 in any order (BLAS and the convolution
    pick the order): (T + 2) roundings of at most 2**-24 * 255 * sum|w|, plus the weights' own
    rounding; twice that is the band. Values in it are recomputed exactly."""
    n_taps = p.weights.shape[1]
    return 2.0 * (n_taps + 3) * 2.0**-24 * 255.0 * float(np.abs(p.weights).sum(axis=1).max())


def _round_near(a: torch.Tensor, rounded: torch.Tensor, margin: float) -> np.ndarray:
    """Round float32 `a` to nearest into `rounded` (ties to even: a tie lies inside the band that is
    recomputed in double, where MATLAB's half away from zero is applied); `a` is overwritten. Returns
    the flat indices of the values within `margin` of a .5 boundary."""
    torch.round(a, out=rounded)
    a.sub_(rounded).abs_()  # distance from the nearest integer: at most 0.5
    return np.flatnonzero(a.numpy() >= 0.5 - margin)  # (torch's comparisons are slower here)


def _exact_rows(x: torch.Tensor, p: _Pass, rows: torch.Tensor, cols: tuple) -> torch.Tensor:
    """The float64 value of output pixels (rows, cols), tap by tap in MATLAB's order; x is
    (L, ...) with any strides, cols the output pixels' indices along its other dimensions."""
    taps = torch.from_numpy(p.indices)[rows]  # (F, T) source rows
    w = torch.from_numpy(p.weights)[rows]  # (F, T)
    vals = x[(taps, *(c[:, None] for c in cols))].to(torch.float64)
    exact = w[:, 0] * vals[:, 0]
    for t in range(1, vals.shape[1]):
        exact = exact + w[:, t] * vals[:, t]
    return exact


def _pass_uint8_fast(
    x: torch.Tensor, p: _Pass, out: torch.Tensor, workers: int = 1
) -> torch.Tensor:
    """A uint8 pass along dimension 0 on the CPU, x (L, ...) -> out (out_len, ...), both with any
    strides: banded float32 matmuls, then an exact recompute near .5 boundaries. With workers > 1
    the output rows are split into that many contiguous parts, each computed by a thread of its own
    (one start and one join per pass, never per product: torch and NumPy release the GIL)."""
    blocks = _blocks(p)
    parts = np.array_split(np.arange(len(blocks)), max(1, min(workers, len(blocks))))
    groups = [[blocks[k] for k in part] for part in parts]  # none empty: parts <= blocks
    _in_threads(_rows_uint8_fast, [(x, p, out, g) for g in groups])
    return out


def _in_threads(task, calls: list[tuple]) -> None:
    """task(*args) for each args of `calls`: a thread each (started and joined once) when there are
    several, this thread alone for one."""
    if len(calls) == 1:
        task(*calls[0])
        return
    with ThreadPoolExecutor(len(calls)) as pool:
        for done in [pool.submit(task, *args) for args in calls]:
            done.result()


def _rows_uint8_fast(x: torch.Tensor, p: _Pass, out: torch.Tensor, blocks: list) -> None:
    """The output rows of consecutive `blocks` of a uint8 pass (see _pass_uint8_fast). `out` is
    uint8, or float32 when the next pass is a convolution: rounded values either way."""
    L, rest = x.shape[0], tuple(x.shape[1:])
    M = math.prod(rest)
    r0, r1 = blocks[0][0], blocks[-1][1]
    span = max(last - first + 1 for _, _, first, last, _ in blocks)
    with _workspace() as ws:
        src = ws.get("src", (span, *rest))
        acc = ws.get("acc", (r1 - r0, M))
        r = ws.get("rounded", (min(_CHUNK_ROWS, r1 - r0), M))
        for i0, i1, first, last, m in blocks:
            n_in = last - first + 1
            if first >= 0 and last < L:
                src[:n_in].copy_(x[first : last + 1])
            else:
                src[:n_in].copy_(
                    x.index_select(0, torch.from_numpy(_mirror(np.arange(first, last + 1), L)))
                )
            torch.mm(m, src[:n_in].view(n_in, M), out=acc[i0 - r0 : i1 - r0])
        # Rounded a chunk of rows at a time, while the chunk is in cache.
        near = []  # flat indices (into the part's rows) of the values near a .5 boundary
        margin = _margin(p)
        for c0 in range(0, r1 - r0, _CHUNK_ROWS):
            c1 = min(r1 - r0, c0 + _CHUNK_ROWS)
            rc = r[: c1 - c0]
            near.append(_round_near(acc[c0:c1], rc, margin) + c0 * M)
            # Written in the layout the next pass reads (its dimension first): no transposed copy.
            out[r0 + c0 : r0 + c1].copy_(rc.clamp_(0, 255).view(c1 - c0, *rest))
    flat = np.concatenate(near)
    if flat.size:
        rows, *cols = (torch.from_numpy(i) for i in np.unravel_index(flat, (r1 - r0, *rest)))
        rows += r0
        exact = _round_to_integer(_exact_rows(x, p, rows, cols), 255).to(out.dtype)
        out[(rows, *cols)] = exact


def _pass_uint8_conv(
    padded: torch.Tensor, dim: int, p: _Pass, out: torch.Tensor, workers: int = 1
) -> None:
    """A convolution pass (_conv_step(p) is its step) along `dim` of `padded`: float32 rounded values
    of the previous pass, contiguous, mirror-padded by _border(p) along `dim`. Writes the uint8
    result into the contiguous `out`. With workers > 1 the rows before `dim` are split into that
    many parts, each convolved and rounded by a thread of its own."""
    shape = padded.shape
    A, Lp, B = math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1 :])
    step, before = _conv_step(p), _border(p)[0]
    taps = int(p.offsets[-1]) + 1
    kernel = torch.zeros(taps, dtype=torch.float32)
    kernel[torch.from_numpy(p.offsets)] = torch.from_numpy(p.weights[0].astype(np.float32))
    weight = kernel.view(1, 1, 1, taps).expand(B, 1, 1, taps).contiguous()
    # The pass's inputs, unpadded, as (L, A, B): what the exact recompute reads.
    inputs = padded.view(A, Lp, B)[:, before : before + p.in_len].movedim(1, 0)
    result = out.view(A, p.out_len, B)
    margin = _margin(p)

    def part(a0: int, a1: int) -> None:
        # (A, Lp, B) in memory is (1, B, A, Lp) in channels_last: a depthwise convolution along Lp,
        # one group per B. The first tap of output 0 is padded input 0 (_conv_step's condition).
        x = padded.as_strided(
            (1, B, a1 - a0, Lp),
            ((a1 - a0) * Lp * B, 1, Lp * B, B),
            padded.storage_offset() + a0 * Lp * B,
        )
        conv = F.conv2d(x, weight, stride=(1, step), groups=B)[..., : p.out_len]
        acc = conv.permute(0, 2, 3, 1).reshape(a1 - a0, p.out_len * B)  # a view: channels_last
        with _workspace() as ws:
            rounded = ws.get("rounded", acc.shape)
            flat = _round_near(acc, rounded, margin)
            result[a0:a1].copy_(rounded.clamp_(0, 255).view(a1 - a0, p.out_len, B))
        if flat.size:
            a, rows, b = (
                torch.from_numpy(i) for i in np.unravel_index(flat, (a1 - a0, p.out_len, B))
            )
            a += a0
            exact = _round_to_integer(_exact_rows(inputs, p, rows, (a, b)), 255).to(torch.uint8)
            result[a, rows, b] = exact

    parts = np.array_split(np.arange(A), max(1, min(workers, A)))  # none empty: parts <= A
    _in_threads(part, [(int(c[0]), int(c[-1]) + 1) for c in parts])


def _fill_border(padded: torch.Tensor, dim: int, before: int, n: int) -> None:
    """Write the mirrored border around the `n` inputs that start at `before` along `dim`."""
    sources = _mirror(np.arange(-before, padded.shape[dim] - before), n) + before
    for j in [*range(before), *range(before + n, padded.shape[dim])]:
        padded.narrow(dim, j, 1).copy_(padded.narrow(dim, int(sources[j]), 1))


def _resize_dim(x: torch.Tensor, dim: int, p: _Pass, int_max: int | None) -> torch.Tensor:
    """Resize tensor `x` along `dim`; integer data (int_max set) is rounded back after the pass."""
    moved = x.movedim(dim, 0)
    shape = moved.shape
    x2 = moved.reshape(shape[0], -1)
    if int_max is None:
        y = _pass_exact(x2, p, x.dtype)
    else:
        y = _round_to_integer(_pass_exact(x2, p, torch.float64), int_max).to(x.dtype)
    return y.reshape(p.out_len, *shape[1:]).movedim(0, dim).contiguous()


def _check_method(method: str, antialiasing: bool) -> bool:
    if method not in METHODS:
        raise ValueError(f"imresize: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    # MATLAB never antialiases 'nearest' by default; a box kernel stretched by 1/s would blur.
    return bool(antialiasing) and method != "nearest"


def _sizes_and_scales(in_hw, scale, output_shape):
    """MATLAB's rules: scale -> ceil(scale * size); output_shape -> scale = out / in per dimension."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of scale or output_shape")
    if output_shape is not None:
        if len(output_shape) != 2 or any(int(v) != v or v <= 0 for v in output_shape):
            raise ValueError(
                f"imresize: output_shape must be two positive integers (rows, cols), got {output_shape}"
            )
        out_hw = tuple(int(v) for v in output_shape)
        scales = tuple(o / i for o, i in zip(out_hw, in_hw))
    else:
        scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
        if len(scales) != 2 or not all(
            isinstance(s, (int, float, np.floating, np.integer)) and math.isfinite(s) and s > 0
            for s in scales
        ):
            raise ValueError(f"imresize: scale must be a positive number (or two), got {scale!r}")
        scales = tuple(float(s) for s in scales)
        out_hw = tuple(int(math.ceil(s * n)) for s, n in zip(scales, in_hw))
    return out_hw, scales


def _resize_hw(x: torch.Tensor, hdim: int, scale, output_shape, method, antialiasing, int_max):
    in_hw = (x.shape[hdim], x.shape[hdim + 1])
    out_hw, scales = _sizes_and_scales(in_hw, scale, output_shape)
    aa = _check_method(method, antialiasing)
    # The dimension with the smaller scale first; Python's sort is stable, so rows first on a tie.
    # A dimension whose size and scale stay is an exact identity in MATLAB too (weights 0/1).
    passes = [
        (hdim + d, _plan(in_hw[d], out_hw[d], scales[d], method, aa))
        for d in sorted((0, 1), key=lambda d: scales[d])
        if not (out_hw[d] == in_hw[d] and scales[d] == 1)
    ]
    if int_max is not None and x.dtype == torch.uint8 and x.device.type == "cpu":
        # Many small products: a thread pool's fork and join per product costs more than it saves,
        # and on a loaded machine far more (sr_course/threads.py). Instead this process's share of
        # the cores (torch's thread count) computes a few large parts, started and joined per pass.
        workers = _workers(x.numel(), torch.get_num_threads())
        with single_threaded():
            return _resize_uint8_cpu(x, passes, workers)
    for dim, p in passes:
        x = _resize_dim(x, dim, p, int_max)
    return x


def _workers(n_pixels: int, threads: int) -> int:
    """Threads for a uint8 resize: this process's share of the cores (torch's thread count, which
    the thread policy sets), one per MIN_PIXELS_PER_THREAD input values (a small image is faster on
    one), at most MAX_WORKERS."""
    return max(1, min(threads, MAX_WORKERS, n_pixels // MIN_PIXELS_PER_THREAD))


def _resize_uint8_cpu(x: torch.Tensor, passes: list[tuple[int, _Pass]], workers: int = 1):
    """The uint8 passes on the CPU, each written straight into the layout the next one reads: a
    convolution pass (_conv_step) reads float32 with its mirrored border laid out around it, a
    banded one uint8 with its dimension first."""
    with _workspace() as ws:  # holds the buffer between the two passes
        for k, (dim, p) in enumerate(passes):
            shape = list(x.shape)
            shape[dim] = p.out_len
            y = target = None
            if k + 1 < len(passes):
                following, nxt = passes[k + 1]
                if _conv_step(nxt):
                    before, after = _border(nxt)
                    shape[following] += before + after
                    y = ws.get("between", shape)
                    target = y.narrow(following, before, nxt.in_len)
                else:  # contiguous with the next pass's dimension first
                    order = [following] + [i for i in range(len(shape)) if i != following]
                    y = ws.get("between", [shape[i] for i in order], torch.uint8)
                    y = y.movedim(0, following)
            if y is None:  # the result: a tensor of its own
                y = torch.empty(shape, dtype=torch.uint8)
            if k > 0 and _conv_step(p):  # x is float32, padded by the previous pass's layout
                _pass_uint8_conv(x, dim, p, y, workers)
            else:
                into = y if target is None else target
                _pass_uint8_fast(x.movedim(dim, 0), p, into.movedim(dim, 0), workers)
            if target is not None:
                _fill_border(y, following, before, nxt.in_len)
            x = y
    return x.contiguous()


def imresize(
    img: np.ndarray,
    scale: float | tuple[float, float] | None = None,
    output_shape: tuple[int, int] | None = None,
    method: str = "bicubic",
    antialiasing: bool = True,
) -> np.ndarray:
    """MATLAB's `imresize(img, scale)` / `imresize(img, output_shape)` on an (H, W) or (H, W, C) array.

    uint8 / uint16 in -> the same type out (rounded after each 1-D pass, as MATLAB does);
    float32 / float64 in -> float64 out, never rounded. `method`: 'bicubic', 'bilinear' or 'nearest'.
    """
    if not isinstance(img, np.ndarray):
        hint = (
            " (for tensors use imresize_torch)"
            if torch.is_tensor(img)
            else " (use np.asarray(img))"
        )
        raise TypeError(f"imresize: expected a NumPy array, got {type(img).__name__}{hint}")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize: expected an (H, W) or (H, W, C) array, got shape {img.shape}")
    if img.size == 0:
        raise ValueError(f"imresize: the image is empty (shape {img.shape})")
    dtype = img.dtype
    if dtype not in _INTEGER_DTYPES and dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"imresize: unsupported dtype {dtype}; use uint8, uint16, float32 or float64"
        )
    if dtype == np.uint16:
        x = torch.from_numpy(img.astype(np.int32))  # torch's uint16 support is partial
    elif dtype in _FLOAT_DTYPES:
        x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))
    else:
        x = torch.from_numpy(np.ascontiguousarray(img))
    y = _resize_hw(x, 0, scale, output_shape, method, antialiasing, _INTEGER_DTYPES.get(dtype))
    return y.numpy().astype(dtype if dtype in _INTEGER_DTYPES else np.float64, copy=False)


def imresize_torch(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    output_shape: tuple[int, int] | None = None,
    method: str = "bicubic",
    antialiasing: bool = True,
) -> torch.Tensor:
    """`imresize` for (C, H, W) or (N, C, H, W) tensors on any device.

    float64: bit-for-bit the NumPy float path. float32/float16/bfloat16: computed in float32 (within
    1e-4 of float64 on [0, 255] data). uint8: rounded after each pass, bit-exact with `imresize`.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"imresize_torch: expected a torch tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4):
        raise ValueError(
            f"imresize_torch: expected (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"imresize_torch: the tensor is empty (shape {tuple(x.shape)})")
    if x.dtype == torch.uint8:
        return _resize_hw(x, x.dim() - 2, scale, output_shape, method, antialiasing, 255)
    if not x.is_floating_point():
        raise TypeError(f"imresize_torch: unsupported dtype {x.dtype}; use uint8 or a float type")
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    y = _resize_hw(work, work.dim() - 2, scale, output_shape, method, antialiasing, None)
    return y.to(x.dtype)
