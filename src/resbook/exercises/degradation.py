"""Checkers for chapter 0, "The degradation problem".

``residual_forward(x, weights)``: a residual net in plain torch, ``x = x + relu(x @ W)`` for each W.
``deeper_twin(net, extra_blocks)``: the constructive argument of the chapter — a deeper residual net
can always compute what a shallower one does — written as code that adds blocks without changing
the function.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models import mlp, weight_layers
from .checking import (DEFAULT_TIMEOUT, Check, WrongAnswer, call_student, expect_tensor_like, looks_trained,
                       mistake_hint, output_in_eval_mode, plain_tensor, run_checks)
from .registry import register

# float32 through at most ten blocks: correct ways of computing the same sums (matmul, einsum,
# a loop over columns) agree to ~1e-6 relative; every wrong answer the checks look for is off by > 1e-2.
FORWARD_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
# The twin must compute the same function: equal up to float32 rounding.
TWIN_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


# --- residual_forward -------------------------------------------------------------------------

def _stack(block: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    for weight in weights:
        x = block(x, weight)
    return x


def _residual_block(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x + torch.relu(x @ weight)


# Wrong answers seen often enough to deserve their own hint: (one block as the student wrote it, hint).
_FORWARD_MISTAKES: tuple[tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str], ...] = (
    (lambda x, w: torch.relu(x + x @ w),
     "your output matches relu(x + x @ W): the relu acts after the sum, so the identity path loses "
     "x's negative entries. In this block only the branch goes through the relu"),
    (lambda x, w: torch.relu(x @ w),
     "your output matches the plain net x = relu(x @ W): the identity path is missing"),
    (lambda x, w: x + x @ w,
     "your output matches x + x @ W: the branch has lost its relu"),
    (lambda x, w: x + torch.relu(x @ w.T),
     "your output matches x + relu(x @ W.T): look at the order of the product; x is (batch, width)"),
    (lambda x, w: x,
     "your function returns its input unchanged: is every block applied, and is its result kept?"),
)


def _forward_hint(answer: torch.Tensor, x: torch.Tensor, weights: list[torch.Tensor], fallback: str) -> str:
    """The hint for the first common mistake that reproduces ``answer`` (and differs from the right one)."""
    wrongs = ((_stack(block, x, weights), hint) for block, hint in _FORWARD_MISTAKES)
    return mistake_hint(answer, _stack(_residual_block, x, weights), wrongs,
                        lambda a, b: torch.allclose(a, b, **FORWARD_TOLERANCE)) or fallback


def _call_residual_forward(fn: Callable[..., Any], x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """Call the student's function on copies; check it returned a tensor like x and left its inputs alone."""
    x_given, weights_given = x.clone(), [w.clone() for w in weights]
    answer = plain_tensor(call_student(fn, x_given, weights_given))  # a Tensor subclass cannot fool allclose
    if not torch.equal(plain_tensor(x_given), x) or len(weights_given) != len(weights) or not all(
            torch.equal(plain_tensor(a), b) for a, b in zip(weights_given, weights)):
        raise WrongAnswer("residual_forward changed the tensors it was given",
                          "an in-place update such as `x += ...` writes into the caller's x; "
                          "make a new tensor instead")
    return expect_tensor_like("residual_forward", answer, x, "its input", none_hint="return the final x",
                              shape_hint="every block maps (batch, width) to (batch, width)")


def _expect_forward(fn: Callable[..., Any], x: torch.Tensor, weights: list[torch.Tensor],
                    problem: str, fallback_hint: str) -> None:
    answer = _call_residual_forward(fn, x, weights)
    if not torch.allclose(answer, _stack(_residual_block, x, weights), **FORWARD_TOLERANCE):
        raise WrongAnswer(problem, _forward_hint(answer, x, weights, fallback_hint))


def _random_problem(batch: int, width: int, blocks: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=generator)
    return x, [torch.randn(width, width, generator=generator) / width**0.5 for _ in range(blocks)]


