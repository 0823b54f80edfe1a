"""Facts about chapter 1's checkers (resbook/exercises/identity.py): each common mistake is named by its
hint, and correct answers other than the chapter's pass. The reference answers are the chapter's own
solution cells (book/01_identity.ipynb)."""
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from chapter_cells import reference_solution
from exercise_cases import assert_accepted, assert_refused
from resbook.exercises import check_branch_scale, check_identity_block
from resbook.models import Block


def identity_block(width):
    return reference_solution("identity_block")(width)


def branch_scale(blocks):
    return reference_solution("branch_scale")(blocks)


# --- identity_block ------------------------------------------------------------------------------

def branch(width, zero_last=True, zero_all=False):
    layers = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
    for layer in (layers[1], layers[3]) if zero_all else (layers[3],) if zero_last else ():
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    return layers


class ReZero(nn.Module):
    """ReZero: y = x + α·F(x) with a learnable α that starts at 0 and a normally drawn branch."""

    def __init__(self, width):
        super().__init__()
        self.branch, self.alpha = branch(width, zero_last=False), nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x + self.alpha * self.branch(x)


IDENTITY_BLOCK_MISTAKES = [
    (lambda w: Block(branch(w), 1.0, 1.0, nn.ReLU()), "your block returns ReLU(x)"),
    (lambda w: nn.Identity(), "no trainable parameters"),
    (lambda w: Block(branch(w, zero_last=False), 1.0, 0.0, nn.Identity()),
     "no parameter of your block gets a gradient"),
    (lambda w: Block(branch(w, zero_all=True), 1.0, 1.0, nn.Identity()), "only adds a constant"),
    (lambda w: Block(branch(w, zero_last=False), 1.0, 1.0, nn.Identity()), "it is off by up to"),
    (lambda w: None, "should return a torch.nn.Module, got NoneType. Hint: did you forget `return`?"),
    (lambda w: nn.Linear(w, w + 1), "should return a tensor of shape"),
]


@pytest.mark.parametrize("mistake, hint", IDENTITY_BLOCK_MISTAKES)
def test_identity_block_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_identity_block, mistake, hint)


def test_a_block_off_the_identity_is_refused_without_a_warning_above_the_verdict():
    # In a fresh interpreter, as in a notebook: pytest would record the warning instead of printing it.
    student = """
from torch import nn
from resbook.exercises import check_identity_block
from resbook.models import Block
branch = lambda w: nn.Sequential(nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, w))
check_identity_block(lambda w: Block(branch(w), 1.0, 1.0, nn.Identity()))
"""
    run = subprocess.run([sys.executable, "-W", "always", "-c", student], capture_output=True, text=True, timeout=120)
    assert "it is off by up to" in run.stdout and "Warning" not in run.stdout + run.stderr, run.stderr


def test_identity_block_checker_passes_the_chapters_solution_and_rezero(capsys):
    for answer in (identity_block, lambda width: ReZero(width)):
        assert_accepted(capsys, check_identity_block, answer)


def test_the_chapters_identity_block_is_the_identity_and_learns():
    block = identity_block(6)
    x = torch.randn(4, 6)
    assert torch.equal(block(x), x)
    loss = (block(x) - torch.randn(4, 6)).pow(2).sum()
    loss.backward()
    assert block.branch[-1].weight.grad.any() and not block.branch[1].weight.grad.any()  # only the last layer


# --- branch_scale --------------------------------------------------------------------------------

BRANCH_SCALE_MISTAKES = [
    (lambda blocks: 1 / math.sqrt(2), "your α is the same for every number of blocks"),
    (lambda blocks: 1.0, "your α is the same for every number of blocks"),
    (lambda blocks: 1 / blocks, "α shrinks faster with L than it needs to"),
    (lambda blocks: 2 / math.sqrt(blocks), "choose α² so that the product of L of them stays bounded"),
    (lambda blocks: None, "should return a finite real number, got NoneType"),
    (lambda blocks: math.inf, "should return a finite real number"),
]


@pytest.mark.parametrize("mistake, hint", BRANCH_SCALE_MISTAKES)
def test_branch_scale_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_branch_scale, mistake, hint)


def test_branch_scale_checker_accepts_the_solution_a_tensor_and_a_negative_scale(capsys):
    for answer in (branch_scale, lambda blocks: torch.tensor(blocks ** -0.5), lambda blocks: -(blocks ** -0.5)):
        assert_accepted(capsys, check_branch_scale, answer)


def test_the_chapters_branch_scale_keeps_the_derived_growth_below_e():
    for blocks in (1, 7, 100, 10_000):
        growth = (1 + branch_scale(blocks) ** 2) ** blocks
        assert 2 <= growth < math.e
