"""Shared pytest setup: CPU-only, quiet, deterministic where it matters."""

import os

import pytest
import torch

os.environ.setdefault("SR_PROFILE", "smoke")
# At most 2 threads (the CI machine has 2 cores); under pytest-xdist, the worker's share (conftest.py).
torch.set_num_threads(min(2, int(os.environ.get("SR_THREADS", os.cpu_count() or 1))))


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory):
    """The built-in sample dataset, built once per test module (a module may write its caches)."""
    from sr_course.data.sample import build_sample

    root = tmp_path_factory.mktemp("data")
    build_sample(root, verbose=False)
    return root
