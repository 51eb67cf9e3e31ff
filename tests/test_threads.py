"""The thread policy (sr_course/threads.py): each process's share of the cores, stated once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from sr_course import threads


def test_share_of_the_cores_and_the_overrides(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert [threads.count(jobs) for jobs in (1, 2, 3, 4, 8, 16)] == [8, 4, 2, 2, 1, 1]
    assert threads.count(4, threads=3) == 3
    monkeypatch.setenv(threads.ENV, "5")
    assert threads.count(4) == 5
    assert threads.count(4, threads=2) == 2  # an explicit argument beats the environment


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_a_bad_sr_threads_is_one_sentence(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ValueError) as err:
        threads.count()
    assert threads.ENV in str(err.value) and "\n" not in str(err.value)


def test_apply_and_single_threaded_restore_torch(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.apply(threads=2) == 2 and torch.get_num_threads() == 2
        with threads.single_threaded():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_child_env_gives_a_child_its_threads_and_a_passive_wait():
    env = threads.child_env(3)
    assert env["SR_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_importing_sr_course_sets_a_passive_wait_before_torch_loads():
    """OpenMP reads OMP_WAIT_POLICY once, when torch loads it: `import sr_course` sets it first
    (an instructor's own setting wins), and the command line takes its share of the cores."""
    code = (
        "import os, sr_course, torch; from sr_course import threads;"
        "print(os.environ.get('OMP_WAIT_POLICY'), threads.apply(jobs=2), torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", threads.ENV)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    share = str(max(1, threads.cores() // 2))
    assert out == ["PASSIVE", share, share]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out[0] == "ACTIVE"
