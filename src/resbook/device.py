"""Where the book's tensors live, and how its randomness is seeded.

The device is chosen once, in one place: CUDA if present, else Apple's MPS, else the CPU.
``RESBOOK_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``mps``).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from ._checks import check_choice, check_int

DEVICE_NAMES = ("cuda", "mps", "cpu")


def _available(name: str) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return True


def choose_device(name: str | None = None) -> torch.device:
    """The book's device: ``name`` if given, else ``$RESBOOK_DEVICE``, else cuda > mps > cpu."""
    if name is None:
        name = os.environ.get("RESBOOK_DEVICE") or None
    if name is None:
        return torch.device(next(n for n in DEVICE_NAMES if _available(n)))
    check_choice("device", name, DEVICE_NAMES)
    if not _available(name):
        raise ValueError(f"device {name!r} was asked for but is not available on this machine")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator seeded the same way."""
    seed = check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
