"""Facts about the data sets: offline, seeded, shaped as the chapters expect."""
import numpy as np
import pytest
import torch

from resbook.data import Dataset, digits, spirals, teacher_regression


def test_digits_ship_with_scikit_learn_and_are_standardised():
    data = digits()
    assert (len(data), data.n_features, data.n_outputs) == (1797, 64, 10)
    varying = data.x.std(0) > 0
    torch.testing.assert_close(data.x.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(data.x.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-4, rtol=0)


def test_generated_tasks_are_determined_by_their_seed():
    assert torch.equal(spirals(seed=3).x, spirals(seed=3).x)
    assert not torch.equal(spirals(seed=3).x, spirals(seed=4).x)
    assert torch.equal(teacher_regression(seed=1).y, teacher_regression(seed=1).y)


def test_spirals_are_balanced_two_class_points_in_the_unit_disc():
    data = spirals(n=200, noise=0.0)
    assert data.n_outputs == 2 and int(data.y.sum()) == 100
    assert float(data.x.norm(dim=1).max()) <= 1.0 + 1e-6


def test_teacher_regression_targets_come_from_a_bounded_teacher():
    data = teacher_regression(n=50, features=3, hidden=4)
    assert data.y.shape == (50, 1) and data.task == "regression"


@pytest.mark.parametrize("make, message", [
    (lambda: spirals(n=1), "n"), (lambda: spirals(n=64.0), "n must be an int"),
    (lambda: spirals(turns="1.5"), "turns must be a real number"), (lambda: spirals(noise=-1.0), "noise"),
    (lambda: teacher_regression(features=0), "features"), (lambda: spirals(seed=-2), "seed"),
    (lambda: Dataset("x", torch.zeros(3), torch.zeros(3), "classification"), "2-D"),
    (lambda: Dataset("x", torch.zeros(3, 2), torch.zeros(4), "classification"), "same number"),
    (lambda: Dataset("x", torch.zeros(3, 2), torch.zeros(3), "ranking"), "task"),
])
def test_bad_arguments_raise_naming_the_argument(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_numpy_numbers_from_a_sweep_make_the_same_data_as_python_numbers():
    same = spirals(n=np.int64(64), turns=np.float32(1.5), noise=np.float64(0.1), seed=np.arange(3)[2])
    assert torch.equal(same.x, spirals(n=64, turns=1.5, noise=0.1, seed=2).x)
    assert torch.equal(teacher_regression(n=np.int32(8), features=np.int64(3), hidden=np.uint8(4)).y,
                       teacher_regression(n=8, features=3, hidden=4).y)


def test_a_dataset_made_from_lists_is_refused_naming_the_field():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        Dataset("lists", [[0.0, 1.0]], torch.zeros(1), "regression")
    with pytest.raises(TypeError, match="y must be a torch.Tensor, got ndarray"):
        Dataset("arrays", torch.zeros(1, 2), np.zeros(1), "regression")
    with pytest.raises(TypeError, match="name must be a str"):
        Dataset(3, torch.zeros(1, 2), torch.zeros(1, 1), "regression")


def test_teacher_targets_are_not_a_linear_function_of_the_inputs():
    # Independent computation: the best linear fit (least squares, with a bias) of the targets. A tanh teacher
    # leaves about 7 % of the variance unexplained on Gaussian inputs; a teacher without its tanh is linear
    # and would be fitted exactly (up to float32 rounding, far below the 1 % allowed here).
    data = teacher_regression(n=2000, features=16, hidden=32, seed=0)
    inputs = torch.cat([data.x, torch.ones(len(data), 1)], 1)
    residual = data.y - inputs @ torch.linalg.lstsq(inputs, data.y).solution
    assert float(residual.var() / data.y.var()) > 0.01


@pytest.mark.parametrize("turns", [0.5, 1.5, 3.0])
def test_noiseless_spirals_wind_the_given_number_of_turns(turns):
    # Polar form of an Archimedean spiral that makes `turns` turns out to radius 1: angle = 2π·turns·radius,
    # the second class half a turn (π) further. Rebuilt from each point's radius and compared with the point.
    data = spirals(n=400, turns=turns, noise=0.0, seed=1)
    radius = data.x.norm(dim=1)
    angle = 2 * np.pi * turns * radius + np.pi * data.y
    on_spiral = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    torch.testing.assert_close(data.x, on_spiral, atol=1e-5, rtol=0)  # float32 angles up to 6π


# --- data sets that would train silently wrong (issue 16, items 7 and 8) ---------------------------

@pytest.mark.parametrize("x, y", [(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)),
                                  (torch.zeros(3, 0), torch.zeros(3, dtype=torch.long))])
def test_an_empty_dataset_is_refused_when_it_is_made(x, y):
    with pytest.raises(ValueError, match="x must hold at least one sample and one feature"):
        Dataset("empty", x, y, "classification")


def test_regression_targets_must_be_samples_by_outputs_so_they_never_broadcast():
    with pytest.raises(ValueError, match=r"y of a regression dataset must be 2-D .*use y\[:, None\]"):
        Dataset("flat", torch.zeros(4, 2), torch.zeros(4), "regression")
    assert Dataset("column", torch.zeros(4, 2), torch.zeros(4)[:, None], "regression").n_outputs == 1


@pytest.mark.parametrize("labels, error, message", [
    (torch.tensor([0.0, 1.0, 1.0]), TypeError, "hold class indices as integers"),
    (torch.tensor([True, False, True]), TypeError, "hold class indices as integers"),
    (torch.tensor([0, -1, 1]), ValueError, "hold class indices >= 0, got -1"),
    (torch.tensor([[0], [1], [1]]), ValueError, "be 1-D"),
])
def test_class_labels_must_be_non_negative_integers(labels, error, message):
    with pytest.raises(error, match=f"y of a classification dataset must {message}"):
        Dataset("labels", torch.zeros(3, 2), labels, "classification")


def test_inputs_must_be_finite_floating_point_numbers():
    with pytest.raises(ValueError, match="x must hold finite numbers only; it holds 1 NaN"):
        Dataset("nan", torch.tensor([[0.0], [float("nan")]]), torch.tensor([0, 1]), "classification")
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        Dataset("ints", torch.zeros(2, 1, dtype=torch.long), torch.tensor([0, 1]), "classification")
    with pytest.raises(ValueError, match="y must hold finite numbers only"):
        Dataset("inf", torch.zeros(2, 1), torch.tensor([[0.0], [float("inf")]]), "regression")


def test_numpy_arrays_are_refused_with_the_conversion_to_use():
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor, got ndarray of shape \(3, 2\): .*torch.as_tensor"):
        Dataset("arrays", np.zeros((3, 2)), torch.zeros(3, dtype=torch.long), "classification")


@pytest.mark.parametrize("kwargs, message", [
    (dict(turns=1e300), "turns must be at most 1000"), (dict(noise=1e300), "noise must be at most 100"),
    (dict(turns=float("inf")), "turns must be a finite number"),
])
def test_spirals_refuse_settings_that_would_give_non_finite_or_meaningless_points(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spirals(n=16, **kwargs)
    assert torch.isfinite(spirals(n=16, turns=1000.0, noise=100.0).x).all()  # the bounds themselves are fine


def test_a_data_set_too_large_for_memory_is_refused_before_anything_is_allocated():
    with pytest.raises(ValueError, match=r"spirals\(n=1000000000000\) would take about .* GiB.*limit of 4 GiB"):
        spirals(n=10**12)
    with pytest.raises(ValueError, match="lower n, features or hidden"):
        teacher_regression(n=10**6, features=10**4)


@pytest.mark.parametrize("device, error, message", [
    ("gpu", ValueError, "device must be one of 'cuda', 'mps', 'cpu'"),
    (0.5, TypeError, "device must be a torch.device"),
])
def test_an_unknown_device_for_a_data_set_is_refused_naming_device(device, error, message):
    with pytest.raises(error, match=message):
        spirals(n=4, device=device)
    with pytest.raises(error, match=message):
        teacher_regression(n=4).to(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_naming_device():
    with pytest.raises(ValueError, match="device: device 'cuda' is not available"):
        digits(device="cuda")


def test_a_train_test_split_is_a_fixed_partition_of_the_samples():
    from resbook.data import train_test_split

    data = digits()
    train, test = train_test_split(data, test_fraction=0.2, seed=0)
    assert len(test) == round(0.2 * len(data)) and len(train) + len(test) == len(data)
    rows = {tuple(x.tolist()) for x in torch.cat([train.x, test.x])}
    assert len(rows) == len({tuple(x.tolist()) for x in data.x})  # every sample once (up to duplicates)
    again, _ = train_test_split(data, 0.2, seed=0)
    other, _ = train_test_split(data, 0.2, seed=1)
    assert torch.equal(again.x, train.x) and not torch.equal(other.x, train.x)
    for bad, error in ((0.0, ValueError), (1.0, ValueError), (1e-6, ValueError), ("0.2", TypeError)):
        with pytest.raises(error, match="test_fraction"):
            train_test_split(data, bad)


@pytest.mark.parametrize("turns", [0.5, 1.5, 3.0])
def test_spirals_reach_out_to_radius_one_whatever_the_number_of_turns(turns):
    radius = spirals(n=400, turns=turns, noise=0.0).x.norm(dim=1)
    assert 0.95 < float(radius.max()) <= 1.0 + 1e-6  # the largest of 400 uniform draws is above 0.95 but for 2e-9


def test_two_points_make_the_smallest_spirals_one_of_each_class():
    data = spirals(n=2)
    assert len(data) == 2 and data.y.tolist() == [0, 1]


@pytest.mark.parametrize("make", [spirals, teacher_regression])
def test_seeds_run_from_zero_to_two_to_the_64_minus_one(make):
    assert len(make(n=4, seed=2**64 - 1)) == 4
    with pytest.raises(ValueError, match=f"^seed must be an int from 0 to {2**64 - 1}, got {2**64}$"):
        make(n=4, seed=2**64)


@pytest.mark.parametrize("arguments, message", [
    (dict(n=0), "^n must be >= 1, got 0$"), (dict(hidden=0), "^hidden must be >= 1, got 0$"),
    (dict(features=0), "^features must be >= 1, got 0$"),
    (dict(n=10**9, features=10**4), r"^teacher_regression\(n=1000000000, features=10000, hidden=32\) would take about"),
])
def test_a_bad_teacher_is_refused_naming_the_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        teacher_regression(**arguments)


@pytest.mark.parametrize("length, shown", [(78, "'" + "a" * 78 + "'"), (79, "'" + "a" * 76 + "...")])
def test_a_refused_data_tensor_is_shown_whole_up_to_80_characters(length, shown):
    with pytest.raises(TypeError) as refusal:
        Dataset("text", "a" * length, torch.zeros(1), "regression")
    assert str(refusal.value) == f"x must be a torch.Tensor, got str {shown}"
