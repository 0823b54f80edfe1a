"""Chapter 1, the identity baseline: a residual block only has to learn the correction ``F`` in
``y = x + F(x)``, and how the block starts decides whether the net starts as the identity.

The scaling variants of the block are nets of :func:`resbook.models.mlp` whose identity gate ``g``
and residual scale ``α`` (``y = g·x + α·F(x)``) or initial weights differ, nothing else; see
:data:`VARIANTS`. The helpers measure how far a stack of blocks is from the identity, how the second
moment of the activations grows through depth (and the recursion that predicts it), how much of the
input the identity path carries to the output, and when the zero-initialised branches come alive.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import (check_bool, check_choice, check_choices, check_dataset, check_int, check_ints, check_module,
                      check_positive_float, check_tensor)
from .batched import Group, train_groups
from .data import Dataset
from .device import one_thread
from .grid import GridRuns, train_grid
from .models import Block, mlp
from .plots import PALETTE
from .recipe import Recipe, make_optimizer
from .training import batch_indices, loss_function

# The scaling variants, as y = g·x + α·F(x) with the branch's initial weights (L blocks):
VARIANTS = (
    "plain",             # g = 0: the identity path cut (He initialisation throughout)
    "residual",          # g = 1, α = 1: the unscaled residual block
    "sum ÷ √2",          # g = α = 1/√2: the sum x + F(x) scaled
    "shortcut × 0.5",    # g = 0.5, α = 1: the popular `out + alpha * x`, alpha < 1
    "branch ÷ √L",       # g = 1, α = 1/√L: a scaled connection
    "zero-init branch",  # g = 1, α = 1, the branch's last affine layer zero: F = 0 at the start (Fixup, SkipInit)
    "nanoGPT init",      # g = 1, α = 1, the branch's last Linear drawn with std ÷ √L: an initialisation scale
)
SETTINGS = {  # the two blocks the chapter compares: chapter 0's, and the one with a pure identity path
    "no norm, pre-activation": dict(norm=None, preactivation=True),
    "batch norm, post-activation": dict(norm="batch", preactivation=False),
}
BOTH = tuple(SETTINGS)
IDENTITY_KINDS = ("plain", "residual", "zero-init branch")  # the nets taught the near-identity task
SHORTCUT_SCALE = 0.5  # the shortcut scale He et al. (2016b) tried on ResNet-110
VARIANT_STYLES = {  # colour, line style, marker: nanoGPT's init and branch ÷ √L coincide at initialisation
    "plain": (PALETTE["vermillion"], "--", "v"), "residual": (PALETTE["blue"], "-", "o"),
    "sum ÷ √2": (PALETTE["orange"], "-", "s"), "shortcut × 0.5": (PALETTE["purple"], "-.", "D"),
    "branch ÷ √L": (PALETTE["green"], "-", "^"), "zero-init branch": (PALETTE["sky"], "-", "P"),
    "nanoGPT init": (PALETTE["black"], ":", "x"),
}
HE_GAIN_SQUARED = 2.0  # Var(w) = gain² / fan_in, with gain² = 2 for ReLU (kaiming_normal_)


def _check_axes(ax: object) -> None:
    if not hasattr(ax, "errorbar"):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")


def _check_runs(runs: object) -> GridRuns:
    if not isinstance(runs, GridRuns):
        raise TypeError(f"runs must be a resbook.grid.GridRuns (from train_grid), got {type(runs).__name__}")
    return runs


def _on(model: nn.Module, x: torch.Tensor, name: str = "model") -> torch.Tensor:
    """``model(x)``, or a ValueError naming ``x`` when its shape does not fit the model."""
    try:
        return model(x)
    except RuntimeError as error:
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit {name}: {str(error).splitlines()[0]}") from None


@dataclass(frozen=True)
class Sizes:
    """One profile's sizes: the near-identity task, the variance probe, the variants trained at depth."""

    features: int  # dimension of x in the near-identity task
    samples: int
    width: int
    depths: tuple[int, ...]
    tasks: tuple[tuple[float, tuple[str, ...]], ...]  # (ε, the settings trained on y = x + ε·g(x))
    recipe: Recipe
    probe_width: int  # width of the nets whose activations are measured at initialisation
    probe_blocks: int
    probe_samples: int
    train_depth: int  # the variants trained on the digits
    train_width: int
    train_recipe: Recipe
    wakeup_steps: int


