"""The thread policy: how many threads the CPU work of one process may use, stated once.

    count(jobs=1, threads=None) -> int   this process's share of the cores: cores // jobs, at least 1
                                         (threads= or SR_THREADS=n override it)
    apply(jobs=1, threads=None) -> int   give torch that many threads in this process
    child_env(n) -> dict                 the variables that give a child process n threads
    single_threaded()                    a block of many small kernels, run without the thread pool

Why: PyTorch and OpenMP start one thread per core in every process. On a shared machine (a
JupyterHub, a lab server, DataLoader workers beside the notebook, grade_many's jobs) that is more
threads than cores, and OpenMP's threads spin at every barrier waiting for threads that are not
running: many small kernels (imresize's banded products, a small network's layers) then slow down
30-fold instead of in proportion to the load. So each process takes its share of the cores, waiting
threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE, which OpenMP reads when torch loads it:
sr_course sets it on import, before torch, unless it is set already), and code made of many tiny
kernels runs them on one thread, or splits its work into a few large parts, one per thread of its
share, started and joined once (imresize's uint8 passes: its output rows).

`jobs` is how many CPU-heavy processes of ours run side by side: grade_many's --jobs, the notebook
kernels a grader runs beside its other jobs. DataLoader workers need nothing here: PyTorch gives each
worker one thread. SR_THREAD_POLICY=off leaves torch's and OpenMP's defaults (for the contention
benchmark's "before" rows only).
"""

from __future__ import annotations

import contextlib
import os

from .errors import SettingError

ENV = "SR_THREADS"
OFF = os.environ.get("SR_THREAD_POLICY", "").lower() == "off"


def set_wait_policy() -> None:
    """Waiting OpenMP threads sleep (read once, when torch loads OpenMP: call before importing it)."""
    if not OFF:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset, cgroups and containers narrow
    it), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def count(jobs: int = 1, threads: int | None = None) -> int:
    """Threads for one of `jobs` processes sharing this machine: `threads` if given, else SR_THREADS,
    else cores // jobs (at least 1)."""
    if threads is not None:
        return _checked(threads, "threads=")
    if os.environ.get(ENV, "").strip():
        try:
            return _checked(int(os.environ[ENV]), ENV)
        except ValueError:
            raise SettingError(
                f"{ENV}={os.environ[ENV]!r} is not a whole number: set it to the number of "
                "threads each process may use (for example 1), or unset it"
            ) from None
    return max(1, cores() // max(1, jobs))


def _checked(n: int, where: str) -> int:
    if int(n) != n or n < 1:
        raise SettingError(f"{where} {n!r}: the thread count must be a whole number of at least 1")
    return int(n)


def apply(jobs: int = 1, threads: int | None = None) -> int:
    """Give torch this process's share of threads; returns the count (torch's own under 'off')."""
    import torch  # here, so that importing this module never loads torch before set_wait_policy()

    if OFF:
        return torch.get_num_threads()
    n = count(jobs, threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def child_env(n: int) -> dict[str, str]:
    """Environment variables that give a child process (a kernel, a worker) n threads."""
    env = {ENV: str(n), "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
    if not OFF:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


@contextlib.contextmanager
def single_threaded():
    """Run a block of many small kernels on this thread alone: a thread pool's fork and join per
    kernel costs more than the kernel, and under load far more (see the module's docstring)."""
    import torch

    before = torch.get_num_threads()
    if before == 1 or OFF:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
