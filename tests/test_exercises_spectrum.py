"""Facts about chapter 3's checkers (resbook/exercises/spectrum.py): each common mistake is named, and a
correct answer written another way passes. The reference answers are the chapter's own solution cells
(book/03_spectrum.ipynb)."""
import pytest
import torch

from chapter_cells import reference_solution
from exercise_cases import assert_accepted, assert_refused, assert_refused_in
from resbook.exercises import check_residual_stack_jacobian, check_weyl_interval


def weyl_interval(W):
    return reference_solution("weyl_interval")(W)


def residual_stack_jacobian(weights):
    return reference_solution("residual_stack_jacobian")(weights)


def sized(measure):
    return lambda W: (1 - measure(W), 1 + measure(W))


def writes_into(W):
    W.mul_(2)
    return weyl_interval(W / 2)


WEYL_MISTAKES = [
    (sized(lambda W: torch.linalg.matrix_norm(W).item()), "the Frobenius norm"),
    (sized(lambda W: torch.linalg.eigvals(W).abs().max().item()), "the spectral radius"),
    (sized(lambda W: W.abs().max().item()), "the largest entry of W"),
    (lambda W: (-torch.linalg.matrix_norm(W, ord=2).item(), torch.linalg.matrix_norm(W, ord=2).item()),
     "centred on 0"),
    (lambda W: 1 + torch.linalg.matrix_norm(W, ord=2).item(), "should return a pair (lower, upper)"),
    (lambda W: ("low", "high"), "should return two numbers"),
    (writes_into, "changed the matrix it was given"),
    (sized(lambda W: 0.5 * torch.linalg.matrix_norm(W, ord=2).item()), "not Weyl's"),
]


@pytest.mark.parametrize("mistake, hint", WEYL_MISTAKES)
def test_weyl_interval_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_weyl_interval, mistake, hint)


def test_spectral_radius_mistake_is_caught_only_by_the_non_normal_case(capsys):
    # For a diagonal (normal) W, max |λ| is ‖W‖₂: the first case cannot tell them apart; the second must.
    assert_refused_in(capsys, check_weyl_interval, sized(lambda W: torch.linalg.eigvals(W).abs().max().item()),
                      "non-normal W", saying="your interval for a non-normal 4 × 4 W (seed 0) is wrong. "
                                             "Hint: your interval matches 1 ± the spectral radius")


def test_weyl_interval_checker_accepts_tensors_and_an_svd_solution(capsys):
    def by_svd(W):
        top = torch.linalg.svdvals(W)[0]
        return torch.stack([1 - top, 1 + top])

    assert_accepted(capsys, check_weyl_interval, by_svd)


def stack(factor, order=1):
    def jacobian(weights):
        result = torch.eye(weights[0].shape[0], dtype=weights[0].dtype)
        for w in weights[::order]:
            result = factor(w) @ result
        return result
    return jacobian


def in_place(weights):
    for w in weights:
        w += torch.eye(len(w), dtype=w.dtype)
    return stack(lambda w: w)(weights)


STACK_MISTAKES = [
    (stack(lambda w: torch.eye(len(w), dtype=w.dtype) + w, order=-1), "the first layer acts first"),
    (stack(lambda w: w), "that is the plain stack"),
    (lambda ws: torch.eye(len(ws[0]), dtype=ws[0].dtype) + sum(ws), "their Jacobians multiply"),
    (stack(lambda w: torch.eye(len(w), dtype=w.dtype) + w.T), "transposed weights"),
    (in_place, "changed the tensors it was given"),
    (lambda ws: residual_stack_jacobian(ws)[:, :1], "should return an"),
    (lambda ws: None, "got NoneType"),
    (lambda ws: 2 * residual_stack_jacobian(ws), "differentiate it"),
]


@pytest.mark.parametrize("mistake, hint", STACK_MISTAKES)
def test_residual_stack_jacobian_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_residual_stack_jacobian, mistake, hint)


def test_residual_stack_jacobian_checker_accepts_autograd(capsys):
    def by_autograd(weights):
        def run(x):
            for w in weights:
                x = x + w @ x
            return x
        return torch.autograd.functional.jacobian(run, torch.zeros(len(weights[0]), dtype=weights[0].dtype))

    assert_accepted(capsys, check_residual_stack_jacobian, by_autograd)
