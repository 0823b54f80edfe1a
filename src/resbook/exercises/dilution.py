"""Checkers for chapter 6, "k-dilution".

``dilution(inputs, outputs, held_inputs, held_outputs)``: the k of a layer from its input-output pairs,
``S`` and the intercept fitted by least squares on the first pair, ``k`` measured on the held-out pair.
``gsc(jacobians, inputs, outputs)``: the gradient scale coefficient ``‖J‖_qm · Q‖v‖ / Q‖f‖``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..dilution import constructed_layer, gradient_scale_coefficient, linear_split
from .checking import DEFAULT_TIMEOUT, Check, WrongAnswer, call_student, mistake_hint, plain_tensor, run_checks
from .registry import register

# Least squares by lstsq, pinv or the normal equations agree to ~1e-9 relative on these well-conditioned
# float64 cases; each wrong answer the hints name is off by more than 5 %.
TOLERANCE = 1e-5
LINEAR_ENOUGH = 1e6  # a linear function: inf, or a ratio this large from rounding, both count as infinite


def _gaussian(samples: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(samples, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _as_number(name: str, answer: Any) -> float:
    answer = plain_tensor(answer)
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise WrongAnswer(f"{name} should return a number, got {type(answer).__name__}",
                          "return k as a float" if name == "dilution" else "return the GSC as a float")
    return float(answer)


def _close(answer: float, right: float) -> bool:
    return math.isfinite(answer) and abs(answer - right) <= TOLERANCE * abs(right)


# --- dilution -------------------------------------------------------------------------------------

def _raw_k(v, f, held_v, held_f) -> float:
    return linear_split(v, f, held_v, held_f, intercept=False).k


def _uncentred_linear_k(v, f, held_v, held_f) -> float:
    split = linear_split(v, f, held_v, held_f)
    linear = float((held_v.double() @ split.linear.double().T).pow(2).sum(1).mean().sqrt())
    return linear / split.remainder_size


# Wrong answers that deserve their own hint: (how the wrong k is computed, hint).
_DILUTION_MISTAKES: tuple[tuple[Callable[..., float], str], ...] = (
    (_raw_k, "your k matches the split without an intercept: fit a constant too (a column of ones), "
             "and measure the remainder after removing it"),
    (lambda *pairs: 1 / linear_split(*pairs).k, "your k matches 1/k: k is the linear part over the remainder"),
    (lambda *pairs: linear_split(*pairs).k ** 2, "your k matches k²: take the ratio of quadratic expectations "
                                                 "(roots of mean squares), not of mean squares"),
    (_uncentred_linear_k, "your k matches Q‖S v‖ on inputs that are not centred: with an intercept, the "
                          "linear part is S(v − v̄) — a constant carries no gradient"),
)


def _dilution_case(v: torch.Tensor, f: torch.Tensor, held_v: torch.Tensor, held_f: torch.Tensor,
                   linear: bool = False) -> Callable[[Callable[..., Any]], None]:
    def run(fn: Callable[..., Any]) -> None:
        answer = _as_number("dilution", call_student(fn, v.clone(), f.clone(), held_v.clone(), held_f.clone()))
        if linear:
            if not answer >= LINEAR_ENOUGH:
                raise WrongAnswer(f"for an affine function dilution returned {answer:.4g}",
                                  "an affine map is all linear part: its remainder is zero up to rounding, "
                                  "so k is infinite (return math.inf, or let the ratio be huge)")
            return
        right = linear_split(v, f, held_v, held_f).k
        if _close(answer, right):
            return
        hint = mistake_hint(answer, right, ((wrong(v, f, held_v, held_f), hint) for wrong, hint in _DILUTION_MISTAKES),
                            _close)
        raise WrongAnswer(f"dilution returned {answer:.4g}, expected {right:.4g}",
                          hint or "fit S and the intercept on the first pair only, and measure both quadratic "
                                  "expectations on the held-out pair")
    return run


def _relu_case() -> Check:
    v, held = _gaussian(3000, 1, 0), _gaussian(3000, 1, 1)
    return Check("a ReLU on 1-D Gaussian input", _dilution_case(v, torch.relu(v), held, torch.relu(held)))


def _constructed_case() -> Check:
    layer = constructed_layer(3.0, 4, seed=2)
    v, held = _gaussian(600, 4, 3), _gaussian(1000, 4, 4)
    return Check("a layer of width 4 built with k = 3", _dilution_case(v, layer(v), held, layer(held)))


def _shifted_case() -> Check:
    layer = constructed_layer(2.0, 3, seed=5)
    v, held = _gaussian(600, 3, 6), _gaussian(1000, 3, 7)
    return Check("inputs of mean 3, a layer of width 3 → 2",
                 _dilution_case(v + 3, layer(v)[:, :2], held + 3, layer(held)[:, :2]))


def _linear_case() -> Check:
    v, held = _gaussian(400, 3, 8), _gaussian(200, 3, 9)
    A = _gaussian(3, 3, 10)
    return Check("an affine function", _dilution_case(v, v @ A + 1, held, held @ A + 1, linear=True))


DILUTION_CHECKS = (_relu_case(), _constructed_case(), _shifted_case(), _linear_case())


@register(DILUTION_CHECKS)
def check_dilution(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``dilution(inputs, outputs, held_inputs, held_outputs)``, the k of a layer; print one line."""
    return run_checks(fn, "dilution", DILUTION_CHECKS, timeout)


