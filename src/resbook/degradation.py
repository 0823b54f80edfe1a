"""Chapter 0, the degradation problem: train plain and residual nets of many depths and compare
their final training loss.

He et al. (2016) saw a deeper plain net reach a *higher training loss* than a shallower one,
although it could copy the shallower net and set its extra layers to the identity. This module
runs that experiment on the digits: for each depth, plain and residual nets from the same initial
weights (they differ only in the identity gate), several seeds, all of one depth trained together.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._checks import check_int
from .batched import train_groups
from .data import Dataset
from .gradients import gradient_norms_per_layer
from .models import mlp
from .training import History

KINDS = ("plain", "residual")


@dataclass
class DepthSweep:
    """Training histories of plain and residual nets, by kind and depth: ``histories[kind, depth][i]`` is seed i's."""

    depths: tuple[int, ...]
    seeds: tuple[int, ...]
    histories: dict[tuple[str, int], list[History]]
    seconds: float

    def final_losses(self, kind: str, depth: int, window: int = 50) -> list[float]:
        """Each seed's mean training loss over its last ``window`` steps (``inf`` if it diverged)."""
        if (kind, depth) not in self.histories:
            raise ValueError(f"no runs for kind={kind!r}, depth={depth}; kinds are {KINDS}, depths {self.depths}")
        return [h.final_loss(window) for h in self.histories[kind, depth]]

    def median_final_loss(self, kind: str, depth: int) -> float:
        return statistics.median(self.final_losses(kind, depth))

    def loss_table(self) -> str:
        """A Markdown table: depth, then the median (min–max over seeds) final loss of each kind."""
        lines = ["| depth | plain | residual |", "|---:|---:|---:|"]
        for depth in self.depths:
            cells = [_median_and_range(self.final_losses(kind, depth)) for kind in KINDS]
            lines.append(f"| {depth} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _median_and_range(losses: list[float]) -> str:
    if any(math.isinf(v) for v in losses):
        return f"{sum(math.isinf(v) for v in losses)} of {len(losses)} diverged"
    return f"{statistics.median(losses):.3f} ({min(losses):.3f}–{max(losses):.3f})"


def build_pair(depth: int, width: int, data: Dataset, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A plain and a residual BatchNorm MLP with the same initial weights (seeded by ``seed``)."""
    nets = []
    for residual in (False, True):
        torch.manual_seed(seed)
        nets.append(mlp(depth, width, data.n_features, data.n_outputs, residual=residual))
    return nets[0], nets[1]


def first_to_last_gradient_ratio(data: Dataset, depths: Sequence[int], *, width: int,
                                 seed: int = 0) -> dict[str, list[float]]:
    """At initialisation, ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ for the plain and the residual twin of each depth.

    Far above 1: the layers next to the input get much larger gradients than the head (exploding
    towards the input); far below 1: they get much smaller ones (vanishing).
    """
    ratios: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for depth in depths:
        for kind, net in zip(KINDS, build_pair(depth, width, data, seed)):
            norms = gradient_norms_per_layer(net, data)
            ratios[kind].append(norms[0] / norms[-1])
    return ratios


def depth_sweep(data: Dataset, depths: Sequence[int], seeds: Sequence[int], *, width: int, steps: int,
                batch_size: int = 128, lr: float = 0.05, momentum: float = 0.9) -> DepthSweep:
    """Train a plain and a residual net per depth and seed: each depth's nets together, depths side by side."""
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a resbook.data.Dataset, got {type(data).__name__}")
    depths, seeds = tuple(depths), tuple(seeds)
    if not depths or not seeds:
        raise ValueError(f"depths and seeds must each hold at least one value, got {depths} and {seeds}")
    for seed in seeds:
        check_int("seeds[i]", seed, 0)
    if len(set(depths)) != len(depths):
        raise ValueError(f"depths must be distinct, got {depths}")
    start, groups = time.perf_counter(), []
    by_cost = sorted(depths, reverse=True)  # deepest first: the parallel groups then finish together
    for depth in by_cost:  # mlp() checks each depth
        pairs = [build_pair(depth, width, data, seed) for seed in seeds]
        groups.append(([plain for plain, _ in pairs] + [residual for _, residual in pairs], list(seeds) * 2))
    runs = train_groups(groups, data, steps=steps, batch_size=batch_size, lr=lr, momentum=momentum)
    histories = {}
    for depth, group in zip(by_cost, runs):
        histories["plain", depth], histories["residual", depth] = group[: len(seeds)], group[len(seeds):]
    return DepthSweep(depths, seeds, histories, time.perf_counter() - start)


def plot_training_curves(ax, sweep: DepthSweep, depth: int, smooth_window: int = 20) -> None:
    """Training loss against step at one depth: median over seeds as a line, min–max as a band."""
    from .plots import KIND_COLORS, KIND_STYLES, plot_band, smooth

    for kind in KINDS:
        curves = [smooth(h.loss, smooth_window) for h in sweep.histories[kind, depth]]
        plot_band(ax, curves, label=f"{kind}-{depth}", color=KIND_COLORS[kind], linestyle=KIND_STYLES[kind])
    ax.set(yscale="log", xlabel="training step", ylabel="training loss (cross-entropy, nats)")


def plot_loss_against_depth(ax, sweep: DepthSweep) -> None:
    """Final training loss against depth: median over seeds, bars from the lowest to the highest seed."""
    from .plots import KIND_COLORS, KIND_STYLES

    for kind in KINDS:
        losses = [sweep.final_losses(kind, d) for d in sweep.depths]
        median = [statistics.median(v) for v in losses]
        below = [m - min(v) for m, v in zip(median, losses)]
        above = [max(v) - m for m, v in zip(median, losses)]
        ax.errorbar(sweep.depths, median, yerr=[below, above], marker="o", capsize=3, label=kind,
                    color=KIND_COLORS[kind], linestyle=KIND_STYLES[kind])
    ax.set(yscale="log", xlabel="depth (weight layers)", ylabel="final training loss (nats)",
           xticks=list(sweep.depths))
