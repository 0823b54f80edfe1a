"""Chapter 2, the gradient highway: what the identity path does for the backward signal.

Through a block ``y = act(g·x + α·F(x))`` the gradient is multiplied by the block's Jacobian
``D (g I + α J)``, with ``J = ∂F/∂x`` and ``D`` the activation's derivative after the sum (``D = I``
in a pre-activation block). This module builds the nets the chapter compares (:data:`VARIANTS`),
measures the backward signal layer by layer on training minibatches, checks the product formula
against autograd, shows what a dead branch passes, and measures *shattered gradients* (Balduzzi et
al., 2017): the gradient of a net's output with respect to a 1-D input, along a fine grid of inputs,
its correlation length and how that decays with depth.
"""
from __future__ import annotations

import copy
import math
import numbers
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import jacrev

from ._checks import (check_choice, check_choices, check_int, check_ints, check_module, check_numbers,
                      check_positive_float, check_tensor)
from .data import Dataset
from .device import one_thread
from .gradients import backward_signal_norms, gradient_norms_per_layer
from .grid import GridRuns, train_grid
from .models import KINDS, blocks_of, mlp, weight_layers
from .recipe import Recipe


@dataclass(frozen=True)
class Sizes:
    """Chapter 2's experiment in one profile."""

    width: int
    depths: tuple[int, ...]  # gradient through depth, at initialisation
    train_depth: int  # the depth trained, for gradients after training and pre- against post-activation
    recipe: Recipe
    gradient_batches: int  # training minibatches each gradient is measured on (median over them)
    shatter_depths: tuple[int, ...]  # depths of the 1-D nets whose input gradient is measured
    grid_points: int  # inputs in [-2, 2] at which it is measured
    compare_depth: int = 20  # where plain and residual correlation lengths are compared (fixed in advance)