# --- gsc ------------------------------------------------------------------------------------------

def _qm_norm_times_ratio(jacobians, inputs, outputs, per: str) -> float:
    squares = jacobians.pow(2).sum((1, 2)).mean()
    j = float(squares.div(jacobians.shape[2] if per == "in" else jacobians.shape[1] if per == "out" else 1).sqrt())
    return j * float(inputs.pow(2).sum(1).mean().sqrt()) / float(outputs.pow(2).sum(1).mean().sqrt())


def _spectral(jacobians, inputs, outputs) -> float:
    j = float(torch.linalg.matrix_norm(jacobians, ord=2).pow(2).mean().sqrt())
    return j * float(inputs.pow(2).sum(1).mean().sqrt()) / float(outputs.pow(2).sum(1).mean().sqrt())


_GSC_MISTAKES: tuple[tuple[Callable[..., float], str], ...] = (
    (lambda j, v, f: _qm_norm_times_ratio(j, v, f, "out"),
     "your GSC matches ‖J‖_F² divided by the output width: the quadratic mean is over input directions, d_in"),
    (lambda j, v, f: _qm_norm_times_ratio(j, v, f, "none"),
     "your GSC matches the plain Frobenius norm: divide E‖J‖_F² by d_in before the root"),
    (_spectral, "your GSC matches the spectral norm (largest singular value): ‖J‖_qm is the root mean square "
                "over all directions"),
    (lambda j, v, f: math.sqrt(float(j.pow(2).sum((1, 2)).mean()) / j.shape[2]),
     "your GSC matches ‖J‖_qm alone: multiply by Q‖v‖ / Q‖f‖ so that rescaling a layer does not change it"),
    (lambda j, v, f: _qm_norm_times_ratio(j, f, v, "in"),
     "your GSC matches ‖J‖_qm · Q‖f‖ / Q‖v‖: the input's size goes in the numerator"),
)


def _gsc_case(jacobians: torch.Tensor, v: torch.Tensor, f: torch.Tensor) -> Callable[[Callable[..., Any]], None]:
    def run(fn: Callable[..., Any]) -> None:
        answer = _as_number("gsc", call_student(fn, jacobians.clone(), v.clone(), f.clone()))
        right = gradient_scale_coefficient(jacobians, v, f)
        if _close(answer, right):
            return
        hint = mistake_hint(answer, right, ((wrong(jacobians, v, f), hint) for wrong, hint in _GSC_MISTAKES), _close)
        raise WrongAnswer(f"gsc returned {answer:.4g}, expected {right:.4g}",
                          hint or "‖J‖_qm² is the mean over samples of ‖J‖_F² divided by d_in; Q is a root mean square")
    return run


def _tanh_layer(samples: int, d_in: int, d_out: int, seed: int, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    v = _gaussian(samples, d_in, seed)
    W = _gaussian(d_in, d_out, seed + 1)

    def layer(x: torch.Tensor) -> torch.Tensor:
        return scale * torch.tanh(x @ W)

    return torch.func.vmap(torch.func.jacrev(layer))(v), v, layer(v)


GSC_CHECKS = (
    Check("a tanh layer 6 → 4", _gsc_case(*_tanh_layer(40, 6, 4, 0))),
    Check("a tanh layer 3 → 5 with outputs scaled by 10", _gsc_case(*_tanh_layer(40, 3, 5, 2, scale=10.0))),
    Check("the identity on 8 dimensions", _gsc_case(torch.eye(8, dtype=torch.float64).expand(30, 8, 8),
                                                    _gaussian(30, 8, 4), _gaussian(30, 8, 4))),
)


@register(GSC_CHECKS)
def check_gsc(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``gsc(jacobians, inputs, outputs)``, the gradient scale coefficient; print one line."""
    return run_checks(fn, "gsc", GSC_CHECKS, timeout)
