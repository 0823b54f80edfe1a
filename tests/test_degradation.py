"""Facts about chapter 0's experiment: the depth sweep of plain and residual nets."""
import math

import pytest
import torch

from resbook.data import digits, teacher_regression
from resbook.degradation import SIZES, DepthSweep, depth_sweep, first_to_last_gradient_ratio
from resbook.grid import GridRuns
from resbook.models import twins
from resbook.recipe import Recipe
from resbook.training import History, train


def build_pair(depth, width, data, seed):
    return twins(depth, width, data.n_features, data.n_outputs, seed=seed)


def sweep_of(depths, seeds, histories):
    """A DepthSweep made from given histories, as if trained."""
    configurations = tuple(histories)
    return DepthSweep(depths, GridRuns(configurations, seeds, histories, {c: [] for c in configurations}, 0.0))


def test_plain_and_residual_twins_start_from_the_same_weights():
    plain, residual = build_pair(8, 16, digits(), seed=4)
    for (name, p), (_, r) in zip(plain.state_dict().items(), residual.state_dict().items()):
        if not name.endswith("identity_gate"):
            assert torch.equal(p, r), name


def test_twins_compute_differently_only_through_the_identity_path():
    data = digits()
    plain, residual = build_pair(8, 16, data, seed=4)
    assert not torch.allclose(plain(data.x[:8]), residual(data.x[:8]))


def test_sweep_trains_one_plain_and_one_residual_net_per_depth_and_seed():
    data = teacher_regression(n=64, features=4)
    sweep = depth_sweep(data, depths=(4, 6), seeds=(0, 1), width=8, recipe=Recipe(steps=5, batch_size=16))
    assert set(sweep.histories) == {(k, d) for k in ("plain", "residual") for d in (4, 6)}
    assert all(len(runs) == 2 and all(len(h.loss) == 5 for h in runs) for runs in sweep.histories.values())


def test_sweep_matches_training_each_net_alone_at_the_first_step():
    # Same initial weights, same first minibatch: the first loss is computed before any update.
    from resbook.training import train

    data = digits()
    recipe = Recipe(steps=1, batch_size=32)
    sweep = depth_sweep(data, depths=(6,), seeds=(3,), width=8, recipe=recipe)
    plain, _ = build_pair(6, 8, data, seed=3)
    alone = train(plain, data, recipe, seed=3)
    assert sweep.histories["plain", 6][0].loss[0] == pytest.approx(alone.loss[0], rel=1e-5)


def test_loss_table_has_a_row_per_depth_and_reports_divergence():
    runs = {("plain", 4): [History([1.0]), History([3.0], diverged_at=1)],
            ("residual", 4): [History([0.5]), History([0.25])]}
    table = sweep_of((4,), (0, 1), runs).loss_table()
    lines = table.splitlines()
    assert len(lines) == 3 and lines[2].startswith("| 4 |")
    assert "1 of 2 diverged" in lines[2] and "0.375 (0.250–0.500)" in lines[2]


def test_final_losses_are_infinite_for_diverged_runs():
    sweep = sweep_of((4,), (0,), {("plain", 4): [History([1.0], diverged_at=1)]})
    assert sweep.final_losses("plain", 4) == [math.inf]


@pytest.mark.parametrize("kwargs, message", [
    (dict(depths=()), "depths"), (dict(seeds=()), "seeds"), (dict(depths=(4, 4)), "distinct"),
    (dict(seeds=(-1,)), "seeds"), (dict(depths=(3,)), "even"), (dict(depths=4), "depths"),
    (dict(seeds=(0, 0)), "distinct"),
])
def test_bad_sweep_arguments_are_named(kwargs, message):
    arguments = dict(depths=(4,), seeds=(0,), width=4, recipe=Recipe(steps=1, batch_size=8)) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        depth_sweep(teacher_regression(n=16, features=2), **arguments)


def test_unknown_kind_or_depth_is_named():
    sweep = sweep_of((4,), (0,), {("plain", 4): [History([1.0])]})
    with pytest.raises(ValueError, match="depth=8"):
        sweep.final_losses("plain", 8)


def test_gradient_ratio_is_first_layer_over_last_layer_of_each_twin():
    data = digits()
    ratios = first_to_last_gradient_ratio(data, depths=(6,), width=8, seed=2)
    from resbook.gradients import gradient_norms_per_layer

    for kind, net in zip(("plain", "residual"), build_pair(6, 8, data, seed=2)):
        norms = gradient_norms_per_layer(net, data)
        assert ratios[kind] == [pytest.approx(norms[0] / norms[-1])]


def test_sweep_keeps_the_trained_nets_for_later_measurements():
    data = teacher_regression(n=64, features=4)
    sweep = depth_sweep(data, depths=(4,), seeds=(0, 1), width=8, recipe=Recipe(steps=3, batch_size=16))
    trained = sweep.runs.models["residual", 4][1]
    untrained = build_pair(4, 8, data, seed=1)[1]
    assert not torch.equal(trained[0].weight, untrained[0].weight)


