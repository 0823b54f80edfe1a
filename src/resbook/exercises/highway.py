"""Checkers for chapter 2, "The gradient highway".

``backward_through_blocks(upstream, jacobians, active)``: carry a gradient from the last block's output
back to the first block's input, ``g ← g · D_l (I + J_l)`` for l = B … 1.
``lag_below_half(signal)``: the first lag at which a signal's autocorrelation falls below one half.
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .checking import (DEFAULT_TIMEOUT, Check, WrongAnswer, call_student, expect_tensor_like, mistake_hint,
                       plain_tensor, run_checks)
from .registry import register

# float64 through at most eight blocks of small matrices: correct orders of summation agree to ~1e-12;
# every wrong answer the checks look for is off by far more than 1e-6 relative.
BACKWARD_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}


# --- backward_through_blocks --------------------------------------------------------------------

def _backward(step: Callable, upstream: torch.Tensor, jacobians: list, active: list | None,
              order: Callable = reversed) -> torch.Tensor:
    g = upstream
    masks = active if active is not None else [None] * len(jacobians)
    for jacobian, mask in order(list(zip(jacobians, masks))):
        g = step(g, jacobian, mask)
    return g


def _right(g, jacobian, mask):
    g = g if mask is None else g * mask
    return g + g @ jacobian


# Wrong answers seen often enough to deserve their own hint: (the wrong computation, hint).
_BACKWARD_MISTAKES: tuple[tuple[Callable, str], ...] = (
    (lambda u, js, a: _backward(lambda g, j, m: (g if m is None else g * m) @ j, u, js, a),
     "your answer matches g · D J through every block: the identity path (the I in I + J) is missing"),
    (lambda u, js, a: _backward(lambda g, j, m: (g + g @ j) * (1 if m is None else m), u, js, a),
     "your answer applies D after (I + J): on the way back the ReLU after the sum comes first, g · D (I + J)"),
    (lambda u, js, a: _backward(lambda g, j, m: (g if m is None else g * m) + j @ (g if m is None else g * m),
                                u, js, a),
     "your answer matches (I + J) · g: the gradient is a row vector, so it is g · (I + J), not J · g"),
    (lambda u, js, a: _backward(_right, u, js, a, order=lambda pairs: pairs),
     "your answer goes through the blocks from the first to the last: the gradient travels from the last "
     "block back to the first"),
    (lambda u, js, a: _backward(_right, u, js, None),
     "your answer ignores `active`: in a post-activation block the ReLU after the sum lets the gradient "
     "through only where it was active"),
)


def _backward_hint(answer: torch.Tensor, upstream, jacobians, active, fallback: str) -> str:
    wrongs = ((wrong_fn(upstream, jacobians, active), hint) for wrong_fn, hint in _BACKWARD_MISTAKES)
    return mistake_hint(answer, _backward(_right, upstream, jacobians, active), wrongs,
                        lambda a, b: torch.allclose(a, b, **BACKWARD_TOLERANCE)) or fallback


def _expect_backward(fn: Callable[..., Any], upstream: torch.Tensor, jacobians: list, active: list | None,
                     problem: str, fallback: str) -> None:
    given = (upstream.clone(), [j.clone() for j in jacobians], None if active is None else [a.clone() for a in active])
    answer = plain_tensor(call_student(fn, *given))
    if not torch.equal(plain_tensor(given[0]), upstream) or not all(
            torch.equal(plain_tensor(a), b) for a, b in zip(given[1], jacobians)):
        raise WrongAnswer("backward_through_blocks changed the tensors it was given",
                          "an in-place update such as `g += ...` writes into the caller's tensor; make a new one")
    expect_tensor_like("backward_through_blocks", answer, upstream, "`upstream`",
                       none_hint="return the gradient at the first block's input",
                       shape_hint="every block maps a gradient of the width to a gradient of the width")
    if not torch.allclose(answer, _backward(_right, upstream, jacobians, active), **BACKWARD_TOLERANCE):
        raise WrongAnswer(problem, _backward_hint(answer, upstream, jacobians, active, fallback))


def _random_blocks(width: int, blocks: int, seed: int, post: bool) -> tuple[torch.Tensor, list, list | None]:
    generator = torch.Generator().manual_seed(seed)
    upstream = torch.randn(width, generator=generator, dtype=torch.float64)
    jacobians = [torch.randn(width, width, generator=generator, dtype=torch.float64) / width**0.5
                 for _ in range(blocks)]
    active = [torch.rand(width, generator=generator) > 0.4 for _ in range(blocks)] if post else None
    return upstream, jacobians, active


def _backward_on_random(fn: Callable[..., Any], sizes: tuple[tuple[int, int, int, bool], ...]) -> None:
    for width, blocks, seed, post in sizes:
        upstream, jacobians, active = _random_blocks(width, blocks, seed, post)
        kind = "post-activation" if post else "pre-activation (active=None)"
        _expect_backward(fn, upstream, jacobians, active,
                         f"your gradient differs from the right one ({blocks} {kind} blocks of width {width})",
                         "write out two blocks by hand: g · D_2 (I + J_2) · D_1 (I + J_1)")


def _backward_through_dead_branches(fn: Callable[..., Any]) -> None:
    upstream, _, _ = _random_blocks(5, 0, seed=11, post=False)
    zeros = [torch.zeros(5, 5, dtype=torch.float64) for _ in range(4)]
    _expect_backward(fn, upstream, zeros, None,
                     "with zero branch Jacobians, pre-activation blocks should pass the gradient unchanged — "
                     "yours did not", "with J = 0 each block's Jacobian is the identity")


def _backward_through_one_block(fn: Callable[..., Any]) -> None:
    upstream = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    jacobian = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [3.0, 0.0, 0.0]], dtype=torch.float64)
    active = [torch.tensor([True, False, True])]
    _expect_backward(fn, upstream, [jacobian], active,
                     "one post-activation block with a hand-made Jacobian gives the wrong gradient",
                     "compute g · D (I + J) for this one block by hand and compare")


BACKWARD_THROUGH_BLOCKS_CHECKS = (
    Check("two pre-activation blocks", functools.partial(_backward_on_random, sizes=((3, 2, 0, False),))),
    Check("dead branches (J = 0)", _backward_through_dead_branches),
    Check("one post-activation block, by hand", _backward_through_one_block),
    Check("post-activation blocks", functools.partial(_backward_on_random, sizes=((4, 3, 1, True), (6, 5, 2, True)))),
    Check("random sizes", functools.partial(_backward_on_random,
                                            sizes=((1, 4, 3, True), (8, 8, 4, False), (7, 1, 5, True)))),
)


@register(BACKWARD_THROUGH_BLOCKS_CHECKS)
def check_backward_through_blocks(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``backward_through_blocks(upstream, jacobians, active)``: ``g ← g · D_l (I + J_l)``, last block first.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass.
    """
    return run_checks(fn, "backward_through_blocks", BACKWARD_THROUGH_BLOCKS_CHECKS, timeout)


