"""Checkers for chapter 1, "The identity baseline".

``identity_block(width)``: a block that is exactly the identity when created and can still learn a
correction that depends on its input.
``branch_scale(blocks)``: the residual scale that keeps the second moment after ``blocks``
pre-activation blocks between 1.5 and 3 times the input's (He initialisation, no normalisation).
"""
from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..identity import block_factor
from .checking import DEFAULT_TIMEOUT, Check, StudentRaised, WrongAnswer, call_student, plain_tensor, run_checks
from .registry import register

STEP = 0.1  # the learning rate of the one SGD step that tests whether the block can learn
# After that step, a correction y - x that varies over the inputs by more than this depends on x
# (float32 rounding of x + 0 is exactly 0; a learned correction of one step is ~1e-2 here).
VARIES = 1e-6


# --- identity_block ---------------------------------------------------------------------------

def _inputs(width: int, seed: int) -> torch.Tensor:
    """Signed inputs: half of every column negative, so that a ReLU anywhere on the identity path shows."""
    return 2.0 * torch.randn(16, width, generator=torch.Generator().manual_seed(seed))


def _new_block(fn: Callable[..., Any], width: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(width)
        block = call_student(fn, width)
    if not isinstance(block, nn.Module):
        raise WrongAnswer(f"identity_block should return a torch.nn.Module, got {type(block).__name__}",
                          "did you forget `return`?" if block is None else "")
    return block


def _output(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    try:
        y = plain_tensor(call_student(block, x))
    except StudentRaised as raised:
        raise WrongAnswer(f"running the block on a ({x.shape[0]}, {x.shape[1]}) batch raised "
                          f"{type(raised.error).__name__}: {raised.error}",
                          "the block maps (batch, width) to (batch, width)") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise WrongAnswer(f"the block should return a tensor of shape {tuple(x.shape)}, got {shape}",
                          "the block maps (batch, width) to (batch, width)")
    return y


def _expect_identity(fn: Callable[..., Any], width: int, seed: int) -> None:
    block = _new_block(fn, width)
    x = _inputs(width, seed)
    y = _output(block, x)
    if torch.equal(y, x):
        return
    if torch.equal(y, torch.relu(x)):
        raise WrongAnswer("your block returns ReLU(x): the negative entries of its input are lost",
                          "a ReLU after the sum (a post-activation block) acts on the identity path too; "
                          "keep every activation inside the branch")
    gap = float((y - x).detach().abs().max())  # detached: no autograd warning above the verdict
    raise WrongAnswer(f"when created, your block should return its input exactly; it is off by up to {gap:.3g}",
                      "start the branch at F = 0: which layer can you set to zero?")


def _expect_learning(fn: Callable[..., Any], width: int, seed: int) -> None:
    block = _new_block(fn, width)
    parameters = [p for p in block.parameters() if p.requires_grad]
    if not parameters:
        raise WrongAnswer("your block has no trainable parameters, so it can never learn a correction",
                          "build it with a branch of Linear layers (resbook.models.Block takes one)")
    x = _inputs(width, seed)
    target = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    with torch.enable_grad():
        loss = (_output(block, x) - target).pow(2).mean()
        gradients = torch.autograd.grad(loss, parameters, allow_unused=True)
    if all(g is None or not g.any() for g in gradients):
        raise WrongAnswer("no parameter of your block gets a gradient, so training would never change it",
                          "a zero that multiplies the whole branch (a fixed α = 0, or every layer at zero) "
                          "blocks every gradient: zero only the branch's last layer")
    with torch.no_grad():
        for parameter, gradient in zip(parameters, gradients):
            if gradient is not None:
                parameter -= STEP * gradient
        correction = _output(block, x) - x
    if float((correction - correction.mean(0)).abs().max()) <= VARIES:
        raise WrongAnswer("after a gradient step your block only adds a constant: its branch can never learn "
                          "a correction that depends on x",
                          "only the branch's biases moved; with every weight at zero the gradient of each "
                          "weight passes through another zero, so zero only the last layer")


def _identity_case(width: int, seed: int) -> Check:
    return Check(f"width {width}: the identity when created", functools.partial(_expect_identity, width=width,
                                                                                seed=seed))


IDENTITY_BLOCK_CHECKS = (
    _identity_case(4, seed=0),
    Check("width 4: it can learn a correction that depends on x",
          functools.partial(_expect_learning, width=4, seed=1)),
    _identity_case(1, seed=2),
    _identity_case(32, seed=3),
    Check("width 32: it can learn a correction that depends on x",
          functools.partial(_expect_learning, width=32, seed=4)),
)


@register(IDENTITY_BLOCK_CHECKS)
def check_identity_block(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``identity_block(width)``: a new module, exactly the identity on signed inputs, that after one
    gradient step adds a correction depending on its input. Prints one line; returns True if all pass."""
    return run_checks(fn, "identity_block", IDENTITY_BLOCK_CHECKS, timeout)


# --- branch_scale --------------------------------------------------------------------------------

LOW, HIGH = 1.5, 3.0  # the band E[h_L²] / E[h_0²] must stay in
BLOCK_COUNTS = (1, 2, 3, 10, 100, 1000, 10_000)


def _scale_of(fn: Callable[..., Any], blocks: int) -> float:
    alpha = call_student(fn, blocks)
    if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
        alpha = plain_tensor(alpha).item()
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha):
        raise WrongAnswer(f"branch_scale({blocks}) should return a finite real number, got "
                          f"{type(alpha).__name__} {alpha!r}", "did you forget `return`?" if alpha is None else "")
    return float(alpha)


def _expect_bounded(fn: Callable[..., Any], counts: tuple[int, ...]) -> None:
    scales = {blocks: _scale_of(fn, blocks) for blocks in counts}
    for blocks, alpha in scales.items():
        growth = block_factor(True, 1.0, abs(alpha)) ** blocks
        if LOW <= growth <= HIGH:
            continue
        if len(scales) > 1 and len(set(scales.values())) == 1:
            hint = ("your α is the same for every number of blocks, so the growth (1 + α²)^L still grows "
                    "with L: make α depend on it")
        elif growth < LOW:
            hint = ("your branches add almost nothing at this depth: α shrinks faster with L than it needs "
                    "to; what does (1 + c/L)^L approach?")
        else:
            hint = "each block multiplies E[h²] by 1 + α²: choose α² so that the product of L of them stays bounded"
        raise WrongAnswer(f"with {blocks} block{'s' * (blocks != 1)} and α = {alpha:.4g}, "
                          f"E[h_L²] ÷ E[h_0²] = {growth:.4g}, outside [{LOW:g}, {HIGH:g}]", hint)


BRANCH_SCALE_CHECKS = (
    Check("1 block", functools.partial(_expect_bounded, counts=(1,))),
    Check("a few blocks", functools.partial(_expect_bounded, counts=(2, 3, 10))),
    Check("100 to 10 000 blocks", functools.partial(_expect_bounded, counts=BLOCK_COUNTS[4:])),
)


@register(BRANCH_SCALE_CHECKS)
def check_branch_scale(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``branch_scale(blocks)``: with α = branch_scale(L) in each of L pre-activation blocks (He
    initialisation, no normalisation), ``(1 + α²)^L`` stays in [1.5, 3] for L from 1 to 10 000.
    Prints one line; returns True if all checks pass."""
    return run_checks(fn, "branch_scale", BRANCH_SCALE_CHECKS, timeout)
