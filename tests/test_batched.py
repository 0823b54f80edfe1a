"""Facts about training many nets at once: each net's run is the run it would have alone."""
import copy
import math

import pytest
import torch

from resbook.batched import train_groups, train_together
from resbook.data import spirals, teacher_regression
from resbook.models import Block, mlp
from resbook.training import evaluate_loss, train

STEPS, BATCH = 15, 32
SEEDS = [0, 0, 1, 1]

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


def one_at_a_time(nets, data, seeds, **options):
    return [train(net, data, steps=STEPS, batch_size=BATCH, seed=seed, **options) for net, seed in zip(nets, seeds)]


def assert_same_state(net, expected):
    """Same weights and the same BatchNorm running statistics (all of the state dict)."""
    for (name, value), reference in zip(net.state_dict().items(), expected.state_dict().values()):
        torch.testing.assert_close(value, reference, **TOLERANCE, equal_nan=True, msg=name)


@pytest.mark.parametrize("batching", ["layers", "vmap"])
@pytest.mark.parametrize("data", [spirals(n=256), teacher_regression(n=256, features=4)], ids=["classification", "regression"])
def test_training_together_equals_training_one_at_a_time(data, batching):
    nets = plain_and_residual_nets(data)
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, SEEDS)
    histories = train_together(together, data, steps=STEPS, batch_size=BATCH, seeds=SEEDS, batching=batching)
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
    histories = train_together([residual, plain], data, steps=STEPS, batch_size=BATCH, seeds=[0, 0], batching=batching)
    assert abs(histories[0].loss[0] - histories[1].loss[0]) > 1e-3
    for history, reference in zip(histories, expected):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)


def test_layer_norm_nets_are_trained_with_vmap_and_equal_their_solo_runs():
    data = spirals(n=256)
    nets = plain_and_residual_nets(data, norm="layer", n=2)
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, [3, 4])
    histories = train_together(together, data, steps=STEPS, batch_size=BATCH, seeds=[3, 4])  # "auto" picks vmap
    for history, reference, net, reference_net in zip(histories, expected, together, alone):
        torch.testing.assert_close(torch.tensor(history.loss), torch.tensor(reference.loss), **TOLERANCE)
        assert_same_state(net, reference_net)
    with pytest.raises(ValueError, match="batching"):
        train_together(together, data, steps=1, batch_size=BATCH, seeds=[0, 0], batching="layers")


def poison(net):
    """Scale the output layer by 1e30: the first loss (~1e29) is finite, the first update overflows float32
    (~1e38) by many orders of magnitude, so the loss of step 1 is NaN whatever the rounding."""
    with torch.no_grad():
        net[-1].weight.mul_(1e30)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("batching", ["layers", "vmap"])
def test_a_diverging_net_stops_where_it_would_alone_and_the_others_go_on(batching, momentum):
    data = spirals(n=256)
    nets = plain_and_residual_nets(data)
    poison(nets[1])
    alone, together = copy.deepcopy(nets), copy.deepcopy(nets)
    expected = one_at_a_time(alone, data, SEEDS, momentum=momentum)
    histories = train_together(together, data, steps=STEPS, batch_size=BATCH, seeds=SEEDS,
                               momentum=momentum, batching=batching)
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
    histories = train_together(together, data, steps=STEPS, batch_size=BATCH, seeds=[0, 1], batching=batching)
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
    histories = train_together(nets, data, steps=STEPS, batch_size=BATCH, seeds=[0, 1])
    assert [h.diverged_at for h in histories] == [1, 1]
    assert all(h.final_loss() == math.inf for h in histories)


@pytest.mark.parametrize("other", [
    dict(depth=8), dict(width=16), dict(norm=None), dict(activation="tanh"), dict(residual_scale=0.5),
], ids=["depth", "width", "norm", "activation", "residual_scale"])
def test_nets_of_different_architectures_are_refused(other):
    data = spirals(n=64)
    options = dict(depth=6, width=8, in_features=2, out_features=2, residual=True)
    nets = [mlp(**options), mlp(**{**options, **other})]
    with pytest.raises(ValueError, match=r"models\[1\].*architecture"):
        train_together(nets, data, steps=1, batch_size=16, seeds=[0, 0])


def net():
    return mlp(4, 4, 2, 2, residual=True)


@pytest.mark.parametrize("call, error, message", [
    (lambda d: train_together([], d, steps=1, seeds=[]), ValueError, "models"),
    (lambda d: train_together(net(), d, steps=1, seeds=[0]), TypeError, "models"),
    (lambda d: train_together([net(), "net"], d, steps=1, seeds=[0, 0]), TypeError, r"models\[1\]"),
    (lambda d: train_together([n := net(), n], d, steps=1, seeds=[0, 0]), ValueError, "distinct"),
    (lambda d: train_together([net(), net()], d, steps=1, seeds=[0]), ValueError, "seeds"),
    (lambda d: train_together([net()], d, steps=1, seeds=0), TypeError, "seeds"),
    (lambda d: train_together([net(), net()], d, steps=1, seeds=[0, -1]), ValueError, r"seeds\[1\]"),
    (lambda d: train_together([net()], d, steps=0, seeds=[0]), ValueError, "steps"),
    (lambda d: train_together([net()], d, steps=1.5, seeds=[0]), TypeError, "steps"),
    (lambda d: train_together([net()], d, steps=1, seeds=[0], batch_size=0), ValueError, "batch_size"),
    (lambda d: train_together([net()], d, steps=1, seeds=[0], batch_size=10_000), ValueError, "batch_size"),
    (lambda d: train_together([net()], d, steps=1, seeds=[0], lr=-1.0), ValueError, "lr"),
    (lambda d: train_together([net()], d, steps=1, seeds=[0], momentum=1.0), ValueError, "momentum"),
    (lambda d: train_together([net()], d, steps=1, seeds=[0], batching="loop"), ValueError, "batching"),
    (lambda d: train_together([net()], d.x, steps=1, seeds=[0]), TypeError, "data"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call(spirals(n=64))


def test_groups_trained_side_by_side_match_groups_trained_one_after_another():
    # Each group is independent of the others: on threads or in turn, the same numbers
    # (one intra-op thread either way, so the floating-point reductions are the same too).
    data = teacher_regression(n=64, features=4)

    def groups():
        made = []
        for depth in (4, 6):
            torch.manual_seed(depth)
            made.append(([mlp(depth, 8, 4, 1, residual=r) for r in (False, True)], [1, 2]))
        return made

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        in_turn = train_groups(groups(), data, workers=1, steps=8, batch_size=16)
    finally:
        torch.set_num_threads(previous)
    side_by_side = train_groups(groups(), data, workers=2, steps=8, batch_size=16)
    assert [[h.loss for h in g] for g in side_by_side] == [[h.loss for h in g] for g in in_turn]
    assert torch.get_num_threads() == previous


def test_train_groups_rejects_no_groups_and_bad_workers():
    data = teacher_regression(n=16, features=2)
    with pytest.raises(ValueError, match="groups"):
        train_groups([], data, steps=1)
    with pytest.raises(ValueError, match="workers"):
        train_groups([([mlp(4, 4, 2, 1, residual=True)], [0])], data, workers=0, steps=1, batch_size=8)