SIZES = {
    "quick": Sizes(features=8, samples=1024, width=32, depths=(4, 10, 18, 34),
                   tasks=((0.0, BOTH), (0.5, BOTH[:1])),
                   recipe=Recipe(steps=150, batch_size=128, optimizer="adam", lr=0.003),
                   probe_width=256, probe_blocks=16, probe_samples=256,
                   train_depth=34, train_width=32,
                   train_recipe=Recipe(steps=150, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                   wakeup_steps=60),
    # full: sized for a GPU, where these small nets are bound by kernel launches (modules × steps)
    "full": Sizes(features=16, samples=2048, width=64, depths=(4, 10, 18, 34, 66),
                  tasks=((0.0, BOTH), (0.1, BOTH[:1]), (0.5, BOTH)),
                  recipe=Recipe(steps=400, batch_size=128, optimizer="adam", lr=0.003),
                  probe_width=512, probe_blocks=32, probe_samples=512,
                  train_depth=66, train_width=64,
                  train_recipe=Recipe(steps=600, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                  wakeup_steps=100),
}


def near_identity_task(epsilon: float, features: int = 8, samples: int = 1024, seed: int = 0,
                       device: torch.device | str = "cpu") -> Dataset:
    """Regression onto ``y = x + ε·g(x)`` with ``g(x) = tanh(x W)``, ``x ~ N(0, I)`` and ``W`` drawn with
    ``seed`` (entries N(0, 1/features)); ``ε = 0`` is the identity map. The same ``seed`` gives the same
    ``x`` and ``g`` for every ``ε``."""
    epsilon = check_positive_float("epsilon", epsilon, allow_zero=True)
    features = check_int("features", features, 1, 4096)
    samples = check_int("samples", samples, 1, 1_000_000)
    seed = check_int("seed", seed, 0, 2**64 - 1)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=generator)
    bend = torch.tanh(x @ (torch.randn(features, features, generator=generator) / math.sqrt(features)))
    return Dataset(f"x + {epsilon:g}·g(x)", x, x + epsilon * bend, "regression").to(device)


def blocks_of(model: nn.Module) -> list[Block]:
    """The residual blocks of ``model`` from input to output."""
    check_module("model", model)
    return [m for m in model.modules() if isinstance(m, Block)]


def last_affine(branch: nn.Module) -> nn.Module:
    """The last layer of a branch that scales its output (Linear or normalisation): zero it and F = 0."""
    check_module("branch", branch)
    layers = [m for m in branch.modules() if isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.LayerNorm))]
    if not layers:
        raise ValueError("branch has no Linear or normalisation layer that scales its output")
    return layers[-1]


def gate_and_scale(variant: str, blocks: int) -> tuple[float, float]:
    """``(g, α)`` of a variant's blocks as the second moment at initialisation sees them: the nanoGPT
    initialisation (last Linear ÷ √L) acts like ``α = 1/√L``, a zero-initialised branch like ``α = 0``."""
    check_choice("variant", variant, VARIANTS)
    root = math.sqrt(check_int("blocks", blocks, 1))
    return {"plain": (0.0, 1.0), "sum ÷ √2": (1 / math.sqrt(2), 1 / math.sqrt(2)),
            "shortcut × 0.5": (SHORTCUT_SCALE, 1.0), "branch ÷ √L": (1.0, 1 / root),
            "zero-init branch": (1.0, 0.0), "nanoGPT init": (1.0, 1 / root)}.get(variant, (1.0, 1.0))


