"""Checkers for chapter 3, "The eigenvalue shift".

``weyl_interval(W)``: Weyl's band ``(1 − ‖W‖₂, 1 + ‖W‖₂)`` for the singular values of ``I + W``.
``residual_stack_jacobian(weights)``: the Jacobian ``(I + W_L) ⋯ (I + W_1)`` of a linear residual
stack that applies ``x ← x + W_l x`` for ``l = 1 … L``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .checking import DEFAULT_TIMEOUT, Check, WrongAnswer, call_student, mistake_hint, plain_tensor, run_checks
from .registry import register

DTYPE = torch.float64
# float64 throughout: correct answers agree to ~1e-12; every mistake the hints name is off by > 1e-3.
TOLERANCE = 1e-9


# --- weyl_interval ------------------------------------------------------------------------------

def _right_interval(w: torch.Tensor) -> tuple[float, float]:
    epsilon = torch.linalg.matrix_norm(w, ord=2).item()
    return 1 - epsilon, 1 + epsilon


def _sized(measure: Callable[[torch.Tensor], float]) -> Callable[[torch.Tensor], tuple[float, float]]:
    return lambda w: (1 - measure(w), 1 + measure(w))


# Mistakes seen often enough to deserve their own hint: (the interval as the student computed it, hint).
_WEYL_MISTAKES: tuple[tuple[Callable[[torch.Tensor], tuple[float, float]], str], ...] = (
    (_sized(lambda w: torch.linalg.matrix_norm(w).item()),
     "your interval matches 1 ± the Frobenius norm: it holds, but it is wider than Weyl's, which uses the "
     "largest singular value of W"),
    (_sized(lambda w: torch.linalg.eigvals(w).abs().max().item()),
     "your interval matches 1 ± the spectral radius max |λ|: for a non-normal W the singular values of "
     "I + W can leave it. Weyl's inequality is about singular values"),
    (_sized(lambda w: w.abs().max().item()),
     "your interval matches 1 ± the largest entry of W: that is not a norm that bounds singular values"),
    (lambda w: (-torch.linalg.matrix_norm(w, ord=2).item(), torch.linalg.matrix_norm(w, ord=2).item()),
     "your interval is centred on 0: it describes W, not I + W"),
)


def _call_weyl(fn: Callable[..., Any], w: torch.Tensor) -> tuple[float, float]:
    given = w.clone()
    answer = plain_tensor(call_student(fn, given))
    if isinstance(answer, torch.Tensor) and answer.numel() == 2:  # a tensor of two numbers is a pair too
        answer = answer.flatten().tolist()
    if not torch.equal(plain_tensor(given), w):
        raise WrongAnswer("weyl_interval changed the matrix it was given", "compute on W without writing into it")
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise WrongAnswer(f"weyl_interval should return a pair (lower, upper), got {type(answer).__name__}",
                          "return two numbers, e.g. `return lower, upper`")
    try:
        lower, upper = (float(plain_tensor(v)) for v in answer)
    except (TypeError, ValueError, RuntimeError):
        raise WrongAnswer("weyl_interval should return two numbers",
                          "return Python floats (use .item() on a one-element tensor)") from None
    return lower, upper


def _expect_interval(fn: Callable[..., Any], w: torch.Tensor, case: str) -> None:
    lower, upper = _call_weyl(fn, w)
    right = _right_interval(w)
    if math.isclose(lower, right[0], abs_tol=TOLERANCE) and math.isclose(upper, right[1], abs_tol=TOLERANCE):
        return
    hint = mistake_hint((lower, upper), right, ((interval(w), hint) for interval, hint in _WEYL_MISTAKES),
                        lambda a, b: max(abs(x - y) for x, y in zip(a, b)) < 1e-6)
    if hint:
        raise WrongAnswer(f"your interval for {case} is wrong", hint)
    raise WrongAnswer(f"your interval for {case} is ({lower:.4g}, {upper:.4g}), not Weyl's",
                      "Weyl: |σ_i(I + W) − 1| ≤ ‖W‖₂, the largest singular value of W")


def _non_normal(seed: int, n: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=generator, dtype=DTYPE) * 0.3  # almost surely not normal


def _weyl_diagonal(fn: Callable[..., Any]) -> None:
    _expect_interval(fn, torch.diag(torch.tensor([0.2, -0.1, 0.05], dtype=DTYPE)), "a diagonal W")


def _weyl_non_normal(fn: Callable[..., Any]) -> None:
    for seed, n in ((0, 4), (1, 7), (2, 12)):
        _expect_interval(fn, _non_normal(seed, n), f"a non-normal {n} × {n} W (seed {seed})")


def _weyl_zero(fn: Callable[..., Any]) -> None:
    _expect_interval(fn, torch.zeros(3, 3, dtype=DTYPE), "W = 0")


WEYL_INTERVAL_CHECKS = (
    Check("a diagonal W", _weyl_diagonal),
    Check("non-normal W", _weyl_non_normal),
    Check("W = 0", _weyl_zero),
)


@register(WEYL_INTERVAL_CHECKS)
def check_weyl_interval(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``weyl_interval(W)``: ``(1 − ‖W‖₂, 1 + ‖W‖₂)``, W left untouched.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass.
    """
    return run_checks(fn, "weyl_interval", WEYL_INTERVAL_CHECKS, timeout)


