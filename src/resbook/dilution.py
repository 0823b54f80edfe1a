"""Chapter 6, k-dilution: how linear a layer is, and what that does to gradient growth.

Philipp, Song and Carbonell (2018) split a layer function into a linear part and a nonlinear remainder,
``f(v) = S v + ρ(v)``, and call ``f`` *k-diluted* when ``Q‖S v‖ / Q‖ρ(v)‖ = k``, with the quadratic
expectation ``Q[X] = E[X²]^½`` over the layer's inputs ``v``. This module estimates ``S`` as the best
linear map in mean square (least squares, with an intercept by default), measures ``k`` on held-out
inputs, and measures gradient growth with the gradient scale coefficient (GSC): the relative change of a
layer's output per relative change of its input, ``GSC = ‖J‖_qm · Q‖v‖ / Q‖f(v)‖`` with
``‖J‖_qm² = E‖J‖_F² / d_in`` (the quadratic mean of ``‖J u‖`` over unit directions ``u``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import (check_bool, check_dataset, check_int, check_module, check_numbers, check_positive_float,
                      check_tensor)
from .data import Dataset
from .device import on_one_thread
from .grid import GridRuns, train_grid
from .models import Block, mlp
from .recipe import Recipe

SAMPLES_PER_DIMENSION = 30  # least squares needs many more samples than unknowns per output
MIN_HELD_OUT = 100  # k is a ratio of two means over held-out samples; fewer make it noisy
LINEAR_TOLERANCE = 1e-9  # a remainder this small relative to the outputs is rounding: k is infinite


@dataclass(frozen=True)
class Sizes:
    """Chapter 6's experiment in one profile: the trained nets, the branch scales, the diluted stacks."""

    width: int  # of the trained nets (the digits give 1,437 training images: ≥ 30 × width)
    depth: int  # weight layers of the trained nets
    scales: tuple[float, ...]  # residual branch scales α trained side by side with the plain twin
    recipe: Recipe
    stack_width: int  # of the constructed layers and stacks
    single_samples: int  # inputs drawn for each single layer (fit and held-out halves)
    mixes: tuple[float, ...]  # weights a of the linear path in a·U v + φ(W v), single layers
    stack_depth: int
    stack_samples: int  # inputs drawn for each stack (fit and held-out halves)
    stack_mixes: tuple[float, ...]  # the same weights, for the ReLU stacks through depth


