"""What every chapter does first, and how it hands computed numbers to its prose.

``setup()`` picks the device and the profile, seeds everything, applies the figure style and
prints one line saying where and how big the chapter runs. ``glue`` passes a computed value to the
text of the built book (myst-nb's ``glue``); in Jupyter or Colab, where myst-nb is usually absent,
it does nothing, and the value is shown by the cell that computed it.
"""
from __future__ import annotations

from typing import Any

import torch

from ._checks import check_bool, check_int
from .device import choose_device, seed_everything
from .plots import use_book_style
from .profile import Profile, get_profile


def setup(seed: int = 0) -> tuple[torch.device, Profile]:
    """Choose device (cuda > mps > cpu) and profile, seed everything, style figures; print them."""
    seed = check_int("seed", seed, 0)
    device = choose_device()
    profile = get_profile(device=device)
    seed_everything(seed)
    use_book_style()
    print(f"device: {device.type} · profile: {profile.name} ({profile.seeds} seeds) · torch {torch.__version__}")
    return device, profile


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the book's text as ``{glue:}`name```; a no-op outside a book build."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier such as 'plain_56_loss', got {name!r}")
    display = check_bool("display", display)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a NumPy or torch scalar: glue the Python number, which formats as one
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)
