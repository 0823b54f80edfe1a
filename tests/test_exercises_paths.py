"""Facts about chapter 5's checkers (resbook/exercises/paths.py): each common mistake is named, and the
cases tell apart answers that are only partly right. The reference answers are the chapter's own
solution cells (book/05_paths.ipynb)."""
import copy

import pytest
import torch

from chapter_cells import reference_solution
from exercise_cases import assert_accepted, assert_refused, assert_refused_in, refusals
from resbook.exercises import check_delete_block, check_paths_by_length
from resbook.exercises.paths import _upward_in_place as upward  # the mistake its hint names
from resbook.models import Block


def paths_by_length(jacobians):
    return reference_solution("paths_by_length")(jacobians)


def delete_block(net, index):
    return reference_solution("delete_block")(net, index)


# --- paths_by_length ---------------------------------------------------------------------------

def wrong_order(jacobians):
    by_length = [torch.eye(jacobians[0].shape[0])]
    for jacobian in jacobians:
        by_length.append(by_length[-1] @ jacobian)
        for k in range(len(by_length) - 2, 0, -1):
            by_length[k] = by_length[k] + by_length[k - 1] @ jacobian
    return by_length


def in_place_on_input(jacobians):
    result = paths_by_length([j.clone() for j in jacobians])
    jacobians[0] += 1.0
    return result


PATHS_MISTAKES = [
    (wrong_order, "the later block's Jacobian on the left"),
    (upward, "some paths pass through it twice"),
    (lambda jacobians: paths_by_length(jacobians)[1:], "your list lacks P_0"),
    (lambda jacobians: sum(paths_by_length(jacobians)), "not their sum"),
    (lambda jacobians: None, "did you forget `return`?"),
    (in_place_on_input, "changed the matrices it was given"),
    (lambda jacobians: paths_by_length(jacobians) + [torch.zeros_like(jacobians[0])],
     "have paths of lengths 0 to"),
]


def test_paths_checker_accepts_the_chapters_solution(capsys):
    assert_accepted(capsys, check_paths_by_length, paths_by_length)


def test_paths_checker_catches_an_answer_right_only_for_commuting_matrices(capsys):
    # Right for one block (one path per length), wrong as soon as the order of two products matters.
    assert_refused_in(capsys, check_paths_by_length, wrong_order, "two blocks by hand")


# --- delete_block ------------------------------------------------------------------------------

def branch_only(net, index):
    copied = copy.deepcopy(net)
    [m for m in copied.modules() if isinstance(m, Block)][index].residual_scale.fill_(0.0)
    return copied


def gate_only(net, index):
    copied = copy.deepcopy(net)
    [m for m in copied.modules() if isinstance(m, Block)][index].identity_gate.fill_(1.0)
    return copied


def in_place(net, index):
    delete_block(net, index)
    block = [m for m in net.modules() if isinstance(m, Block)][index]
    block.identity_gate.fill_(1.0)
    block.residual_scale.fill_(0.0)
    return net


DELETE_MISTAKES = [
    (branch_only, "in a plain block the identity gate is 0 as well"),
    (gate_only, "set α to 0 too"),
    (lambda net, index: delete_block(net, index + 1), "blocks are counted from 0"),
    (in_place, "delete_block changed `net`"),
    (lambda net, index: None, "did you forget `return`?"),
    (lambda net, index: [m for m in delete_block(net, index).modules() if isinstance(m, Block)][index],
     "return a whole net"),
]


@pytest.mark.parametrize("checker, mistake, hint",
                         refusals({check_paths_by_length: PATHS_MISTAKES, check_delete_block: DELETE_MISTAKES}))
def test_each_checker_names_each_common_mistake(capsys, checker, mistake, hint):
    assert_refused(capsys, checker, mistake, hint)


def test_only_alpha_zero_passes_residual_nets_and_fails_on_the_plain_net(capsys):
    assert_refused_in(capsys, check_delete_block, branch_only, "a 8-layer plain")


def test_removing_the_block_from_the_sequential_is_an_equally_right_deletion(capsys):
    def removed(net, index):
        copied = copy.deepcopy(net)
        block = [m for m in copied.modules() if isinstance(m, Block)][index]
        return torch.nn.Sequential(*[m for m in copied if m is not block])

    assert_accepted(capsys, check_delete_block, removed)
