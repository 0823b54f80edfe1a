"""Facts about chapter 6's checkers (resbook/exercises/dilution.py): each wrong answer their hints name
is caught and named. The reference answers are the chapter's own solution cells (book/06_dilution.ipynb)."""
import math

import pytest
import torch

from chapter_cells import reference_solution
from exercise_cases import assert_accepted, assert_refused, assert_refused_in
from resbook.exercises import check_dilution, check_gsc


def dilution(inputs, outputs, held_inputs, held_outputs):
    return reference_solution("dilution")(inputs, outputs, held_inputs, held_outputs)


def gsc(jacobians, inputs, outputs):
    return reference_solution("gsc")(jacobians, inputs, outputs)


def q(x):
    return x.pow(2).sum(1).mean().sqrt()


def least_squares(v, f):
    ones = torch.ones(len(v), 1, dtype=torch.float64)
    solution = torch.linalg.lstsq(torch.cat([v.double(), ones], 1), f.double()).solution
    return solution[:-1], solution[-1]


def without_intercept(v, f, held_v, held_f):
    S = torch.linalg.lstsq(v.double(), f.double()).solution
    return float(q(held_v @ S) / q(held_f - held_v @ S))


def uncentred_linear_part(v, f, held_v, held_f):
    S, c = least_squares(v, f)
    remainder = held_f - held_v @ S - c
    return float(q(held_v @ S) / q(remainder - remainder.mean(0)))


DILUTION_MISTAKES = [
    (without_intercept, "the split without an intercept"),
    (lambda *pairs: 1 / dilution(*pairs), "matches 1/k"),
    (lambda *pairs: dilution(*pairs) ** 2, "matches k²"),
    (uncentred_linear_part, "inputs that are not centred"),
    (lambda *pairs: torch.tensor([1.0, 2.0]), "should return a number, got Tensor"),
    (lambda *pairs: 2.0, "fit S and the intercept on the first pair only"),
]


@pytest.mark.parametrize("mistake, hint", DILUTION_MISTAKES)
def test_dilution_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_dilution, mistake, hint)


def test_dilution_checker_wants_an_affine_function_to_be_infinitely_diluted(capsys):
    def finite_for_affine(*pairs):
        k = dilution(*pairs)
        return 10.0 if k > 1e6 else k

    line = assert_refused_in(capsys, check_dilution, finite_for_affine, "an affine function")
    assert "k is infinite" in line


def test_dilution_checker_accepts_the_normal_equations_and_an_infinite_k(capsys):
    def normal_equations(v, f, held_v, held_f):
        design = torch.cat([v, torch.ones(len(v), 1, dtype=v.dtype)], 1)
        solution = torch.linalg.solve(design.T @ design, design.T @ f)
        S, c = solution[:-1], solution[-1]
        remainder = held_f - held_v @ S - c
        remainder = remainder - remainder.mean(0)
        size = q(remainder)
        return math.inf if size < 1e-9 * q(held_f - held_f.mean(0)) else float(q((held_v - v.mean(0)) @ S) / size)

    assert_accepted(capsys, check_dilution, normal_equations)


def gsc_with(norm_per, ratio="in/out"):
    def wrong(jacobians, inputs, outputs):
        squares = jacobians.pow(2).sum((1, 2)).mean()
        j = (squares / norm_per(jacobians)).sqrt()
        if ratio == "none":
            return float(j)
        a, b = (inputs, outputs) if ratio == "in/out" else (outputs, inputs)
        return float(j * q(a) / q(b))
    return wrong


def spectral(jacobians, inputs, outputs):
    j = torch.linalg.matrix_norm(jacobians, ord=2).pow(2).mean().sqrt()
    return float(j * q(inputs) / q(outputs))


GSC_MISTAKES = [
    (gsc_with(lambda j: j.shape[1]), "divided by the output width"),
    (gsc_with(lambda j: 1), "the plain Frobenius norm"),
    (spectral, "the spectral norm"),
    (gsc_with(lambda j: j.shape[2], ratio="none"), "‖J‖_qm alone"),
    (gsc_with(lambda j: j.shape[2], ratio="out/in"), "the input's size goes in the numerator"),
    (lambda *args: None, "should return a number, got NoneType"),
]


@pytest.mark.parametrize("mistake, hint", GSC_MISTAKES)
def test_gsc_checker_names_each_common_mistake(capsys, mistake, hint):
    assert_refused(capsys, check_gsc, mistake, hint)


def test_gsc_checker_accepts_a_one_element_tensor_answer(capsys):
    assert_accepted(capsys, check_gsc, lambda *args: torch.tensor(gsc(*args), dtype=torch.float64))
