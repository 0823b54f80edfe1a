"""Facts about the plain and residual MLPs that every chapter trains."""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from resbook.data import teacher_regression
from resbook.models import (KINDS, Block, blocks_of, mlp, plain_mlp, residual_mlp, set_residual_scale, twins,
                            weight_layers)
from resbook.plots import KIND_COLORS, KIND_STYLES
from resbook.recipe import Recipe
from resbook.training import train


def first_block(net: nn.Sequential) -> Block:
    return next(m for m in net if isinstance(m, Block))


@settings(max_examples=25, deadline=None)
@given(width=st.integers(1, 16), batch=st.integers(2, 8), seed=st.integers(0, 2**16),
       norm=st.sampled_from(["batch", "layer", None]), preactivation=st.booleans())
def test_zero_branch_residual_block_is_exactly_the_identity(width, batch, seed, norm, preactivation):
    # With F = 0 the block computes y = x + 0 (and, post-activation, relu of a non-negative x).
    torch.manual_seed(seed)
    net = residual_mlp(4, width, width, 3, norm=norm, preactivation=preactivation, zero_init_branch=True)
    block = first_block(net)
    x = torch.randn(batch, width).abs()  # non-negative, as after the stem's ReLU
    assert torch.equal(block(x), x)


def test_depth_counts_weight_layers_stem_two_per_block_and_head():
    for depth in (2, 4, 20, 56):
        assert len(weight_layers(residual_mlp(depth, 8, 5, 3))) == depth


def test_plain_and_residual_nets_differ_only_in_the_identity_gate():
    torch.manual_seed(0)
    plain = plain_mlp(8, 16, 4, 2)
    torch.manual_seed(0)
    residual = residual_mlp(8, 16, 4, 2)
    plain_state, residual_state = plain.state_dict(), residual.state_dict()
    assert plain_state.keys() == residual_state.keys()
    differing = {k for k in plain_state if not torch.equal(plain_state[k], residual_state[k])}
    assert differing and all(k.endswith("identity_gate") for k in differing)


def test_residual_block_adds_its_branch_to_its_input():
    # Independent computation: y = relu(x + F(x)) written out by hand from the branch's layers.
    torch.manual_seed(1)
    block = first_block(residual_mlp(4, 6, 6, 2, norm=None))
    x = torch.randn(5, 6)
    linear1, _, _, linear2, _ = block.branch
    by_hand = torch.relu(x + linear2(torch.relu(linear1(x))))
    torch.testing.assert_close(block(x), by_hand)


def test_plain_block_drops_the_input():
    torch.manual_seed(1)
    block = first_block(plain_mlp(4, 6, 6, 2, norm=None))
    x = torch.randn(5, 6)
    torch.testing.assert_close(block(x), torch.relu(block.branch(x)))


def test_residual_scale_multiplies_the_branch():
    torch.manual_seed(2)
    net = residual_mlp(4, 6, 6, 2, norm=None, residual_scale=0.25)
    block, x = first_block(net), torch.randn(3, 6)
    torch.testing.assert_close(block(x), torch.relu(x + 0.25 * block.branch(x)))


def test_zero_init_residual_net_is_as_deep_as_asked_yet_computes_like_a_shallow_one():
    torch.manual_seed(3)
    deep = residual_mlp(20, 8, 5, 3, norm=None, zero_init_branch=True)
    shallow = nn.Sequential(*(m for m in deep if not isinstance(m, Block)))  # stem + head
    x = torch.randn(7, 5)
    torch.testing.assert_close(deep(x), shallow(x))


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "identity"])
def test_every_activation_builds_and_runs(activation):
    net = plain_mlp(6, 8, 3, 2, activation=activation)
    assert net(torch.randn(4, 3)).shape == (4, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(depth=0), "depth"), (dict(depth=7), "even"), (dict(width=0), "width"),
    (dict(depth=4.0), "depth"), (dict(activation="sigmoidal"), "activation"),
    (dict(norm="group"), "norm"), (dict(residual_scale=-1.0), "residual_scale"),
    (dict(residual="yes"), "residual"), (dict(residual=False, zero_init_branch=True), "zero_init_branch"),
    (dict(preactivation="no"), "preactivation"), (dict(zero_init_branch=1), "zero_init_branch"),
    (dict(residual_scale=1e300), "residual_scale"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, message):
    arguments = dict(depth=4, width=8, in_features=3, out_features=2, residual=True) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        mlp(**arguments)


def test_weight_layers_rejects_non_modules():
    with pytest.raises(TypeError, match="model"):
        weight_layers("not a model")


def test_building_a_net_does_not_touch_another_nets_weights():
    torch.manual_seed(4)
    first = residual_mlp(6, 8, 3, 2)
    before = copy.deepcopy(first.state_dict())
    residual_mlp(6, 8, 3, 2)
    assert all(torch.equal(before[k], v) for k, v in first.state_dict().items())


def test_twins_share_their_initial_weights_and_differ_in_the_gate_alone():
    plain, residual = twins(8, 16, 4, 2, seed=5)
    plain_state, residual_state = plain.state_dict(), residual.state_dict()
    differing = {k for k in plain_state if not torch.equal(plain_state[k], residual_state[k])}
    assert differing and all(k.endswith("identity_gate") for k in differing)
    again, = twins(8, 16, 4, 2, seed=5, kinds=("plain",))
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in plain_state.items())
    other, _ = twins(8, 16, 4, 2, seed=6)
    assert not torch.equal(other[0].weight, plain[0].weight)


