"""Facts about training a grid of configurations × seeds: every run is the run it would be alone."""
import time

import pytest
import torch

from resbook.data import spirals, teacher_regression
from resbook.grid import GridRuns, train_grid
from resbook.models import twins, weight_layers
from resbook.recipe import Recipe
from resbook.training import History, train

RECIPE = Recipe(steps=6, batch_size=16)


def build(configuration, seed):
    kind, depth = configuration
    return twins(depth, 8, 2, 2, seed=seed, kinds=(kind,))[0]


def test_every_configuration_and_seed_is_trained_as_it_would_be_alone():
    data = spirals(n=128)
    configurations = [("plain", 4), ("residual", 4), ("residual", 6)]
    runs = train_grid(build, configurations, [0, 3], data, RECIPE)
    assert runs.configurations == tuple(configurations) and runs.seeds == (0, 3)
    for configuration in configurations:
        for seed, history, model in zip(runs.seeds, runs.histories[configuration], runs.models[configuration]):
            alone = train(build(configuration, seed), data, RECIPE, seed=seed)
            torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(alone.loss), rtol=1e-5, atol=1e-5)
            assert sum(1 for _ in model.modules() if isinstance(_, torch.nn.Linear)) == configuration[1]


def test_each_configuration_may_have_its_own_recipe_and_still_train_together():
    data = teacher_regression(n=64, features=2)

    def residual(lr, seed):
        return twins(4, 8, 2, 1, seed=seed, kinds=("residual",))[0]

    def recipe(lr):
        return Recipe(steps=6, batch_size=16, lr=lr)

    runs = train_grid(residual, [0.01, 0.3], [0], data, recipe)
    assert runs.histories[0.01][0].seconds == runs.histories[0.3][0].seconds  # one batched run
    for lr in (0.01, 0.3):
        alone = train(residual(lr, 0), data, recipe(lr), seed=0)
        torch.testing.assert_close(torch.tensor(runs.histories[lr][0].loss), torch.tensor(alone.loss),
                                   rtol=1e-5, atol=1e-5)


def test_final_losses_are_read_by_configuration():
    runs = train_grid(build, [("plain", 4)], [0, 1, 2], spirals(n=64), RECIPE)
    losses = runs.final_losses(("plain", 4), window=2)
    assert losses == [sum(h.loss[-2:]) / 2 for h in runs.histories["plain", 4]]
    assert runs.median_final_loss(("plain", 4), window=2) == sorted(losses)[1]
    with pytest.raises(ValueError, match="no runs for configuration"):
        runs.final_losses(("plain", 8))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(seeds=[0, 0]), ValueError, "seeds must be distinct"),
    (dict(seeds=[]), ValueError, "seeds"),
    (dict(configurations=[("plain", 4), ("plain", 4)]), ValueError, "configurations must be distinct"),
    (dict(configurations=[["plain", 4]]), TypeError, "hashable"),
    (dict(configurations="plain"), ValueError, "configurations"),
    (dict(build="mlp"), TypeError, "build"),
    (dict(build=lambda c, s: "net"), TypeError, "torch.nn.Module"),
    (dict(recipe={"steps": 1}), TypeError, "recipe"),
    (dict(data=None), TypeError, "data"),
])
def test_bad_grids_are_refused_naming_what_is_wrong(kwargs, error, message):
    arguments = dict(build=build, configurations=[("plain", 4)], seeds=[0], data=spirals(n=64), recipe=RECIPE)
    with pytest.raises(error, match=message):
        train_grid(**(arguments | kwargs))


def runs_of(losses_by_configuration):
    """GridRuns holding hand-made histories (one per seed), to read them back without training."""
    histories = {c: [History(loss=list(loss)) for loss in runs] for c, runs in losses_by_configuration.items()}
    seeds = tuple(range(len(next(iter(histories.values())))))
    return GridRuns(tuple(histories), seeds, histories, {c: [] for c in histories}, seconds=0.0)


