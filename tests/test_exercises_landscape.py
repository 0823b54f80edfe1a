"""Facts about chapter 4's checkers (resbook/exercises/landscape.py): each wrong answer a hint names is
rejected with that hint. The reference answers are the chapter's own solution cells
(book/04_landscape.ipynb)."""
import numpy as np
import pytest
import torch

from chapter_cells import reference_solution
from exercise_cases import assert_accepted, assert_refused, refusals
from resbook.exercises import check_count_local_minima, check_filter_normalise
from resbook.landscape import local_minima


def filter_normalise(direction, weight):
    return reference_solution("filter_normalise")(direction, weight)


def count_local_minima(grid):
    return reference_solution("count_local_minima")(grid)


# --- filter_normalise -----------------------------------------------------------------------------

def unit_filters(direction, weight):
    if weight.dim() <= 1:
        return torch.zeros_like(direction)
    return direction / direction.flatten(1).norm(dim=1).view(-1, *[1] * (direction.dim() - 1))


def by_columns(direction, weight):
    if weight.dim() <= 1:
        return torch.zeros_like(direction)
    return direction * weight.norm(dim=0, keepdim=True) / direction.norm(dim=0, keepdim=True)


def in_place(direction, weight):
    if weight.dim() <= 1:
        return direction.zero_()
    return direction.mul_((weight.flatten(1).norm(dim=1) / direction.flatten(1).norm(dim=1)).view(
        -1, *[1] * (weight.dim() - 1)))


def two_dimensional_only(direction, weight):
    if weight.dim() <= 1:
        return torch.zeros_like(direction)
    return direction * (weight.norm(dim=1, keepdim=True) / direction.norm(dim=1, keepdim=True))


FILTER_NORMALISE_MISTAKES = [
    (lambda d, w: d * w.norm() / d.norm(), "layer-wise normalisation"),
    (unit_filters, "your filters all have norm 1"),
    (by_columns, "a filter is a row"),
    (lambda d, w: d if w.dim() <= 1 else filter_normalise(d, w), "should not move: return zeros"),
    (lambda d, w: w.clone(), "your output is the weights themselves"),
    (in_place, "changed the tensors it was given"),
    (lambda d, w: None, "got NoneType. Hint: did you forget `return`?"),
    (lambda d, w: filter_normalise(d, w).flatten(), "of shape (4, 6)"),
    (two_dimensional_only, "a convolution's filter is everything after the first index"),
]


def test_filter_normalise_checker_passes_the_chapters_solution_and_another_correct_answer(capsys):
    def row_by_row(direction, weight):
        if weight.dim() <= 1:
            return torch.zeros_like(direction)
        return torch.stack([d * w.norm() / d.norm() for d, w in zip(direction, weight)])

    for answer in (filter_normalise, row_by_row):
        assert_accepted(capsys, check_filter_normalise, answer)


# --- count_local_minima ---------------------------------------------------------------------------

def four_neighbours(grid):
    f = np.asarray(grid)
    c = f[1:-1, 1:-1]
    return int(((c < f[:-2, 1:-1]) & (c < f[2:, 1:-1]) & (c < f[1:-1, :-2]) & (c < f[1:-1, 2:])).sum())


def with_the_edge(grid):
    return local_minima(np.pad(np.asarray(grid, dtype=float), 1, constant_values=np.inf))


def not_strict(grid):
    f = np.asarray(grid)
    return sum(all(f[i, j] <= f[i + a, j + b] for a in (-1, 0, 1) for b in (-1, 0, 1))
               for i in range(1, f.shape[0] - 1) for j in range(1, f.shape[1] - 1))


COUNT_MINIMA_MISTAKES = [
    (four_neighbours, "compare with the diagonal neighbours too"),
    (with_the_edge, "includes points on the edge of the grid"),
    (not_strict, "strictly lower than all eight"),
    (lambda grid: local_minima(-np.asarray(grid)), "matches the local maxima"),
    (lambda grid: None, "should return an int, got NoneType. Hint: did you forget `return`?"),
    (lambda grid: [(1, 1)], "count the points, do not list them"),
    (lambda grid: 1, "wrong count on an egg crate"),
]


@pytest.mark.parametrize("checker, mistake, hint", refusals({check_filter_normalise: FILTER_NORMALISE_MISTAKES,
                                                             check_count_local_minima: COUNT_MINIMA_MISTAKES}))
def test_each_checker_rejects_each_mistake_its_hints_name_with_that_hint(capsys, checker, mistake, hint):
    assert_refused(capsys, checker, mistake, hint)


def test_count_local_minima_checker_accepts_a_numpy_integer_and_the_chapters_solution(capsys):
    for answer in (count_local_minima, lambda grid: np.int64(local_minima(grid))):
        assert_accepted(capsys, check_count_local_minima, answer)