def test_full_sizes_are_at_least_as_big_as_quick_in_every_dimension():
    quick, full = SIZES["quick"], SIZES["full"]
    assert full.width >= quick.width and max(full.depths) >= max(quick.depths)
    assert full.recipe.steps >= quick.recipe.steps
    assert set(quick.depths) <= set(full.depths) and 20 in quick.depths  # the chapter quotes depth 20


def test_interventions_train_the_deepest_twins_with_their_own_recipe_and_normalisation():
    from resbook.degradation import Intervention

    data = teacher_regression(n=64, features=4)
    recipe = Recipe(steps=3, batch_size=16)
    interventions = (Intervention("smaller steps", changes=(("lr", 0.01),)),
                     Intervention("no normalisation", norm=None, residual_too=True))
    sweep = depth_sweep(data, depths=(4, 6), seeds=(0, 1), width=8, recipe=recipe, interventions=interventions)
    assert ("residual", 6, "smaller steps") not in sweep.histories  # plain only, unless residual_too
    for name, norm, lr in (("smaller steps", "batch", 0.01), ("no normalisation", None, 0.05)):
        for seed, history in zip((0, 1), sweep.histories["plain", 6, name]):
            net = twins(6, 8, 4, 1, seed=seed, kinds=("plain",), norm=norm)[0]
            alone = train(net, data, Recipe(steps=3, batch_size=16, lr=lr), seed=seed)
            assert history.loss == pytest.approx(alone.loss, rel=1e-5)
    assert sweep.intervention_losses("residual", "no normalisation") == sweep.runs.final_losses(
        ("residual", 6, "no normalisation"))
    table = sweep.intervention_table().splitlines()
    assert len(table) == 2 + 1 + 2 and table[3].startswith("| smaller steps |") and table[3].endswith("| — |")
    with pytest.raises(ValueError, match="kind"):
        sweep.intervention_losses("residual", "smaller steps")
    with pytest.raises(ValueError, match="name"):
        sweep.intervention_losses("plain", "no such change")


def test_bad_interventions_are_refused_before_training():
    from resbook.degradation import Intervention

    data = teacher_regression(n=16, features=2)
    arguments = dict(depths=(4,), seeds=(0,), width=4, recipe=Recipe(steps=1, batch_size=8))
    with pytest.raises(TypeError, match=r"interventions\[0\]"):
        depth_sweep(data, **arguments, interventions=["clip"])
    with pytest.raises(ValueError, match="lr"):
        depth_sweep(data, **arguments, interventions=[Intervention("bad", changes=(("lr", -1.0),))])
    with pytest.raises(ValueError, match="distinct names"):
        depth_sweep(data, **arguments, interventions=[Intervention("a"), Intervention("a")])


def test_test_errors_are_each_seeds_share_of_wrong_classes():
    from resbook.data import train_test_split
    from resbook.training import error_rate

    train_set, test_set = train_test_split(digits(), 0.2, seed=0)
    sweep = depth_sweep(train_set, depths=(4,), seeds=(0, 1), width=8, recipe=Recipe(steps=20, batch_size=64))
    errors = sweep.error_rates("residual", 4, test_set)
    assert errors == [error_rate(m, test_set) for m in sweep.runs.models["residual", 4]]
    assert all(0 <= e < 0.9 for e in errors)  # 20 steps already beat guessing (90 % wrong)
    rows = sweep.test_error_table(test_set).splitlines()
    assert len(rows) == 3 and rows[2].startswith("| 4 |") and rows[2].count("%") == 2


def test_gradient_ratio_on_minibatches_is_the_median_over_those_minibatches():
    import statistics

    from resbook.gradients import gradient_norms_per_layer
    from resbook.training import minibatches

    data = digits()
    ratios = first_to_last_gradient_ratio(data, depths=(6,), width=8, seed=2, batch_size=32, batches=3)
    plain = build_pair(6, 8, data, seed=2)[0]
    by_batch = [n[0] / n[-1] for n in (gradient_norms_per_layer(plain, b) for b in minibatches(data, 32, 3, seed=2))]
    assert ratios["plain"] == [pytest.approx(statistics.median(by_batch))]


def test_median_gradient_ratio_is_the_median_over_seeds_of_each_step_up_to_the_shortest_run():
    runs = {("plain", 4): [History([1.0] * 3, gradient_ratio=[1.0, 5.0, 2.0]),
                           History([1.0] * 2, gradient_ratio=[3.0, 1.0], diverged_at=2),
                           History([1.0] * 3, gradient_ratio=[2.0, 4.0, 9.0])]}
    sweep = sweep_of((4,), (0, 1, 2), runs)
    assert sweep.median_gradient_ratio("plain", 4) == [2.0, 4.0]
    with pytest.raises(ValueError, match="depth=6"):
        sweep.median_gradient_ratio("plain", 6)
