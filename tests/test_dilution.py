"""Facts about k-dilution (resbook/dilution.py): the estimator recovers k where it is known, a linear
map has no remainder, a ReLU on Gaussian input matches theory, and the GSC is what autograd says."""
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from resbook.dilution import (SIZES, _mixed_layer_gsc, block_dilutions, block_inputs, constructed_layer,
                              diluted_stack, dilution_factor, effective_depth, fit_power_law,
                              gradient_scale_coefficient, linear_split, linearised, quadratic_expectation,
                              linearised_share, relu_positive_fractions)
from resbook.models import Block, mlp


def gaussian(samples, width, seed):
    return torch.randn(samples, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def relu_on_gaussian_k():
    """k of ReLU(z), z ~ N(0, 1), by sympy's integrals: with the intercept and without it."""
    z = sp.symbols("z", real=True)
    relu = sp.Piecewise((z, z > 0), (0, True))
    def expect(f):
        return sp.integrate(f * sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi), (z, -sp.oo, sp.oo))
    slope = expect(z * relu) / expect(z**2)  # least squares; E z = 0, so the intercept does not change it
    constant = expect(relu)
    with_intercept = sp.sqrt(slope**2 / expect((relu - slope * z - constant) ** 2))
    without = sp.sqrt(slope**2 / expect((relu - slope * z) ** 2))
    return float(with_intercept), float(without)


# --- the estimator --------------------------------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(k=st.floats(0.5, 50), seed=st.integers(0, 2**16))
def test_dilution_of_a_constructed_layer_is_recovered_within_ten_percent(k, seed):
    # 100 fitting samples per dimension and 4,000 held-out samples: over 105 draws of k from 0.5 to 50
    # the worst relative error was 6.8 %; at 30 samples per dimension it reached 23 %.
    width = 8
    layer = constructed_layer(k, width, seed)
    measured = dilution_factor(layer, gaussian(100 * width, width, seed), gaussian(4000, width, seed + 1))
    assert measured == pytest.approx(k, rel=0.10)


def test_a_linear_map_has_no_remainder_and_infinite_k():
    v, held = gaussian(300, 5, 0), gaussian(200, 5, 1)
    A = gaussian(5, 3, 2)
    split = linear_split(v, v @ A + 2.0, held, held @ A + 2.0)
    assert split.k == math.inf
    assert torch.allclose(split.linear.double(), A.T, atol=1e-5)
    assert torch.allclose(split.intercept.double(), torch.full((3,), 2.0, dtype=torch.float64), atol=1e-5)


def test_relu_on_gaussian_input_matches_theory_with_and_without_intercept():
    with_intercept, without = relu_on_gaussian_k()
    assert with_intercept == pytest.approx(1 / math.sqrt(1 - 2 / math.pi), rel=1e-9)  # ≈ 1.659
    assert without == pytest.approx(1.0, rel=1e-9)
    v, held = gaussian(40_000, 1, 0), gaussian(40_000, 1, 1)
    # 40,000 held-out samples: the ratio of two quadratic means is within ~1 % of its limit
    assert dilution_factor(torch.relu, v, held) == pytest.approx(with_intercept, rel=0.02)
    assert dilution_factor(torch.relu, v, held, intercept=False) == pytest.approx(without, rel=0.02)


def test_quadratic_expectation_is_the_root_mean_square_norm():
    values = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert quadratic_expectation(values) == pytest.approx(math.sqrt(25 / 2))
    assert quadratic_expectation(torch.tensor([1.0, -1.0, 1.0])) == pytest.approx(1.0)


def test_too_few_samples_and_mismatched_shapes_are_refused_with_the_argument_named():
    v, held = gaussian(100, 4, 0), gaussian(200, 4, 1)
    with pytest.raises(ValueError, match="needs at least 120"):
        linear_split(v, v, held, held)
    v = gaussian(120, 4, 0)
    with pytest.raises(ValueError, match="held_out_inputs has 50 samples"):
        linear_split(v, v, held[:50], held[:50])
    with pytest.raises(ValueError, match="one row per sample"):
        linear_split(v, v[:-1], held, held)
    with pytest.raises(ValueError, match="widths 4 → 4"):
        linear_split(v, v, held[:, :3], held)
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor"):
        linear_split(v.numpy(), v, held, held)
    with pytest.raises(ValueError, match="finite"):
        linear_split(v * float("nan"), v, held, held)
    with pytest.raises(TypeError, match="function must be callable"):
        dilution_factor("relu", v, held)
    with pytest.raises(TypeError, match="intercept must be True or False"):
        linear_split(v, v, held, held, intercept="yes")


