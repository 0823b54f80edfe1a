"""Facts about training many nets at once: each net's run is the run it would have alone."""
import copy
import math

import pytest
import torch

from torch import nn

from resbook.batched import Group, architecture_key, train_groups, train_together
from resbook.data import spirals, teacher_regression
from resbook.models import ACTIVATIONS, Block, mlp, set_residual_scale
from resbook.recipe import Recipe
from resbook.training import evaluate_loss, train

STEPS, BATCH = 15, 32
SEEDS = [0, 0, 1, 1]
RECIPE = Recipe(steps=STEPS, batch_size=BATCH)

# Tolerance of the oracle comparisons. The batched run adds the same numbers in another order
# (bmm instead of mm, one batch norm over all nets' features), so its losses and weights differ from
# the one-at-a-time run by float32 rounding: ~1e-7 at the first step, under 1e-6 after these 15 steps
# of small nets, ten times below the tolerance. The gap keeps growing with the steps (deep plain nets
# amplify it most), so long runs are not compared step by step: the chapters compare the distributions
# over seeds instead.
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True)
def one_thread():
    """These nets are tiny: a second thread adds nothing but waiting, which becomes very long (minutes)
    when the machine's other core is busy with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plain_and_residual_nets(data, norm="batch", n=4, depth=6, width=8):
    """Residual, plain, residual, plain ...: one architecture, only the identity gate differs."""
    torch.manual_seed(0)
    return [mlp(depth, width, data.n_features, data.n_outputs, residual=i % 2 == 0, norm=norm) for i in range(n)]


def one_at_a_time(nets, data, seeds, recipes=RECIPE):
    recipes = recipes if isinstance(recipes, list) else [recipes] * len(nets)
    return [train(net, data, recipe, seed=seed) for net, recipe, seed in zip(nets, recipes, seeds)]


def assert_same_state(net, expected):
    """Same weights and the same BatchNorm running statistics (all of the state dict)."""
    for (name, value), reference in zip(net.state_dict().items(), expected.state_dict().values()):
        torch.testing.assert_close(value, reference, **TOLERANCE, equal_nan=True, msg=name)


@pytest.mark.parametrize("batching", ["layers", "vmap"])
@pytest.mark.parametrize("data", [spirals(n=256), teacher_regression(n=256, features=4)],
                         ids=["classification", "regression"])
def test_training_together_equals_training_one_at_a_time(data, batching):
    nets = plain_and_residual_nets(data)
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, SEEDS)
    histories = train_together(together, data, RECIPE, seeds=SEEDS, batching=batching)
    for history, reference, net, reference_net in zip(histories, expected, together, alone):
        assert len(history.loss) == STEPS and not history.diverged
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)
        assert_same_state(net, reference_net)  # written back: weights and each net's own running stats
        assert math.isclose(evaluate_loss(net, data), evaluate_loss(reference_net, data), rel_tol=1e-5)
    assert len({h.seconds for h in histories}) == 1 and histories[0].seconds > 0


@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_each_net_of_a_group_keeps_its_own_identity_gate(batching):
    # The same weights twice, once residual (g = 1) and once plain (g = 0): only the gate differs.
    data = spirals(n=256)
    torch.manual_seed(0)
    residual = mlp(6, 8, 2, 2, residual=True)
    plain = copy.deepcopy(residual)
    for block in plain.modules():
        if isinstance(block, Block):
            block.identity_gate.zero_()
    expected = one_at_a_time(copy.deepcopy([residual, plain]), data, [0, 0])
    histories = train_together([residual, plain], data, RECIPE, seeds=[0, 0], batching=batching)
    assert abs(histories[0].loss[0] - histories[1].loss[0]) > 1e-3
    for history, reference in zip(histories, expected):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)


def test_layer_norm_nets_are_trained_with_vmap_and_equal_their_solo_runs():
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, norm="layer", n=2)
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, [3, 4])
    histories = train_together(together, data, RECIPE, seeds=[3, 4])  # "auto" picks vmap
    for history, reference, net, reference_net in zip(histories, expected, together, alone):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)
        assert_same_state(net, reference_net)
    with pytest.raises(ValueError, match="batching"):
        train_together(together, data, Recipe(steps=1, batch_size=BATCH), seeds=[0, 0], batching="layers")


def poison(net):
    """Scale the output layer by 1e30: the first loss (~1e29) is finite, the first update overflows float32
    (~1e38) by many orders of magnitude, so the loss of step 1 is NaN whatever the rounding."""
    with torch.no_grad():
        net[-1].weight.mul_(1e30)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_a_diverging_net_stops_where_it_would_alone_and_the_others_go_on(batching, momentum):
    # The others go on with their own momentum: the optimizer's state follows the nets that remain.
    data = spirals(n=256)
    nets = plain_and_residual_nets(data)
    poison(nets[1])
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    recipe = Recipe(steps=STEPS, batch_size=BATCH, momentum=momentum)
    expected = one_at_a_time(alone, data, SEEDS, recipe)
    histories = train_together(together, data, recipe, seeds=SEEDS, batching=batching)
    assert expected[1].diverged_at == 1  # the poison works: the solo run diverges at step 1
    assert [h.diverged_at for h in histories] == [None, 1, None, None]
    assert [len(h.loss) for h in histories] == [STEPS, 1, STEPS, STEPS]
    for history, reference in zip(histories, expected):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)
    for i in (0, 2, 3):  # (the diverged net's state is overflowed noise, not comparable value by value)
        assert_same_state(together[i], alone[i])


@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_a_net_whose_first_loss_is_nan_keeps_its_initial_weights(batching):
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, n=2)
    with torch.no_grad():
        nets[0][-1].bias[0] = math.nan
    initial, alone, together = (copy.deepcopy(nets) for _ in range(3))
    expected = one_at_a_time(alone, data, [0, 1])
    histories = train_together(together, data, RECIPE, seeds=[0, 1], batching=batching)
    assert expected[0].diverged_at == histories[0].diverged_at == 0 and histories[0].loss == []
    for (name, p), p0 in zip(together[0].named_parameters(), initial[0].parameters()):
        torch.testing.assert_close(p, p0, rtol=0, atol=0, equal_nan=True, msg=name)  # never updated
    assert_same_state(together[0], alone[0])  # running statistics: those of its one forward pass
    assert_same_state(together[1], alone[1])


def test_when_every_net_diverges_training_stops_without_raising():
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, n=2)
    for net in nets:
        poison(net)
    histories = train_together(nets, data, RECIPE, seeds=[0, 1])
    assert [h.diverged_at for h in histories] == [1, 1]
    assert all(h.final_loss() == math.inf for h in histories)


@pytest.mark.parametrize("other", [
    dict(depth=8), dict(width=16), dict(norm=None), dict(activation="tanh"),
], ids=["depth", "width", "norm", "activation"])
def test_nets_of_different_architectures_are_refused(other):
    data = spirals(n=64)
    options = dict(depth=6, width=8, in_features=2, out_features=2, residual=True)
    nets = [mlp(**options), mlp(**{**options, **other})]
    with pytest.raises(ValueError, match=r"models\[1\].*architecture"):
        train_together(nets, data, Recipe(steps=1, batch_size=16), seeds=[0, 0])


def net():
    return mlp(4, 4, 2, 2, residual=True)


ONE_STEP = Recipe(steps=1, batch_size=16)


@pytest.mark.parametrize("call, error, message", [
    (lambda d: train_together([], d, ONE_STEP, seeds=[]), ValueError, "models"),
    (lambda d: train_together(net(), d, ONE_STEP, seeds=[0]), TypeError, "models"),
    (lambda d: train_together([net(), "net"], d, ONE_STEP, seeds=[0, 0]), TypeError, r"models\[1\]"),
    (lambda d: train_together([n := net(), n], d, ONE_STEP, seeds=[0, 0]), ValueError, "distinct"),
    (lambda d: train_together([net(), net()], d, ONE_STEP, seeds=[0]), ValueError, "seeds"),
    (lambda d: train_together([net()], d, ONE_STEP, seeds=0), TypeError, "seeds"),
    (lambda d: train_together([net(), net()], d, ONE_STEP, seeds=[0, -1]), ValueError, r"seeds\[1\]"),
    (lambda d: train_together([net()], d, ONE_STEP, seeds=[2**64]), ValueError, r"seeds\[0\]"),
    (lambda d: train_together([net()], d, Recipe(steps=1, batch_size=10_000), seeds=[0]), ValueError, "batch_size"),
    (lambda d: train_together([net()], d, {"steps": 1}, seeds=[0]), TypeError, "recipe"),
    (lambda d: train_together([net(), net()], d, [ONE_STEP], seeds=[0, 0]), ValueError, "one Recipe per net"),
    (lambda d: train_together([net(), net()], d, [ONE_STEP, Recipe(steps=2, batch_size=16)], seeds=[0, 0]),
     ValueError, r"recipe\[1\] differs .* steps"),
    (lambda d: train_together([net()], d, ONE_STEP, seeds=[0], batching="loop"), ValueError, "batching"),
    (lambda d: train_together([net()], d.x, ONE_STEP, seeds=[0]), TypeError, "data"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call(spirals(n=64))


def test_groups_trained_side_by_side_match_groups_trained_one_after_another():
    # Each group is independent of the others: on threads or in turn, the same numbers
    # (one intra-op thread either way, so the floating-point reductions are the same too).
    data = teacher_regression(n=64, features=4)
    recipe = Recipe(steps=8, batch_size=16)

    def groups():
        made = []
        for depth in (4, 6):
            torch.manual_seed(depth)
            made.append(Group([mlp(depth, 8, 4, 1, residual=r) for r in (False, True)], [1, 2], recipe))
        return made

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        in_turn = train_groups(groups(), data, workers=1)
    finally:
        torch.set_num_threads(previous)
    side_by_side = train_groups(groups(), data, workers=2)
    assert [[h.loss for h in g] for g in side_by_side] == [[h.loss for h in g] for g in in_turn]
    assert torch.get_num_threads() == previous


def test_train_groups_rejects_no_groups_bad_workers_and_shared_nets():
    data = teacher_regression(n=16, features=2)
    recipe = Recipe(steps=1, batch_size=8)
    with pytest.raises(ValueError, match="groups"):
        train_groups([], data)
    with pytest.raises(ValueError, match="workers"):
        train_groups([Group([mlp(4, 4, 2, 1, residual=True)], [0], recipe)], data, workers=0)
    with pytest.raises(TypeError, match=r"groups\[0\]"):
        train_groups([([mlp(4, 4, 2, 1, residual=True)], [0])], data)
    shared = mlp(4, 4, 2, 1, residual=True)
    with pytest.raises(ValueError, match="same net"):
        train_groups([Group([shared], [0], recipe), Group([shared], [1], recipe)], data)


# --- per-net recipes -------------------------------------------------------------------------
# Adam is compared on nets without batch norm: a bias just before a batch norm has a gradient of
# exactly zero in exact arithmetic, i.e. float32 noise (~1e-9), which Adam divides by its own size and
# turns into full steps of random sign; the batched and the solo run round differently there.

PER_NET_RECIPES = {
    "sgd, four learning rates": [Recipe(steps=STEPS, batch_size=BATCH, lr=lr) for lr in (0.01, 0.05, 0.2, 0.5)],
    "adam, two learning rates": [Recipe(steps=STEPS, batch_size=BATCH, optimizer="adam", lr=lr, weight_decay=0.01)
                                 for lr in (1e-3, 1e-2, 1e-3, 3e-3)],
    "adamw with a cosine schedule": [Recipe(steps=STEPS, batch_size=BATCH, optimizer="adamw", lr=1e-2,
                                            schedule="cosine", warmup_steps=3)] * 4,
    "clipping, each net by its own norm": [Recipe(steps=STEPS, batch_size=BATCH, lr=0.1, clip_norm=c)
                                           for c in (None, 0.05, 0.5, 0.01)],
    "per-layer normalised steps": [Recipe(steps=STEPS, batch_size=BATCH, lr=0.02, normalise_per_layer=flag)
                                   for flag in (True, False, True, True)],
}


@pytest.mark.parametrize("batching", ["layers", "vmap"])
@pytest.mark.parametrize("recipes", PER_NET_RECIPES.values(), ids=PER_NET_RECIPES.keys())
def test_nets_with_their_own_recipes_train_together_as_they_train_alone(recipes, batching):
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, norm=None if recipes[0].optimizer != "sgd" else "batch")
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, SEEDS, recipes)
    histories = train_together(together, data, recipes, seeds=SEEDS, batching=batching)
    for history, reference, net, reference_net in zip(histories, expected, together, alone):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)
        assert len(history.gradient_ratio) == len(reference.gradient_ratio) == STEPS
        torch.testing.assert_close(torch.tensor(history.gradient_ratio), torch.tensor(reference.gradient_ratio),
                                   rtol=1e-3, atol=0)  # a ratio of two norms: rounding of both, relative
        assert_same_state(net, reference_net)


def test_clipping_is_computed_per_net_not_over_the_stack():
    # Two copies of one net, one clipped: had the norm been taken over both, the unclipped one would
    # have been scaled too, and the two runs would not equal their solo runs.
    data = spirals(n=256)
    torch.manual_seed(0)
    first = mlp(6, 8, 2, 2, residual=True)
    nets = [first, copy.deepcopy(first)]
    recipes = [Recipe(steps=3, batch_size=BATCH, lr=0.1), Recipe(steps=3, batch_size=BATCH, lr=0.1, clip_norm=1e-3)]
    solo = one_at_a_time(copy.deepcopy(nets), data, [0, 0], recipes)
    together = train_together(nets, data, recipes, seeds=[0, 0])
    assert solo[0].loss[-1] != pytest.approx(solo[1].loss[-1], rel=1e-3)  # clipping changed the run
    for history, reference in zip(together, solo):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)


@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_adam_state_follows_the_nets_that_remain_after_one_diverges(batching):
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, norm=None)
    # Adam's steps are about lr in size whatever the gradient: net 2 diverges through its learning rate.
    recipe = [Recipe(steps=STEPS, batch_size=BATCH, optimizer="adam", lr=lr) for lr in (1e-2, 1e-3, 1e30, 1e-2)]
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, SEEDS, recipe)
    histories = train_together(together, data, recipe, seeds=SEEDS, batching=batching)
    assert [h.diverged_at for h in histories] == [h.diverged_at for h in expected]
    assert histories[2].diverged
    for i in (0, 1, 3):
        torch.testing.assert_close(torch.tensor(histories[i].loss), torch.tensor(expected[i].loss), **TOLERANCE)
        assert_same_state(together[i], alone[i])


def test_a_step_size_beyond_float32_is_reported_as_divergence_for_every_net():
    data = spirals(n=64)
    histories = train_together(plain_and_residual_nets(data, n=2), data, Recipe(steps=5, batch_size=16, lr=1e39),
                               seeds=[0, 1])
    assert [h.diverged_at for h in histories] == [1, 1]


# --- what batches together -------------------------------------------------------------------

@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_nets_that_differ_only_in_the_residual_scale_train_together(batching):
    data = spirals(n=256)
    torch.manual_seed(0)
    base = mlp(6, 8, 2, 2, residual=True)
    nets = [set_residual_scale(copy.deepcopy(base), alpha) for alpha in (1.0, 0.5, 0.0)]
    expected = one_at_a_time(copy.deepcopy(nets), data, [0, 0, 0])
    histories = train_together(nets, data, RECIPE, seeds=[0, 0, 0], batching=batching)
    assert len({h.loss[0] for h in histories}) == 3  # the scale changes what each net computes
    for history, reference in zip(histories, expected):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)


def test_a_net_with_dropout_trains_with_vmap_each_net_drawing_its_own_masks():
    data = spirals(n=256)
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    histories = train_together(nets, data, RECIPE, seeds=[0, 0])  # "auto" picks vmap
    assert all(len(h.loss) == STEPS for h in histories)
    assert histories[0].loss[0] != histories[1].loss[0]  # same weights and batch, different masks


def test_the_hand_batched_path_runs_every_activation_of_the_models():
    data = spirals(n=64)
    for activation in ACTIVATIONS:
        nets = [mlp(4, 4, 2, 2, residual=True, activation=activation) for _ in range(2)]
        train_together(nets, data, Recipe(steps=1, batch_size=16), seeds=[0, 1], batching="layers")


def test_a_buffer_that_is_not_one_number_per_net_is_refused_by_the_hand_batched_path():
    data = spirals(n=64)
    nets = [mlp(4, 4, 2, 2, residual=True) for _ in range(2)]
    for n in nets:
        n[3].register_buffer("memory", torch.zeros(3))
    with pytest.raises(ValueError, match="one number per net.*memory"):
        train_together(nets, data, Recipe(steps=1, batch_size=16), seeds=[0, 1], batching="layers")


# --- on a GPU (skipped without one) ------------------------------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("recipes", PER_NET_RECIPES.values(), ids=PER_NET_RECIPES.keys())
def test_nets_trained_together_on_the_gpu_follow_their_solo_runs_on_the_cpu(recipes):
    # Another device sums in another order (and may use TF32): a looser tolerance than on the CPU,
    # still far below the differences between recipes (~1e-2 after a few steps).
    torch.backends.cuda.matmul.allow_tf32 = False
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, norm=None if recipes[0].optimizer != "sgd" else "batch")
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, SEEDS, recipes)
    histories = train_together(together, data.to("cuda"), recipes, seeds=SEEDS)
    assert all(p.device.type == "cuda" for net in together for p in net.parameters())
    for history, reference in zip(histories, expected):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), rtol=1e-4, atol=1e-4)


# --- what is guaranteed where training is chaotic (issue 16, item 6) ------------------------------
# BatchNorm nets at lr 5 on spirals are chaotic: a rounding difference of 1e-7 grows about tenfold a
# step (measured with vmap batching: 7e-6 at step 4, the size of the loss itself by step 10), so seeds
# diverge at other steps batched than alone. What holds is the start: the first steps agree within
# 1e-5 whatever the learning rate; the tolerance is 15 times the largest gap measured at step 4.

@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_the_first_steps_of_chaotic_batch_norm_runs_equal_their_solo_runs(batching):
    data, recipe, seeds = spirals(n=1024), Recipe(steps=4, lr=5.0, batch_size=64), [0, 1, 2, 3]
    torch.manual_seed(0)
    nets = [mlp(8, 32, 2, 2, residual=kind == "residual", norm="batch") for kind in ("plain", "residual") * 2]
    together = train_together([copy.deepcopy(net) for net in nets], data, recipe, seeds=seeds, batching=batching)
    alone = one_at_a_time([copy.deepcopy(net) for net in nets], data, seeds, recipe)
    for batched_run, solo_run in zip(together, alone):
        assert len(batched_run.loss) == len(solo_run.loss) == 4
        assert batched_run.loss == pytest.approx(solo_run.loss, rel=1e-5)


def test_nets_that_differ_in_a_setting_that_is_no_tensor_do_not_batch_together():
    def net(slope):
        return nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(slope))

    assert architecture_key(net(0.01)) == architecture_key(net(0.01)) != architecture_key(net(0.2))


def test_a_net_and_its_copy_in_evaluation_mode_batch_together():
    model = mlp(4, 8, 2, 2, residual=True)
    assert architecture_key(model) == architecture_key(copy.deepcopy(model).eval())


def test_refusals_of_batched_training_say_the_whole_story():
    data, recipe = spirals(n=64), Recipe(steps=1, batch_size=16)
    shared = mlp(4, 4, 2, 1, residual=True)
    with pytest.raises(ValueError, match=r"^groups must not share nets: the same net appears in two groups "
                                         r"\(or twice in one\)$"):
        train_groups([Group([shared], [0], recipe), Group([shared], [1], recipe)], data)
    with pytest.raises(ValueError, match=r"^models\[1\] does not have the architecture of models\[0\] \(module "
                                         r"types, settings, parameter and buffer names and shapes must agree\)$"):
        train_together([mlp(4, 4, 2, 2, residual=True), mlp(6, 4, 2, 2, residual=True)], data, recipe, seeds=[0, 1])
    odd = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0))
    with pytest.raises(ValueError, match=r"^batching='layers' needs a net built from Linear, BatchNorm1d, activations "
                                         r"and resbook Blocks only; use batching='vmap' for this architecture$"):
        train_together([odd, copy.deepcopy(odd)], data, recipe, seeds=[0, 1], batching="layers")


def test_batched_training_names_data_that_is_not_a_dataset():
    with pytest.raises(TypeError, match="^data must be a resbook.data.Dataset"):
        train_together([net(), net()], None, ONE_STEP, seeds=[0, 1])


@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_on_step_sees_each_nets_weights_as_training_it_alone_for_that_many_steps_would_leave_them(batching):
    # The oracle: net i trained alone for k steps; the snapshot after step k - 1 must hold its weights.
    data = spirals(n=256)
    nets = plain_and_residual_nets(data)
    nets[1][-1].weight.data.mul_(1e30)  # diverges at step 1 and must leave the stacks
    snapshots = {}

    def keep(step, running, params):
        snapshots[step] = (running, {name: p.clone() for name, p in params.items()})

    train_together(copy.deepcopy(nets), data, RECIPE, seeds=SEEDS, batching=batching, on_step=keep)
    assert sorted(snapshots) == list(range(STEPS))
    assert snapshots[0][0] == [0, 1, 2, 3] and snapshots[1][0] == [0, 2, 3]
    for steps in (1, 4, STEPS):
        running, params = snapshots[steps - 1]
        for row, index in enumerate(running):
            if index == 1:
                continue  # its update at step 0 overflowed: noise, not comparable value by value
            alone = copy.deepcopy(nets[index])
            train(alone, data, Recipe(steps=steps, batch_size=BATCH), seed=SEEDS[index])
            for name, value in alone.named_parameters():
                torch.testing.assert_close(params[name][row], value.detach(), **TOLERANCE, msg=name)


def test_on_step_that_is_not_a_function_is_refused():
    data = spirals(n=64)
    with pytest.raises(TypeError, match="on_step must be None or a function"):
        train_together(plain_and_residual_nets(data, n=2), data, RECIPE, seeds=[0, 1], on_step=3)
