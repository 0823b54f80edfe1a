"""Every public helper refuses an invalid argument with a ValueError or TypeError that names it.

Each helper has a call that works (checked below) and, for each argument, a hypothesis strategy of
values that are not allowed: the wrong type, out of range, not one of the choices, an object that
does not fit the others. Replacing that one argument must raise, and the message must hold the
argument's name as a word, so a reader learns which argument to fix (issue 16).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from nbformat.v4 import new_notebook  # noqa: E402

from resbook import (batched, chapter, data, degradation, device, gradients, grid, interactive, models,  # noqa: E402
                     plots, profile, recipe, student, training)

# --- what the working calls use ---------------------------------------------------------------

REGRESSION = data.teacher_regression(n=16, features=2, hidden=3)
CLASSES = data.spirals(n=32)
RECIPE = recipe.Recipe(steps=2, batch_size=8)


def net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.mlp(4, 4, 2, 1, residual=True)


def build(configuration, seed):
    return net(seed)


def draw(slope):
    figure, axes = plt.subplots(figsize=(2, 1.5))
    axes.plot([0, 1], [0, slope])
    return figure


def axes():
    return plt.subplots()[1]


SWEEP = degradation.depth_sweep(CLASSES, (4,), seeds=[0], width=4, recipe=RECIPE)

# --- values that are never allowed ---------------------------------------------------------------

MISC = st.one_of(st.none(), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2),
                 st.complex_numbers(max_magnitude=3).filter(lambda z: z.imag != 0), st.just(object()))
NOT_REAL = st.one_of(MISC.filter(lambda v: v is not None), st.booleans())
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def not_int(minimum: int, maximum: int | None = None, none_allowed: bool = False):
    """Anything but an int from ``minimum`` to ``maximum``."""
    wrong = [st.integers(minimum - 10**20, minimum - 1), st.floats(allow_nan=True), st.booleans(),
             MISC if not none_allowed else MISC.filter(lambda v: v is not None)]
    if maximum is not None:
        wrong.append(st.integers(maximum + 1, maximum + 10**20))
    return st.one_of(*wrong)


def not_real(low: float, high: float | None = None, *, low_allowed: bool = True):
    """Anything but a finite real number from ``low`` (or above it) to ``high``."""
    below = st.floats(max_value=low, exclude_max=low_allowed, allow_nan=False, allow_infinity=False)
    wrong = [NOT_REAL, NON_FINITE, below]
    if high is not None:
        wrong.append(st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False))
    return st.one_of(*wrong)


def not_bool():
    return st.one_of(st.integers(), st.floats(), MISC)


def not_one_of(*allowed, none_allowed: bool = False):
    values = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.booleans(), MISC)
    return values.filter(lambda v: v not in allowed and not (none_allowed and v is None))


def not_module():
    return st.one_of(MISC, st.integers(), st.just(torch.zeros(2, 2)), st.just(lambda x: x))


def not_dataset():
    return st.one_of(MISC, st.just((REGRESSION.x, REGRESSION.y)), st.just(REGRESSION.x))


def not_recipe():
    return st.one_of(MISC.filter(lambda v: not isinstance(v, list)), st.just({"steps": 2}), st.integers())


def not_device():
    return st.one_of(st.text(max_size=6).filter(lambda s: s not in ("cpu", "cuda", "mps") and ":" not in s),
                     st.integers(), st.floats(), st.just(object()), st.just(["cpu"]))


def not_seeds(length: int):
    """Not a sequence of ``length`` distinct ints >= 0."""
    return st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just([]),
                     st.lists(st.integers(-5, -1), min_size=length, max_size=length),
                     st.lists(st.floats(), min_size=length, max_size=length),
                     st.lists(st.integers(0, 3), min_size=length + 1, max_size=length + 2).filter(
                         lambda seeds: len(seeds) != length))


def not_distinct_seeds():
    """Not a non-empty sequence of distinct ints >= 0."""
    return st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just([]), st.just([1, 1]),
                     st.lists(st.integers(-5, -1), min_size=1, max_size=2),
                     st.lists(st.floats(), min_size=1, max_size=2))


BAD_TENSORS = st.sampled_from([torch.zeros(16), torch.zeros(16, 2, 1), torch.zeros(0, 2),
                               torch.zeros(16, 2, dtype=torch.long), torch.full((16, 2), math.nan)])
BAD_TARGETS = st.sampled_from([torch.zeros(16), torch.zeros(15, 1), torch.zeros(16, 1, dtype=torch.long),
                               torch.full((16, 1), math.inf)])

# --- the helpers ---------------------------------------------------------------------------------


@dataclass
class Helper:
    """A public helper: how to call it with arguments that work, and what each argument must not be."""

    name: str
    call: Callable
    works: Callable[[], dict]  # fresh arguments that work (models are trained in place)
    invalid: dict  # argument -> strategy of values it must refuse
    named: dict | None = None  # argument -> the word its messages use, where that is not its name


HELPERS = [
    Helper("models.mlp", models.mlp,
           lambda: dict(depth=4, width=4, in_features=2, out_features=1, residual=True),
           dict(depth=st.one_of(not_int(2), st.integers(1, 50).map(lambda k: 2 * k + 1)), width=not_int(1),
                in_features=not_int(1), out_features=not_int(1), residual=not_bool(),
                norm=not_one_of("batch", "layer", none_allowed=True),
                activation=not_one_of(*models.ACTIVATIONS), preactivation=not_bool(), zero_init_branch=not_bool(),
                residual_scale=not_real(0.0, models.MAX_RESIDUAL_SCALE))),
    Helper("models.twins", models.twins, lambda: dict(depth=4, width=4, in_features=2, out_features=1, seed=0),
           dict(depth=not_int(2), width=not_int(1), seed=not_int(0, 2**64 - 1),
                kinds=st.one_of(st.just("plain"), st.just([]), st.integers(),
                                st.lists(not_one_of(*models.KINDS), min_size=1, max_size=2)))),
    Helper("models.set_residual_scale", models.set_residual_scale, lambda: dict(model=net(), scale=0.5),
           dict(model=st.one_of(not_module(), st.just(torch.nn.Linear(2, 2))), scale=not_real(0.0))),
    Helper("data.Dataset", data.Dataset,
           lambda: dict(name="teacher", x=REGRESSION.x, y=REGRESSION.y, task="regression"),
           dict(name=st.one_of(st.integers(), st.none(), st.just(["a"])), x=st.one_of(MISC, BAD_TENSORS),
                y=st.one_of(MISC, BAD_TARGETS), task=not_one_of(*data.TASKS))),
    Helper("data.Dataset.to", lambda device: REGRESSION.to(device), lambda: dict(device="cpu"),
           dict(device=not_device())),
    Helper("data.digits", data.digits, lambda: dict(device="cpu"), dict(device=not_device())),
    Helper("data.spirals", data.spirals, lambda: dict(n=8, turns=1.5, noise=0.1, seed=0, device="cpu"),
           dict(n=not_int(2), turns=not_real(0.0, data.MAX_TURNS, low_allowed=False),
                noise=not_real(0.0, data.MAX_NOISE), seed=not_int(0, 2**64 - 1), device=not_device())),
    Helper("data.teacher_regression", data.teacher_regression,
           lambda: dict(n=8, features=2, hidden=3, seed=0, device="cpu"),
           dict(n=not_int(1), features=not_int(1), hidden=not_int(1), seed=not_int(0, 2**64 - 1),
                device=not_device())),
    Helper("recipe.Recipe", recipe.Recipe, lambda: dict(steps=4, warmup_steps=1),
           dict(steps=not_int(2), batch_size=not_int(1), optimizer=not_one_of(*recipe.OPTIMIZERS),
                lr=not_real(0.0, low_allowed=False), momentum=not_real(0.0, 1.0), weight_decay=not_real(0.0),
                betas=st.one_of(MISC.filter(lambda v: not isinstance(v, list)), st.just((0.9,)),
                                st.tuples(not_real(0.0, 1.0), st.just(0.9))),
                schedule=not_one_of(*recipe.SCHEDULES), warmup_steps=not_int(0, 3),
                clip_norm=not_real(0.0, low_allowed=False).filter(lambda v: v is not None),
                normalise_per_layer=not_bool())),
    Helper("training.train", training.train, lambda: dict(model=net(), data=REGRESSION, recipe=RECIPE, seed=0),
           dict(model=st.one_of(not_module(), st.just(models.mlp(4, 4, 3, 1, residual=True)),
                                st.just(models.mlp(4, 4, 2, 5, residual=True)), st.just(net().double())),
                data=not_dataset(), recipe=not_recipe(), seed=not_int(0, 2**64 - 1))),
    Helper("training.batch_indices", training.batch_indices,
           lambda: dict(n_samples=16, batch_size=4, steps=3, seed=0),
           dict(n_samples=not_int(1), batch_size=st.one_of(not_int(1), st.integers(17, 10**6)),
                steps=not_int(1), seed=not_int(0, 2**64 - 1))),
    Helper("training.evaluate_loss", training.evaluate_loss, lambda: dict(model=net(), data=REGRESSION),
           dict(model=st.one_of(not_module(), st.just(models.mlp(4, 4, 5, 1, residual=True))),
                data=not_dataset())),
    Helper("training.loss_function", training.loss_function, lambda: dict(task="regression"),
           dict(task=not_one_of(*data.TASKS))),
    Helper("training.History.final_loss", lambda window: training.History([1.0, 2.0]).final_loss(window),
           lambda: dict(window=1), dict(window=not_int(1))),
    Helper("batched.train_together", batched.train_together,
           lambda: dict(models=[net(0), net(1)], data=REGRESSION, recipe=RECIPE, seeds=[0, 1], batching="auto"),
           dict(models=st.one_of(MISC, st.just([]), st.just([net(), "net"]), st.just(net()),
                                 st.just([net(), models.mlp(6, 4, 2, 1, residual=True)])),
                data=not_dataset(), recipe=not_recipe(), seeds=not_seeds(2),
                batching=not_one_of(*batched.BATCHINGS))),
    Helper("batched.train_groups", batched.train_groups,
           lambda: dict(groups=[batched.Group([net(0)], [0], RECIPE), batched.Group([net(1)], [1], RECIPE)],
                        data=REGRESSION, workers=1, batching="auto"),
           dict(groups=st.one_of(MISC, st.just([]), st.just([(net(),)]), st.just(["group"])),
                data=not_dataset(), workers=not_int(1, none_allowed=True), batching=not_one_of(*batched.BATCHINGS))),
    Helper("grid.train_grid", grid.train_grid,
           lambda: dict(build=build, configurations=["a"], seeds=[0, 1], data=REGRESSION, recipe=RECIPE, workers=1),
           dict(build=st.one_of(st.integers(), st.none(), st.just("net")),
                configurations=st.one_of(st.none(), st.integers(), st.just([]), st.just("ab"), st.just(["a", "a"]),
                                         st.just([["unhashable"]])),
                seeds=not_distinct_seeds(),
                data=not_dataset(), recipe=st.one_of(not_recipe(), st.just(lambda configuration: "no recipe")),
                workers=not_int(1, none_allowed=True))),
    Helper("degradation.depth_sweep", degradation.depth_sweep,
           lambda: dict(data=CLASSES, depths=(4,), seeds=[0], width=4, recipe=RECIPE),
           dict(data=not_dataset(), depths=st.one_of(st.integers(), st.just([]), st.just([4, 4]), st.just([5]),
                                                     st.just([1]), st.just(["4"])),
                seeds=not_distinct_seeds(), width=not_int(1), recipe=not_recipe())),
    Helper("degradation.first_to_last_gradient_ratio", degradation.first_to_last_gradient_ratio,
           lambda: dict(data=CLASSES, depths=(4,), width=4, seed=0),
           dict(data=not_dataset(), depths=st.one_of(st.integers(), st.just([]), st.just([3]), st.just([4.0])),
                width=not_int(1), seed=not_int(0, 2**64 - 1))),
    Helper("degradation.plot_training_curves", degradation.plot_training_curves,
           lambda: dict(ax=axes(), sweep=SWEEP, depth=4, smooth_window=2),
           dict(ax=MISC, sweep=st.one_of(MISC, st.just(SWEEP.runs)), depth=st.one_of(not_int(2), st.just(6)),
                smooth_window=not_int(1))),
    Helper("degradation.plot_loss_against_depth", degradation.plot_loss_against_depth,
           lambda: dict(ax=axes(), sweep=SWEEP), dict(ax=MISC, sweep=st.one_of(MISC, st.just(SWEEP.runs)))),
    Helper("degradation.DepthSweep.final_losses", SWEEP.final_losses, lambda: dict(kind="plain", depth=4, window=1),
           dict(kind=not_one_of(*models.KINDS), depth=st.sampled_from([6, 8, -4]), window=not_int(1))),
    Helper("plots.smooth", plots.smooth, lambda: dict(values=[1.0, 2.0, 3.0], window=2),
           dict(values=st.one_of(st.text(max_size=3), st.none(), st.integers(), st.just([[1.0], [2.0]]),
                                 st.just([1.0, "2"]), st.just([1j])),
                window=not_int(1))),
    Helper("plots.plot_band", plots.plot_band,
           lambda: dict(ax=axes(), curves=[[1.0, 2.0], [2.0]], label="runs", color="k", linestyle="-"),
           dict(ax=MISC, curves=st.one_of(st.just([]), st.none(), st.integers(), st.just("12"), st.just([["a"]]),
                                          st.just([[[1.0]]])),
                label=st.one_of(st.integers(), st.none(), st.just(["a"])),
                color=st.one_of(st.just("not a colour"), st.integers(), st.just([0.5])),
                linestyle=st.one_of(st.just("~"), st.integers(), st.just("dotdash")),
                x=st.one_of(st.just([0.0]), st.just("ab"), st.integers(), st.just([0.0, "1"])))),
    Helper("interactive.interactive_figure", interactive.interactive_figure,
           lambda: dict(draw=draw, alt="a line of slope {slope}", slope=[1], dpi=20),
           dict(draw=st.one_of(st.integers(), st.none(), st.just("draw")),
                alt=st.one_of(st.integers(), st.none(), st.just(""), st.just("{slope.real}"), st.just("{depth}"),
                              st.just("{slope[0]}"), st.just("{}")),
                budget_bytes=not_int(1), dpi=not_int(1, interactive.MAX_DPI),
                colors=not_int(2, 256, none_allowed=True),
                slope=st.one_of(st.integers(), st.just("123"), st.just([]), st.just([1, 1.0]), st.none())),
           named=dict(slope="slope")),
    Helper("profile.get_profile", profile.get_profile, lambda: dict(name="quick", device=torch.device("cpu")),
           dict(name=not_one_of(*profile.PROFILES, none_allowed=True),
                device=st.one_of(st.just("cuda"), st.integers(), st.just(object())))),
    Helper("profile.Profile.pick", profile.PROFILES["quick"].pick, lambda: dict(sizes={"quick": 1, "full": 2}),
           dict(sizes=st.one_of(MISC, st.just({"quick": 1}), st.just({"quick": 1, "full": 2, "huge": 3})))),
    Helper("device.choose_device", device.choose_device, lambda: dict(name="cpu"),
           dict(name=not_one_of("cpu", "cuda", "mps", none_allowed=True))),
    Helper("device.check_device", lambda value: device.check_device("device", value), lambda: dict(value="cpu"),
           dict(value=not_device()), named=dict(value="device")),
    Helper("device.seed_everything", device.seed_everything, lambda: dict(seed=0), dict(seed=not_int(0))),
    Helper("chapter.glue", chapter.glue, lambda: dict(name="loss", value=1.0, display=False),
           dict(name=st.one_of(st.integers(), st.none(), st.just("two words"), st.just("1st"), st.just("")),
                display=not_bool())),
    Helper("chapter.setup", chapter.setup, lambda: dict(seed=0), dict(seed=not_int(0))),
    Helper("gradients.gradient_norms_per_layer", gradients.gradient_norms_per_layer,
           lambda: dict(model=net(), data=REGRESSION),
           dict(model=st.one_of(not_module(), st.just(torch.nn.ReLU()), st.just(models.mlp(4, 4, 7, 1, residual=True))),
                data=not_dataset())),
    Helper("student.function_stub", student.function_stub, lambda: dict(source="def f():\n    return 1\n"),
           dict(source=st.one_of(st.integers(), st.none(), st.just(b"def f(): pass")))),
    Helper("student.student_edition", student.student_edition, lambda: dict(notebook=new_notebook()),
           dict(notebook=st.one_of(MISC, st.just({"metadata": {}})))),
    Helper("student.write_student_edition", student.write_student_edition,
           lambda: dict(notebook_path="book/00_degradation.ipynb", out_dir="student"),
           dict(notebook_path=st.one_of(st.integers(), st.none(), st.just(["a.ipynb"])),
                out_dir=st.one_of(st.integers(), st.none(), st.just(["out"])))),
    Helper("student.chapter_paths", student.chapter_paths, lambda: dict(book_dir="book"),
           dict(book_dir=st.one_of(st.integers(), st.none(), st.just(["book"])))),
]

CASES = [(helper, argument) for helper in HELPERS for argument in helper.invalid]
WITHOUT_SIDE_EFFECTS = {"student.write_student_edition"}  # its working call would write a file


@pytest.mark.parametrize("helper", [h for h in HELPERS if h.name not in WITHOUT_SIDE_EFFECTS], ids=lambda h: h.name)
def test_each_helper_works_with_the_arguments_the_invalid_ones_replace(helper):
    helper.call(**helper.works())
    plt.close("all")


def assert_refused_naming_it(helper: Helper, argument: str) -> None:
    """Replacing ``argument`` of ``helper``'s working call by any value of its strategy raises a ValueError
    or TypeError whose message holds the argument's name (or the word it goes by) as a word."""
    word = re.compile(rf"\b{re.escape((helper.named or {}).get(argument, argument))}\b")

    @settings(max_examples=12, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(value=helper.invalid[argument])
    def refuses(value):
        arguments = {**helper.works(), argument: value}
        try:
            with pytest.raises((ValueError, TypeError)) as error:
                helper.call(**arguments)
        finally:
            plt.close("all")
        assert word.search(str(error.value)), f"{helper.name}({argument}={value!r}): {error.value}"

    refuses()


@pytest.mark.parametrize("helper, argument", CASES, ids=[f"{h.name}-{a}" for h, a in CASES])
def test_an_invalid_argument_is_refused_with_a_message_naming_it(helper, argument):
    assert_refused_naming_it(helper, argument)


# --- a model that does not fit the data, and sizes that cannot fit in memory ---------------------

@pytest.mark.parametrize("make, message", [
    (lambda: models.mlp(4, 4, 3, 1, residual=True),
     r"model does not run on data 'teacher' \(2 features, torch.float32\): RuntimeError: mat1 and mat2"),
    (lambda: net().double(), "model has torch.float64 parameters but data.x is torch.float32"),
    (lambda: models.mlp(4, 4, 2, 3, residual=True), r"model gives outputs of shape \(3,\) per sample but data "
                                                    "'teacher' has 1 targets per sample"),
])
def test_a_model_that_does_not_fit_the_data_is_refused_by_both_trainers_before_training(make, message):
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        training.train(model, REGRESSION, RECIPE)
    with pytest.raises(ValueError, match=message):
        batched.train_together([model], REGRESSION, RECIPE, seeds=[0])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fewer_outputs_than_classes_is_refused_naming_the_classes():
    with pytest.raises(ValueError, match="model gives outputs of shape \\(1,\\) per sample but data 'spirals' has 2 "
                                         "classes"):
        training.train(net(), CLASSES, RECIPE)


def test_batch_norm_on_batches_of_one_sample_is_refused_naming_batch_size():
    one = recipe.Recipe(steps=2, batch_size=1)
    for train in (lambda m: training.train(m, REGRESSION, one), lambda m: batched.train_together([m], REGRESSION, one,
                                                                                                  seeds=[0])):
        with pytest.raises(ValueError, match="batch_size must be at least 2 for a model with BatchNorm"):
            train(net())
    training.train(models.mlp(4, 4, 2, 1, residual=True, norm="layer"), REGRESSION, one)  # no BatchNorm: fine


def test_a_net_too_large_for_memory_is_refused_before_it_is_built():
    with pytest.raises(ValueError, match=r"mlp\(depth=4, width=1000000, .*\) would take about 7,45\d.\d GiB, "
                                         "more than resbook's limit of 4 GiB: lower depth or width"):
        models.mlp(4, 10**6, 2, 1, residual=True)
    with pytest.raises(ValueError, match="lower depth or width"):
        models.mlp(2 * 10**6, 1, 1, 1, residual=True)  # tiny layers, but a million blocks of Python objects


def test_a_training_run_too_large_for_memory_is_refused_before_it_starts():
    wide = models.mlp(4, 4, 2, 1, residual=True)
    with pytest.raises(ValueError, match=r"indices of 1 net × 10000000000 steps × batch_size 8 .* lower steps"):
        training.train(wide, REGRESSION, recipe.Recipe(steps=10**10, batch_size=8))
    many = [models.mlp(4, 1000, 2, 1, residual=True) for _ in range(2)]  # 2 million numbers a net
    big_batch = data.teacher_regression(n=200_000, features=2)
    with pytest.raises(ValueError, match=r"training 2 nets of this size on batches of 200000 would take about"):
        batched.train_together(many, big_batch, recipe.Recipe(steps=1, batch_size=200_000), seeds=[0, 1])
