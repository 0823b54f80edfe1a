"""One figure style for the whole book: colour-blind-safe colours (Okabe & Ito), labelled axes,
seed bands drawn the same way everywhere."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import check_int

# Okabe–Ito palette: distinguishable with every common form of colour blindness.
PALETTE = {
    "blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "orange": "#E69F00",
    "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000",
}
KIND_COLORS = {"plain": PALETTE["vermillion"], "residual": PALETTE["blue"]}
KIND_STYLES = {"plain": "--", "residual": "-"}  # line style too, so the figures read in grey
# Sharp on high-density screens, legible on a phone: a figure is at most 6.4 in wide (panels stacked,
# not side by side), drawn at 150 dpi, with text of 12 pt — about 9 px of text at a phone's 390 px.
FIGURE_DPI, FONT_SIZE, MAX_FIGURE_WIDTH = 150, 12, 6.4


def use_book_style() -> None:
    """Apply the book's matplotlib style to every figure drawn after this call."""
    mpl.rcParams.update({
        "figure.figsize": (6.4, 3.8), "figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
        "font.size": FONT_SIZE, "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def plot_band(ax, curves: Sequence[Sequence[float]], *, label: str, color: str, linestyle: str = "-",
              x: Sequence[float] | None = None):
    """Draw the median of several runs as a line and their min–max range as a band.

    ``curves`` holds one sequence per run. Runs that stopped early (diverged) are padded with NaN,
    and NaN or infinite values are left out, so at each step the line and band summarise the runs
    that have a finite value there; a step where no run has one is a gap.
    """
    if not hasattr(ax, "fill_between") or not hasattr(ax, "plot"):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")
    if isinstance(curves, (str, bytes)) or not isinstance(curves, (Sequence, np.ndarray)) or len(curves) == 0:
        raise ValueError(f"curves must hold at least one run (a sequence of sequences of numbers), "
                         f"got {type(curves).__name__} {curves!r}"[:200])
    runs = [_series(f"curves[{i}]", curve) for i, curve in enumerate(curves)]
    if not isinstance(label, str):
        raise TypeError(f"label must be a str, got {type(label).__name__} {label!r}")
    _check_style(color, linestyle)
    length = max(len(run) for run in runs)
    stacked = np.full((len(runs), length), np.nan)
    for row, run in zip(stacked, runs):
        row[: len(run)] = np.where(np.isfinite(run), run, np.nan)
    x = np.arange(length) if x is None else _series("x", x)
    if len(x) != length:
        raise ValueError(f"x must have one value per step ({length}), got {len(x)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns once every run has stopped
        median = np.nanmedian(stacked, 0)
        low, high = np.nanmin(stacked, 0), np.nanmax(stacked, 0)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    return ax.plot(x, median, color=color, linestyle=linestyle, label=label)[0]


def _check_style(color: object, linestyle: object) -> None:
    """Refuse a colour or line style matplotlib would not draw, naming the argument."""
    from matplotlib.colors import is_color_like
    from matplotlib.lines import Line2D

    if not is_color_like(color):
        raise ValueError(f"color must be a matplotlib colour such as PALETTE['blue'] or 'k', got {color!r}")
    try:
        Line2D([], [], linestyle=linestyle)
    except (ValueError, TypeError):
        raise ValueError(f"linestyle must be a matplotlib line style such as '-', '--' or ':', "
                         f"got {linestyle!r}") from None


def _series(name: str, values: object) -> np.ndarray:
    """``values`` as a 1-D float array if it is a 1-D sequence (or array) of real numbers; otherwise raise."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__} {values!r}"[:200])
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, RuntimeError) as error:
        raise TypeError(f"{name} must be a 1-D sequence of numbers: {error}") from None
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iuf"):
        raise TypeError(f"{name} must be a 1-D sequence of real numbers, got {array.ndim}-D values of "
                        f"dtype {array.dtype}")
    return array.astype(float)


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Mean over the last ``window`` steps (fewer at the start), to read noisy minibatch losses.

    Point ``i`` is the mean of ``values[max(0, i - window + 1) : i + 1]``, each window summed on its
    own: a huge value (a run on its way to divergence) does not cost the later windows their
    precision, and a window of finite values gives a finite mean (no overflow, even near 1e308).
    A NaN or infinite value makes the mean of every window that holds it NaN — a gap of ``window``
    points in the plotted line — and no point beyond those.
    """
    window = check_int("window", window, 1)
    values = _series("values", values)
    if len(values) == 0:
        return values
    width = min(window, len(values))
    finite = np.isfinite(values)
    # Every term divided by twice the width first, so that no window's sum can overflow; zeros pad the start.
    scaled = np.concatenate([np.zeros(width - 1), np.where(finite, values, 0.0) / (2 * width)])
    sums = sliding_window_view(scaled, width).sum(axis=1)
    counts = np.minimum(np.arange(1, len(values) + 1), width)
    largest = np.finfo(float).max
    with np.errstate(over="ignore"):  # a mean within rounding of the largest float: clipped to it
        means = np.clip(sums * (2 * width / counts), -largest, largest)
    not_finite = np.concatenate([np.zeros(width - 1, dtype=int), (~finite).astype(int)])
    holds_non_finite = sliding_window_view(not_finite, width).sum(axis=1) > 0
    return np.where(holds_non_finite, np.nan, means)