# --- the gradient scale coefficient ----------------------------------------------------------------

def test_gsc_of_a_layer_equals_autograd_and_ignores_rescaling():
    v = gaussian(50, 6, 0)
    W = gaussian(6, 6, 1)
    def layer(x):
        return torch.tanh(x @ W)
    jacobians = torch.func.vmap(torch.func.jacrev(layer))(v)
    gsc = gradient_scale_coefficient(jacobians, v, layer(v))
    brute = math.sqrt(float((jacobians**2).sum((1, 2)).mean()) / 6) * math.sqrt(
        float((v**2).sum(1).mean())) / math.sqrt(float((layer(v)**2).sum(1).mean()))
    assert gsc == pytest.approx(brute, rel=1e-12)
    # rescale the layer's output by 7: its Jacobian grows by 7 too, the GSC does not move
    assert gradient_scale_coefficient(7 * jacobians, v, 7 * layer(v)) == pytest.approx(gsc, rel=1e-12)
    identity = torch.eye(6, dtype=torch.float64).expand(50, 6, 6)
    assert gradient_scale_coefficient(identity, v, v) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="jacobians must have shape"):
        gradient_scale_coefficient(jacobians[:, :3], v, layer(v))


def test_mixed_layer_gsc_without_jacobians_equals_the_one_from_built_jacobians():
    generator = torch.Generator().manual_seed(0)
    v = gaussian(64, 5, 0)
    U, W = torch.randn(5, 5, generator=generator, dtype=torch.float64), torch.randn(5, 5, generator=generator,
                                                                                   dtype=torch.float64)
    out = (0.7 * v @ U.T + torch.relu(v @ W.T)) / 1.3
    slopes = (v @ W.T > 0).double()
    jacobians = (0.7 * U + slopes[:, :, None] * W) / 1.3
    assert _mixed_layer_gsc(0.7, U, W, slopes, 1.3, v, out) == pytest.approx(
        gradient_scale_coefficient(jacobians, v, out), rel=1e-12)


def test_a_diluted_layer_obeys_the_k_squared_plus_one_rule_on_gaussian_input():
    # For f = a·U v + |W v| (U, W orthogonal), theory gives G² − 1 = (2/π) / (1 − 2/π) / (k² + 1) ≈ 1.752 / (k² + 1)
    # in the wide limit; at width 32 and 8,000 samples the product was within 2 % of it for a from 0 to 8.
    constant = (2 / math.pi) / (1 - 2 / math.pi)
    for mix in (0.0, 1.0, 4.0):
        run = diluted_stack(mix, "abs", depth=1, width=32, samples=8000, seed=0)
        assert (run.gsc[0] ** 2 - 1) * (run.k[0] ** 2 + 1) == pytest.approx(constant, rel=0.05)


def test_gsc_through_a_stack_grows_less_the_more_diluted_its_layers():
    rates = [diluted_stack(mix, "relu", depth=6, width=8, samples=800, seed=1).growth_rate for mix in (0, 1, 8)]
    assert rates[0] > rates[1] > rates[2] > 1
    run = diluted_stack(30.0, "relu", depth=6, width=8, samples=800, seed=1)
    assert run.gsc_through[-1] == pytest.approx(1.0, abs=0.01)  # k ≈ 100: the stack is nearly linear


def test_diluted_stack_refuses_unknown_nonlinearities_and_too_few_samples():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        diluted_stack(1.0, "sigmoid", depth=2, width=4, samples=400, seed=0)
    with pytest.raises(ValueError, match="samples must be >= 240"):
        diluted_stack(1.0, "relu", depth=2, width=4, samples=100, seed=0)


def test_power_law_fit_recovers_an_exact_power_law():
    k = np.array([0.5, 1.0, 3.0, 10.0])
    slope, constant = fit_power_law(k, 1.75 / (k**2 + 1))
    assert slope == pytest.approx(-1.0) and constant == pytest.approx(1.75)
    with pytest.raises(ValueError, match="excess finite and > 0"):
        fit_power_law(k, np.array([1.0, 0.0, 1.0, 1.0]))


# --- trained nets: blocks, branches, the linearised net ------------------------------------------------

