"""Chapter 4, "The toy saddle-point landscape": the toy losses, their gradient descent, and the loss
landscape of real nets measured instead of eyeballed.

The toy (inputs with E[x²] = 1, target y = αx): without the skip ŷ = w₂w₁x and
L(w₁, w₂) = (w₁w₂ − α)²; with it ŷ = x + w₂w₁x and L = (w₁w₂ − (α − 1))². Deeper chains:
ŷ = w_L⋯w₁x against ŷ = (1 + w_L)⋯(1 + w₁)x.

Real nets: 2-D slices L(θ* + a·δ + b·η) around trained weights θ* along filter-normalised random
directions (Li et al., 2018), evaluated on a grid of (a, b) all at once (``torch.func.vmap`` over
``functional_call``) or point by point; curvature and local minima counted on the grid; the share of
the optimisation path in its first principal components.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from ._checks import (check_bool, check_dataset, check_int, check_module, check_numbers, check_positive_float,
                      check_real, check_tensor)
from .batched import train_together
from .data import Dataset
from .device import on_one_thread
from .recipe import Recipe
from .training import History, loss_function


@dataclass(frozen=True)
class Sizes:
    """The real-net part of the chapter: nets, their training, the slice grid and the path snapshots."""

    depth: int
    width: int
    recipe: Recipe
    samples: int  # the fixed subset the slices are evaluated on
    grid: int  # points per side of the slice
    every: int  # steps between two snapshots of the weights


SIZES = {
    "quick": Sizes(depth=20, width=32, recipe=Recipe(steps=400, batch_size=128, lr=0.05, momentum=0.9),
                   samples=256, grid=31, every=5),
    "full": Sizes(depth=20, width=64, recipe=Recipe(steps=1000, batch_size=128, lr=0.05, momentum=0.9),
                  samples=512, grid=51, every=5),
}


# --- the toy -----------------------------------------------------------------------------------------

def _skip(skip: object) -> int:
    """``s`` of the toy: 1 with the skip, 0 without (an int, so that sympy keeps the loss exact)."""
    return 1 if check_bool("skip", skip) else 0


def _alpha(alpha: object) -> float:
    """The toy's target slope: any finite real number."""
    return check_real("alpha", alpha)


def _numbers(name: str, values: object) -> np.ndarray:
    """``values`` as a 1-D float array of finite numbers; otherwise raise, naming the argument."""
    array = check_numbers(name, values)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers, got {values!r}"[:200])
    return array


def toy_loss(w1, w2, alpha: float, skip: bool = False):
    """``L = (w₁w₂ + s − α)²`` with ``s = 1`` with the skip, 0 without (NumPy, torch or sympy values)."""
    return (w1 * w2 + _skip(skip) - alpha) ** 2


def toy_descent(alpha: float, skip: bool, eps: float, lr: float, steps: int) -> np.ndarray:
    """Gradient descent on :func:`toy_loss` from ``w₁ = w₂ = ε``: the path, ``(steps + 1) × 2``.

    ``∂L/∂w₁ = 2r·w₂``, ``∂L/∂w₂ = 2r·w₁`` with the residual ``r = w₁w₂ + s − α``."""
    check_positive_float("lr", lr)
    alpha, shift = _alpha(alpha), _skip(skip)
    path = np.empty((check_int("steps", steps, 0) + 1, 2))
    path[0] = check_positive_float("eps", eps, allow_zero=True)
    for step in range(steps):
        w1, w2 = path[step]
        r = w1 * w2 + shift - alpha
        path[step + 1] = w1 - lr * 2 * r * w2, w2 - lr * 2 * r * w1
    return path