SIZES = {
    "quick": Sizes(width=32, depth=10, scales=(0.25, 0.5, 1.0, 2.0),
                   recipe=Recipe(steps=300, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                   stack_width=32, single_samples=8000, mixes=(0.0, 0.15, 0.3, 0.6, 1.0, 2.0, 4.0, 8.0),
                   stack_depth=24, stack_samples=2400, stack_mixes=(0.0, 0.6, 1.0, 2.0, 4.0)),
    "full": Sizes(width=40, depth=20, scales=(0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
                  recipe=Recipe(steps=1000, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                  stack_width=64, single_samples=32000,
                  mixes=(0.0, 0.1, 0.15, 0.3, 0.45, 0.6, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0),
                  stack_depth=50, stack_samples=6000, stack_mixes=(0.0, 0.6, 1.0, 2.0, 4.0)),
}


def quadratic_expectation(values: torch.Tensor) -> float:
    """``Q‖X‖ = E[‖X‖²]^½`` over the samples (rows) of ``values``; a 1-D tensor is one number per sample."""
    values = check_tensor("values", values)
    if values.ndim not in (1, 2) or values.shape[0] == 0:
        raise ValueError(f"values must be a non-empty (samples,) or (samples, features) tensor, "
                         f"got shape {tuple(values.shape)}")
    values = values.double().reshape(values.shape[0], -1)
    return float(values.pow(2).sum(1).mean().sqrt())


@dataclass(frozen=True)
class Split:
    """``f(v) = S v + c + ρ(v)`` fitted by least squares; ``k = Q‖S(v − v̄)‖ / Q‖ρ(v)‖`` on held-out inputs.

    With ``intercept=False``, ``c = 0``, nothing is centred and ``k = Q‖S v‖ / Q‖ρ(v)‖``.
    """

    linear: torch.Tensor  # S, shape (d_out, d_in)
    intercept: torch.Tensor  # c, shape (d_out,)
    linear_size: float  # Q‖S v‖ (centred inputs with an intercept), held-out
    remainder_size: float  # Q‖ρ(v)‖, held-out
    k: float  # linear_size / remainder_size; inf for a linear function


def _as_matrix(name: str, value: torch.Tensor) -> torch.Tensor:
    value = check_tensor(name, value)
    if value.ndim == 1:
        value = value[:, None]
    if value.ndim != 2:
        raise ValueError(f"{name} must be (samples,) or (samples, features), got shape {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return value.detach().double().cpu()


def _check_pair(prefix: str, inputs: torch.Tensor, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    v, f = _as_matrix(f"{prefix}inputs", inputs), _as_matrix(f"{prefix}outputs", outputs)
    if v.shape[0] != f.shape[0]:
        raise ValueError(f"{prefix}inputs and {prefix}outputs must have one row per sample; got "
                         f"{v.shape[0]} and {f.shape[0]} rows")
    return v, f


def linear_split(inputs: torch.Tensor, outputs: torch.Tensor, held_out_inputs: torch.Tensor,
                 held_out_outputs: torch.Tensor, *, intercept: bool = True) -> Split:
    """Fit ``f(v) ≈ S v + c`` by least squares on (``inputs``, ``outputs``) and measure the dilution
    ``k = Q‖S(v − v̄)‖ / Q‖f(v) − S v − c‖`` on the held-out pairs (with ``intercept=False``: ``c = 0``
    and ``k = Q‖S v‖ / Q‖f(v) − S v‖``, the paper's split without a constant).

    Needs at least 30 fitting samples per input dimension and 100 held-out samples.
    """
    v, f = _check_pair("", inputs, outputs)
    held_v, held_f = _check_pair("held_out_", held_out_inputs, held_out_outputs)
    intercept = check_bool("intercept", intercept)
    if held_v.shape[1] != v.shape[1] or held_f.shape[1] != f.shape[1]:
        raise ValueError(f"held-out pairs must have the fitted pairs' widths {v.shape[1]} → {f.shape[1]}, "
                         f"got {held_v.shape[1]} → {held_f.shape[1]}")
    needed = SAMPLES_PER_DIMENSION * v.shape[1]
    if v.shape[0] < needed:
        raise ValueError(f"inputs has {v.shape[0]} samples; a least-squares split of a {v.shape[1]}-dimensional "
                         f"input needs at least {needed} ({SAMPLES_PER_DIMENSION} per dimension)")
    if held_v.shape[0] < MIN_HELD_OUT:
        raise ValueError(f"held_out_inputs has {held_v.shape[0]} samples; at least {MIN_HELD_OUT} are needed")
    design = torch.cat([v, torch.ones(len(v), 1, dtype=v.dtype)], 1) if intercept else v
    solution = torch.linalg.lstsq(design, f, driver="gelsd").solution
    S, c = solution[: v.shape[1]].T, (solution[-1] if intercept else torch.zeros(f.shape[1], dtype=f.dtype))
    remainder = held_f - held_v @ S.T - c
    linear_in = held_v - v.mean(0) if intercept else held_v
    if intercept:
        remainder = remainder - remainder.mean(0)
    linear_size, remainder_size = quadratic_expectation(linear_in @ S.T), quadratic_expectation(remainder)
    scale = quadratic_expectation(held_f - held_f.mean(0) if intercept else held_f)
    k = math.inf if remainder_size <= LINEAR_TOLERANCE * max(scale, 1e-300) else linear_size / remainder_size
    return Split(S.float(), c.float(), linear_size, remainder_size, k)


def dilution_factor(function: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                    held_out_inputs: torch.Tensor, *, intercept: bool = True) -> float:
    """``k`` of ``function`` (a layer, a block, any map of rows) on ``inputs``, measured on held-out inputs."""
    if not callable(function):
        raise TypeError(f"function must be callable (a layer or a function of a tensor), got {function!r}")
    check_tensor("inputs", inputs)
    check_tensor("held_out_inputs", held_out_inputs)
    with torch.no_grad():
        fitted, held = function(inputs), function(held_out_inputs)
    return linear_split(inputs, fitted, held_out_inputs, held, intercept=intercept).k


def gradient_scale_coefficient(jacobians: torch.Tensor, inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """``GSC = ‖J‖_qm · Q‖v‖ / Q‖f‖`` with ``‖J‖_qm² = E‖J‖_F² / d_in``: how many times a small relative
    change of the input, in a random direction, grows relative to the output. Unchanged when the input
    or the output is rescaled (a plain gradient norm is not).

    ``jacobians``: (samples, d_out, d_in), one per input row.
    """
    jacobians = check_tensor("jacobians", jacobians)
    v, f = _check_pair("", inputs, outputs)
    if jacobians.ndim != 3 or jacobians.shape != (v.shape[0], f.shape[1], v.shape[1]):
        raise ValueError(f"jacobians must have shape (samples, d_out, d_in) = {(v.shape[0], f.shape[1], v.shape[1])}"
                         f", got {tuple(jacobians.shape)}")
    j_qm = float(jacobians.double().pow(2).sum((1, 2)).mean().div(v.shape[1]).sqrt())
    return j_qm * quadratic_expectation(v) / quadratic_expectation(f)


# --- constructed stacks: a linear path of weight a beside a nonlinearity -------------------------

NONLINEARITIES = {"relu": (torch.relu, lambda z: (z > 0).to(z.dtype)),
                  "abs": (torch.abs, torch.sign)}  # |z| is even: on symmetric inputs it has no linear part


@dataclass(frozen=True)
class StackRun:
    """One stack of ``depth`` layers ``f(v) = (a·U v + φ(W v) − m) / s``; per layer its ``k`` and GSC."""

    mix: float  # a
    nonlinearity: str  # φ
    k: np.ndarray  # (depth,) dilution of each layer, with intercept, held-out
    gsc: np.ndarray  # (depth,) GSC of each layer, over all samples
    gsc_through: np.ndarray  # (depth,) GSC(l, 0) from the input to the output of layer l

    @property
    def growth_rate(self) -> float:
        """``GSC(L, 0)^{1/L}``: the factor by which the GSC grows per layer through the whole stack."""
        return float(self.gsc_through[-1] ** (1 / len(self.gsc_through)))


def _orthogonal(d: int, generator: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def _mixed_layer_gsc(mix: float, U: torch.Tensor, W: torch.Tensor, slopes: torch.Tensor, scale: float,
                     inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """The GSC of ``(a·U v + φ(W v) − m) / s`` over all samples, without building the Jacobians
    ``J = (a·U + diag(φ'(W v)) W) / s``: ``‖J‖_F² = (a²‖U‖_F² + 2a Σ_i φ'_i (U Wᵀ)_ii + Σ_i φ'_i² ‖W_i‖²) / s²``."""
    square = (mix**2 * U.pow(2).sum() + 2 * mix * slopes @ torch.diagonal(U @ W.T)
              + slopes.pow(2) @ W.pow(2).sum(1)) / scale**2
    j_qm = float(square.mean().div(U.shape[1]).sqrt())
    return j_qm * quadratic_expectation(inputs) / quadratic_expectation(outputs)


@on_one_thread
def diluted_stack(mix: float, nonlinearity: str = "relu", *, depth: int, width: int, samples: int,
                  seed: int, tangent_samples: int = 1024) -> StackRun:
    """Stack ``depth`` layers ``f(v) = (a·U v + φ(W v) − m) / s`` (``U``, ``W`` random orthogonal; ``m``, ``s``
    the batch mean and scale of the layer's output, held constant as batch normalisation's statistics
    are in evaluation) on Gaussian inputs, and measure every layer's ``k`` and GSC.

    ``k`` is measured on the layer's own inputs: half of the ``samples`` fit ``S``, the other half
    measure ``k``. The GSC through the stack propagates the Jacobian of ``tangent_samples`` inputs (at
    most ``samples``).
    """
    mix = check_positive_float("mix", mix, allow_zero=True)
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {', '.join(map(repr, NONLINEARITIES))}; got {nonlinearity!r}")
    depth, width = check_int("depth", depth, 1), check_int("width", width, 1)
    samples = check_int("samples", samples, 2 * max(SAMPLES_PER_DIMENSION * width, MIN_HELD_OUT))
    tangent_samples = min(check_int("tangent_samples", tangent_samples, 1), samples)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    phi, slope = NONLINEARITIES[nonlinearity]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, width, generator=generator, dtype=torch.float64)
    half, some = samples // 2, slice(tangent_samples)
    tangent = torch.eye(width, dtype=torch.float64).expand(tangent_samples, width, width)
    x0_size = quadratic_expectation(x[some])
    ks, gscs, through = [], [], []
    for _ in range(depth):
        U, W = _orthogonal(width, generator), _orthogonal(width, generator)
        pre = x @ W.T
        h = mix * x @ U.T + phi(pre)
        mean = h.mean(0)
        scale = quadratic_expectation(h - mean) / math.sqrt(width)
        out = (h - mean) / scale
        ks.append(linear_split(x[:half], out[:half], x[half:], out[half:]).k)
        gscs.append(_mixed_layer_gsc(mix, U, W, slope(pre), scale, x, out))
        tangent = (mix * U + slope(pre[some])[:, :, None] * W) @ tangent / scale
        j_qm = float(tangent.pow(2).sum((1, 2)).mean().div(width).sqrt())
        through.append(j_qm * x0_size / quadratic_expectation(out[some]))
        x = out
    return StackRun(mix, nonlinearity, *(np.array(a) for a in (ks, gscs, through)))


def fit_power_law(k: Sequence[float], excess: Sequence[float]) -> tuple[float, float]:
    """Least-squares line ``log(excess) = log(C) + slope · log(k² + 1)``; returns ``(slope, C)``.

    The k² + 1 rule predicts ``slope = −1``: ``excess = C / (k² + 1)``.
    """
    k, excess = check_numbers("k", k), check_numbers("excess", excess)
    if k.ndim != 1 or k.shape != excess.shape or len(k) < 2:
        raise ValueError(f"k and excess must be 1-D of one equal length ≥ 2, got shapes {k.shape}, {excess.shape}")
    if not (np.all(np.isfinite(k)) and np.all(k >= 0) and np.all(excess > 0) and np.all(np.isfinite(excess))):
        raise ValueError("k must be finite and ≥ 0, excess finite and > 0")
    slope, intercept = np.polyfit(np.log(k**2 + 1), np.log(excess), 1)
    return float(slope), float(np.exp(intercept))


# --- trained nets: the blocks of residual and plain nets -----------------------------------------

def blocks(model: nn.Module) -> list[Block]:
    """The residual (or plain) blocks of ``model``, from input to output."""
    check_module("model", model)
    found = [m for m in model.modules() if isinstance(m, Block)]
    if not found:
        raise ValueError("model has no resbook.models.Block to measure")
    return found


def block_inputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of every block of ``model`` (in evaluation mode) when it is fed ``x``."""
    return _block_inputs(model, x, "x")


def _block_inputs(model: nn.Module, x: torch.Tensor, name: str) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    _evaluate(model, x, [b.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()))
                         for b in blocks(model)], name)
    return seen


def _evaluate(model: nn.Module, x: torch.Tensor, hooks: Sequence = (), name: str = "x") -> torch.Tensor:
    """``model(x)`` in evaluation mode without gradients; afterwards the model's mode is restored and
    the ``hooks`` it ran with are removed. ``x`` that does not fit the model is refused under ``name``."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            try:
                return model(check_tensor(name, x))
            except RuntimeError as error:
                raise ValueError(f"{name} of shape {tuple(x.shape)} does not fit model: "
                                 f"{(str(error).splitlines() or [''])[0]}") from None
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()


def block_dilutions(model: nn.Module, x: torch.Tensor, held_out_x: torch.Tensor, part: str = "block") -> list[float]:
    """``k`` of every block of ``model`` in evaluation mode: of the whole block ``g·x + α·F(x)``
    (``part="block"``), of its branch ``F`` alone (``"branch"``), or of the branch's first and second
    layer (``"layers"``: norm, activation, linear), fitted on ``x`` and measured on ``held_out_x``."""
    parts = ("block", "branch", "layers")
    blocks(model)
    if not isinstance(part, str) or part not in parts:
        raise ValueError(f"part must be one of {', '.join(map(repr, parts))}; got {part!r}")
    was_training = model.training
    model.eval()
    try:
        ks = []
        for block, v, held in zip(blocks(model), _block_inputs(model, x, "x"),
                                  _block_inputs(model, held_out_x, "held_out_x")):
            if part == "block":
                ks.append(dilution_factor(block, v, held))
            elif part == "branch":
                ks.append(dilution_factor(block.branch, v, held))
            else:
                half = len(block.branch) // 2
                first, second = block.branch[:half], block.branch[half:]
                ks.append(dilution_factor(first, v, held))
                with torch.no_grad():
                    ks.append(dilution_factor(second, first(v), first(held)))
        return ks
    finally:
        model.train(was_training)


def effective_depth(ks: Sequence[float]) -> float:
    """``Σ_l 1 / (k_l² + 1)``: the expected number of nonlinear remainders on a path through the layers,
    when each layer passes the share ``k²/(k² + 1)`` of its output's square through its linear part."""
    ks = check_numbers("ks", ks)
    if ks.ndim != 1 or len(ks) == 0 or np.any(np.isnan(ks)) or np.any(ks < 0):
        raise ValueError(f"ks must be a non-empty 1-D sequence of numbers ≥ 0 (inf allowed), got {ks!r}"[:200])
    return float(np.sum(1 / (ks**2 + 1)))


class _Affine(nn.Module):
    """``v ↦ S v + c``: a block replaced by its least-squares linear part."""

    def __init__(self, split: Split):
        super().__init__()
        self.register_buffer("linear", split.linear)
        self.register_buffer("intercept", split.intercept)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.linear.T + self.intercept


@on_one_thread  # many small least-squares fits: one thread (on a busy CPU, 2 threads took 200 times as long)
def linearised(model: nn.Module, x: torch.Tensor, held_out_x: torch.Tensor) -> nn.Module:
    """A copy of ``model`` (in evaluation mode) whose every block is replaced by its least-squares
    affine map ``S v + c``, fitted block by block on the inputs that ``x`` gives it in ``model``."""
    import copy

    copied = copy.deepcopy(check_module("model", model)).eval()
    originals = blocks(copied)
    fits = []
    for block, v, held in zip(originals, _block_inputs(copied, x, "x"),
                              _block_inputs(copied, held_out_x, "held_out_x")):
        with torch.no_grad():
            fits.append(linear_split(v, block(v), held, block(held)))
    device = held_out_x.device
    replaced = {id(b): _Affine(split).to(device) for b, split in zip(originals, fits)}
    for parent in copied.modules():
        for name, child in list(parent.named_children()):
            if id(child) in replaced:
                setattr(parent, name, replaced[id(child)])
    return copied


def constructed_layer(k: float, width: int, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A layer ``f(v) = a·A v + B (v² − 1)`` (square taken entrywise) whose dilution on standard Gaussian
    inputs is exactly ``k``: ``v² − 1`` has mean 0 and is uncorrelated with ``v``, so the best linear part
    is ``a·A v``, with ``Q‖a·A v‖ = a‖A‖_F`` and ``Q‖B(v² − 1)‖ = √2 ‖B‖_F``; ``a`` is set to make the ratio ``k``."""
    k = check_positive_float("k", k)
    width, seed = check_int("width", width, 1), check_int("seed", seed, 0, 2**63 - 1)
    generator = torch.Generator().manual_seed(seed)
    A, B = (torch.randn(width, width, generator=generator, dtype=torch.float64) for _ in range(2))
    a = k * math.sqrt(2) * float(B.norm()) / float(A.norm())

    def layer(v: torch.Tensor) -> torch.Tensor:
        v = v.double()
        return a * v @ A.T + (v**2 - 1) @ B.T

    return layer


# --- the trained nets of the chapter -------------------------------------------------------------

def net_configurations(sizes: Sizes) -> list[tuple[str, float]]:
    """``("residual", α)`` for every branch scale of ``sizes``, then the plain twin ``("plain", 1.0)``."""
    if not isinstance(sizes, Sizes):
        raise TypeError(f"sizes must be a resbook.dilution.Sizes (e.g. profile.pick(SIZES)), got {sizes!r}")
    return [("residual", scale) for scale in sizes.scales] + [("plain", 1.0)]


def build_net(configuration: tuple[str, float], seed: int, sizes: Sizes, data: Dataset) -> nn.Module:
    """The pre-activation MLP of ``configuration`` with weights drawn from ``seed``: blocks ``x + α·F(x)``
    (residual) or ``α·F(x)`` (plain), ``F`` = (batch norm, ReLU, linear) twice. Every configuration draws
    the same weights for the same seed, so the nets differ only in ``g`` and ``α``."""
    if configuration not in net_configurations(sizes):
        raise ValueError(f"configuration must be one of {net_configurations(sizes)}, got {configuration!r}")
    check_dataset("data", data)
    kind, scale = configuration
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int("seed", seed, 0, 2**63 - 1))
        return mlp(sizes.depth, sizes.width, data.n_features, data.n_outputs, residual=kind == "residual",
                   preactivation=True, residual_scale=scale).to(data.x.device)


@on_one_thread
def train_nets(data: Dataset, sizes: Sizes, seeds: Sequence[int]) -> GridRuns:
    """Train every configuration of :func:`net_configurations` for every seed, all in one batched run."""
    return train_grid(lambda configuration, seed: build_net(configuration, seed, sizes, data),
                      net_configurations(sizes), seeds, data, sizes.recipe)


PARTS = ("block", "branch", "layers")


@on_one_thread
def measure_dilutions(models: dict, x: torch.Tensor, held_out_x: torch.Tensor) -> dict[tuple, np.ndarray]:
    """``k`` of every part (:data:`PARTS`) of every net: ``{(configuration, part): array (seeds, blocks)}``
    (``layers`` has two entries per block), for ``models`` as :class:`resbook.grid.GridRuns` holds them."""
    if not isinstance(models, dict):
        raise TypeError(f"models must be a dict configuration -> list of nets (GridRuns.models), got {models!r}")
    for configuration, nets in models.items():
        if not isinstance(nets, (list, tuple)) or not all(isinstance(net, nn.Module) for net in nets):
            raise TypeError(f"models[{configuration!r}] must be a list of torch.nn.Module, got {nets!r}"[:200])
    return {(configuration, part): np.array([block_dilutions(net, x, held_out_x, part) for net in nets])
            for configuration, nets in models.items() for part in PARTS}


@on_one_thread
def linearised_share(model: nn.Module, x: torch.Tensor, held_out_x: torch.Tensor) -> tuple[float, float]:
    """Predicted and measured share of the last block's output (its spread about the mean, squared) that
    the nonlinear remainders carry: predicted ``1 − Π_l k_l² / (k_l² + 1)`` from the blocks' ``k``,
    measured ``Q‖h − h_lin‖² / Q‖h − h̄‖²`` with every block replaced by its linear part (held-out inputs).
    ``model`` must be an ``nn.Sequential`` of layers and blocks, as :func:`resbook.models.mlp` builds."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential of layers and blocks, got {type(model).__name__}")
    ks = np.array(block_dilutions(model, x, held_out_x))
    copy = linearised(model, x, held_out_x)
    end = max(i for i, m in enumerate(model) if isinstance(m, Block)) + 1  # the modules up to the last block
    h = _evaluate(model[:end].train(model.training), held_out_x, name="held_out_x")  # a slice: training mode
    h_linear = _evaluate(copy[:end], held_out_x, name="held_out_x")
    measured = float((h - h_linear).pow(2).sum(1).mean() / (h - h.mean(0)).pow(2).sum(1).mean())
    return float(1 - np.prod(ks**2 / (ks**2 + 1))), measured


def relu_positive_fractions(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """For every unit of every ReLU inside the blocks of ``model`` (evaluation mode), the fraction of the
    samples of ``x`` on which its input is positive: near 0 or 1, the unit hardly ever switches and acts
    linearly; near 1/2, it switches on about half the inputs."""
    fractions: list[torch.Tensor] = []
    relus = [m for b in blocks(model) for m in b.branch.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError("model has no ReLU inside its blocks")
    _evaluate(model, x, [m.register_forward_hook(lambda _, args, __: fractions.append((args[0] > 0).double().mean(0)))
                         for m in relus])
    return torch.cat(fractions).cpu().numpy()
