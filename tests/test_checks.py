"""Facts about the argument checks every public helper uses: which values pass, in what type they
come back, and that a refusal names the argument, the value and what is allowed."""
import fractions
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from resbook._checks import (check_bool, check_choice, check_choices, check_dataset, check_int, check_ints,
                             check_module, check_numbers, check_positive_float, check_real, check_sequence,
                             check_tensor)
from resbook.data import teacher_regression

NUMPY_INTEGERS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("kind", [int, *NUMPY_INTEGERS])
def test_check_int_returns_a_python_int_for_python_and_numpy_integers(kind):
    value = check_int("n", kind(7), 1)
    assert value == 7 and type(value) is int


def test_check_int_accepts_the_values_of_a_numpy_range():
    # A sweep written as np.arange(4, 12, 4) hands np.int64 values to the helpers.
    assert [check_int("depth", depth, 2) for depth in np.arange(4, 12, 4)] == [4, 8]


@pytest.mark.parametrize("value", [True, False, np.True_, 1.0, 2.5, np.float64(3.0), "3", None,
                                   torch.tensor(3), np.array([3]), 3 + 0j])
def test_check_int_refuses_what_is_not_an_integer_naming_it(value):
    with pytest.raises(TypeError, match=r"depth must be an int, got"):
        check_int("depth", value, 1)


@given(st.integers(-1000, 1000), st.integers(-50, 50), st.integers(0, 100))
def test_check_int_passes_exactly_the_values_within_its_bounds(value, minimum, span):
    maximum = minimum + span
    inside = minimum <= value <= maximum
    if inside:
        assert check_int("k", value, minimum, maximum) == value
    else:
        with pytest.raises(ValueError, match=f"k must be an int from {minimum} to {maximum}, got {value}"):
            check_int("k", value, minimum, maximum)


def test_check_int_without_a_maximum_names_its_minimum():
    assert check_int("width", 10**12, 1) == 10**12
    with pytest.raises(ValueError, match="width must be >= 1, got 0"):
        check_int("width", np.int64(0), 1)


@pytest.mark.parametrize("value, expected", [
    (0.05, 0.05), (3, 3.0), (np.float64(0.5), 0.5), (np.float32(0.25), 0.25), (np.int64(2), 2.0),
    (np.uint8(4), 4.0), (fractions.Fraction(1, 4), 0.25),
])
def test_check_positive_float_returns_a_python_float_for_any_real_number(value, expected):
    result = check_positive_float("lr", value)
    assert result == expected and type(result) is float


def test_check_positive_float_keeps_the_value_of_a_float32():
    # float32(0.1) is not the double 0.1: the check converts, it does not round to a decimal.
    assert check_positive_float("lr", np.float32(0.1)) == float(np.float32(0.1))


@pytest.mark.parametrize("value", [True, np.False_, 1j, np.complex128(1), "0.1", None, torch.tensor(0.1),
                                   [0.1]])
def test_check_positive_float_refuses_what_is_not_a_real_number(value):
    with pytest.raises(TypeError, match="lr must be a real number, got"):
        check_positive_float("lr", value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf"),
                                   -0.1, np.int64(-1), 0, 0.0])
def test_check_positive_float_refuses_what_is_not_finite_and_positive(value):
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got"):
        check_positive_float("lr", value)


def test_zero_passes_only_when_allowed():
    assert check_positive_float("momentum", 0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="momentum must be a finite number >= 0, got -1"):
        check_positive_float("momentum", -1, allow_zero=True)


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (np.True_, True),
                                             (np.bool_(False), False)])
def test_check_bool_returns_a_python_bool_for_true_and_false(value, expected):
    result = check_bool("preactivation", value)
    assert result is expected


@pytest.mark.parametrize("value", ["no", "False", 0, 1, 1.0, None, torch.tensor(True), [True]])
def test_check_bool_refuses_anything_read_only_by_its_truth_value(value):
    with pytest.raises(TypeError, match="preactivation must be True or False, got"):
        check_bool("preactivation", value)


def test_check_choice_lists_the_allowed_values():
    assert check_choice("norm", "batch", ("batch", None)) == "batch"
    with pytest.raises(ValueError, match="norm must be one of 'batch', None; got 'layer'"):
        check_choice("norm", "layer", ("batch", None))


def test_check_module_accepts_models_and_layers_only():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert check_module("model", model) is model and check_module("model", model[0]) is model[0]
    for value in [lambda x: x, torch.zeros(2), "mlp"]:
        with pytest.raises(TypeError, match="model must be a torch.nn.Module, got"):
            check_module("model", value)