def test_final_losses_read_the_last_fifty_steps_unless_told_otherwise():
    runs = runs_of({"a": [range(100), range(200, 300), range(1000, 1100)]})
    means = [sum(range(50, 100)) / 50, sum(range(250, 300)) / 50, sum(range(1050, 1100)) / 50]
    assert runs.final_losses("a") == means and runs.median_final_loss("a") == means[1]


@pytest.mark.parametrize("count, shown", [(6, "0, 1, 2, 3, 4, 5"), (7, r"0, 1, 2, 3, 4, 5 \.\.\.")])
def test_asking_for_a_configuration_not_in_the_grid_shows_the_first_six_it_has(count, shown):
    runs = runs_of({c: [[1.0]] for c in range(count)})
    with pytest.raises(ValueError, match=rf"^no runs for configuration 'x'; the grid has {shown}$"):
        runs.final_losses("x")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(configurations="plain"), ValueError, "^configurations must be a non-empty sequence, got 'plain'$"),
    (dict(configurations={("plain", 4)}), ValueError, "^configurations must be a non-empty sequence"),
    (dict(seeds=range(0)), ValueError, r"^seeds must be a non-empty sequence, got range\(0, 0\)$"),
    (dict(configurations=[["plain", 4]]), TypeError, r"^configurations must be hashable labels \(str, int, tuples"),
    (dict(seeds=[2**64]), ValueError, rf"^seeds\[0\] must be an int from 0 to {2**64 - 1}, got {2**64}$"),
    (dict(recipe=lambda configuration: {"steps": 6}), TypeError, r"for \('plain', 4\) got dict$"),
])
def test_a_bad_grid_is_refused_with_the_whole_story(kwargs, error, message):
    arguments = dict(build=build, configurations=[("plain", 4)], seeds=[0], data=spirals(n=64), recipe=RECIPE)
    with pytest.raises(error, match=message):
        train_grid(**(arguments | kwargs))


def test_the_largest_seed_torch_takes_is_a_seed_of_the_grid():
    seed = 2**64 - 1
    runs = train_grid(build, [("plain", 4)], [seed], spirals(n=64), RECIPE)
    alone = train(build(("plain", 4), seed), spirals(n=64), RECIPE, seed=seed)
    torch.testing.assert_close(torch.tensor(runs.histories["plain", 4][0].loss), torch.tensor(alone.loss),
                               rtol=1e-5, atol=1e-5)  # batched and single runs differ by rounding only


def test_the_costliest_group_starts_first_and_the_options_reach_the_trainer(monkeypatch):
    # train_groups replaced by a recorder: which groups, in which order, with which options.
    seen = {}

    def record(groups, data, *, workers, batching):
        seen.update(depths=[len(weight_layers(g.models[0])) for g in groups], workers=workers, batching=batching)
        return [[History(loss=[1.0]) for _ in g.models] for g in groups]

    monkeypatch.setattr("resbook.grid.train_groups", record)
    steps = {4: 30, 6: 6, 8: 3}  # the shallowest net trains longest: 13 modules × 30 steps, 21 × 6, 29 × 3

    def recipe(configuration):
        return Recipe(steps=steps[configuration[1]], batch_size=16)

    before = time.perf_counter()
    runs = train_grid(build, [("plain", 8), ("plain", 4), ("residual", 6)], [0], spirals(n=64), recipe,
                      workers=1, batching="vmap")
    assert seen == dict(depths=[4, 6, 8], workers=1, batching="vmap")
    assert 0 <= runs.seconds <= time.perf_counter() - before


def test_a_bad_build_or_data_is_refused_naming_it():
    arguments = dict(configurations=[("plain", 4)], seeds=[0], data=spirals(n=64), recipe=RECIPE)
    with pytest.raises(TypeError, match=r"^build\(\('plain', 4\), 0\) must return a torch.nn.Module, got str$"):
        train_grid(lambda configuration, seed: "net", **arguments)
    with pytest.raises(TypeError, match="^data must be a resbook.data.Dataset"):
        train_grid(build, **(arguments | dict(data=None)))