def _forward_on_random(fn: Callable[..., Any], sizes: tuple[tuple[int, int, int, int], ...]) -> None:
    for batch, width, blocks, seed in sizes:
        x, weights = _random_problem(batch, width, blocks, seed)
        _expect_forward(fn, x, weights,
                        f"your output differs from the residual net's (batch {batch}, width {width}, "
                        f"{blocks} blocks, seed {seed})",
                        "apply the blocks in order, each to the output of the one before")


def _forward_with_zero_weights(fn: Callable[..., Any]) -> None:
    x, _ = _random_problem(5, 4, 0, seed=1)
    _expect_forward(fn, x, [torch.zeros(4, 4) for _ in range(3)],
                    "with all-zero weights a residual net should return its input unchanged — yours did not",
                    "with W = 0 the branch is zero, so each block must give back its input as it is")


def _forward_without_blocks(fn: Callable[..., Any]) -> None:
    x, _ = _random_problem(3, 4, 0, seed=2)
    _expect_forward(fn, x, [],
                    "with no blocks (an empty list of weights) the net should return its input unchanged "
                    "— yours did not",
                    "with an empty list there is nothing to apply")


def _forward_through_one_block(fn: Callable[..., Any]) -> None:
    x = torch.tensor([[1.0, -2.0, 0.5], [-1.5, 0.5, 2.0]])  # negative entries tell the mistakes apart
    weight = torch.tensor([[0.5, -1.0, 0.2], [0.3, 0.4, -0.6], [-0.8, 0.1, 0.9]])
    _expect_forward(fn, x, [weight],
                    "one block on an input with negative entries gives the wrong output",
                    "compute this one block by hand and compare with yours")


RESIDUAL_FORWARD_CHECKS = (
    Check("a small random net",
          functools.partial(_forward_on_random, sizes=((4, 3, 2, 0),))),
    Check("no blocks", _forward_without_blocks),
    Check("all-zero weights", _forward_with_zero_weights),
    Check("one block, input with negative entries", _forward_through_one_block),
    Check("random sizes",
          functools.partial(_forward_on_random, sizes=((8, 16, 10, 3), (1, 5, 1, 4), (6, 1, 4, 5), (3, 9, 7, 6)))),
)


