"""The profile: how big the chapters' experiments are on this machine.

``quick`` fits a laptop CPU (each chapter well under a minute); ``full`` is for a GPU: deeper nets,
more steps, more seeds. The default follows the device; ``RESBOOK_PROFILE`` overrides it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ._checks import check_choice
from .device import choose_device


@dataclass(frozen=True)
class Profile:
    """Sizes every chapter reads. Chapters take what they need and derive the rest."""

    name: str
    seeds: int  # independent runs per configuration, for seed bands
    steps: int  # optimisation steps per training run
    batch_size: int
    width: int  # hidden width of the MLPs
    depths: tuple[int, ...]  # depths of a depth sweep (weight layers, stem and head included)


PROFILES = {
    # Quick: measured at ~28 s for chapter 0's sweep (6 depths × plain/residual × 3 seeds) on 2 cores.
    "quick": Profile("quick", seeds=3, steps=400, batch_size=128, width=32,
                     depths=(8, 14, 20, 32, 44, 56)),
    "full": Profile("full", seeds=5, steps=1000, batch_size=128, width=64,
                    depths=(8, 14, 20, 26, 32, 44, 56, 80, 110)),
}


def get_profile(name: str | None = None, device: torch.device | None = None) -> Profile:
    """The profile called ``name``, else ``$RESBOOK_PROFILE``, else ``full`` on a GPU and ``quick`` otherwise."""
    if name is None:
        name = os.environ.get("RESBOOK_PROFILE") or None
    if name is None:
        device = device if device is not None else choose_device()
        name = "full" if device.type == "cuda" else "quick"
    check_choice("profile", name, PROFILES)
    return PROFILES[name]
