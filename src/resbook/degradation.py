"""Chapter 0, the degradation problem: train plain and residual nets of many depths and compare
their final training loss.

He et al. (2016) saw a deeper plain net reach a *higher training loss* than a shallower one,
although it could copy the shallower net and set its extra layers to the identity. This module
runs that experiment on the digits: for each depth, plain and residual nets from the same initial
weights (they differ only in the identity gate), several seeds, all of one depth trained together.
"""
from __future__ import annotations

import math
import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._checks import check_choice, check_dataset, check_int
from .data import Dataset
from .device import on_one_thread
from .gradients import gradient_norms_per_layer
from .grid import GridRuns, train_grid
from .models import KINDS, twins
from .recipe import Recipe
from .training import error_rate, minibatches


@dataclass(frozen=True)
class Sizes:
    """The size of chapter 0's experiment in one profile: the nets' width, the depths swept, the recipe."""

    width: int
    depths: tuple[int, ...]
    recipe: Recipe


# Quick: the sweep takes ~25 s on 2 CPU cores (6 depths × plain/residual × 3 seeds, trained together).
SIZES = {
    "quick": Sizes(width=32, depths=(8, 14, 20, 32, 44, 56),
                   recipe=Recipe(steps=400, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9)),
    "full": Sizes(width=64, depths=(8, 14, 20, 26, 32, 44, 56, 80, 110),
                  recipe=Recipe(steps=1000, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9)),
}


