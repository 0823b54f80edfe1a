"""Facts about resbook.jacobians: the batched per-sample Jacobians of a network equal a plain loop over
samples and finite differences, a residual block's Jacobian is the identity plus its branch's, and batch
norm is handled by freezing the statistics of a fixed batch."""
import pytest
import torch
from torch import nn

from resbook.jacobians import (freeze_batch_statistics, input_output_jacobians, input_output_jacobians_loop,
                               jacobian_singular_values)
from resbook.models import Block, mlp


def small_net(norm=None, residual=True, preactivation=True, seed=0):
    torch.manual_seed(seed)
    return mlp(6, 5, 3, 4, residual=residual, norm=norm, preactivation=preactivation,
               activation="tanh").double()


def finite_differences(model, x, step=1e-6):
    """Central differences, one input coordinate at a time, for one sample."""
    columns = []
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = step
        columns.append((model((x + e)[None])[0] - model((x - e)[None])[0]) / (2 * step))
    return torch.stack(columns, dim=1)


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
@pytest.mark.parametrize("residual", [True, False])
def test_batched_jacobians_equal_the_loop_and_finite_differences(norm, residual):
    net = small_net(norm, residual)
    x = torch.randn(7, 3, dtype=torch.float64)
    net = freeze_batch_statistics(net, x)
    batched = input_output_jacobians(net, x)
    assert batched.shape == (7, 4, 3)
    # float64 throughout: the two autograd paths agree to rounding, differences to O(step²) ≈ 1e-10
    assert torch.allclose(batched, input_output_jacobians_loop(net, x), atol=1e-12)
    for b in range(len(x)):
        assert torch.allclose(batched[b], finite_differences(net, x[b]), atol=1e-7)


def test_residual_block_jacobian_is_identity_plus_branch_jacobian():
    torch.manual_seed(1)
    branch = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4)).double()
    block = Block(branch, identity_gate=1.0, residual_scale=1.0, after=nn.Identity())
    x = torch.randn(5, 4, dtype=torch.float64)
    assert torch.allclose(input_output_jacobians(block, x),
                          torch.eye(4, dtype=torch.float64) + input_output_jacobians(branch, x), atol=1e-12)


def test_singular_values_of_a_linear_model_are_those_of_its_weight():
    layer = nn.Linear(4, 3, bias=True).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    expected = torch.linalg.svdvals(layer.weight.detach())
    values = jacobian_singular_values(layer, x)
    assert values.shape == (2, 3)
    assert torch.allclose(values, expected.expand(2, 3), atol=1e-12)


def test_frozen_batch_norm_computes_what_training_mode_computes_on_that_batch():
    net = small_net("batch", preactivation=False)
    x = 3 * torch.randn(16, 3, dtype=torch.float64) + 1
    frozen = freeze_batch_statistics(net, x)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert not frozen.training
    assert torch.allclose(frozen(x), net.train()(x), atol=1e-10)
    # the original's running statistics moved only by that training-mode call, not by freezing
    assert not torch.equal(net.state_dict()["1.running_mean"], before["1.running_mean"])


def test_freezing_leaves_the_model_as_it_was():
    net = small_net("batch").eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    freeze_batch_statistics(net, torch.randn(8, 3, dtype=torch.float64))
    assert not net.training
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_batch_norm_in_training_mode_is_refused_with_the_way_out():
    net = small_net("batch").train()
    with pytest.raises(ValueError, match="freeze_batch_statistics"):
        input_output_jacobians(net, torch.randn(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="freeze_batch_statistics"):
        input_output_jacobians_loop(net, torch.randn(4, 3, dtype=torch.float64))


@pytest.mark.parametrize("inputs, error, words", [
    (torch.randn(3), ValueError, "samples × features"),
    (torch.zeros(0, 3), ValueError, "samples × features"),
    (torch.ones(2, 3, dtype=torch.long), TypeError, "floating point"),
    ([[1.0, 2.0, 3.0]], TypeError, "inputs must be a torch.Tensor"),
])
def test_bad_inputs_are_refused_by_name(inputs, error, words):
    with pytest.raises(error, match=words):
        input_output_jacobians(small_net(), inputs)


def test_bad_model_and_batch_are_refused_by_name():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        input_output_jacobians(lambda x: x, torch.randn(2, 3))
    with pytest.raises(ValueError, match="batch must hold at least 2 samples"):
        freeze_batch_statistics(small_net("batch"), torch.randn(1, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="batch must be a torch.Tensor"):
        freeze_batch_statistics(small_net("batch"), [[1.0, 2.0, 3.0]])