# --- residual_stack_jacobian --------------------------------------------------------------------

def _product(factors: list[torch.Tensor], n: int) -> torch.Tensor:
    result = torch.eye(n, dtype=DTYPE)
    for factor in factors:
        result = factor @ result
    return result


def _right_stack(weights: list[torch.Tensor]) -> torch.Tensor:
    n = weights[0].shape[0]
    return _product([torch.eye(n, dtype=DTYPE) + w for w in weights], n)


_STACK_MISTAKES: tuple[tuple[Callable[[list[torch.Tensor]], torch.Tensor], str], ...] = (
    (lambda ws: _right_stack(ws[::-1]),
     "your product matches (I + W_1) ⋯ (I + W_L): the first layer acts first, so its factor stands on "
     "the right"),
    (lambda ws: _product(ws, ws[0].shape[0]),
     "your product matches W_L ⋯ W_1: that is the plain stack; each residual layer is I + W_l"),
    (lambda ws: torch.eye(ws[0].shape[0], dtype=DTYPE) + sum(ws),
     "your answer matches I + W_1 + … + W_L: the layers compose, so their Jacobians multiply"),
    (lambda ws: _right_stack([w.T for w in ws]),
     "your product uses the transposed weights: x ← x + W x multiplies by W, not Wᵀ"),
)


def _expect_stack(fn: Callable[..., Any], weights: list[torch.Tensor], case: str) -> None:
    given = [w.clone() for w in weights]
    answer = plain_tensor(call_student(fn, given))
    if len(given) != len(weights) or not all(torch.equal(plain_tensor(a), b) for a, b in zip(given, weights)):
        raise WrongAnswer("residual_stack_jacobian changed the tensors it was given",
                          "an in-place update such as `W += ...` writes into the caller's tensor")
    n = weights[0].shape[0]
    if not isinstance(answer, torch.Tensor) or answer.shape != (n, n):
        shown = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        raise WrongAnswer(f"residual_stack_jacobian should return an {n} × {n} tensor, got {shown}",
                          "the Jacobian of a map from n numbers to n numbers is n × n")
    right = _right_stack(weights)
    if torch.allclose(answer.to(DTYPE), right, rtol=1e-9, atol=TOLERANCE):
        return
    hint = mistake_hint(answer.to(DTYPE), right, ((stack(weights), hint) for stack, hint in _STACK_MISTAKES),
                        lambda a, b: torch.allclose(a, b, atol=1e-6))
    raise WrongAnswer(f"your Jacobian for {case} is wrong",
                      hint or "write the stack for two layers by hand and differentiate it")


def _random_weights(layers: int, n: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(n, n, generator=generator, dtype=DTYPE) * 0.4 for _ in range(layers)]


def _stack_one_layer(fn: Callable[..., Any]) -> None:
    _expect_stack(fn, _random_weights(1, 3, 0), "one layer")


def _stack_zero(fn: Callable[..., Any]) -> None:
    _expect_stack(fn, [torch.zeros(4, 4, dtype=DTYPE)] * 3, "three zero layers")


def _stack_random(fn: Callable[..., Any]) -> None:
    for layers, n, seed in ((2, 3, 1), (5, 4, 2), (8, 6, 3)):
        _expect_stack(fn, _random_weights(layers, n, seed), f"{layers} random {n} × {n} layers (seed {seed})")


RESIDUAL_STACK_JACOBIAN_CHECKS = (
    Check("one layer", _stack_one_layer),
    Check("zero layers", _stack_zero),
    Check("random stacks", _stack_random),
)


@register(RESIDUAL_STACK_JACOBIAN_CHECKS)
def check_residual_stack_jacobian(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``residual_stack_jacobian(weights)``: ``(I + W_L) ⋯ (I + W_1)``, the weights left untouched.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass.
    """
    return run_checks(fn, "residual_stack_jacobian", RESIDUAL_STACK_JACOBIAN_CHECKS, timeout)
