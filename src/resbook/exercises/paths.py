"""Checkers for chapter 5, "An ensemble of paths".

``paths_by_length(jacobians)``: the dynamic programme that groups the 2ⁿ paths through ``n`` residual
blocks by length, ``P_k ← P_k + J_l P_{k-1}``, compared with brute-force enumeration.
``delete_block(net, index)``: a copy of a net in which one block passes its input on unchanged, in a
residual or a plain net, built from the buffers of :class:`resbook.models.Block`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models import Block, mlp
from ..paths import delete_blocks, jacobian_by_path_length_brute_force
from .checking import (DEFAULT_TIMEOUT, Check, WrongAnswer, call_student, looks_trained, mistake_hint,
                       output_in_eval_mode, plain_tensor, run_checks)
from .registry import register

# float32 products of at most six 4×4 matrices of entries ~0.5: correct orders of summation agree to
# ~1e-6; every wrong answer the hints name is off by more than 1e-2.
PATHS_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
# The lesioned net must compute exactly what the book's deletion computes: equal up to float32 rounding.
DELETE_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


# --- paths_by_length ---------------------------------------------------------------------------

def _reference(jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(jacobian_by_path_length_brute_force(torch.stack(jacobians)).unbind(0))


def _forward_order(jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    """A common mistake: the products taken in the wrong order, ``P_{k-1} J_l``."""
    return [p.T for p in _reference([j.T for j in jacobians])]


def _upward_in_place(jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    """A common mistake: updating from short to long lengths in place, so a path can use a block twice."""
    width = jacobians[0].shape[0]
    by_length = [torch.eye(width)] + [torch.zeros(width, width) for _ in jacobians]
    for jacobian in jacobians:
        for k in range(1, len(by_length)):
            by_length[k] = by_length[k] + jacobian @ by_length[k - 1]
    return by_length


def _without_identity(jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    """A common mistake: no length-0 path (the skip of every block)."""
    return _reference(jacobians)[1:]


_PATHS_MISTAKES: tuple[tuple[Callable[[list[torch.Tensor]], list[torch.Tensor]], str], ...] = (
    (_forward_order, "your P_k match the products taken in the wrong order: a path through blocks "
                     "l_1 < … < l_k is J_{l_k} ⋯ J_{l_1}, the later block's Jacobian on the left"),
    (_upward_in_place, "your P_k match an update from short to long lengths in place: the new P_{k-1} then "
                       "already holds this block, so some paths pass through it twice. Update the longest "
                       "length first, or from a copy of the previous P's"),
    (_without_identity, "your list lacks P_0: the one path of length 0 skips every block, and its product is "
                        "the identity"),
)


def _same_matrices(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.allclose(x, y, **PATHS_TOLERANCE)
                                    for x, y in zip(a, b))


def _paths_hint(answer: list[torch.Tensor], jacobians: list[torch.Tensor], fallback: str) -> str:
    wrongs = ((mistake(jacobians), hint) for mistake, hint in _PATHS_MISTAKES)
    return mistake_hint(answer, _reference(jacobians), wrongs, _same_matrices) or fallback


def _call_paths(fn: Callable[..., Any], jacobians: list[torch.Tensor]) -> list[torch.Tensor]:
    given = [j.clone() for j in jacobians]
    answer = call_student(fn, given)
    if not all(torch.equal(plain_tensor(g), j) for g, j in zip(given, jacobians)) or len(given) != len(jacobians):
        raise WrongAnswer("paths_by_length changed the matrices it was given",
                          "an in-place update such as `P += ...` can write into a Jacobian; make new tensors")
    if isinstance(answer, torch.Tensor) or not isinstance(answer, (list, tuple)):
        raise WrongAnswer(f"paths_by_length should return a list of n + 1 matrices, got {type(answer).__name__}",
                          "return the list [P_0, …, P_n], not their sum" if isinstance(answer, torch.Tensor)
                          else "did you forget `return`?" if answer is None else "")
    answer = [plain_tensor(p) for p in answer]  # a Tensor subclass cannot fool allclose
    width = jacobians[0].shape[0]
    if not all(isinstance(p, torch.Tensor) and p.shape == (width, width) for p in answer):
        raise WrongAnswer(f"every entry of the list should be a {width}×{width} tensor",
                          "P_k has the shape of the Jacobians")
    return answer


def _expect_paths(fn: Callable[..., Any], jacobians: list[torch.Tensor], what: str) -> None:
    answer, right = _call_paths(fn, jacobians), _reference(jacobians)
    if not _same_matrices(answer, right):
        fallback = (f"{len(jacobians)} blocks have paths of lengths 0 to {len(jacobians)}: {len(right)} matrices"
                    if len(answer) != len(right) else "compare your P_k with a sum over every path, for two blocks")
        raise WrongAnswer(f"your P_k differ from the sums over all paths ({what})",
                          _paths_hint(answer, jacobians, fallback))


def _random_jacobians(blocks: int, width: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [0.5 * torch.randn(width, width, generator=generator) for _ in range(blocks)]


def _paths_by_hand(fn: Callable[..., Any]) -> None:
    first = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # J_2 J_1 ≠ J_1 J_2 for these two
    second = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    _expect_paths(fn, [first, second], "two blocks: expected [I, J_1 + J_2, J_2 J_1]")


PATHS_BY_LENGTH_CHECKS = (
    Check("one block", lambda fn: _expect_paths(fn, _random_jacobians(1, 3, 0), "one block: [I, J_1]")),
    Check("two blocks by hand", _paths_by_hand),
    Check("random nets",
          lambda fn: [_expect_paths(fn, _random_jacobians(n, w, s), f"{n} blocks of width {w}")
                      for n, w, s in ((3, 4, 1), (6, 4, 2), (5, 1, 3))]),
)


@register(PATHS_BY_LENGTH_CHECKS)
def check_paths_by_length(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``paths_by_length(jacobians)``: ``[P_0, …, P_n]``, each the sum of the ordered products of the
    paths of that length, against brute-force enumeration. Prints one line; returns True if all pass."""
    return run_checks(fn, "paths_by_length", PATHS_BY_LENGTH_CHECKS, timeout)