@register(RESIDUAL_FORWARD_CHECKS)
def check_residual_forward(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``residual_forward(x, weights)``: ``x = x + relu(x @ W)`` for each W, x left untouched.

    Prints one line (passed, or the first failed check with a hint); returns True if all checks pass.
    ``timeout`` is in seconds per check.
    """
    return run_checks(fn, "residual_forward", RESIDUAL_FORWARD_CHECKS, timeout)


# --- deeper_twin --------------------------------------------------------------------------------

IN_FEATURES, OUT_FEATURES = 5, 3


def _trained_looking_net(depth: int, width: int, norm: str | None, seed: int) -> nn.Module:
    """A residual MLP in eval mode whose batchnorm statistics and scales are not their initial values."""
    return looks_trained(lambda: mlp(depth, width, IN_FEATURES, OUT_FEATURES, residual=True, norm=norm),
                         seed, IN_FEATURES)


def _twin_problem(twin: Any, net: nn.Module, extra_blocks: int, original: dict[str, torch.Tensor],
                  original_depth: int) -> None:
    """Raise WrongAnswer if ``twin`` is not a new, separate net of the right depth, or ``net`` was changed.

    ``net`` was given in eval mode, so every one of its modules must still be in eval mode."""
    if not isinstance(twin, nn.Module):
        raise WrongAnswer(f"deeper_twin should return a torch.nn.Module, got {type(twin).__name__}",
                          "did you forget `return`?" if twin is None else "")
    if twin is net:
        raise WrongAnswer("deeper_twin returned `net` itself",
                          "the twin must be a new net, made from a copy, and the original left as it was")
    state = net.state_dict()
    if len(weight_layers(net)) != original_depth or state.keys() != original.keys() or not all(
            torch.equal(plain_tensor(state[key]), value) for key, value in original.items()):
        raise WrongAnswer("deeper_twin changed `net`", "add the blocks to a copy (copy.deepcopy), not to `net`")
    if any(module.training for module in net.modules()):
        raise WrongAnswer("deeper_twin changed `net`: it was given in evaluation mode and came back with layers "
                          "in training mode", "`net.train()`, or `.train()` on a layer of net, changes the original; "
                          "leave net's mode alone (a copy can be put in any mode)")
    if {id(p) for p in twin.parameters()} & {id(p) for p in net.parameters()}:
        raise WrongAnswer("the twin shares layers with `net`, so training one would change the other",
                          "copy the layers instead of reusing them")
    depth, expected = len(weight_layers(twin)), original_depth + 2 * extra_blocks
    if depth != expected:
        raise WrongAnswer(f"the twin has {depth} weight layers; a depth-{original_depth} net with "
                          f"{extra_blocks} more blocks has {expected}",
                          "each block holds two weight (Linear) layers; stem and head stay as they are")


def _expect_twin(fn: Callable[..., Any], depth: int, width: int, norm: str | None, extra_blocks: int,
                 seed: int) -> None:
    net = _trained_looking_net(depth, width, norm, seed)
    x = 2.0 * torch.randn(64, IN_FEATURES, generator=torch.Generator().manual_seed(seed)) + 0.5
    with torch.no_grad():
        expected = net(x)
    original = {key: value.clone() for key, value in net.state_dict().items()}
    twin = call_student(fn, net, extra_blocks)
    _twin_problem(twin, net, extra_blocks, original, depth)
    answer = output_in_eval_mode(twin, x, "the twin in eval mode",  # a plain tensor: a subclass cannot fool allclose
                                 "look at where the new blocks sit: a block maps width to width")
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        raise WrongAnswer(f"the twin's output should be a tensor of shape {tuple(expected.shape)}, got "
                          f"{tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__}",
                          "keep the head as the last layer")
    if not torch.allclose(answer, expected, **TWIN_TOLERANCE):
        gap = (answer - expected).abs().max().item()
        raise WrongAnswer(f"the twin computes a different function: its outputs differ from the original's "
                          f"by up to {gap:.3g}",
                          "a block adds F(x) to x and then applies relu: what must F be, and what must x be, "
                          "so that the block changes nothing?")


def _twin_case(depth: int, width: int, norm: str | None, extra_blocks: int, seed: int) -> Check:
    described = "batchnorm" if norm == "batch" else "no normalisation"
    return Check(f"a depth-{depth} net of width {width}, {described}, extra_blocks={extra_blocks}",
                 functools.partial(_expect_twin, depth=depth, width=width, norm=norm,
                                   extra_blocks=extra_blocks, seed=seed))


DEEPER_TWIN_CHECKS = (
    _twin_case(6, 8, "batch", 2, seed=0),
    _twin_case(10, 16, "batch", 3, seed=1),
    _twin_case(6, 12, None, 1, seed=2),
    _twin_case(4, 8, "batch", 0, seed=3),
    _twin_case(2, 6, "batch", 2, seed=4),  # no blocks yet: only a stem and a head
)


@register(DEEPER_TWIN_CHECKS)
def check_deeper_twin(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``deeper_twin(net, extra_blocks)``: a new net, ``2 * extra_blocks`` layers deeper, same function.

    ``net`` is a post-activation residual MLP from :func:`resbook.models.mlp`, in eval mode; the twin
    is compared with it in eval mode, and ``net`` must come back unchanged. Prints one line; returns
    True if all checks pass. ``timeout`` is in seconds per check.
    """
    return run_checks(fn, "deeper_twin", DEEPER_TWIN_CHECKS, timeout)