@dataclass
class DepthSweep:
    """Training runs of plain and residual nets by depth: ``runs.histories[kind, depth][i]`` is seed i's."""

    depths: tuple[int, ...]
    runs: GridRuns
    interventions: tuple[Intervention, ...] = ()

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.runs.seeds

    @property
    def seconds(self) -> float:
        return self.runs.seconds

    @property
    def histories(self) -> dict:
        return self.runs.histories

    def final_losses(self, kind: str, depth: int, window: int = 50) -> list[float]:
        """Each seed's mean training loss over its last ``window`` steps (``inf`` if it diverged)."""
        check_choice("kind", kind, KINDS)
        if isinstance(depth, bool) or depth not in self.depths:
            raise ValueError(f"no runs for kind={kind!r}, depth={depth}; kinds are {KINDS}, depths {self.depths}")
        return self.runs.final_losses((kind, depth), window)

    def median_final_loss(self, kind: str, depth: int) -> float:
        return statistics.median(self.final_losses(kind, depth))

    def median_gradient_ratio(self, kind: str, depth: int) -> list[float]:
        """The first-to-last layer gradient ratio of every training step (``History.gradient_ratio``) of the
        ``kind`` nets of ``depth``, median over seeds, up to the last step that every seed reached."""
        self.final_losses(kind, depth)  # checks kind and depth
        return [statistics.median(step) for step in zip(*(h.gradient_ratio for h in self.histories[kind, depth]))]

    def intervention_losses(self, kind: str, name: str, window: int = 50) -> list[float]:
        """Each seed's final training loss of the deepest ``kind`` net under the intervention ``name``
        (``inf`` where it diverged)."""
        check_choice("name", name, [i.name for i in self.interventions])
        intervention = next(i for i in self.interventions if i.name == name)
        check_choice("kind", kind, intervention.kinds)
        return self.runs.final_losses((kind, max(self.depths), name), window)

    def test_error_table(self, test: Dataset) -> str:
        """A Markdown table: depth, then the median (min–max over seeds) test error of each kind, in percent."""
        lines = ["| depth | plain | residual |", "|---:|---:|---:|"]
        for depth in self.depths:
            cells = []
            for kind in KINDS:
                errors = [100 * e for e in self.error_rates(kind, depth, test) if not math.isnan(e)]
                cells.append(f"{statistics.median(errors):.1f} % ({min(errors):.1f}–{max(errors):.1f})"
                             if errors else "all diverged")
            lines.append(f"| {depth} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def intervention_table(self) -> str:
        """A Markdown table: each intervention on the deepest nets, the median (min–max) final loss of each kind."""
        depth = max(self.depths)
        lines = [f"| {depth} layers, trained with | plain | residual |", "|:---|---:|---:|",
                 "| the recipe above | " + " | ".join(_median_and_range(self.final_losses(k, depth)) for k in KINDS)
                 + " |"]
        for i in self.interventions:
            cells = [_median_and_range(self.intervention_losses(k, i.name)) if k in i.kinds else "—" for k in KINDS]
            lines.append(f"| {i.name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def error_rates(self, kind: str, depth: int, data: Dataset) -> list[float]:
        """Each seed's error rate on ``data`` (a test set, or the training set) of the trained ``kind`` net
        of ``depth``, in evaluation mode; ``nan`` for a run that diverged."""
        self.final_losses(kind, depth)  # checks kind and depth
        return [math.nan if h.diverged else error_rate(m, data)
                for h, m in zip(self.runs.histories[kind, depth], self.runs.models[kind, depth])]

    def loss_table(self) -> str:
        """A Markdown table: depth, then the median (min–max over seeds) final loss of each kind."""
        lines = ["| depth | plain | residual |", "|---:|---:|---:|"]
        for depth in self.depths:
            cells = [_median_and_range(self.final_losses(kind, depth)) for kind in KINDS]
            lines.append(f"| {depth} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _median_and_range(losses: list[float]) -> str:
    """``median (min–max)``; with diverged runs (``inf``) the median counts them as the worst, the range
    covers the rest, and the count is said: ``2.302 (2.302–2.302), 1 of 3 diverged``."""
    diverged = sum(math.isinf(v) for v in losses)
    median, finite = statistics.median(losses), [v for v in losses if not math.isinf(v)]
    if math.isinf(median):
        return f"{diverged} of {len(losses)} diverged"
    text = f"{median:.3f} ({min(finite):.3f}–{max(finite):.3f})"
    return text + (f", {diverged} of {len(losses)} diverged" if diverged else "")


@on_one_thread  # builds and measures small nets: one CPU thread is fastest (see make bench)
def first_to_last_gradient_ratio(data: Dataset, depths: Sequence[int], *, width: int, seed: int = 0,
                                 norm: str | None = "batch", batch_size: int | None = None,
                                 batches: int = 8) -> dict[str, list[float]]:
    """At initialisation, ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ for the plain and the residual twin of each depth.

    Far above 1: the layers next to the input get much larger gradients than the head (exploding
    towards the input); far below 1: they get much smaller ones (vanishing). Measured on the whole
    of ``data`` or, with ``batch_size``, as the median over ``batches`` random minibatches of that
    size — what a training step sees (batch normalisation's statistics depend on the batch).
    """
    check_dataset("data", data)
    subsets = [data] if batch_size is None else minibatches(data, batch_size, batches, seed)
    ratios: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for depth in _check_depths(depths):
        nets = twins(depth, width, data.n_features, data.n_outputs, seed=seed, norm=norm)
        for kind, net in zip(KINDS, nets):
            per_batch = [norms[0] / norms[-1] for norms in (gradient_norms_per_layer(net, b) for b in subsets)]
            ratios[kind].append(statistics.median(per_batch))
    return ratios


def _check_depths(depths: Sequence[int]) -> tuple[int, ...]:
    if isinstance(depths, (str, bytes)) or not isinstance(depths, (Sequence, range)) or len(depths) == 0:
        raise ValueError(f"depths must be a non-empty sequence of even ints such as (8, 20, 56), got {depths!r}")
    depths = tuple(check_int(f"depths[{i}]", d, 2) for i, d in enumerate(depths))
    odd = [d for d in depths if d % 2]
    if odd:
        raise ValueError(f"depths must be even (a stem, two layers per block, a head), got {odd[0]} in {depths}")
    if len(set(depths)) != len(depths):
        raise ValueError(f"depths must be distinct, got {depths}")
    return depths


@dataclass(frozen=True)
class Intervention:
    """One change to how the deepest plain net is built or trained, to test an explanation of its failure:
    the normalisation of its blocks, and recipe settings that replace the sweep's (e.g. ``lr=0.01``).
    With ``residual_too`` its residual twin is trained the same way, as a reference."""

    name: str
    norm: str | None = "batch"
    changes: tuple[tuple[str, object], ...] = ()
    residual_too: bool = False

    def recipe(self, base: Recipe) -> Recipe:
        return dataclasses.replace(base, **dict(self.changes))

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS if self.residual_too else ("plain",)


# Each tests one account of why the deep plain net stays at chance. Gradients that explode towards the
# input: clip them, give each layer a step of its own size, or take smaller steps. Batch normalisation
# itself: train without it (with the residual twin beside it, since that changes the residual net too).
INTERVENTIONS = (
    Intervention("gradients clipped to norm 1", changes=(("clip_norm", 1.0),)),
    Intervention("per-layer normalised step (LARS-like), lr 0.01",
                 changes=(("normalise_per_layer", True), ("lr", 0.01))),
    Intervention("learning rate 0.01", changes=(("lr", 0.01),)),
    Intervention("no normalisation", norm=None, residual_too=True),
    Intervention("no normalisation, learning rate 0.01", norm=None, changes=(("lr", 0.01),), residual_too=True),
)


def depth_sweep(data: Dataset, depths: Sequence[int], seeds: Sequence[int], *, width: int, recipe: Recipe,
                interventions: Sequence[Intervention] = ()) -> DepthSweep:
    """Train a plain and a residual twin per depth and seed, all with ``recipe``; and, at the deepest
    depth, the twins under each intervention. All in as few batched runs as possible
    (:func:`resbook.grid.train_grid`: nets of one architecture together, groups side by side; the
    interventions that change only the recipe share the deepest depth's run)."""
    check_dataset("data", data)
    depths = _check_depths(depths)
    interventions = tuple(interventions)
    for i, intervention in enumerate(interventions):
        if not isinstance(intervention, Intervention):
            raise TypeError(f"interventions[{i}] must be an Intervention, got {type(intervention).__name__}")
        intervention.recipe(recipe)  # a bad setting fails here, naming itself
    by_name = {i.name: i for i in interventions}
    if len(by_name) != len(interventions):
        raise ValueError("interventions must have distinct names")
    deepest = max(depths)

    def build(configuration: tuple, seed: int) -> torch.nn.Module:
        kind, depth, *name = configuration
        norm = by_name[name[0]].norm if name else "batch"
        return twins(depth, width, data.n_features, data.n_outputs, seed=seed, kinds=(kind,), norm=norm)[0]

    def recipe_of(configuration: tuple) -> Recipe:
        return by_name[configuration[2]].recipe(recipe) if len(configuration) == 3 else recipe

    configurations = [(kind, depth) for depth in depths for kind in KINDS]
    configurations += [(kind, deepest, i.name) for i in interventions for kind in i.kinds]
    return DepthSweep(depths, train_grid(build, configurations, seeds, data, recipe_of), interventions)


def plot_training_curves(ax, sweep: DepthSweep, depth: int, smooth_window: int = 20) -> None:
    """Training loss against step at one depth: median over seeds as a line, min–max as a band."""
    from .plots import KIND_COLORS, KIND_STYLES, plot_band, smooth

    _check_sweep(sweep)
    if check_int("depth", depth, 2) not in sweep.depths:
        raise ValueError(f"depth must be one of the sweep's depths {sweep.depths}, got {depth!r}")
    smooth_window, depth = check_int("smooth_window", smooth_window, 1), int(depth)
    for kind in KINDS:
        curves = [smooth(h.loss, smooth_window) for h in sweep.histories[kind, depth]]
        plot_band(ax, curves, label=f"{kind}-{depth}", color=KIND_COLORS[kind], linestyle=KIND_STYLES[kind])
    ax.set(yscale="log", xlabel="training step", ylabel="training loss (cross-entropy, nats)")


def plot_loss_against_depth(ax, sweep: DepthSweep) -> None:
    """Final training loss against depth: median over seeds, bars from the lowest to the highest seed.

    Seeds that diverged have no final loss: they are left out of the median and the bars, and the
    legend says how many of each kind were left out.
    """
    from .plots import KIND_COLORS, KIND_STYLES

    _check_sweep(sweep)
    if not hasattr(ax, "errorbar"):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")
    for kind in KINDS:
        finite = [[v for v in sweep.final_losses(kind, d) if math.isfinite(v)] for d in sweep.depths]
        drawn = [(d, v) for d, v in zip(sweep.depths, finite) if v]
        diverged = sum(len(sweep.final_losses(kind, d)) - len(v) for d, v in zip(sweep.depths, finite))
        label = kind if not diverged else f"{kind} ({diverged} diverged run{'s' * (diverged != 1)} not drawn)"
        median = [statistics.median(v) for _, v in drawn]
        below = [m - min(v) for m, (_, v) in zip(median, drawn)]
        above = [max(v) - m for m, (_, v) in zip(median, drawn)]
        ax.errorbar([d for d, _ in drawn], median, yerr=[below, above], marker="o", capsize=3, label=label,
                    color=KIND_COLORS[kind], linestyle=KIND_STYLES[kind])
    ax.set(yscale="log", xlabel="depth (weight layers)", ylabel="final training loss (nats)",
           xticks=list(sweep.depths))


def _check_sweep(sweep: object) -> None:
    if not isinstance(sweep, DepthSweep):
        raise TypeError(f"sweep must be a resbook.degradation.DepthSweep (from depth_sweep), "
                        f"got {type(sweep).__name__}")