def test_check_dataset_accepts_a_dataset_and_refuses_bare_tensors():
    data = teacher_regression(n=4, features=2)
    assert check_dataset("data", data) is data
    for value in [data.x, (data.x, data.y), None]:
        with pytest.raises(TypeError, match=f"data must be a resbook.data.Dataset.*got {type(value).__name__}"):
            check_dataset("data", value)


def test_check_tensor_accepts_tensors_only():
    x = torch.zeros(2)
    assert check_tensor("x", x) is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        check_tensor("x", np.zeros(2))


def test_a_long_value_is_cut_short_in_the_message():
    with pytest.raises(TypeError) as raised:
        check_int("n", list(range(1000)), 1)
    message = str(raised.value)
    assert message.startswith("n must be an int, got list [0, 1, 2") and message.endswith("...")
    assert len(message) < 120


@pytest.mark.parametrize("length, shown", [(78, "'" + "x" * 78 + "'"), (79, "'" + "x" * 76 + "...")])
def test_a_refused_value_is_shown_whole_up_to_80_characters_and_cut_to_77_and_dots_beyond(length, shown):
    # repr of a str of `length` characters is `length + 2` characters long: 80 is shown, 81 is cut.
    with pytest.raises(TypeError) as refusal:
        check_int("n", "x" * length, 1)
    assert str(refusal.value) == f"n must be an int, got str {shown}"


def test_check_bool_shows_the_value_it_refuses():
    with pytest.raises(TypeError, match="^flag must be True or False, got str 'no'$"):
        check_bool("flag", "no")


# --- sequences of values, and real numbers of any sign -------------------------------------------

@pytest.mark.parametrize("values", [(1, 2), [1], range(3), np.arange(2).tolist()])
def test_check_sequence_passes_a_non_empty_tuple_list_or_range_unchanged(values):
    assert check_sequence("depths", values) is values


@pytest.mark.parametrize("values, error, message", [
    ("ab", TypeError, "depths must be a sequence"), (b"ab", TypeError, "depths must be a sequence"),
    (3, TypeError, "depths must be a sequence"), ({1, 2}, TypeError, "depths must be a sequence"),
    (None, TypeError, "depths must be a sequence"), ([], ValueError, "depths must hold at least one value"),
    ((), ValueError, "depths must hold at least one value")])
def test_check_sequence_refuses_strings_sets_scalars_and_empty_sequences(values, error, message):
    with pytest.raises(error, match=message):
        check_sequence("depths", values)


def test_check_choices_names_the_place_of_a_wrong_value_and_lists_the_allowed_ones():
    assert check_choices("kinds", ["plain", "residual"], ("plain", "residual")) == ("plain", "residual")
    with pytest.raises(ValueError, match=r"kinds\[1\] must be one of 'plain', 'residual'; got 'resnet'"):
        check_choices("kinds", ["plain", "resnet"], ("plain", "residual"))


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=6))
def test_check_ints_passes_exactly_the_sequences_of_ints_within_bounds_and_distinct_where_asked(values):
    inside = all(0 <= v <= 3 for v in values)
    distinct = len(set(values)) == len(values)
    for asked in (False, True):
        if inside and (distinct or not asked):
            assert check_ints("seeds", values, 0, 3, distinct=asked) == tuple(values)
        else:
            with pytest.raises(ValueError, match=r"seeds(\[\d+\])? must"):
                check_ints("seeds", values, 0, 3, distinct=asked)


def test_check_ints_returns_python_ints_for_numpy_values():
    checked = check_ints("depths", list(np.arange(4, 12, 4)), 2)
    assert checked == (4, 8) and all(type(d) is int for d in checked)


@pytest.mark.parametrize("value, expected", [(-2, -2.0), (0, 0.0), (np.float32(0.5), 0.5),
                                             (fractions.Fraction(1, 4), 0.25)])
def test_check_real_passes_finite_real_numbers_of_any_sign_as_python_floats(value, expected):
    checked = check_real("eigenvalue", value)
    assert checked == expected and type(checked) is float


@pytest.mark.parametrize("value, error", [(True, TypeError), ("1", TypeError), (1j, TypeError), (None, TypeError),
                                          (math.nan, ValueError), (-math.inf, ValueError)])
def test_check_real_refuses_what_is_not_a_finite_real_number(value, error):
    with pytest.raises(error, match="eigenvalue must be"):
        check_real("eigenvalue", value)


def test_check_numbers_reads_nested_numbers_as_a_float_array_and_refuses_the_rest():
    assert check_numbers("k", [[1, 2], [3, 4]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    for value in (["a"], [1, None, object()], [[1], [2, 3]]):
        with pytest.raises(TypeError, match="k must be a sequence of numbers"):
            check_numbers("k", value)