# --- delete_block ------------------------------------------------------------------------------

IN_FEATURES, OUT_FEATURES = 5, 3


def _delete_hint(net: nn.Module, index: int, answer: torch.Tensor, x: torch.Tensor) -> str:
    blocks = len([m for m in net.modules() if isinstance(m, Block)])
    wrong = {"branch only": "your net matches one in which only α was set to 0: in a plain block the identity "
                            "gate is 0 as well, so the block outputs nothing. The deleted block must keep x",
             "gate only": "your net matches one whose block still adds its branch: set α to 0 too"}
    candidates = {}
    for name, (gate, scale) in (("branch only", (None, 0.0)), ("gate only", (1.0, None))):
        copied = delete_blocks(net, [])
        block = [m for m in copied.modules() if isinstance(m, Block)][index]
        if gate is not None:
            block.identity_gate.fill_(gate)
        if scale is not None:
            block.residual_scale.fill_(scale)
        candidates[name] = copied
    for neighbour in (index - 1, index + 1):
        if 0 <= neighbour < blocks:
            candidates[f"block {neighbour}"] = delete_blocks(net, [neighbour])
            wrong[f"block {neighbour}"] = (f"your net matches the one with block {neighbour} deleted: "
                                           "blocks are counted from 0, first block first")
    with torch.no_grad():
        outputs = ((candidate.eval()(x), wrong[name]) for name, candidate in candidates.items())
        hint = mistake_hint(answer, delete_blocks(net, [index])(x), outputs,
                            lambda a, b: torch.allclose(a, b, **DELETE_TOLERANCE))
    return hint or "a deleted block computes y = x: which buffers of Block give that, in a plain block too?"


def _expect_deleted(fn: Callable[..., Any], depth: int, residual: bool, preactivation: bool, index: int,
                    seed: int) -> None:
    net = looks_trained(lambda: mlp(depth, 6, IN_FEATURES, OUT_FEATURES, residual=residual,
                                    preactivation=preactivation), seed, IN_FEATURES)
    x = 2.0 * torch.randn(16, IN_FEATURES, generator=torch.Generator().manual_seed(seed)) + 0.5
    original = {key: value.clone() for key, value in net.state_dict().items()}
    answer_net = call_student(fn, net, index)
    state = net.state_dict()
    if state.keys() != original.keys() or not all(torch.equal(plain_tensor(state[k]), v) for k, v in original.items()):
        raise WrongAnswer("delete_block changed `net`", "change a copy (copy.deepcopy), not `net` itself")
    if not isinstance(answer_net, nn.Module) or answer_net is net:
        raise WrongAnswer("delete_block should return a new net (an nn.Module)",
                          "did you forget `return`?" if answer_net is None else "return the changed copy")
    answer = output_in_eval_mode(answer_net, x, "the returned net", "return a whole net (an nn.Module), not one block")
    with torch.no_grad():
        expected = delete_blocks(net, [index])(x)
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        raise WrongAnswer("the returned net gives outputs of the wrong shape", "keep the stem and the head")
    if not torch.allclose(answer, expected, **DELETE_TOLERANCE):
        raise WrongAnswer(f"the returned net does not compute the net with block {index} deleted",
                          _delete_hint(net, index, answer, x))


def _delete_case(depth: int, residual: bool, preactivation: bool, index: int, seed: int) -> Check:
    kind = ("residual" if residual else "plain") + (", pre-activation" if preactivation else ", post-activation")
    return Check(f"a {depth}-layer {kind} net, block {index}",
                 functools.partial(_expect_deleted, depth=depth, residual=residual, preactivation=preactivation,
                                   index=index, seed=seed))


DELETE_BLOCK_CHECKS = (
    _delete_case(8, True, True, 1, seed=0),
    _delete_case(8, False, True, 0, seed=1),
    _delete_case(10, True, False, 3, seed=2),
    _delete_case(10, False, False, 2, seed=3),
)


@register(DELETE_BLOCK_CHECKS)
def check_delete_block(fn: Callable[..., Any], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Check ``delete_block(net, index)``: a new net in which block ``index`` computes ``y = x``, the others
    unchanged and ``net`` left as it was; residual and plain, pre- and post-activation nets. Prints one
    line; returns True if all pass."""
    return run_checks(fn, "delete_block", DELETE_BLOCK_CHECKS, timeout)