def test_making_twins_leaves_the_callers_random_state_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    twins(6, 8, 3, 2, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_twins_refuse_unknown_kinds_and_bad_seeds():
    with pytest.raises(ValueError, match="kinds"):
        twins(4, 4, 2, 2, seed=0, kinds=("plain", "highway"))
    with pytest.raises(TypeError, match="kinds"):
        twins(4, 4, 2, 2, seed=0, kinds="plain")
    with pytest.raises(TypeError, match="seed"):
        twins(4, 4, 2, 2, seed=1.5)


def test_residual_scale_is_a_buffer_that_can_be_set_after_building():
    torch.manual_seed(2)
    net = residual_mlp(4, 6, 6, 2, norm=None)
    assert "3.residual_scale" in dict(net.named_buffers())
    block, x = first_block(set_residual_scale(net, 0.0)), torch.randn(3, 6)
    torch.testing.assert_close(block(x), torch.relu(x))  # α = 0: the block is deleted, only x passes
    with pytest.raises(ValueError, match="no resbook.models.Block"):
        set_residual_scale(nn.Linear(2, 2), 0.5)


def test_every_kind_has_one_colour_and_one_line_style():
    assert set(KIND_COLORS) == set(KIND_STYLES) == set(KINDS)
    assert len(set(KIND_COLORS.values())) == len(KINDS)


def test_a_zero_initialised_branch_starts_at_zero_and_still_learns():
    # Zeroing the branch's *last* layer gives F = 0 while its other layers keep their weights, so gradients
    # reach the branch; zeroing an earlier layer of a ReLU branch also gives F = 0, but a dead one: its weights get
    # no gradient, only the last bias learns, and F stays the same for every input.
    torch.manual_seed(0)
    data = teacher_regression(n=64, features=4)
    net = residual_mlp(4, 8, 4, 1, norm=None, zero_init_branch=True)
    branch = first_block(net).branch
    x = torch.randn(16, 8)
    assert torch.equal(branch(x), torch.zeros(16, 8))
    train(net, data, Recipe(steps=5, batch_size=16, lr=0.1), seed=0)
    assert branch(x).std(dim=0).max() > 0  # F now depends on its input


@pytest.mark.parametrize("options", [dict(norm=None), dict(norm="layer"), dict(activation="tanh"),
                                     dict(preactivation=True)])
def test_a_plain_net_takes_the_same_options_as_a_residual_one(options):
    def layer_types(net):
        return [type(m) for m in net.modules()]

    plain, residual = plain_mlp(6, 8, 3, 2, **options), residual_mlp(6, 8, 3, 2, **options)
    assert layer_types(plain) == layer_types(residual) != layer_types(residual_mlp(6, 8, 3, 2))


def test_twins_take_seeds_up_to_two_to_the_64_minus_one_and_refuse_more():
    assert len(twins(4, 4, 2, 2, seed=2**64 - 1)) == len(KINDS)
    with pytest.raises(ValueError, match=f"^seed must be an int from 0 to {2**64 - 1}, got {2**64}$"):
        twins(4, 4, 2, 2, seed=2**64)


@pytest.mark.parametrize("kinds, error, message", [
    ([], TypeError, r"^kinds must be a non-empty sequence of \('plain', 'residual'\), got \[\]$"),
    (["plain", "dense"], ValueError, r"^kinds\[i\] must be one of 'plain', 'residual'; got 'dense'$"),
])
def test_twins_of_no_kind_or_of_an_unknown_kind_are_refused(kinds, error, message):
    with pytest.raises(error, match=message):
        twins(4, 4, 2, 2, seed=0, kinds=kinds)


def test_a_residual_scale_that_is_not_a_number_is_refused_naming_the_scale():
    with pytest.raises(TypeError, match="^scale must be a real number, got str '1'$"):
        set_residual_scale(residual_mlp(4, 4, 2, 2), "1")


def test_a_preactivation_branch_is_norm_activation_linear_twice():
    # He et al. (2016b): the branch begins with a normalisation and ends with a weight layer.
    branch = first_block(residual_mlp(4, 8, 3, 2, preactivation=True)).branch
    assert [type(m) for m in branch] == [nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


@pytest.mark.parametrize("activation, gain", [("relu", 2.0), ("gelu", 2.0), ("tanh", 1.0), ("identity", 1.0)])
def test_weights_start_with_he_variance_for_relu_like_activations_and_lecun_variance_otherwise(activation, gain):
    # Var(w) = gain / fan_in; 512 × 512 draws pin the standard deviation to about 0.2 %, well inside 3 %.
    torch.manual_seed(0)
    layers = weight_layers(residual_mlp(4, 512, 512, 2, activation=activation, norm=None))
    for layer in layers[:-1]:  # the head keeps torch's default initialisation
        assert float(layer.weight.detach().std()) == pytest.approx((gain / 512) ** 0.5, rel=0.03)


def test_a_zero_initialised_plain_net_is_refused_saying_why():
    with pytest.raises(ValueError, match="^zero_init_branch=True needs residual=True: a plain net with zero branches "
                                         "outputs a constant$"):
        plain_mlp(4, 4, 2, 2, zero_init_branch=True)


@pytest.mark.parametrize("residual", [True, False])
def test_blocks_of_a_depth_d_net_are_its_d_minus_2_over_2_blocks_in_order(residual):
    model = mlp(10, 4, 3, 2, residual=residual)
    found = blocks_of(model)
    assert found == [m for m in model if isinstance(m, Block)] and len(found) == 4
    assert all(float(b.identity_gate) == float(residual) for b in found)
    with pytest.raises(ValueError, match="no resbook.models.Block"):
        blocks_of(mlp(2, 4, 3, 2, residual=True))
    with pytest.raises(TypeError, match="model"):
        blocks_of("net")
