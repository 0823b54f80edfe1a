"""One figure style for the whole book: colour-blind-safe colours (Okabe & Ito), labelled axes,
seed bands drawn the same way everywhere."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np

from ._checks import check_int

# Okabe–Ito palette: distinguishable with every common form of colour blindness.
PALETTE = {
    "blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "orange": "#E69F00",
    "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000",
}
KIND_COLORS = {"plain": PALETTE["vermillion"], "residual": PALETTE["blue"]}
KIND_STYLES = {"plain": "--", "residual": "-"}  # line style too, so the figures read in grey


def use_book_style() -> None:
    """Apply the book's matplotlib style to every figure drawn after this call."""
    mpl.rcParams.update({
        "figure.figsize": (6.4, 3.8), "figure.dpi": 100, "savefig.dpi": 100,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
        "font.size": 10, "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def plot_band(ax, curves: Sequence[Sequence[float]], *, label: str, color: str, linestyle: str = "-",
              x: Sequence[float] | None = None):
    """Draw the median of several runs as a line and their min–max range as a band.

    ``curves`` holds one sequence per run; runs that stopped early (diverged) are padded with NaN,
    so the band covers only the steps that runs reached.
    """
    if len(curves) == 0:
        raise ValueError("curves must hold at least one run")
    length = max(len(c) for c in curves)
    stacked = np.full((len(curves), length), np.nan)
    for row, curve in zip(stacked, curves):
        row[: len(curve)] = curve
    x = np.arange(length) if x is None else np.asarray(x)
    if len(x) != length:
        raise ValueError(f"x must have one value per step ({length}), got {len(x)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns once every run has stopped
        median = np.nanmedian(stacked, 0)
        low, high = np.nanmin(stacked, 0), np.nanmax(stacked, 0)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    return ax.plot(x, median, color=color, linestyle=linestyle, label=label)[0]


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start), to read noisy minibatch losses."""
    window = check_int("window", window, 1)
    values = np.asarray(values, dtype=float)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)
