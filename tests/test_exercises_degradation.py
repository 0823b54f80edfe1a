"""Facts about chapter 0's checkers (resbook/exercises/degradation.py): each common mistake is named,
and the cases tell apart answers that are only partly right. The reference answers are the
chapter's own solution cells (book/00_degradation.ipynb)."""
import copy

import pytest
import torch
from torch import nn

from chapter_cells import reference_solution
from exercise_cases import assert_accepted, assert_refused, assert_refused_in
from resbook.exercises import check_deeper_twin, check_residual_forward
from resbook.models import Block, mlp


def residual_forward(x, weights):
    return reference_solution("residual_forward")(x, weights)


def deeper_twin(net, extra_blocks):
    return reference_solution("deeper_twin")(net, extra_blocks)


# --- residual_forward ---------------------------------------------------------------------------

def blockwise(block):
    def forward(x, weights):
        for W in weights:
            x = block(x, W)
        return x
    return forward


def in_place(x, weights):
    for W in weights:
        x += torch.relu(x @ W)
    return x


RESIDUAL_FORWARD_MISTAKES = [
    (blockwise(lambda x, W: torch.relu(x + x @ W)), "your output matches relu(x + x @ W)"),
    (blockwise(lambda x, W: torch.relu(x @ W)), "the identity path is missing"),
    (blockwise(lambda x, W: x + x @ W), "the branch has lost its relu"),
    (blockwise(lambda x, W: x + torch.relu(x @ W.T)), "look at the order of the product"),
    (lambda x, weights: x.clone(), "returns its input unchanged"),
    (in_place, "changed the tensors it was given"),
    (lambda x, weights: None, "should return a torch.Tensor, got NoneType. Hint: return the final x"),
    (lambda x, weights: residual_forward(x, weights).T, "of shape (4, 3)"),
    (lambda x, weights: residual_forward(x, weights).double(), "torch.float32 tensor"),
    (lambda x, weights: residual_forward(x, weights[:1]), "your output differs from the residual net's"),
]


@pytest.mark.parametrize("mistake, hint", RESIDUAL_FORWARD_MISTAKES)
def test_residual_forward_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_residual_forward, mistake, hint)


def test_residual_forward_checker_says_which_case_a_partly_written_function_fails(capsys):
    def partly_written(x, weights):
        if not weights:
            raise NotImplementedError
        return residual_forward(x, weights)

    assert_refused_in(capsys, check_residual_forward, partly_written, "no blocks",
                      saying="residual_forward raised NotImplementedError.")


def test_residual_forward_checker_catches_a_net_that_is_not_the_identity_at_zero_weights(capsys):
    def wrong_only_at_zero(x, weights):
        if weights and all(not W.any() for W in weights):
            return torch.relu(x)
        return residual_forward(x, weights)

    assert_refused_in(capsys, check_residual_forward, wrong_only_at_zero, "all-zero weights",
                      saying="with all-zero weights a residual net should return its input unchanged "
                             "— yours did not. Hint: ")


def test_residual_forward_checker_accepts_an_einsum_solution(capsys):
    # The same sums in another order: within the stated tolerance.
    assert_accepted(capsys, check_residual_forward,
                    blockwise(lambda x, W: x + torch.einsum("bi,ij->bj", x, W).clamp(min=0)))


# --- deeper_twin --------------------------------------------------------------------------------

def twin_with(make_blocks, place="before head", copy_net=True):
    """A deeper_twin built from ``make_blocks(width, n)``, placed in the net as told."""
    def deeper(net, extra_blocks):
        width = net[-1].in_features
        layers = list(copy.deepcopy(net) if copy_net else net)
        blocks = make_blocks(width, extra_blocks)
        if place == "after head":
            return nn.Sequential(*layers, *blocks)
        if place == "after stem linear":
            return nn.Sequential(layers[0], *blocks, *layers[1:])
        return nn.Sequential(*layers[:-1], *blocks, layers[-1])
    return deeper


def blocks_of(width, n, **options):
    return [m for m in mlp(2 + 2 * n, width, width, width, residual=True, **options) if isinstance(m, Block)]


def zero_blocks(width, n):
    return blocks_of(width, n, zero_init_branch=True)


def changes_net(net, extra_blocks):
    with torch.no_grad():
        net[0].weight.mul_(2)
    return deeper_twin(net, extra_blocks)


DEEPER_TWIN_MISTAKES = [
    (lambda net, extra_blocks: net, "deeper_twin returned `net` itself"),
    (lambda net, extra_blocks: None, "got NoneType. Hint: did you forget `return`?"),
    (lambda net, extra_blocks: copy.deepcopy(net),
     "the twin has 6 weight layers; a depth-6 net with 2 more blocks has 10"),
    (twin_with(blocks_of), "the twin computes a different function"),
    (twin_with(zero_blocks, place="after stem linear"), "what must F be, and what must x be"),
    (twin_with(zero_blocks, place="after head"), "running the twin in eval mode on a batch raised RuntimeError"),
    (twin_with(zero_blocks, copy_net=False), "the twin shares layers with `net`"),
    (changes_net, "deeper_twin changed `net`"),
]


@pytest.mark.parametrize("mistake, hint", DEEPER_TWIN_MISTAKES)
def test_deeper_twin_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_deeper_twin, mistake, hint)


def test_deeper_twin_checker_tries_a_net_with_no_blocks_yet(capsys):
    def after_last_block(net, extra_blocks):
        layers = list(copy.deepcopy(net))
        end = max(i for i, m in enumerate(layers) if isinstance(m, Block)) + 1
        return nn.Sequential(*layers[:end], *zero_blocks(net[-1].in_features, extra_blocks), *layers[end:])

    line = assert_refused_in(capsys, check_deeper_twin, after_last_block, "a depth-2 net")
    assert "deeper_twin raised ValueError" in line


def test_deeper_twin_checker_leaves_the_global_random_state_alone(capsys):
    def deeper_twin_without_randomness(net, extra_blocks):  # the solution draws new weights; undo that
        with torch.random.fork_rng(devices=[]):
            return deeper_twin(net, extra_blocks)

    state = torch.get_rng_state()
    assert_accepted(capsys, check_deeper_twin, deeper_twin_without_randomness)
    assert torch.equal(torch.get_rng_state(), state)