def net(residual, activation="relu", norm="batch", seed=0):
    torch.manual_seed(seed)
    return mlp(6, 4, 3, 2, residual=residual, preactivation=True, norm=norm, activation=activation)


def test_a_residual_block_with_a_zero_branch_is_the_identity_and_infinitely_diluted():
    model = net(True)
    for block in model:
        if isinstance(block, Block):
            block.residual_scale.fill_(0.0)
    assert all(k == math.inf for k in block_dilutions(model, gaussian(200, 3, 0).float(), gaussian(100, 3, 1).float()))


def test_a_plain_block_is_its_branch_so_their_dilutions_agree():
    model = net(False)
    x, held = gaussian(200, 3, 0).float(), gaussian(100, 3, 1).float()
    assert block_dilutions(model, x, held) == pytest.approx(block_dilutions(model, x, held, "branch"))
    assert len(block_dilutions(model, x, held, "layers")) == 2 * len(block_inputs(model, x))
    with pytest.raises(ValueError, match="part must be one of"):
        block_dilutions(model, x, held, "head")


def test_linearising_the_blocks_of_a_linear_net_changes_nothing_and_leaves_the_net_alone():
    model = net(True, activation="identity", norm=None).eval()
    x, held = gaussian(200, 3, 0).float(), gaussian(100, 3, 1).float()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = linearised(model, x, held)
    assert not any(isinstance(m, Block) for m in copy.modules())
    with torch.no_grad():
        assert torch.allclose(copy(held), model(held), atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_effective_depth_counts_the_nonlinear_share_of_each_layer():
    assert effective_depth([0.0, 0.0, 0.0]) == 3
    assert effective_depth([1.0, math.inf]) == pytest.approx(0.5)
    assert effective_depth([3.0]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="ks must be"):
        effective_depth([])


def test_sizes_leave_thirty_training_images_per_dimension_of_a_block_input():
    for sizes in SIZES.values():
        assert 1437 >= 30 * sizes.width  # the digits' training split
        assert 2 * 30 * sizes.stack_width <= min(sizes.stack_samples, sizes.single_samples)


def test_relu_positive_fractions_count_the_samples_where_each_unit_is_on():
    model = net(False, norm=None)  # the first block's first ReLU sees the block input itself
    x = torch.tensor([[1.0, -1.0, 2.0, 0.5], [1.0, 1.0, -2.0, 0.5], [-1.0, 1.0, -2.0, 0.5], [1.0, 1.0, 1.0, -0.5]])
    first_block_input = block_inputs(model, x[:, :3])[0]
    fractions = relu_positive_fractions(model, x[:, :3])
    assert len(fractions) == 2 * 2 * 4  # two blocks, two ReLUs each, width 4
    assert fractions[:4] == pytest.approx((first_block_input > 0).double().mean(0).numpy())


def test_linearised_share_leaves_the_net_in_its_mode():
    model = net(True).eval()
    x, held = gaussian(200, 3, 0).float(), gaussian(100, 3, 1).float()
    predicted, measured = linearised_share(model, x, held)
    assert not any(m.training for m in model.modules())
    assert 0 <= predicted <= 1 and measured >= 0


def test_the_chapter_helpers_name_what_they_refuse():
    from resbook.data import spirals
    from resbook.dilution import build_net, measure_dilutions, net_configurations
    sizes = SIZES["quick"]
    with pytest.raises(TypeError, match="sizes must be a resbook.dilution.Sizes"):
        net_configurations({"width": 4})
    with pytest.raises(ValueError, match="configuration must be one of"):
        build_net(("residual", 3.0), 0, sizes, spirals(n=32))
    with pytest.raises(TypeError, match="data must be a resbook.data.Dataset"):
        build_net(("plain", 1.0), 0, sizes, torch.zeros(3, 2))
    with pytest.raises(TypeError, match="models must be a dict"):
        measure_dilutions([net(True)], torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="model must be a torch.nn.Sequential"):
        linearised_share(nn.Linear(3, 3), torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="k must be a finite number > 0"):
        constructed_layer(0.0, 4, 0)
    with pytest.raises(ValueError, match="values must be a non-empty"):
        quadratic_expectation(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="model has no resbook.models.Block"):
        block_inputs(nn.Sequential(nn.Linear(3, 3)), torch.zeros(3, 3))


def test_the_helpers_that_run_on_one_thread_give_the_callers_thread_count_back():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        diluted_stack(1.0, "relu", depth=1, width=4, samples=400, seed=0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
