"""Facts about the gradient highway (resbook/highway.py): the gradient through blocks is the product of
their D (gI + αJ), a dead branch passes what the block type lets through, and the correlation length
of a known signal comes out as theory says."""
import copy
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resbook.data import digits
from resbook.gradients import backward_signal_norms
from resbook.highway import (SIZES, VARIANTS, GradientSweep, Variant, autocorrelation, block_jacobians, centred_plain,
                             correlation_length, dead_branch_gradients, decay_fits, forward_signal_norms,
                             gradient_sweep, input_grid, input_gradients, notebook_style_plain,
                             shatter_sweep)
from resbook.models import Block, mlp, weight_layers
from resbook.training import minibatches


def blocks_of(net):
    return torch.nn.Sequential(*[m for m in net if isinstance(m, Block)])


# --- the product of block Jacobians -------------------------------------------------------------

@pytest.mark.parametrize("preactivation", [False, True])
@pytest.mark.parametrize("norm", ["batch", None])
def test_product_of_block_jacobians_is_autograds_jacobian_of_the_stack(preactivation, norm):
    torch.manual_seed(0)
    net = mlp(12, 5, 5, 2, residual=True, norm=norm, preactivation=preactivation).double().eval()
    x = torch.randn(5, dtype=torch.float64)
    jacobians, product = block_jacobians(net, x)
    whole = torch.func.jacrev(lambda v: blocks_of(net)(v[None])[0])(x)
    assert len(jacobians) == 5
    assert torch.allclose(product, whole, atol=1e-12)  # float64: rounding only