def build_variant(variant: str, depth: int, width: int, in_features: int, out_features: int, *, seed: int,
                  preactivation: bool = True, norm: str | None = None) -> nn.Sequential:
    """The ``depth``-layer :func:`resbook.models.mlp` of one scaling ``variant`` (see :data:`VARIANTS`).

    Every variant is drawn from the same random numbers for the same ``seed`` (as
    :func:`resbook.models.twins` does), then its ``g`` and ``α`` buffers or its branches' last layers
    are set; the caller's random state is left as it was.
    """
    check_choice("variant", variant, VARIANTS)
    seed = check_int("seed", seed, 0, 2**64 - 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = mlp(depth, width, in_features, out_features, residual=variant != "plain", norm=norm,
                  preactivation=preactivation, zero_init_branch=variant == "zero-init branch")
    blocks = blocks_of(net)
    if not blocks or variant in ("plain", "residual", "zero-init branch"):
        return net
    gate, scale = gate_and_scale(variant, len(blocks))
    with torch.no_grad():
        for block in blocks:
            if variant == "nanoGPT init":  # nanoGPT: std 0.02 / √(2·n_layer), i.e. ÷ √(number of branches)
                last_affine(block.branch).weight.mul_(scale)
            else:
                block.identity_gate.fill_(gate)
                block.residual_scale.fill_(scale)
    return net


@torch.no_grad()
def distance_to_identity(blocks: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """How far a stack of blocks ``f`` is from the identity on ``x``: ``max |f(x) − x|`` over all
    entries, and the relative distance ``‖f(x) − x‖ / ‖x‖`` (Frobenius norms)."""
    check_module("blocks", blocks)
    check_tensor("x", x)
    y = _on(blocks, x, "blocks")
    if y.shape != x.shape:
        raise ValueError(f"blocks must map x to the same shape, got {tuple(x.shape)} -> {tuple(y.shape)}")
    return float((y - x).abs().max()), float((y - x).norm() / x.norm())


@torch.no_grad()
def activation_statistics(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Through the blocks of ``model`` (an :func:`resbook.models.mlp`; its stem runs first, its head is
    not used), for ``h_0`` the first block's input and ``h_l`` the output of block ``l``:

    * ``E[h_l²]``, the mean over samples and features (the activation scale), and
    * ``cos(h_0, h_l)``, the mean over samples of ``⟨h_0, h_l⟩ / (‖h_0‖ ‖h_l‖)``: the share of the output
      that points along the input (1 for the identity, about 0 for a random map).

    Each is an array of ``L + 1`` numbers for ``L`` blocks (index 0: the input itself).
    """
    check_module("model", model)
    check_tensor("x", x)
    if not isinstance(model, nn.Sequential) or not blocks_of(model):
        raise ValueError("model must be an nn.Sequential with resbook.models.Block s (from resbook.models.mlp)")
    _on(model[: list(model).index(blocks_of(model)[0]) + 1], x)  # the stem and first block: x fits them
    states, h = [], x
    for layer in model:
        if isinstance(layer, Block):
            states = states or [h]
            h = layer(h)
            states.append(h)
        elif not states:
            h = layer(h)
    moments = [float(h.pow(2).mean()) for h in states]
    cosines = [float(nn.functional.cosine_similarity(states[0], h, dim=1).mean()) for h in states]
    return np.array(moments), np.array(cosines)


def block_factor(preactivation: bool, gate: float = 1.0, scale: float = 1.0, gain_squared: float = HE_GAIN_SQUARED,
                 ) -> float:
    """``E[x_{l+1}²] / E[x_l²]`` of an unnormalised pre-activation block ``g·x + α·W₂ relu(W₁ relu(x))``
    at initialisation: ``g² + α²·(gain²/2)²`` (each ReLU halves the second moment of a symmetric input,
    each Linear multiplies it by ``gain²``, and x and F(x) are uncorrelated). Pre-activation only: a
    post-activation block's factor depends on the law of x (see :func:`predicted_second_moments`)."""
    if not check_bool("preactivation", preactivation):
        raise ValueError("block_factor has a closed form for pre-activation blocks only; "
                         "use predicted_second_moments(..., preactivation=False)")
    gate = check_positive_float("gate", gate, allow_zero=True)
    scale = check_positive_float("scale", scale, allow_zero=True)
    gain_squared = check_positive_float("gain_squared", gain_squared)
    return gate**2 + scale**2 * (gain_squared / 2) ** 2


def predicted_second_moments(blocks: int, *, preactivation: bool, gate: float = 1.0, scale: float = 1.0,
                             samples: int = 2**18, seed: int = 0) -> np.ndarray:
    """``E[x_l²] / E[x_0²]`` for ``l = 0 … blocks`` at initialisation (He init, no normalisation), in the
    wide limit, where every coordinate of a branch's output is Gaussian, independent of x, with the
    variance the Linear layers give it.

    Pre-activation: ``q_{l+1} = (g² + α²) q_l`` (:func:`block_factor`). Post-activation,
    ``x_{l+1} = relu(g·x_l + α·F(x_l))`` with ``x_0 = relu(N(0, v))`` (the stem's output): the
    one-dimensional recursion ``x ← relu(g·x + σ z)``, ``σ² = 2 α² E[x²]``, evaluated on ``samples``
    scalar draws. Its first factor is ``2 + 1/π`` for ``g = α = 1``.
    """
    blocks = check_int("blocks", blocks, 0)
    check_bool("preactivation", preactivation)
    gate = check_positive_float("gate", gate, allow_zero=True)
    scale = check_positive_float("scale", scale, allow_zero=True)
    if preactivation:
        return block_factor(True, gate, scale) ** np.arange(blocks + 1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**64 - 1))
    x = torch.relu(torch.randn(check_int("samples", samples, 2), generator=generator, dtype=torch.float64))
    moments = [float(x.pow(2).mean())]
    for _ in range(blocks):
        sigma = math.sqrt(HE_GAIN_SQUARED * scale**2 * moments[-1])  # Linear ×2, ReLU ÷2, Linear ×2
        x = torch.relu(gate * x + sigma * torch.randn(x.shape, generator=generator, dtype=torch.float64))
        moments.append(float(x.pow(2).mean()))
    return np.array(moments) / moments[0]


@dataclass
class Probe:
    """Activation statistics of every variant at initialisation, ``L`` unnormalised blocks:
    ``moments[v][l] = E[h_l²] / E[h_0²]`` (geometric mean over seeds: the growth is a product),
    ``cosines[v][l] = cos(h_0, h_l)`` (mean over seeds), and the ``predicted`` moments of
    :func:`predicted_second_moments`."""

    blocks: int
    preactivation: bool
    moments: dict[str, np.ndarray]
    cosines: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]

    def growth_per_block(self, variant: str) -> tuple[float, float]:
        """The measured and predicted factor per block, geometric mean over the L blocks."""
        check_choice("variant", variant, tuple(self.moments))
        return (float(self.moments[variant][-1] ** (1 / self.blocks)),
                float(self.predicted[variant][-1] ** (1 / self.blocks)))


@one_thread()
def probe_variants(blocks: int, width: int, samples: int, seeds: range | tuple, *, preactivation: bool,
                   variants: tuple[str, ...] = VARIANTS, seed: int = 0) -> Probe:
    """Measure :func:`activation_statistics` of every variant with ``blocks`` unnormalised blocks of
    ``width`` on ``samples`` standard normal inputs (drawn with ``seed``), for each of ``seeds``."""
    blocks = check_int("blocks", blocks, 1)
    seeds = check_ints("seeds", seeds, 0, 2**64 - 1, distinct=True)
    variants = check_choices("variants", variants, VARIANTS)
    check_bool("preactivation", preactivation)
    x = torch.randn(check_int("samples", samples, 1), check_int("width", width, 1),
                    generator=torch.Generator().manual_seed(check_int("seed", seed, 0, 2**64 - 1)))
    moments, cosines, predicted = {}, {}, {}
    for variant in variants:
        stats = [activation_statistics(build_variant(variant, 2 * blocks + 2, width, width, 1, seed=s,
                                                     preactivation=preactivation), x) for s in seeds]
        moments[variant] = np.exp(np.mean([np.log(m / m[0]) for m, _ in stats], axis=0))  # geometric mean
        cosines[variant] = np.mean([c for _, c in stats], axis=0)
        gate, scale = gate_and_scale(variant, blocks)
        predicted[variant] = predicted_second_moments(blocks, preactivation=preactivation, gate=gate, scale=scale)
    return Probe(blocks, preactivation, moments, cosines, predicted)


@dataclass
class Wakeup:
    """Per training step of a net with zero-initialised branches: the gradient norm of the branches'
    inner parameters (every parameter but the last affine layer's) and of their last affine layers."""

    inner: np.ndarray
    last: np.ndarray

    @property
    def first_alive(self) -> int:
        """The first step (counted from 1) at which the inner parameters get a non-zero gradient."""
        alive = np.flatnonzero(self.inner > 0)
        return int(alive[0]) + 1 if alive.size else 0

    def steps_until(self, share: float) -> int:
        """The first step (from 1) at which the inner gradient is at least ``share`` of the last layers'."""
        share = check_positive_float("share", share)
        reached = np.flatnonzero(self.inner >= share * self.last)
        return int(reached[0]) + 1 if reached.size else 0


@one_thread()
def branch_wakeup(model: nn.Module, data: Dataset, recipe: Recipe, *, seed: int = 0) -> Wakeup:
    """Train ``model`` in place with ``recipe`` (on minibatches drawn with ``seed``) and record, at every
    step before the update, the gradient norms of its branches' inner and last affine parameters."""
    check_module("model", model)
    check_dataset("data", data)
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a resbook.recipe.Recipe, got {type(recipe).__name__}")
    blocks = blocks_of(model)
    if not blocks:
        raise ValueError("model has no resbook.models.Block whose branches could wake up")
    last = {id(p) for b in blocks for p in last_affine(b.branch).parameters()}
    branch = [p for b in blocks for p in b.branch.parameters()]
    inner, outer = [p for p in branch if id(p) not in last], [p for p in branch if id(p) in last]
    model.to(data.x.device).train()
    optimizer, loss_of = make_optimizer(recipe, model.parameters()), loss_function(data.task)
    norms = []
    for index in batch_indices(len(data), recipe.batch_size, recipe.steps, seed).to(data.x.device):
        optimizer.zero_grad(set_to_none=False)
        loss_of(model(data.x[index]), data.y[index]).backward()
        norms.append([float(torch.cat([p.grad.flatten() for p in group]).norm()) for group in (inner, outer)])
        optimizer.step()
    inner_norms, last_norms = np.array(norms).T
    return Wakeup(inner_norms, last_norms)


def identity_sweep(sizes: Sizes, seeds: range | tuple, *, kinds: tuple[str, ...] = IDENTITY_KINDS,
                   seed: int = 0, device: torch.device | str = "cpu") -> dict[float, GridRuns]:
    """Train every kind and depth of ``sizes``, in each setting of each of its tasks, on the near-identity
    task ``y = x + ε·g(x)`` (data drawn with ``seed``, on ``device``):
    ``result[ε].histories[setting, kind, depth]``."""
    if not isinstance(sizes, Sizes):
        raise TypeError(f"sizes must be a resbook.identity.Sizes, got {type(sizes).__name__}")
    kinds = check_choices("kinds", kinds, VARIANTS)

    def build(configuration: tuple[str, str, int], net_seed: int) -> nn.Module:
        setting, kind, depth = configuration
        return build_variant(kind, depth, sizes.width, sizes.features, sizes.features, seed=net_seed,
                             **SETTINGS[setting])

    runs = {}
    for epsilon, settings in sizes.tasks:
        configurations = [(check_choice("setting", s, SETTINGS), k, d)
                          for s in settings for d in sizes.depths for k in kinds]
        runs[epsilon] = train_grid(build, configurations, seeds,
                                   near_identity_task(epsilon, sizes.features, sizes.samples, seed, device),
                                   sizes.recipe)
    return runs


def train_variants(data: Dataset, variants: tuple[str, ...], *, depth: int, width: int, seeds: range | tuple,
                   recipe: Recipe, preactivation: bool = True, workers: int = 2) -> GridRuns:
    """Train every variant and seed at one depth, unnormalised. They share one architecture: on a CPU
    they are split into ``workers`` batched groups (round robin) that run side by side, on a GPU they
    form one batched group."""
    workers = check_int("workers", workers, 1) if check_dataset("data", data).x.device.type == "cpu" else 1
    start = time.perf_counter()
    variants = check_choices("variants", variants, VARIANTS)
    seeds = check_ints("seeds", seeds, 0, 2**64 - 1, distinct=True)
    runs = [(v, s, build_variant(v, depth, width, data.n_features, data.n_outputs, seed=s,
                                 preactivation=preactivation)) for v in variants for s in seeds]
    parts = [runs[i::workers] for i in range(min(workers, len(runs)))]
    histories = train_groups([Group([m for _, _, m in part], [s for _, s, _ in part], recipe) for part in parts],
                             data, workers=len(parts))
    by_run = {(v, s): (h, m) for part, part_histories in zip(parts, histories)
              for (v, s, m), h in zip(part, part_histories)}
    seeds = tuple(seeds)
    return GridRuns(tuple(variants), seeds, {v: [by_run[v, s][0] for s in seeds] for v in variants},
                    {v: [by_run[v, s][1] for s in seeds] for v in variants}, time.perf_counter() - start)


def final_losses(runs: GridRuns, configurations: list, window: int = 20) -> list[float]:
    """The median over seeds of each configuration's mean loss over its last ``window`` steps."""
    configurations = check_choices("configurations", configurations, _check_runs(runs).configurations)
    return [runs.median_final_loss(configuration, window) for configuration in configurations]


def loss_table(sweep: dict[float, GridRuns], depths: tuple[int, ...], kinds: tuple[str, ...] = IDENTITY_KINDS,
               window: int = 20) -> str:
    """A Markdown table of final losses (median over seeds) by task, setting and kind (rows) and depth."""
    if not isinstance(sweep, dict) or not all(isinstance(runs, GridRuns) for runs in sweep.values()):
        raise TypeError(f"sweep must be a dict ε -> GridRuns (from identity_sweep), got {sweep!r}"[:200])
    trained = [c for runs in sweep.values() for c in runs.configurations]
    depths = check_choices("depths", depths, tuple(dict.fromkeys(c[2] for c in trained)))
    kinds = check_choices("kinds", kinds, tuple(dict.fromkeys(c[1] for c in trained)))
    rows = [f"| ε | setting | net | {' | '.join(f'{d} layers' for d in depths)} |",
            "|---:|:---|:---|" + "---:|" * len(depths)]
    for epsilon, runs in sweep.items():
        for setting in dict.fromkeys(c[0] for c in runs.configurations):
            for kind in kinds:
                losses = final_losses(runs, [(setting, kind, d) for d in depths], window)
                rows.append(f"| {epsilon:g} | {setting} | {kind} | " + " | ".join(f"{v:.3g}" for v in losses) + " |")
    return "\n".join(rows)


def plot_losses_against_depth(ax, runs: GridRuns, setting: str, depths: tuple[int, ...],
                              kinds: tuple[str, ...] = IDENTITY_KINDS, window: int = 20) -> None:
    """Final loss against depth, one line per kind: the median over seeds, bars from lowest to highest."""
    _check_axes(ax)
    check_choice("setting", setting, tuple(dict.fromkeys(c[0] for c in _check_runs(runs).configurations)))
    depths = check_choices("depths", depths, tuple(dict.fromkeys(c[2] for c in runs.configurations)))
    kinds = check_choices("kinds", kinds, tuple(dict.fromkeys(c[1] for c in runs.configurations)))
    for kind in kinds:
        color, linestyle, marker = VARIANT_STYLES[kind]
        per_seed = np.array([runs.final_losses((setting, kind, d), window) for d in depths])
        median = np.median(per_seed, axis=1)
        ax.errorbar(depths, median, yerr=[median - per_seed.min(1), per_seed.max(1) - median], label=kind,
                    color=color, linestyle=linestyle, marker=marker, capsize=3)
    ax.set(yscale="log", xlabel="depth (weight layers)", ylabel="final training loss (MSE)", xticks=list(depths))


def plot_moments(ax, probe: Probe, variants: tuple[str, ...] = VARIANTS) -> None:
    """``E[h_l²] / E[h_0²]`` against block ``l``: measured (markers) and predicted (thin lines)."""
    _check_axes(ax)
    if not isinstance(probe, Probe):
        raise TypeError(f"probe must be a resbook.identity.Probe (from probe_variants), got {type(probe).__name__}")
    blocks = np.arange(probe.blocks + 1)
    for variant in check_choices("variants", variants, tuple(probe.moments)):
        color, linestyle, marker = VARIANT_STYLES[variant]
        ax.plot(blocks, probe.moments[variant], color=color, linestyle="none", marker=marker, markersize=4,
                label=variant)
        ax.plot(blocks, probe.predicted[variant], color=color, linestyle=linestyle, linewidth=1)
    ax.set(yscale="log", xlabel="block l (0 = the first block's input)", ylabel="E[h_l²] ÷ E[h_0²]")


def plot_training(ax, runs: GridRuns, variants: tuple[str, ...] = VARIANTS, window: int = 10) -> None:
    """Training loss against step for every variant: the median over seeds of the smoothed curves (a
    diverged run stops where it diverged)."""
    from .plots import plot_band, smooth

    _check_axes(ax)
    for variant in check_choices("variants", variants, _check_runs(runs).configurations):
        color, linestyle, _ = VARIANT_STYLES[variant]
        plot_band(ax, [smooth(h.loss, window) for h in runs.histories[variant]], label=variant, color=color,
                  linestyle=linestyle)
    ax.set(yscale="log", xlabel="training step", ylabel="training loss (nats)")


@one_thread()
def distances_at_init(depths: tuple[int, ...], width: int, x: torch.Tensor, *, seed: int,
                      variants: tuple[str, ...] = ("zero-init branch", "residual")) -> dict[tuple, tuple[float, float]]:
    """:func:`distance_to_identity` of the blocks of unnormalised nets at initialisation, by
    ``(variant, block, depth)`` with block ``"pre-activation"`` or ``"post-activation"``."""
    depths, variants = check_ints("depths", depths, 2), check_choices("variants", variants, VARIANTS)
    if check_tensor("x", x).ndim != 2 or x.shape[1] != check_int("width", width, 1):
        raise ValueError(f"x must be samples × width ({width}), got shape {tuple(x.shape)}")
    distances = {}
    for variant in variants:
        for block in ("pre-activation", "post-activation"):
            for depth in depths:
                net = build_variant(variant, depth, width, width, 1, seed=seed,
                                    preactivation=block == "pre-activation")
                distances[variant, block, depth] = distance_to_identity(nn.Sequential(*blocks_of(net)), x)
    return distances
