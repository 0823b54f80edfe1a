"""Checkers for chapter 4, "The toy saddle-point landscape".

``filter_normalise(direction, weight)``: one tensor of a filter-normalised direction (Li et al., 2018):
each filter (row) of ``direction`` rescaled to the norm of the matching filter of ``weight``; 1-D
tensors (biases, normalisation parameters) get zeros.
``count_local_minima(grid)``: the interior points of a 2-D grid of losses lower than all eight neighbours.
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..landscape import local_minima
from .checking import DEFAULT_TIMEOUT, Check, WrongAnswer, call_student, mistake_hint, plain_tensor, run_checks
from .registry import register

# float32: the same rescaling computed another way (a loop over rows, norms from einsum) agrees to ~1e-6
# relative; every wrong answer below is off by more than 1e-1 on the cases that look for it.
NORMALISE_TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}


# --- filter_normalise -------------------------------------------------------------------------------

def _filter_normalised(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if weight.dim() <= 1:
        return torch.zeros_like(direction)
    rows, d_rows = weight.flatten(1).norm(dim=1), direction.flatten(1).norm(dim=1)
    return direction * (rows / d_rows).view(-1, *[1] * (weight.dim() - 1))


def _by_columns(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return direction * weight.norm(dim=0, keepdim=True) / direction.norm(dim=0, keepdim=True)


# Wrong answers common enough to deserve their own hint: (the answer as the student computes it, hint).
_NORMALISE_MISTAKES: tuple[tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str], ...] = (
    (lambda d, w: d * w.norm() / d.norm(),
     "your output matches the whole tensor rescaled to the norm of the weights: that is layer-wise "
     "normalisation; each filter (row) gets the norm of its own filter"),
    (lambda d, w: d / d.flatten(1).norm(dim=1).view(-1, *[1] * (d.dim() - 1)) if d.dim() > 1 else 0 * d,
     "your filters all have norm 1: rescale each to the norm of the matching filter of the weights"),
    (lambda d, w: _by_columns(d, w) if d.dim() == 2 else 0 * d,
     "your output rescales columns: a filter is a row (one output unit's incoming weights)"),
    (lambda d, w: d if d.dim() <= 1 else _filter_normalised(d, w),
     "a 1-D tensor (a bias or a normalisation parameter) should not move: return zeros for it"),
    (lambda d, w: w.clone(),
     "your output is the weights themselves: the direction is random, only its filters' sizes come "
     "from the weights"),
)


def _normalise_hint(answer: torch.Tensor, direction: torch.Tensor, weight: torch.Tensor, fallback: str) -> str:
    wrongs = ((mistake(direction, weight), hint) for mistake, hint in _NORMALISE_MISTAKES)
    return mistake_hint(answer, _filter_normalised(direction, weight), wrongs,
                        lambda a, b: torch.allclose(a, b, **NORMALISE_TOLERANCE)) or fallback


def _expect_normalised(fn: Callable[..., Any], direction: torch.Tensor, weight: torch.Tensor, problem: str) -> None:
    given_direction, given_weight = direction.clone(), weight.clone()
    answer = plain_tensor(call_student(fn, given_direction, given_weight))  # a subclass cannot fool allclose
    if not (torch.equal(plain_tensor(given_direction), direction) and torch.equal(plain_tensor(given_weight), weight)):
        raise WrongAnswer("filter_normalise changed the tensors it was given",
                          "an in-place update such as `direction *= ...` writes into the caller's tensor; "
                          "make a new tensor instead")
    if not isinstance(answer, torch.Tensor) or answer.shape != weight.shape:
        got = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        raise WrongAnswer(f"filter_normalise should return a tensor of shape {tuple(weight.shape)}, got {got}",
                          "did you forget `return`?" if answer is None else "the direction has the weights' shape")
    if not torch.allclose(answer, _filter_normalised(direction, weight), **NORMALISE_TOLERANCE):
        fallback = "compare the norm of each row of yours with that row of the weights"
        raise WrongAnswer(problem, _normalise_hint(answer, direction, weight, fallback))


def _normalise_case(shape: tuple[int, ...], seed: int, row_scales: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=generator)
    if row_scales and len(shape) > 1:  # filters of very different sizes tell filter- from layer-wise apart
        weight = weight * torch.logspace(-1, 1, shape[0]).view(-1, *[1] * (len(shape) - 1))
    return torch.randn(shape, generator=generator), weight


def _normalise_on(fn: Callable[..., Any], shape: tuple[int, ...], seed: int, row_scales: bool, problem: str) -> None:
    direction, weight = _normalise_case(shape, seed, row_scales)
    _expect_normalised(fn, direction, weight, problem)


FILTER_NORMALISE_CHECKS = (
    Check("a 4 × 6 weight matrix whose rows differ in size",
          functools.partial(_normalise_on, shape=(4, 6), seed=0, row_scales=True,
                            problem="each row of your direction should have the norm of that row of the weights")),
    Check("a 5 × 3 weight matrix (more rows than columns)",
          functools.partial(_normalise_on, shape=(5, 3), seed=1, row_scales=True,
                            problem="wrong rescaling of a 5 × 3 matrix")),
    Check("a bias (1-D)",
          functools.partial(_normalise_on, shape=(7,), seed=2, row_scales=False,
                            problem="for a 1-D tensor the direction should be all zeros")),
    Check("a convolution's 4-D weight (filters × channels × height × width)",
          functools.partial(_normalise_on, shape=(3, 2, 3, 3), seed=3, row_scales=True,
                            problem="a convolution's filter is everything after the first index: "
                                    "its norm over channels, height and width")),
)


@register(FILTER_NORMALISE_CHECKS)
def check_filter_normalise(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``filter_normalise(direction, weight)``: each filter ``dᵢ ← dᵢ·‖wᵢ‖/‖dᵢ‖``, zeros for 1-D.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass."""
    return run_checks(fn, "filter_normalise", FILTER_NORMALISE_CHECKS, timeout)


