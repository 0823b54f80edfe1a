"""The profile: how big the chapters' experiments are on this machine.

``quick`` fits a laptop CPU (each chapter well under a minute); ``full`` is for a GPU: deeper nets,
more steps, more seeds. The default follows the device; ``RESBOOK_PROFILE`` overrides it. The
profile holds what all chapters share (its name, the number of seeds); the sizes of one chapter's
experiments (widths, depths, its training recipe) sit in that chapter's module as a
``{"quick": ..., "full": ...}`` table, e.g. :data:`resbook.degradation.SIZES`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch

from ._checks import check_choice
from .device import choose_device


PROFILE_NAMES = ("quick", "full")
T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """What every chapter shares about the size of its experiments; each mechanism module declares its
    own sizes for ``quick`` and ``full`` next to its code, and a chapter picks them with :meth:`pick`."""

    name: str
    seeds: int  # independent runs per configuration, for seed bands

    def pick(self, sizes: Mapping[str, T]) -> T:
        """This profile's entry of a module's ``{"quick": ..., "full": ...}`` table of sizes."""
        if not isinstance(sizes, Mapping) or set(sizes) != set(PROFILE_NAMES):
            keys = sorted(sizes) if isinstance(sizes, Mapping) else type(sizes).__name__
            raise ValueError(f"sizes must map each profile {PROFILE_NAMES} to its sizes, got {keys}")
        return sizes[self.name]


PROFILES = {
    "quick": Profile("quick", seeds=3),  # a laptop CPU: each chapter under 45 s on 2 cores
    "full": Profile("full", seeds=5),  # a GPU
}


def get_profile(name: str | None = None, device: torch.device | None = None) -> Profile:
    """The profile called ``name``, else ``$RESBOOK_PROFILE``, else ``full`` on a GPU and ``quick`` otherwise."""
    if device is not None and not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device (e.g. resbook.device.choose_device()), got "
                        f"{type(device).__name__} {device!r}")
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a profile name, one of {', '.join(map(repr, PROFILES))}; "
                            f"got {type(name).__name__} {name!r}")
        return PROFILES[check_choice("name", name, PROFILES)]
    if os.environ.get("RESBOOK_PROFILE"):
        chosen = os.environ["RESBOOK_PROFILE"]
        return PROFILES[check_choice("the environment variable RESBOOK_PROFILE", chosen, PROFILES)]
    device = device if device is not None else choose_device()
    return PROFILES["full" if device.type == "cuda" else "quick"]