SIZES = {
    "quick": Sizes(width=32, depths=(10, 20, 50, 100), train_depth=50,
                   recipe=Recipe(steps=100, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                   gradient_batches=2, shatter_depths=(4, 6, 8, 10, 14, 20, 28, 40, 56, 80, 100),
                   grid_points=2048),
    "full": Sizes(width=64, depths=(10, 20, 50, 100, 200), train_depth=100,
                  recipe=Recipe(steps=400, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                  gradient_batches=8, shatter_depths=(4, 6, 8, 10, 14, 20, 28, 40, 56, 80, 100, 140, 200),
                  grid_points=4096),
}


@dataclass(frozen=True)
class Variant:
    """A net of the comparison: the options of :func:`resbook.models.mlp`, a branch scale of ``1/√blocks``
    if ``scaled``, and every initial weight multiplied by ``init_scale`` (below 1: a small initialisation)."""

    name: str
    key: str  # the name as a Python identifier, for glued numbers
    residual: bool
    norm: str | None
    activation: str = "relu"
    preactivation: bool = False
    scaled: bool = False
    init_scale: float = 1.0

    def build(self, depth: int, width: int, in_features: int, out_features: int, seed: int) -> nn.Sequential:
        """This variant's ``depth``-layer net, its weights drawn with ``seed`` (the caller's random state kept)."""
        seed = check_int("seed", seed, 0, 2**64 - 1)
        blocks = max((check_int("depth", depth, 2) - 2) // 2, 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = mlp(depth, width, in_features, out_features, residual=self.residual, norm=self.norm,
                      activation=self.activation, preactivation=self.preactivation,
                      residual_scale=1 / math.sqrt(blocks) if self.scaled else 1.0)
        with torch.no_grad():
            for layer in weight_layers(net):
                layer.weight.mul_(self.init_scale)
        return net


VARIANTS = {v.name: v for v in (
    Variant("plain, small init", "plain_small", residual=False, norm=None, activation="tanh", init_scale=0.8),
    Variant("plain, He init", "plain_he", residual=False, norm=None),
    Variant("plain, batch norm", "plain_bn", residual=False, norm="batch"),
    Variant("residual", "residual", residual=True, norm=None),
    Variant("residual, batch norm", "residual_bn", residual=True, norm="batch"),
    Variant("residual, α = 1/√L", "residual_scaled", residual=True, norm=None, scaled=True),
    Variant("residual, pre-activation", "residual_pre", residual=True, norm="batch", preactivation=True),
    Variant("plain, pre-activation", "plain_pre", residual=False, norm="batch", preactivation=True),
    Variant("residual, small init", "residual_small", residual=True, norm=None, activation="tanh", init_scale=0.8),
)}
COMPARED = tuple(list(VARIANTS)[:6])  # the six nets whose gradient the chapter follows through depth
PRE_ACTIVATION = ("residual, pre-activation", "plain, pre-activation")


def _variant(name: str) -> Variant:
    return VARIANTS[check_choice("variant", name, VARIANTS)]


# --- the backward signal through depth ---------------------------------------------------------

MEASURES = {"signal": backward_signal_norms, "weights": gradient_norms_per_layer}


@dataclass
class GradientSweep:
    """Per-layer gradient norms of each variant and depth: ``norms[measure][variant, depth][i]`` is seed i's,
    the median over the minibatches; ``"signal"`` is ‖∂L/∂x_l‖ between blocks, ``"weights"`` ‖∂L/∂W_l‖."""

    norms: dict[str, dict[tuple[str, int], list[np.ndarray]]]

    def ratio(self, variant: str, depth: int, measure: str = "signal") -> float:
        """First ÷ last (input side ÷ output side), median over seeds."""
        return statistics.median(float(n[0] / n[-1]) for n in self._runs(variant, depth, measure))

    def spread(self, variant: str, depth: int, measure: str = "signal") -> float:
        """Largest ÷ smallest norm across the layers, median over seeds."""
        return statistics.median(float(n.max() / n.min()) for n in self._runs(variant, depth, measure))

    def median_norms(self, variant: str, depth: int, measure: str = "signal") -> np.ndarray:
        return np.median(self._runs(variant, depth, measure), 0)

    def _runs(self, variant: str, depth: int, measure: str) -> list[np.ndarray]:
        runs = self.norms[check_choice("measure", measure, MEASURES)]
        try:
            measured = (variant, depth) in runs
        except TypeError:  # unhashable
            raise TypeError(f"variant must be a name and depth an int, got {variant!r} and {depth!r}") from None
        if not measured:
            raise ValueError(f"no measurement for variant {variant!r} at depth {depth}")
        return runs[variant, depth]


def gradient_sweep(batches: Sequence[Dataset], variants: Sequence[str], depths: Sequence[int], *, width: int,
                   seeds: Sequence[int], models: dict | None = None,
                   weight_depths: Sequence[int] | None = None) -> GradientSweep:
    """Measure every variant at every depth and seed at initialisation, on each minibatch of ``batches``
    (median over them), or the trained ``models[variant][i]`` of seed i when given (one depth). The weight
    gradients are measured at ``weight_depths`` only (default: every depth), the backward signal at all."""
    if not isinstance(batches, Sequence) or not batches or not all(isinstance(b, Dataset) for b in batches):
        raise TypeError("batches must be a non-empty sequence of resbook.data.Dataset minibatches")
    variants, depths = check_choices("variants", variants, VARIANTS), check_ints("depths", depths, 2)
    width, seeds = check_int("width", width, 1), check_ints("seeds", seeds, 0, 2**64 - 1, distinct=True)
    first, weight_depths = batches[0], depths if weight_depths is None else weight_depths
    norms: dict[str, dict] = {name: {} for name in MEASURES}
    with one_thread():  # thousands of tiny operations: a second thread only waits
        _measure_all(norms, batches, variants, depths, weight_depths, width, seeds, models, first)
    return GradientSweep(norms)


def _measure_all(norms: dict, batches: Sequence[Dataset], variants: Sequence[str], depths: Sequence[int],
                 weight_depths: Sequence[int], width: int, seeds: Sequence[int], models: dict | None,
                 first: Dataset) -> None:
    for name in variants:
        for depth in depths:
            nets = (models[name] if models is not None else
                    [_variant(name).build(depth, width, first.n_features, first.n_outputs, s) for s in seeds])
            for measure, fn in MEASURES.items():
                if measure == "signal" or depth in weight_depths:
                    norms[measure][name, depth] = [np.median([fn(net, b) for b in batches], 0) for net in nets]


def forward_signal_norms(model: nn.Module, data: Dataset) -> list[float]:
    """‖x_l‖ (Frobenius, over all samples) of the signal between blocks, l = 0 … B, in training mode, the model
    left as it was: with :func:`resbook.gradients.backward_signal_norms`, the two factors of ``∂L/∂W = δ aᵀ``."""
    check_module("model", model)
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a resbook.data.Dataset, got {type(data).__name__}")
    copied = copy.deepcopy(model).to(data.x.device).train()  # its batch norm statistics may move: a copy
    blocks = blocks_of(copied)
    signals: list[torch.Tensor] = []
    blocks[0].register_forward_pre_hook(lambda _, inputs: signals.append(inputs[0]))
    for block in blocks:
        block.register_forward_hook(lambda _, __, output: signals.append(output))
    with torch.no_grad():
        copied(data.x)
    return [float(s.double().norm()) for s in signals]  # float64: a vanishing signal's squares underflow


def train_variants(data: Dataset, variants: Sequence[str], depth: int, *, width: int, seeds: Sequence[int],
                   recipe: Recipe) -> GridRuns:
    """Train every variant at ``depth`` for every seed, nets of one architecture side by side."""
    variants, seeds = check_choices("variants", variants, VARIANTS), check_ints("seeds", seeds, 0, 2**64 - 1)

    def build(name: str, seed: int) -> nn.Module:
        return _variant(name).build(depth, width, data.n_features, data.n_outputs, seed)
    return train_grid(build, variants, seeds, data, recipe)


# --- the math: the Jacobian through the blocks ------------------------------------------------

def _per_sample(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda v: module(v[None])[0]


def block_jacobians(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each block's Jacobian by the formula ``D_l (g I + α J_l)`` at the sample ``x`` that enters the first
    block, and the product ``∂x_B/∂x_0 = ∏_l D_l (g I + α J_l)`` (last block on the left).

    ``J_l`` is the branch's Jacobian and ``D_l`` the activation's after the sum, each on its own (``torch.func``);
    the model must be in evaluation mode, so that a sample's output does not depend on the others.
    """
    check_module("model", model)
    check_tensor("x", x)
    if model.training:
        raise ValueError("model must be in evaluation mode (model.eval()): in training mode batch norm mixes samples")
    blocks = blocks_of(model)
    width = next(m for m in blocks[0].branch.modules() if isinstance(m, nn.Linear)).in_features
    if x.ndim != 1 or x.shape[0] != width:
        raise ValueError(f"x must be one sample (1-D, the width {width} of the blocks), got shape {tuple(x.shape)}")
    jacobians, product = [], torch.eye(x.shape[0], dtype=x.dtype)
    for block in blocks:
        branch_jacobian = jacrev(_per_sample(block.branch))(x)
        total = block.identity_gate * x + block.residual_scale * _per_sample(block.branch)(x)
        after = jacrev(_per_sample(block.after))(total)
        jacobians.append(after @ (block.identity_gate * torch.eye(x.shape[0], dtype=x.dtype)
                                  + block.residual_scale * branch_jacobian))
        product = jacobians[-1] @ product
        x = block(x[None])[0]
    return [j.detach() for j in jacobians], product.detach()


# --- a dead branch ------------------------------------------------------------------------------

BLOCK_TYPES = ("pre-activation residual", "post-activation residual", "plain")


@dataclass
class DeadBranch:
    """One block of each type with the same dead branch (its inner ReLU inactive for every input): the
    input ``x``, the ``upstream`` gradient, what each block passes back (``passed[type]``), the branch's
    Jacobian (zero when dead), and which coordinates the ReLU after a post-activation sum lets through."""

    x: torch.Tensor
    upstream: torch.Tensor
    passed: dict[str, torch.Tensor]
    branch_jacobians: dict[str, torch.Tensor]
    active_after_sum: torch.Tensor


def dead_branch_gradients(width: int = 8, samples: int = 16, seed: int = 0) -> DeadBranch:
    """Build each block type from ``seed``, kill its branch (first Linear: weight 0, bias -1, so the ReLU
    after it only sees -1) and pass an upstream gradient back through it with ``torch.func.vjp``."""
    width, samples = check_int("width", width, 1), check_int("samples", samples, 1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**64 - 1))
    x, upstream = torch.randn(2, samples, width, generator=generator)
    passed, jacobians = {}, {}
    for kind in BLOCK_TYPES:
        net = mlp(4, width, width, width, residual=kind != "plain", norm=None, preactivation=kind.startswith("pre"))
        block = blocks_of(net)[0]
        first = next(m for m in block.branch if isinstance(m, nn.Linear))
        with torch.no_grad():
            first.weight.zero_(), first.bias.fill_(-1.0)
        _, pull_back = torch.func.vjp(block, x)
        passed[kind] = pull_back(upstream)[0].detach()
        jacobians[kind] = jacrev(_per_sample(block.branch))(x[0]).detach()
    return DeadBranch(x, upstream, passed, jacobians, x > 0)


# --- shattered gradients ------------------------------------------------------------------------

def input_grid(points: int, low: float = -2.0, high: float = 2.0) -> torch.Tensor:
    """``points`` equally spaced 1-D inputs from ``low`` to ``high``, as a (points × 1) batch."""
    points = check_int("points", points, 8)
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"low must be below high, both finite; got {low!r}, {high!r}")
    return torch.linspace(low, high, points)[:, None]


def _frozen_gradient(model: nn.Module, grid: torch.Tensor) -> torch.Tensor:
    """df/dx at every grid point with batch norm frozen at the statistics of one training-mode pass over
    ``grid``; the model is put back as it was (mode, parameters, statistics, momenta), also if this raises."""
    model.to(grid.device)  # as the core's measurements do: the model goes to its data's device
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    state, momenta, was_training = copy.deepcopy(model.state_dict()), [n.momentum for n in norms], model.training
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: after one batch, that batch's mean and variance
        model.train()
        with torch.no_grad():
            model(grid)
        model.eval()
        x = grid.clone().requires_grad_(True)
        with torch.enable_grad():  # points are independent: the gradient of the sum is df/dx at each point
            return torch.autograd.grad(model(x).sum(), x)[0]
    finally:
        model.load_state_dict(state)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)


def input_gradients(models: Sequence[nn.Module], grid: torch.Tensor) -> np.ndarray:
    """``df/dx`` of each 1-input, 1-output model at every grid point: one row per model.

    Batch norm is frozen first (statistics of the grid, then evaluation mode), so that each point's
    output depends on that point alone; all the points of the grid go through one forward and one
    backward pass per model (batching the models with ``vmap`` was measured slower on a CPU).
    """
    check_tensor("grid", grid)
    if grid.ndim != 2 or grid.shape[1] != 1 or grid.shape[0] < 2:
        raise ValueError(f"grid must be (points × 1) with at least 2 points, got shape {tuple(grid.shape)}")
    if isinstance(models, nn.Module) or not isinstance(models, Sequence) or not models:
        raise TypeError("models must be a non-empty sequence of torch.nn.Module")
    layers = weight_layers(check_module("models[0]", models[0]))
    if layers[0].in_features != 1 or layers[-1].out_features != 1:
        raise ValueError("models must each take one input feature and give one output")
    with one_thread():  # thousands of tiny operations: a second thread only waits
        rows = [_frozen_gradient(check_module(f"models[{i}]", m), grid) for i, m in enumerate(models)]
    grads = torch.stack(rows)
    return grads[..., 0].detach().cpu().double().numpy()


def shatter_sweep(kinds: Sequence[str], depths: Sequence[int], seeds: Sequence[int], grid: torch.Tensor, *,
                  width: int, norm: str | None = "batch", preactivation: bool = False
                  ) -> dict[tuple[str, int], np.ndarray]:
    """Input gradients over ``grid`` of plain and residual 1-D nets (``kinds``) at every depth and seed:
    ``result[kind, depth]`` is seeds × points."""
    kinds, depths = check_choices("kinds", kinds, KINDS), check_ints("depths", depths, 2)
    seeds = check_ints("seeds", seeds, 0, 2**64 - 1, distinct=True)
    variant = Variant("1-D", "one_d", residual=False, norm=norm, preactivation=preactivation)
    result = {}
    for depth in depths:
        nets = []
        for kind in kinds:
            nets += [Variant(**{**variant.__dict__, "residual": kind == "residual"}).build(depth, width, 1, 1, seed)
                     for seed in seeds]
        grads = input_gradients(nets, grid)
        for i, kind in enumerate(kinds):
            result[kind, depth] = grads[i * len(seeds):(i + 1) * len(seeds)]
    return result


def notebook_style_plain(depth: int, width: int, seed: int) -> nn.Sequential:
    """A plain ReLU MLP on one input without normalisation whose weights *and biases* are drawn with variance
    ``1/width`` (Glorot's variance, half He's), as in the popular notebook version of the shattering experiment
    (*Understanding Deep Learning*, notebook 11.1). The caller's random state is kept."""
    net = Variant("notebook", "notebook", residual=False, norm=None).build(depth, width, 1, 1, seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in weight_layers(net):
            layer.weight.normal_(0.0, 1 / math.sqrt(layer.in_features), generator=generator)
            layer.bias.normal_(0.0, 1 / math.sqrt(width), generator=generator)
    return net


def centred_plain(depth: int, width: int, seed: int, grid: torch.Tensor) -> nn.Sequential:
    """A plain He-initialised ReLU MLP on one input without normalisation whose biases are set, layer by layer
    from the input, so that every unit's pre-activation has mean zero over ``grid``: ``b_j = -mean_x (W h(x))_j``.
    This is batch norm's shift (frozen at the grid's statistics) without its scaling. The caller's random
    state is kept."""
    check_tensor("grid", grid)
    if grid.ndim != 2 or grid.shape[1] != 1 or grid.shape[0] < 2:
        raise ValueError(f"grid must be (points × 1) with at least 2 points, got shape {tuple(grid.shape)}")
    net = VARIANTS["plain, He init"].build(depth, width, 1, 1, seed).to(grid.device)
    layers = weight_layers(net)
    with torch.no_grad():
        for layer in layers:
            layer.bias.zero_()
        for layer in layers[:-1]:
            seen = {}
            hook = layer.register_forward_hook(lambda module, inputs, out: seen.__setitem__("out", out))
            try:
                net(grid)
            finally:
                hook.remove()
            layer.bias.copy_(-seen["out"].mean(0))
    return net


def autocorrelation(signal: np.ndarray | Sequence[float]) -> np.ndarray:
    """``r(k) = Σ_i (s_i - s̄)(s_{i+k} - s̄) / Σ_i (s_i - s̄)²`` for lags ``k = 0 … n-1`` (so ``r(0) = 1``)."""
    s = check_numbers("signal", signal)
    if s.ndim != 1 or len(s) < 2 or not np.isfinite(s).all():
        raise ValueError(f"signal must be a 1-D sequence of at least 2 finite numbers, got shape {s.shape}")
    s = s - s.mean()
    if not np.any(s):
        raise ValueError("signal is constant: its autocorrelation is undefined")
    spectrum = np.fft.rfft(s, 2 * len(s))  # zero-padded: the circular correlation is the linear one
    lagged = np.fft.irfft(spectrum * np.conj(spectrum))[: len(s)]
    return lagged / lagged[0]


def correlation_length(signal: np.ndarray | Sequence[float], threshold: float = 0.5) -> float:
    """The lag, in samples, at which the autocorrelation first falls below ``threshold``, interpolated
    linearly between the last lag above it and the first below; ``len(signal)`` if it never does.

    White noise gives about 0.5; an AR(1) process ``r(k) = φ^k`` gives ``ln 0.5 / ln φ``; a sinusoid of
    period P samples gives ``P/6``."""
    threshold = check_positive_float("threshold", threshold)
    if threshold >= 1:
        raise ValueError(f"threshold must be below 1 (r(0) = 1), got {threshold!r}")
    r = autocorrelation(signal)
    below = np.nonzero(r < threshold)[0]
    if len(below) == 0:
        return float(len(r))
    k = int(below[0])
    return (k - 1) + (r[k - 1] - threshold) / (r[k - 1] - r[k])


@dataclass(frozen=True)
class DecayFit:
    """``length = scale · exp(-rate · depth)`` (exponential) or ``scale · depth^(-rate)`` (power law),
    fitted by least squares on the logarithm of the length; ``rms`` is the fit's root-mean-square error there."""

    law: str
    scale: float
    rate: float
    rms: float

    def __call__(self, depth: np.ndarray | float) -> np.ndarray:
        depth = np.asarray(depth, dtype=float)
        return self.scale * (np.exp(-self.rate * depth) if self.law == "exponential" else depth ** -self.rate)


LAWS = ("exponential", "power law")


def decay_fits(depths: Sequence[float], lengths: Sequence[float]) -> dict[str, DecayFit]:
    """Fit both laws of :class:`DecayFit` to correlation lengths against depth (at least 3 points, all > 0)."""
    d, ell = check_numbers("depths", depths), check_numbers("lengths", lengths)
    if d.ndim != 1 or d.shape != ell.shape or len(d) < 3:
        raise ValueError(f"depths and lengths must be 1-D, of one length, with at least 3 points; "
                         f"got shapes {d.shape} and {ell.shape}")
    if not (np.isfinite(d).all() and np.isfinite(ell).all() and (d > 0).all() and (ell > 0).all()):
        raise ValueError("depths and lengths must be finite and > 0")
    fits = {}
    for law, x in zip(LAWS, (d, np.log(d))):
        slope, intercept = np.polyfit(x, np.log(ell), 1)
        residual = np.log(ell) - (intercept + slope * x)
        fits[law] = DecayFit(law, float(np.exp(intercept)), float(-slope), float(np.sqrt(np.mean(residual**2))))
    return fits