# --- count_local_minima -----------------------------------------------------------------------------

def _four_neighbour_minima(f: np.ndarray) -> int:
    centre = f[1:-1, 1:-1]
    return int(((centre < f[:-2, 1:-1]) & (centre < f[2:, 1:-1]) & (centre < f[1:-1, :-2])
                & (centre < f[1:-1, 2:])).sum())


def _with_boundary(f: np.ndarray) -> int:
    padded = np.pad(f, 1, constant_values=np.inf)
    return local_minima(padded)


def _not_strict(f: np.ndarray) -> int:
    return sum(all(f[i, j] <= f[i + a, j + b] for a in (-1, 0, 1) for b in (-1, 0, 1))
               for i in range(1, f.shape[0] - 1) for j in range(1, f.shape[1] - 1))


_MINIMA_MISTAKES: tuple[tuple[Callable[[np.ndarray], int], str], ...] = (
    (_four_neighbour_minima, "your count matches points lower than their four side neighbours only: "
                             "compare with the diagonal neighbours too"),
    (_with_boundary, "your count includes points on the edge of the grid: only interior points have all "
                     "eight neighbours, and a minimum on the edge may continue outside the slice"),
    (_not_strict, "your count includes points that are only as low as a neighbour (a flat region): "
                  "a local minimum is strictly lower than all eight"),
    (lambda f: local_minima(-f), "your count matches the local maxima"),
)


def _expect_minima(fn: Callable[..., Any], grid: np.ndarray, problem: str) -> None:
    answer = call_student(fn, grid.copy())
    if isinstance(answer, (np.integer, torch.Tensor)) and np.ndim(answer) == 0:
        answer = int(answer)
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise WrongAnswer(f"count_local_minima should return an int, got {type(answer).__name__}",
                          "did you forget `return`?" if answer is None else "count the points, do not list them")
    right = local_minima(grid)
    if answer != right:
        hint = mistake_hint(answer, right, ((mistake(grid), hint) for mistake, hint in _MINIMA_MISTAKES), operator.eq)
        raise WrongAnswer(problem,
                          hint or f"your count is {answer}; look at each interior point and its eight neighbours")


def _egg_crate() -> np.ndarray:
    coords = np.linspace(0, 4 * np.pi, 41)
    a, b = np.meshgrid(coords, coords, indexing="ij")
    return np.cos(a) + np.cos(b)


def _diagonal_trap() -> np.ndarray:
    grid = np.full((5, 5), 3.0)
    grid[2, 2], grid[1, 1] = 1.0, 0.5  # lower than its four side neighbours, not than its diagonal one
    grid[3, 3] = 2.0
    return grid


def _edge_minimum() -> np.ndarray:
    coords = np.linspace(-1, 1, 9)
    a, b = np.meshgrid(coords, coords, indexing="ij")
    return (a - 1) ** 2 + b**2  # lowest on the edge a = 1: no interior minimum


def _bowl() -> np.ndarray:
    coords = np.linspace(-1, 1, 7)
    return np.add.outer(coords**2, coords**2)


def _random_levels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, size=(7, 9)).astype(float)


def _expect_minima_on_random(fn: Callable[..., Any], seeds: range) -> None:
    for seed in seeds:
        _expect_minima(fn, _random_levels(seed), f"wrong count on a random grid of levels 0 to 3 (seed {seed})")


COUNT_LOCAL_MINIMA_CHECKS = (
    Check("a bowl", lambda fn: _expect_minima(fn, _bowl(), "a bowl has exactly one local minimum")),
    Check("an egg crate", lambda fn: _expect_minima(fn, _egg_crate(), "wrong count on an egg crate cos(a) + cos(b)")),
    Check("a point lower than its four side neighbours but not its diagonal one",
          lambda fn: _expect_minima(fn, _diagonal_trap(), "wrong count where a diagonal neighbour is lower")),
    Check("a slope whose lowest point is on the edge",
          lambda fn: _expect_minima(fn, _edge_minimum(), "a slice whose lowest point is on its edge has no "
                                                         "interior minimum")),
    Check("a flat grid", lambda fn: _expect_minima(fn, np.ones((6, 6)), "a flat grid has no local minimum")),
    Check("random grids with ties",
          lambda fn: _expect_minima_on_random(fn, seeds=range(5))),
)


@register(COUNT_LOCAL_MINIMA_CHECKS)
def check_count_local_minima(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``count_local_minima(grid)``: interior points strictly lower than all eight neighbours.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass."""
    return run_checks(fn, "count_local_minima", COUNT_LOCAL_MINIMA_CHECKS, timeout)