def _steps_until_fit(w: np.ndarray, product, gradient, alpha: float, tol: float, max_steps: int) -> np.ndarray:
    """Gradient descent ``w ← w − gradient(w)`` on each entry of ``w``; the first step at which
    ``(product(w) − α)² < tol`` for each, ``inf`` where that never happens within ``max_steps``."""
    found = np.full(w.shape, math.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(max_steps + 1):
            done = np.isinf(found) & ((product(w) - alpha) ** 2 < tol)
            found[done] = step
            if not np.isinf(found).any() or step == max_steps:
                break
            w = w - gradient(w)
    return found


def _starts(eps: Sequence[float]) -> np.ndarray:
    return _numbers("eps", eps)


def toy_steps_to_fit(alpha: float, skip: bool, eps: Sequence[float], lr: float, *, tol: float = 1e-4,
                     max_steps: int = 20_000) -> np.ndarray:
    """Steps of gradient descent on :func:`toy_loss` from ``w₁ = w₂ = ε`` until the loss is below ``tol``,
    for each ε (``inf`` if not within ``max_steps``). On the diagonal the weights stay equal,
    ``w ← w − 2η(w² + s − α)·w``: the same path as :func:`toy_descent`, for many ε at once."""
    alpha, shift, lr = _alpha(alpha), _skip(skip), check_positive_float("lr", lr)
    return _steps_until_fit(_starts(eps), lambda w: w**2 + shift, lambda w: lr * 2 * (w**2 + shift - alpha) * w,
                            alpha, check_positive_float("tol", tol), check_int("max_steps", max_steps, 1))


def chain_steps_to_fit(depth: int, alpha: float, skip: bool, eps: Sequence[float], lr: float, *,
                       tol: float = 1e-4, max_steps: int = 20_000) -> np.ndarray:
    """Steps of gradient descent until a chain of ``depth`` weights fits ``y = αx`` (loss below ``tol``).

    Plain ``ŷ = w_L⋯w₁x`` or residual ``ŷ = (1 + w_L)⋯(1 + w₁)x``: ``ŷ = ∏ₗ (s + wₗ) x``. Every ``wₗ``
    starts at ε and all stay equal, so one number ``u = s + w`` follows
    ``w ← w − η·2(u^L − α)·u^(L−1)`` exactly. ``inf`` where the loss is not below ``tol`` within
    ``max_steps`` (or the run diverges)."""
    depth, shift, alpha = check_int("depth", depth, 1), _skip(skip), _alpha(alpha)
    lr = check_positive_float("lr", lr)
    return _steps_until_fit(_starts(eps), lambda w: (shift + w) ** depth,
                            lambda w: lr * 2 * ((shift + w) ** depth - alpha) * (shift + w) ** (depth - 1),
                            alpha, check_positive_float("tol", tol), check_int("max_steps", max_steps, 1))


def escape_law(eps: Sequence[float], alpha: float, lr: float, skip: bool = False) -> np.ndarray:
    """Steps to leave the saddle from ``w₁ = w₂ = ε``, up to a constant: ``ln(1/ε) / ln(1 + 2η(α − s))``.

    Near the origin ``w ← w(1 + 2η(α − s))`` along the diagonal: growth by that factor every step."""
    rate = _alpha(alpha) - _skip(skip)
    if not rate > 0:
        raise ValueError(f"the origin is a saddle that descent leaves along w1 = w2 only for alpha - s > 0; "
                         f"got alpha={alpha!r}, skip={skip!r}")
    eps = _numbers("eps", eps)
    if not np.all(eps > 0):
        raise ValueError(f"eps must be > 0, got {eps!r}"[:200])
    return np.log(1 / eps) / math.log1p(2 * check_positive_float("lr", lr) * rate)


def slope_against_log(eps: Sequence[float], steps: Sequence[float]) -> float:
    """The least-squares slope of ``steps`` against ``ln(1/ε)``: measured steps per factor e of ε."""
    eps, steps = _numbers("eps", eps), _numbers("steps", steps)
    if len(eps) < 2 or eps.shape != steps.shape or not np.all(eps > 0):
        raise ValueError(f"eps (> 0) and steps must be of one length, at least 2; got {eps!r} and {steps!r}"[:200])
    return float(np.polyfit(np.log(1 / eps), steps, 1)[0])


# --- slices of real nets -------------------------------------------------------------------------------

def filter_normalised_direction(model: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random direction in weight space, filter-normalised (Li et al., 2018).

    For every weight matrix, row ``i`` (one output unit's filter) of the direction is Gaussian and
    rescaled to ``‖dᵢ‖ = ‖θᵢ‖``; biases and normalisation parameters (1-D) get 0, so they do not move."""
    check_module("model", model)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    direction = {}
    for name, weight in model.named_parameters():
        weight = weight.detach()
        if weight.dim() <= 1:
            direction[name] = torch.zeros_like(weight)
            continue
        d = torch.randn(weight.shape, generator=generator, dtype=weight.dtype).to(weight.device)
        rows, d_rows = weight.flatten(1).norm(dim=1), d.flatten(1).norm(dim=1)
        direction[name] = d * (rows / d_rows).view(-1, *[1] * (weight.dim() - 1))
    return direction


@on_one_thread  # small tensors: a second CPU thread only adds overhead
def loss_grid(model: nn.Module, directions: Sequence[dict[str, torch.Tensor]], data: Dataset,
              coords: torch.Tensor, *, batched: bool = True, chunk: int = 256) -> torch.Tensor:
    """``L(θ* + a·δ + b·η)`` on ``data`` for every ``a`` (rows) and ``b`` (columns) of ``coords``.

    The model runs in evaluation mode (batch norm with its running statistics). ``batched=True``
    evaluates ``chunk`` grid points at once (``vmap`` over ``functional_call``); ``batched=False``
    evaluates them one after another: the same numbers, the second way only slower."""
    check_module("model", model)
    check_dataset("data", data)
    check_bool("batched", batched)
    chunk = check_int("chunk", chunk, 1)
    coords = check_tensor("coords", coords)
    if coords.dim() != 1 or len(coords) < 1:
        raise ValueError(f"coords must be a 1-D tensor of grid positions, got shape {tuple(coords.shape)}")
    names = {n for n, _ in model.named_parameters()}
    if not isinstance(directions, Sequence) or len(directions) != 2 or any(
            not isinstance(d, dict) or set(d) != names for d in directions):
        raise ValueError("directions must be two dicts mapping every parameter name of model to a tensor "
                         "(e.g. filter_normalised_direction(model, generator), twice)")
    was_training, loss_of = model.training, loss_function(data.task)
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    first, second = directions

    def loss_at(point: torch.Tensor) -> torch.Tensor:
        moved = {n: p + point[0] * first[n] + point[1] * second[n] for n, p in params.items()}
        return loss_of(functional_call(model, (moved, buffers), (data.x,)), data.y)

    a, b = torch.meshgrid(coords, coords, indexing="ij")
    points = torch.stack([a.flatten(), b.flatten()], 1).to(data.x)
    model.eval()
    try:
        with torch.no_grad():
            if batched:
                losses = torch.cat([vmap(loss_at)(points[i:i + chunk]) for i in range(0, len(points), chunk)])
            else:
                losses = torch.stack([loss_at(point) for point in points])
    finally:
        model.train(was_training)
    return losses.view(len(coords), len(coords))


def slice_curvature(grid: torch.Tensor | np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """The smaller and larger eigenvalue of the 2-D slice's Hessian at every interior grid point.

    Central differences: ``f_aa ≈ (f[i+1,j] − 2f[i,j] + f[i−1,j]) / h²``, likewise ``f_bb``, and
    ``f_ab ≈ (f[i+1,j+1] − f[i+1,j−1] − f[i−1,j+1] + f[i−1,j−1]) / 4h²`` (exact for a quadratic);
    eigenvalues ``(f_aa + f_bb)/2 ∓ √(((f_aa − f_bb)/2)² + f_ab²)``."""
    f = _grid_array(grid)
    h2 = check_positive_float("spacing", spacing) ** 2
    f_aa = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / h2
    f_bb = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / h2
    f_ab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * h2)
    mean, radius = (f_aa + f_bb) / 2, np.hypot((f_aa - f_bb) / 2, f_ab)
    return mean - radius, mean + radius


def local_minima(grid: torch.Tensor | np.ndarray) -> int:
    """The number of interior grid points lower than all eight of their neighbours."""
    f = _grid_array(grid)
    centre = f[1:-1, 1:-1]
    lower = np.ones(centre.shape, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                lower &= centre < f[1 + di:f.shape[0] - 1 + di, 1 + dj:f.shape[1] - 1 + dj]
    return int(lower.sum())


def negative_share_by_loss(grid: torch.Tensor | np.ndarray, spacing: float,
                           edges: Sequence[float]) -> list[float]:
    """Per cent of interior grid points with negative slice curvature (:func:`slice_curvature`) among the
    points whose loss lies in ``[edges[k], edges[k+1])``, for each band ``k``: where in the slice (the
    basin or its rim) it curves downwards. ``nan`` for a band without points."""
    f = _grid_array(grid)[1:-1, 1:-1]
    edges = list(_numbers("edges", edges))
    if len(edges) < 2 or any(not b > a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two increasing loss levels, got {edges!r}")
    negative = slice_curvature(grid, spacing)[0] < 0
    shares = []
    for low, high in zip(edges, edges[1:]):
        inside = (f >= low) & (f < high)
        shares.append(100 * float(negative[inside].mean()) if inside.any() else math.nan)
    return shares


def _grid_array(grid: torch.Tensor | np.ndarray) -> np.ndarray:
    try:
        f = np.asarray(grid.detach().cpu() if isinstance(grid, torch.Tensor) else grid, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"grid must be a 2-D tensor or array of losses, got {type(grid).__name__}") from None
    if f.ndim != 2 or min(f.shape) < 3:
        raise ValueError(f"grid must be a 2-D array of at least 3 × 3 losses, got shape {f.shape}")
    return f


# --- the optimisation path ----------------------------------------------------------------------------

@on_one_thread  # as resbook.batched.train_groups runs each group
def train_recording_paths(models: Sequence[nn.Module], data: Dataset, recipe: Recipe, *, seeds: Sequence[int],
                          every: int) -> tuple[list[History], list[torch.Tensor]]:
    """Train ``models`` together (:func:`resbook.batched.train_together`) and keep each net's weights
    (all parameters as one vector) at the start and after every ``every`` steps: one
    ``snapshots × parameters`` tensor per net. A net that diverges keeps the snapshots it had."""
    every = check_int("every", every, 1)
    if isinstance(models, nn.Module) or not isinstance(models, Sequence) or not models:
        raise TypeError(f"models must be a non-empty sequence of torch.nn.Module, got {type(models).__name__}")
    for i, model in enumerate(models):
        check_module(f"models[{i}]", model)
    paths: list[list[torch.Tensor]] = [[torch.cat([p.detach().flatten() for p in m.parameters()])]
                                       for m in models]
    names = [name for name, _ in models[0].named_parameters()] if models else []

    def keep(step: int, running: list[int], params: dict[str, torch.Tensor]) -> None:
        if (step + 1) % every == 0:
            flat = torch.cat([params[name].flatten(1) for name in names], 1)
            for row, index in enumerate(running):
                paths[index].append(flat[row].clone())

    histories = train_together(models, data, recipe, seeds=seeds, on_step=keep)
    return histories, [torch.stack(path) for path in paths]


def _principal_components(path: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Variances (largest first), unit scores and centred moves of the rows ``θᵢ − θ_final``.

    From the small Gram matrix ``M Mᵀ = U Σ² Uᵀ`` (snapshots × snapshots) instead of an SVD of the
    long matrix ``M`` (snapshots × parameters): the same ``σₖ²`` and left singular vectors, far cheaper."""
    path = check_tensor("path", path)
    if path.dim() != 2 or len(path) < 3:
        raise ValueError(f"path must be snapshots × parameters with at least 3 snapshots, got {tuple(path.shape)}")
    moves = (path[:-1] - path[-1]).double()
    moves = moves - moves.mean(0)
    variance, scores = torch.linalg.eigh(moves @ moves.T)
    return variance.flip(0).clamp(min=0), scores.flip(1), moves


def path_pca_shares(path: torch.Tensor) -> np.ndarray:
    """The share of the path's variance along each principal component, largest first (Li et al., 2018).

    The rows ``θᵢ − θ_final`` of the snapshots, centred, as the matrix ``M``: share ``k = σₖ² / Σⱼ σⱼ²``
    with ``σₖ`` the singular values of ``M``."""
    variance, _, _ = _principal_components(path)
    return (variance / variance.sum()).cpu().numpy()


def random_walk_path(snapshots: int, dims: int, generator: torch.Generator) -> torch.Tensor:
    """An isotropic Gaussian random walk, ``θᵢ = Σ_{j≤i} ξⱼ`` with ``ξⱼ ~ N(0, I)`` in ``dims`` dimensions:
    ``snapshots × dims``, the baseline for :func:`path_pca_shares`. In high dimensions its k-th principal
    component holds about ``6 / (π²k²)`` of the variance (Antognini & Sohl-Dickstein, 2018), so the first
    two hold about ``7.5 / π² ≈ 76 %`` for pure noise."""
    snapshots, dims = check_int("snapshots", snapshots, 3), check_int("dims", dims, 1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return torch.randn(snapshots, dims, generator=generator).cumsum(0)


def path_in_two_components(path: torch.Tensor) -> np.ndarray:
    """Every snapshot, the last included, projected on the first two principal directions of the moves
    ``θᵢ − θ_final`` (centred as for :func:`path_pca_shares`): ``snapshots × 2`` coordinates, for
    drawing the path as Li et al. (2018) do. The directions are ``vₖ = Mᵀuₖ / σₖ``."""
    variance, scores, moves = _principal_components(path)
    directions = moves.T @ scores[:, :2] / variance[:2].sqrt()
    every = (path - path[-1]).double() - (path[:-1] - path[-1]).double().mean(0)
    return (every @ directions).cpu().numpy()
