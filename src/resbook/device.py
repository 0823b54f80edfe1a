"""Where the book's tensors live, and how its randomness is seeded.

The device is chosen once, in one place: CUDA if present, else Apple's MPS, else the CPU.
``RESBOOK_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``mps``).
"""
from __future__ import annotations

import contextlib
import functools
import os
import random
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import torch

from ._checks import check_choice, check_int

DEVICE_NAMES = ("cuda", "mps", "cpu")
Function = TypeVar("Function", bound=Callable)


def _available(name: str) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return True


def choose_device(name: str | None = None) -> torch.device:
    """The book's device: ``name`` if given, else ``$RESBOOK_DEVICE``, else cuda > mps > cpu."""
    where = "name"
    if name is None and os.environ.get("RESBOOK_DEVICE"):
        name, where = os.environ["RESBOOK_DEVICE"], "the environment variable RESBOOK_DEVICE"
    if name is None:
        return torch.device(next(n for n in DEVICE_NAMES if _available(n)))
    if not isinstance(name, str):
        raise TypeError(f"{where} must be a device name, one of {', '.join(map(repr, DEVICE_NAMES))}; "
                        f"got {type(name).__name__} {name!r}")
    check_choice(where, name, DEVICE_NAMES)
    if not _available(name):
        raise ValueError(f"{where}: device {name!r} was asked for but is not available on this machine")
    return torch.device(name)


def check_device(name: str, value: object) -> torch.device:
    """Return ``value`` (a ``torch.device`` or a string such as ``"cpu"`` or ``"cuda:0"``) as a
    ``torch.device`` of a kind this machine has; otherwise raise, naming the argument ``name``."""
    if isinstance(value, torch.device):
        device = value
    elif isinstance(value, str):
        try:
            device = torch.device(value)
        except RuntimeError:
            device = None
        if device is None or device.type not in DEVICE_NAMES:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, DEVICE_NAMES))} "
                             f"(optionally with an index, e.g. 'cuda:0'), got {value!r}")
    else:
        raise TypeError(f"{name} must be a torch.device or a str such as 'cpu', got {type(value).__name__} {value!r}")
    if device.type not in DEVICE_NAMES or not _available(device.type):
        raise ValueError(f"{name}: device {str(device)!r} is not available on this machine")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same way."""
    seed = check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU intra-op thread inside the ``with`` block, and put the caller's thread count
    back afterwards, also when it raises. See :func:`on_one_thread`, the same as a decorator."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def on_one_thread(function: Function) -> Function:
    """Decorator: run ``function`` with one CPU intra-op thread (``torch.set_num_threads(1)``), and put the
    caller's thread count back afterwards, also when it raises.

    For helpers that work on many small tensors (width × width matrices, one small net's activations):
    on a CPU extra threads only add overhead there, and on a busy machine they spin, costing several
    times the CPU time. GPU work is not affected.
    """
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__} {function!r}")

    @functools.wraps(function)
    def run(*args, **kwargs):
        with one_thread():
            return function(*args, **kwargs)

    return run  # type: ignore[return-value]