def test_block_jacobian_of_a_tanh_block_agrees_with_sympy():
    # An independent computation: the block written out symbolically, y = tanh(x + W2 tanh(W1 x + b1) + b2).
    torch.manual_seed(1)
    net = mlp(4, 2, 2, 1, residual=True, norm=None, activation="tanh").double().eval()
    block = blocks_of(net)[0]
    first, second = [m for m in block.branch if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        first.bias.normal_(), second.bias.normal_()
    x = sp.Matrix(sp.symbols("x1 x2"))
    as_matrix = lambda t: sp.Matrix(t.detach().tolist())  # noqa: E731
    branch = as_matrix(second.weight) * (as_matrix(first.weight) * x + as_matrix(first.bias)).applyfunc(sp.tanh)
    y = (x + branch + as_matrix(second.bias)).applyfunc(sp.tanh)
    point = torch.tensor([0.3, -0.7], dtype=torch.float64)
    expected = torch.tensor(y.jacobian(x).subs(dict(zip(x, point.tolist()))).evalf().tolist(), dtype=torch.float64)
    jacobians, _ = block_jacobians(net, point)
    assert torch.allclose(jacobians[0].detach(), expected, atol=1e-12)


def test_plain_block_jacobian_has_no_identity_term():
    # With the gate g = 0 the block's Jacobian is D·J: zero where the branch is dead.
    torch.manual_seed(2)
    net = mlp(4, 3, 3, 1, residual=False, norm=None, activation="identity", preactivation=True).double().eval()
    layers = [m for m in blocks_of(net)[0].branch if isinstance(m, torch.nn.Linear)]
    jacobians, _ = block_jacobians(net, torch.randn(3, dtype=torch.float64))
    assert torch.allclose(jacobians[0], layers[1].weight @ layers[0].weight, atol=1e-12)


def test_block_jacobians_refuses_what_it_cannot_measure():
    net = mlp(6, 3, 3, 1, residual=True)
    with pytest.raises(ValueError, match="evaluation mode"):
        block_jacobians(net.train(), torch.zeros(3))
    with pytest.raises(ValueError, match="one sample"):
        block_jacobians(net.eval(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="Block"):
        block_jacobians(torch.nn.Sequential(torch.nn.Linear(3, 3)).eval(), torch.zeros(3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        block_jacobians(net.eval(), [0.0, 0.0, 0.0])


# --- per-layer norms through depth --------------------------------------------------------------

def test_ratio_and_spread_are_medians_over_seeds_of_hand_made_norms():
    norms = [np.array([8.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0]), np.array([30.0, 3.0, 3.0])]
    sweep = GradientSweep({"signal": {("v", 6): norms}, "weights": {}})
    assert sweep.ratio("v", 6) == 2.0  # first ÷ last: 2, 1, 10
    assert sweep.spread("v", 6) == 4.0  # largest ÷ smallest: 4, 1, 10
    assert sweep.median_norms("v", 6).tolist() == [8.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="no measurement"):
        sweep.ratio("v", 8)
    with pytest.raises(ValueError, match="measure"):
        sweep.ratio("v", 6, "activations")


def test_gradient_sweep_is_the_median_over_minibatches_of_the_core_measurements():
    data = digits()
    batches = minibatches(data, 64, 3, seed=0)
    sweep = gradient_sweep(batches, ["residual, batch norm"], [8], width=8, seeds=[5])
    net = VARIANTS["residual, batch norm"].build(8, 8, data.n_features, data.n_outputs, 5)
    expected = np.median([backward_signal_norms(net, b) for b in batches], 0)
    assert np.allclose(sweep.norms["signal"]["residual, batch norm", 8][0], expected, rtol=1e-6)


def test_a_residual_net_with_zero_branches_passes_the_same_signal_to_every_block():
    # Hand-computed case: F = 0 in pre-activation blocks makes every block the identity, so the
    # backward signal has one norm everywhere and its first ÷ last ratio is exactly 1.
    data = digits()
    torch.manual_seed(3)
    net = mlp(10, 8, 64, 10, residual=True, norm=None, preactivation=True, zero_init_branch=True)
    norms = backward_signal_norms(net, minibatches(data, 64, 1, seed=0)[0])
    assert norms == pytest.approx([norms[-1]] * 5, rel=1e-6)


def test_forward_signal_norms_are_the_norms_of_the_signal_between_blocks():
    data = minibatches(digits(), 32, 1, seed=0)[0]
    net = VARIANTS["residual"].build(8, 6, 64, 10, seed=0)
    net.train()
    x, expected = data.x, []
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, Block) and not expected:
                expected.append(float(x.norm()))
            x = layer(x)
            if isinstance(layer, Block):
                expected.append(float(x.norm()))
    before = copy.deepcopy(net.state_dict())
    assert forward_signal_norms(net, data) == pytest.approx(expected, rel=1e-6)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_variants_scale_their_initial_weights_and_branches_as_named():
    small = VARIANTS["plain, small init"]
    net = small.build(6, 4, 3, 2, seed=7)
    unscaled = Variant("x", "x", residual=False, norm=None, activation="tanh").build(6, 4, 3, 2, seed=7)
    for a, b in zip(weight_layers(net), weight_layers(unscaled)):
        assert torch.allclose(a.weight, small.init_scale * b.weight)
    scaled = VARIANTS["residual, α = 1/√L"].build(20, 4, 3, 2, seed=0)
    scales = [float(b.residual_scale) for b in scaled.modules() if isinstance(b, Block)]
    assert scales == pytest.approx([1 / 3] * 9)  # 9 blocks: α = 1/√9
    with pytest.raises(ValueError, match="variant"):
        gradient_sweep(minibatches(digits(), 16, 1), ["residual, layer norm"], [6], width=4, seeds=[0])


def test_gradient_sweep_needs_minibatches():
    with pytest.raises(TypeError, match="batches"):
        gradient_sweep([], ["residual"], [6], width=4, seeds=[0])


# --- a dead branch --------------------------------------------------------------------------------

def test_a_dead_branch_passes_identity_zero_or_d_by_block_type():
    dead = dead_branch_gradients(width=6, samples=10, seed=4)
    assert all(not j.any() for j in dead.branch_jacobians.values())
    assert torch.equal(dead.passed["pre-activation residual"], dead.upstream)
    assert not dead.passed["plain"].any()
    mask = dead.active_after_sum
    assert torch.equal(dead.passed["post-activation residual"], dead.upstream * mask)
    assert 0 < mask.float().mean() < 1  # both kinds of coordinates are there


# --- shattered gradients: the input gradient over a grid -----------------------------------------

def frozen_copy(net, grid):
    copied = copy.deepcopy(net)
    for norm in copied.modules():
        if isinstance(norm, torch.nn.BatchNorm1d):
            norm.reset_running_stats()
            norm.momentum = None
    copied.train()
    with torch.no_grad():
        copied(grid)
    return copied.eval()


def test_input_gradients_match_central_differences_of_the_frozen_net():
    torch.manual_seed(5)
    net = mlp(10, 8, 1, 1, residual=False, activation="tanh").double()
    grid = input_grid(64).double()
    before = copy.deepcopy(net.state_dict())
    grads = input_gradients([net], grid)[0]
    frozen, h = frozen_copy(net, grid), 1e-6
    with torch.no_grad():
        differences = ((frozen(grid + h) - frozen(grid - h)) / (2 * h))[:, 0].numpy()
    assert np.allclose(grads, differences, rtol=1e-5, atol=1e-7)  # smooth net, float64: truncation ~h²
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and net.training


def test_a_relu_net_without_biases_or_normalisation_has_two_gradient_values_on_a_line():
    # Positive homogeneity: f(cx) = c f(x) for c > 0, so f is linear on each side of 0.
    nets = [mlp(20, 8, 1, 1, residual=r, norm=None) for r in (False, True)]
    grid = input_grid(101)
    for row in input_gradients(nets, grid):
        negative, positive = row[grid[:, 0].numpy() < 0], row[grid[:, 0].numpy() > 0]
        assert np.allclose(negative, negative[0], rtol=1e-5) and np.allclose(positive, positive[0], rtol=1e-5)


def test_the_notebook_style_net_draws_weights_and_biases_with_variance_one_over_width():
    net = notebook_style_plain(40, 200, seed=3)
    layers = weight_layers(net)
    middle = torch.cat([layer.weight.detach().flatten() for layer in layers[1:-1]])
    biases = torch.cat([layer.bias.detach() for layer in layers])
    # 38 × 200² weights: the sample variance is within 1 % of 1/200; 40 × 200 biases, within 5 %.
    assert float(middle.var()) == pytest.approx(1 / 200, rel=0.01)
    assert float(biases.var()) == pytest.approx(1 / 200, rel=0.05)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    assert all(not b.identity_gate for b in net.modules() if isinstance(b, Block))
    assert torch.equal(notebook_style_plain(40, 200, seed=3)[0].weight, layers[0].weight)


def test_centred_biases_give_every_unit_a_zero_mean_pre_activation_over_the_grid():
    grid = input_grid(256)
    net = centred_plain(12, 16, seed=2, grid=grid)
    layers = weight_layers(net)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    # an independent pass: record every weight layer's output, then check its mean over the grid
    outputs = []
    hooks = [layer.register_forward_hook(lambda m, i, out: outputs.append(out)) for layer in layers]
    with torch.no_grad():
        net(grid)
    for hook in hooks:
        hook.remove()
    for out in outputs[:-1]:
        assert float(out.mean(0).abs().max()) < 1e-5
    assert float(layers[-1].bias.detach().abs().max()) == 0.0
    assert torch.equal(centred_plain(12, 16, seed=2, grid=grid)[0].weight, layers[0].weight)
    with pytest.raises(ValueError, match="grid"):
        centred_plain(12, 16, seed=2, grid=torch.zeros(8, 2))


def test_shatter_sweep_gives_seeds_by_points_for_each_kind_and_depth():
    sweep = shatter_sweep(["plain", "residual"], [4, 6], [0, 1], input_grid(32), width=4)
    assert set(sweep) == {("plain", 4), ("residual", 4), ("plain", 6), ("residual", 6)}
    assert all(v.shape == (2, 32) for v in sweep.values())
    again = shatter_sweep(["plain"], [4], [1], input_grid(32), width=4)
    assert np.array_equal(again["plain", 4][0], sweep["plain", 4][1])  # seeds draw the same nets


def test_input_gradients_refuse_bad_shapes():
    net = mlp(4, 3, 1, 1, residual=True)
    with pytest.raises(ValueError, match="grid"):
        input_gradients([net], torch.zeros(10))
    with pytest.raises(ValueError, match="one input"):
        input_gradients([mlp(4, 3, 2, 1, residual=True)], input_grid(10))
    with pytest.raises(TypeError, match="models"):
        input_gradients(net, input_grid(10))
    with pytest.raises(ValueError, match="points"):
        input_grid(3)


# --- the correlation length of known signals ---------------------------------------------------

def ar1(n, phi, seed):
    rng = np.random.default_rng(seed)
    noise, s = rng.standard_normal(n), np.empty(n)
    s[0] = noise[0] / math.sqrt(1 - phi**2)
    for i in range(1, n):
        s[i] = phi * s[i - 1] + noise[i]
    return s


def test_white_noise_has_a_correlation_length_of_half_a_sample():
    # r(1) ≈ 0 for white noise, so the line from r(0) = 1 to r(1) crosses 1/2 at about 0.5.
    # Tolerance: r(1) has a standard error of 1/√n ≈ 0.003 for n = 10⁵.
    assert correlation_length(np.random.default_rng(0).standard_normal(100_000)) == pytest.approx(0.5, abs=0.01)


def test_an_ar1_process_has_the_correlation_length_of_its_exponential():
    # r(k) = φ^k: crosses 1/2 at ln 0.5 / ln φ = 6.58 for φ = 0.9 (the linear interpolation between
    # lags 6 and 7 adds < 0.01). Tolerance covers the estimate's noise for 2·10⁵ samples.
    assert correlation_length(ar1(200_000, 0.9, seed=1)) == pytest.approx(math.log(0.5) / math.log(0.9), abs=0.15)


def test_a_smooth_sinusoid_has_a_correlation_length_of_a_sixth_of_its_period():
    # r(k) ≈ cos(2πk/P)·(n-k)/n, which crosses 1/2 at P/6 when n ≫ P.
    assert correlation_length(np.sin(2 * np.pi * np.arange(120_000) / 600)) == pytest.approx(100, abs=0.5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40).filter(lambda v: np.ptp(v) > 1e-3))
def test_autocorrelation_matches_the_sum_over_pairs(values):
    s = np.asarray(values) - np.mean(values)
    brute = np.array([np.dot(s[: len(s) - k], s[k:]) for k in range(len(s))]) / np.dot(s, s)
    assert np.allclose(autocorrelation(values), brute, atol=1e-9)


def test_correlation_length_refuses_what_has_no_autocorrelation():
    with pytest.raises(ValueError, match="constant"):
        correlation_length(np.ones(10))
    with pytest.raises(ValueError, match="1-D"):
        correlation_length(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        correlation_length([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="threshold"):
        correlation_length([1.0, 2.0, 0.0], threshold=1.0)


# --- decay laws in depth -------------------------------------------------------------------------

def test_decay_fits_recover_an_exact_exponential_and_an_exact_power_law():
    depths = np.array([4, 6, 8, 12, 20, 40])
    exponential = decay_fits(depths, 50 * np.exp(-0.2 * depths))
    assert exponential["exponential"].rate == pytest.approx(0.2) and exponential["exponential"].rms < 1e-9
    assert exponential["exponential"].scale == pytest.approx(50)
    assert exponential["power law"].rms > 0.1  # the wrong law fits visibly worse
    power = decay_fits(depths, 300 * depths ** -1.5)
    assert power["power law"].rate == pytest.approx(1.5) and power["power law"].rms < 1e-9
    assert power["power law"](10) == pytest.approx(300 * 10 ** -1.5)
    assert power["exponential"].rms > 0.1


def test_decay_fits_need_three_positive_points():
    with pytest.raises(ValueError, match="3 points"):
        decay_fits([4, 6], [1.0, 0.5])
    with pytest.raises(ValueError, match="> 0"):
        decay_fits([4, 6, 8], [1.0, 0.0, 0.5])


def test_sizes_name_both_profiles_with_even_depths():
    assert set(SIZES) == {"quick", "full"}
    for sizes in SIZES.values():
        assert all(d % 2 == 0 for d in sizes.depths + sizes.shatter_depths)
        assert sizes.compare_depth in sizes.shatter_depths and sizes.train_depth in sizes.depths


def test_measurements_run_on_one_cpu_thread_and_give_the_count_back():
    # Thousands of tiny operations: one thread is faster on a busy CPU; the caller's setting is restored.
    before = torch.get_num_threads()
    seen = []
    net = mlp(4, 3, 1, 1, residual=True)
    net.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    try:
        input_gradients([net], input_grid(16))
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        with pytest.raises(TypeError):
            gradient_sweep([minibatches(digits(), 16, 1)[0]], ["residual"], [6], width=4, seeds=["a"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
