"""Running a check's case in the kernel's own process, where fork is not used (macOS, Windows, CUDA in use).

The kernel's global state that a student's function could change is saved and put back around the
case (:data:`KERNEL_STATE`: a getter and a setter for each piece; :func:`kernel_state_kept`), what
it prints is cut to size (:class:`BoundedOutput`), and it runs in a worker thread that is stopped at
the time limit by an exception raised inside it, again and again for a second, then abandoned
(:func:`run_in_thread`). The forked child uses :func:`kernel_state_kept` too, between cases.
"""
from __future__ import annotations

import ctypes
import io
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def _get_streams() -> tuple[Any, Any]:
    return sys.stdout, sys.stderr


def _set_streams(streams: tuple[Any, Any]) -> None:
    sys.stdout, sys.stderr = streams


def _get_deterministic() -> tuple[bool, bool]:
    return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()


def _set_deterministic(flags: tuple[bool, bool]) -> None:
    if _get_deterministic() != flags:  # only when changed: the call imports torch._inductor (~3 s) the first time
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])


def _get_cuda_rng() -> list[torch.Tensor] | None:
    return torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None


def _set_cuda_rng(states: list[torch.Tensor] | None) -> None:
    if states is not None:
        torch.cuda.set_rng_state_all(states)


def _set_threads(count: int) -> None:
    if torch.get_num_threads() != count:  # resizing torch's thread pool is not free: only when changed
        torch.set_num_threads(count)


# (what it is, read it, put it back). Grad mode and the default device (torch.set_default_device) are
# per thread in torch: a function run in a worker thread cannot change the kernel thread's; grad mode
# is restored all the same, for a function run in the kernel's own thread.
KERNEL_STATE: tuple[tuple[str, Callable[[], Any], Callable[[Any], None]], ...] = (
    ("torch default dtype", torch.get_default_dtype, torch.set_default_dtype),
    ("torch grad mode", torch.is_grad_enabled, torch.set_grad_enabled),
    ("torch anomaly detection", torch.is_anomaly_enabled, torch.set_anomaly_enabled),
    ("torch deterministic algorithms", _get_deterministic, _set_deterministic),
    ("torch CPU random state", torch.get_rng_state, torch.set_rng_state),
    ("torch CUDA random states", _get_cuda_rng, _set_cuda_rng),
    ("NumPy global random state", np.random.get_state, np.random.set_state),
    ("Python random state", random.getstate, random.setstate),
    ("torch intra-op threads", torch.get_num_threads, _set_threads),
    ("sys.stdout and sys.stderr", _get_streams, _set_streams),
)


def kernel_state() -> dict[str, Any]:
    """Every entry of :data:`KERNEL_STATE`, read now (a snapshot to compare or restore)."""
    return {name: get() for name, get, _ in KERNEL_STATE}


@contextmanager
def kernel_state_kept() -> Iterator[None]:
    """Run the body, then put every entry of :data:`KERNEL_STATE` back as it was before it."""
    saved = kernel_state()
    try:
        yield
    finally:
        for name, _, put_back in KERNEL_STATE:
            put_back(saved[name])


class TimeUp(BaseException):
    """Raised inside an in-process worker at the time limit; a BaseException so ``except Exception`` misses it."""


STOP_RETRIES = 20  # raise the stop exception this many times, ...
STOP_INTERVAL = 0.05  # ... this many seconds apart, before abandoning the worker thread


class BoundedOutput(io.TextIOBase):
    """A text stream that keeps the first ``limit`` bytes written to it and counts the rest."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.kept, self.dropped = limit, bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = str(text).encode("utf-8", errors="replace")
        room = max(self.limit - len(self.kept), 0)
        self.kept += data[:room]
        self.dropped += max(len(data) - room, 0)
        return len(text)

    def text(self) -> str:
        """What was kept, as text (a character cut at the limit shows as U+FFFD)."""
        return bytes(self.kept).decode("utf-8", errors="replace")


def _stop(thread: threading.Thread) -> None:
    """Raise :class:`TimeUp` inside ``thread`` (CPython's asynchronous exception)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(TimeUp))


def run_in_thread(task: Callable[[], Any], timeout: float, stream: BoundedOutput, wake: float) -> tuple[str, Any]:
    """Run ``task()`` in a worker thread with the kernel's state kept and its output going to ``stream``:
    ("returned", its result), or ("stopped" | "abandoned", None) if it ran out of time.
    Waits are cut into ``wake``-second slices.

    Whether the worker has ended is read from an event it sets on its way out, not from
    ``Thread.is_alive()``: a KeyboardInterrupt that lands inside ``Thread.join()`` can leave ``is_alive()``
    saying False for a thread that still runs (CPython 3.11), and a runaway function would then spin on
    in the kernel after the interrupt, taking a core for good."""
    outcome: list[Any] = []
    ended = threading.Event()

    def work() -> None:
        try:
            outcome.append(task())
        except BaseException:  # TimeUp, or one that arrived just as the task returned
            pass
        finally:
            ended.set()

    with kernel_state_kept():
        sys.stdout = sys.stderr = stream
        worker = threading.Thread(target=work, daemon=True, name="resbook-exercise-check")
        worker.start()
        try:
            deadline = time.monotonic() + timeout
            while not ended.is_set() and time.monotonic() < deadline:
                ended.wait(min(wake, max(deadline - time.monotonic(), 0)))
        finally:  # time up, or the kernel interrupted (then the interrupt goes on once the worker is stopped)
            for _ in range(STOP_RETRIES):
                if ended.is_set():
                    break
                _stop(worker)
                ended.wait(STOP_INTERVAL)
    if outcome:
        return "returned", outcome[0]
    return ("stopped" if ended.is_set() else "abandoned"), None