# --- lag_below_half -----------------------------------------------------------------------------

def _autocorrelation(signal: np.ndarray, centred: bool = True, normalised: bool = True) -> np.ndarray:
    s = signal - signal.mean() if centred else signal
    r = np.array([np.dot(s[: len(s) - k], s[k:]) for k in range(len(s))])
    return r / r[0] if normalised else r / len(s)


def _first_below(r: np.ndarray, shift: int = 0) -> int:
    below = np.nonzero(r[1:] < 0.5)[0]
    return int(below[0]) + 1 + shift if len(below) else len(r)


_LAG_MISTAKES: tuple[tuple[Callable[[np.ndarray], int], str], ...] = (
    (lambda s: _first_below(_autocorrelation(s, centred=False)),
     "your answer matches the autocorrelation of the signal without its mean subtracted: subtract the mean first"),
    (lambda s: _first_below(_autocorrelation(s, normalised=False)),
     "your answer matches an autocovariance that is not divided by its lag-0 value: divide so that r(0) = 1"),
    (lambda s: _first_below(_autocorrelation(s), shift=-1),
     "your answer is one lag short: the last lag still at or above one half, not the first below it"),
)


def _expect_lag(fn: Callable[..., Any], signal: np.ndarray, problem: str) -> None:
    given = signal.copy()
    answer = call_student(fn, given)
    if not np.array_equal(given, signal):
        raise WrongAnswer("lag_below_half changed the signal it was given",
                          "an in-place update such as `signal -= ...` writes into the caller's array")
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, np.integer)):
        raise WrongAnswer(f"lag_below_half should return an int (a lag), got {type(answer).__name__} {answer!r}"[:200],
                          "return the lag k, not the autocorrelation r(k)")
    right = _first_below(_autocorrelation(signal))
    if int(answer) != right:
        hint = mistake_hint(int(answer), right, ((wrong(signal), h) for wrong, h in _LAG_MISTAKES), operator.eq)
        raise WrongAnswer(problem + f": expected lag {right}, got {int(answer)}",
                          hint or "compute r(k) for the first few lags by hand and compare")


def _ar1(n: int, phi: float, seed: int, offset: float = 0.0, scale: float = 1.0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(n)
    s = np.empty(n)
    s[0] = noise[0]
    for i in range(1, n):
        s[i] = phi * s[i - 1] + noise[i]
    return offset + scale * s


def _lag_of_white_noise(fn):
    _expect_lag(fn, np.random.default_rng(0).standard_normal(500), "white noise gives the wrong lag")


def _lag_of_ar1(fn):
    _expect_lag(fn, _ar1(3000, 0.9, seed=1), "an AR(1) process with φ = 0.9 gives the wrong lag")


def _lag_of_sinusoid(fn):
    _expect_lag(fn, np.sin(2 * np.pi * np.arange(600) / 60), "a sinusoid of period 60 samples gives the wrong lag")


def _lag_of_offset_signal(fn):
    _expect_lag(fn, _ar1(2000, 0.8, seed=2, offset=5.0),
                "an AR(1) process around 5 (not 0) gives the wrong lag")


def _lag_of_scaled_signal(fn):
    _expect_lag(fn, _ar1(2000, 0.95, seed=3, scale=0.05), "a small-amplitude AR(1) process gives the wrong lag")


LAG_BELOW_HALF_CHECKS = (
    Check("white noise", _lag_of_white_noise),
    Check("AR(1), φ = 0.9", _lag_of_ar1),
    Check("a sinusoid", _lag_of_sinusoid),
    Check("a signal whose mean is not 0", _lag_of_offset_signal),
    Check("a signal of small amplitude", _lag_of_scaled_signal),
)


@register(LAG_BELOW_HALF_CHECKS)
def check_lag_below_half(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``lag_below_half(signal)``: the first lag k ≥ 1 with r(k) < 1/2, r the normalised autocorrelation.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass.
    """
    return run_checks(fn, "lag_below_half", LAG_BELOW_HALF_CHECKS, timeout)
