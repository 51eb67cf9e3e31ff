"""The run guard: what keeps one training run safe while fit() runs.

RunGuard(out_dir, log, device)
  .holding()            a context for the loop: holds out_dir/.lock (flock, so two trainings never
                        write one folder and a killed run leaves no lock), deletes the temporary
                        files of saves a kill cut short, and turns Ctrl-C into a stop request
  .stop_requested       set by the first Ctrl-C; the loop saves last.pt and raises
                        TrainingInterrupted (a second Ctrl-C stops at once)
  .watch(loss)          records, on the device, whether a loss was NaN or infinite
  .diverged             one host sync: whether any watched loss was
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import torch

from ..errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no flock, so no lock there
    fcntl = None


class DivergenceError(UserError, RuntimeError):
    """The loss became NaN or infinite; the message says where and what to try."""


class RunLockedError(UserError, RuntimeError):
    """Another training holds the run folder's lock."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after saving last.pt; the message says how to continue."""


class RunGuard:
    """Lock, clean-up, Ctrl-C and the NaN flag of one run (see the module docstring).

    is_main: only rank 0 locks and cleans the folder. single_process: Ctrl-C is caught only then (under
    torchrun the ranks would stop at different steps) and only in the main thread.
    """

    def __init__(
        self, out_dir: Path, log, device, is_main: bool = True, single_process: bool = True
    ):
        self.out_dir, self.log = Path(out_dir), log
        self.is_main, self.single_process = is_main, single_process
        self.stop_requested = False
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=device)

    # -- NaN guard --

    def watch(self, value: torch.Tensor) -> None:
        self._nonfinite |= ~torch.isfinite(value)

    @property
    def diverged(self) -> bool:
        return bool(self._nonfinite)  # one host sync, only where asked

    # -- around the loop --

    @contextlib.contextmanager
    def holding(self):
        with self._lock(), self._ctrl_c():
            self._remove_unfinished_saves()
            yield self

    @contextlib.contextmanager
    def _lock(self):
        if not self.is_main or fcntl is None:
            yield
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / ".lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise RunLockedError(
                    f"another training is writing to {self.out_dir} ({holder} holds {path}): wait for "
                    "it to end, or choose another --out"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"process {os.getpid()}")
            f.flush()
            try:
                yield
            finally:
                f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    def _remove_unfinished_saves(self) -> None:
        """Delete the temporary files of saves that a kill cut short (the lock says none is running)."""
        if not self.is_main:
            return
        left = [p for p in self.out_dir.glob(".*.pt.*.tmp") if p.is_file()]
        if left:
            size = sum(p.stat().st_size for p in left)
            for p in left:
                p.unlink(missing_ok=True)
            self.log(
                f"removed {len(left)} unfinished checkpoint file(s) ({size / 1e6:.1f} MB) left in "
                f"{self.out_dir} by interrupted saves"
            )

    @contextlib.contextmanager
    def _ctrl_c(self):
        self.stop_requested = False
        if not self.single_process or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def request_stop(signum, frame):
            if self.stop_requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
