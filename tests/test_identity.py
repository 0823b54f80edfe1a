"""Facts of chapter 1, the identity baseline (resbook/identity.py): when a residual block is the
identity, how the second moment grows through unnormalised blocks (against sympy and against
simulation), and what a zero-initialised branch does to the first gradient step."""
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from resbook.batched import architecture_key
from resbook.data import Dataset
from resbook.identity import (SIZES, VARIANTS, Sizes, Wakeup, activation_statistics, block_factor, blocks_of,
                              branch_wakeup, build_variant, distance_to_identity, distances_at_init,
                              gate_and_scale, identity_sweep, last_affine, loss_table, near_identity_task,
                              one_thread, predicted_second_moments, probe_variants, train_variants)
from resbook.models import mlp
from resbook.recipe import Recipe


def stack(net: nn.Module) -> nn.Sequential:
    return nn.Sequential(*blocks_of(net))


# --- the identity at initialisation ----------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(width=st.integers(1, 12), depth=st.integers(2, 12).map(lambda d: 2 * d), batch=st.integers(2, 9),
       norm=st.sampled_from([None, "batch", "layer"]), seed=st.integers(0, 2**32 - 1),
       spread=st.floats(0.01, 100.0))
def test_zero_branch_preactivation_stack_is_exactly_the_identity(width, depth, batch, norm, seed, spread):
    net = mlp(depth, width, 3, 2, residual=True, norm=norm, preactivation=True, zero_init_branch=True)
    x = spread * torch.randn(batch, width, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        assert torch.equal(stack(net)(x), x)  # exactly: x + 0, for any input shape and depth


def test_zero_branch_postactivation_block_computes_relu_of_its_input():
    net = mlp(8, 5, 3, 2, residual=True, norm=None, preactivation=False, zero_init_branch=True)
    x = torch.tensor([[1.0, -2.0, 0.5, -0.25, 3.0]] * 2)
    biggest, relative = distance_to_identity(stack(net), x)
    assert biggest == 2.0  # the largest negative entry, by hand
    assert relative == pytest.approx(math.hypot(2.0, 0.25) / math.hypot(1, 2, 0.5, 0.25, 3))


def test_distance_to_identity_of_relu_by_hand():
    x = torch.tensor([[3.0, -4.0]])
    assert distance_to_identity(nn.ReLU(), x) == (4.0, pytest.approx(0.8))  # |(0, 4)| / |(3, -4)| = 4/5
    with pytest.raises(ValueError, match="blocks"):
        distance_to_identity(nn.Linear(2, 3), x)


def test_he_initialised_blocks_move_further_from_the_identity_with_depth():
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    distances = distances_at_init((4, 10, 18), 16, x, seed=0)
    for block in ("pre-activation", "post-activation"):
        relative = [distances["residual", block, d][1] for d in (4, 10, 18)]
        assert relative == sorted(relative) and relative[-1] > 1
    assert all(distances["zero-init branch", "pre-activation", d][0] == 0.0 for d in (4, 10, 18))


# --- the variance recursion ----------------------------------------------------------------------

def test_preactivation_block_factor_is_the_sympy_derivation():
    s, gain, g, alpha, q = sp.symbols("s gain g alpha q", positive=True)
    z = sp.symbols("z", real=True)
    normal = sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi)
    half = sp.integrate((s * z) ** 2 * normal, (z, 0, sp.oo))  # E[relu(h)²], h ~ N(0, s²)
    # relu, Linear (× gain²), relu, Linear (× gain²); x and F(x) uncorrelated
    branch = gain**2 * half.subs(s, sp.sqrt(gain**2 * half.subs(s, sp.sqrt(q))))
    factor = sp.simplify((g**2 * q + alpha**2 * branch) / q)
    for values in ((1, 1, 2), (0.5, 1, 2), (1 / math.sqrt(2), 1 / math.sqrt(2), 2), (0.3, 1.7, 1.0)):
        expected = float(factor.subs({g: values[0], alpha: values[1], gain: sp.sqrt(values[2])}))
        assert block_factor(True, *values) == pytest.approx(expected, rel=1e-12)
    assert block_factor(True) == 2.0  # He's gain, unscaled: the second moment doubles


def test_first_postactivation_factor_is_two_plus_one_over_pi():
    a, z = sp.symbols("a z", positive=True)
    normal = lambda u: sp.exp(-u**2 / 2) / sp.sqrt(2 * sp.pi)  # noqa: E731
    # x = relu(a), a ~ N(0, 1): E[x²] = 1/2. The branch adds F ~ N(0, 2·E[x²]) = N(0, 1); y = relu(x + F).
    # a < 0 (probability 1/2): E[relu(F)²] = 1/2. a > 0: E[(a + F)²; F > -a].
    given_a = sp.integrate((a + z) ** 2 * normal(z), (z, -a, sp.oo))
    second = sp.Rational(1, 4) + sp.integrate(given_a * normal(a), (a, 0, sp.oo))
    factor = sp.simplify(second / sp.Rational(1, 2))
    assert sp.simplify(factor - (2 + 1 / sp.pi)) == 0
    # the one-dimensional recursion, on 2^18 draws: sampling error ~0.3 %
    assert predicted_second_moments(1, preactivation=False)[1] == pytest.approx(2 + 1 / math.pi, rel=0.01)


@settings(max_examples=5, deadline=None)
@given(gate=st.floats(0.0, 1.2), scale=st.floats(0.0, 1.2), preactivation=st.booleans(), seed=st.integers(0, 1000))
def test_variance_recursion_agrees_with_simulation(gate, scale, preactivation, seed):
    assume(gate + scale > 0.1)  # g = α = 0 maps everything to 0: there is no second moment to compare
    # At width 1024 the log of the second moment takes a random step of relative size ~√(5/width) at
    # each layer (one draw of weights), so one net's factor per block over 6 blocks scatters by ~4 %;
    # the geometric mean of four nets by ~2 %. The test allows 8 %, four of those.
    blocks, width = 6, 1024
    x = torch.randn(128, width, generator=torch.Generator().manual_seed(seed))
    logs = []
    for draw in range(4):
        torch.manual_seed(seed + draw)
        net = mlp(2 * blocks + 2, width, width, 1, residual=True, norm=None, preactivation=preactivation)
        for block in blocks_of(net):
            block.identity_gate.fill_(gate)
            block.residual_scale.fill_(scale)
        moments, _ = activation_statistics(net, x)
        logs.append(math.log(moments[-1] / moments[0]))
    predicted = predicted_second_moments(blocks, preactivation=preactivation, gate=gate, scale=scale)
    per_block = math.exp(sum(logs) / len(logs) / blocks)
    assert per_block == pytest.approx(predicted[-1] ** (1 / blocks), rel=0.08)


def test_probe_agrees_with_derivation_for_every_variant():
    # 3 seeds at width 256, 8 blocks: within 4 % per block (the chapter uses 3 % at 16 blocks).
    for preactivation in (True, False):
        probe = probe_variants(8, 256, 128, range(3), preactivation=preactivation)
        for variant in VARIANTS:
            measured, derived = probe.growth_per_block(variant)
            assert measured == pytest.approx(derived, rel=0.04), variant
        assert probe.moments["zero-init branch"].tolist() == [1.0] * 9
        assert probe.cosines["zero-init branch"].tolist() == [1.0] * 9


def test_sum_scaled_stack_is_the_unscaled_stack_times_a_power_of_root_two():
    # ReLU and bias-free Linear layers commute with a positive factor, so (x + F(x))/√2 through L
    # blocks is the unscaled stack times 2^(-L/2) at initialisation.
    for blocks in (1, 5, 12):
        unscaled = stack(build_variant("residual", 2 * blocks + 2, 32, 32, 1, seed=blocks))
        scaled = stack(build_variant("sum ÷ √2", 2 * blocks + 2, 32, 32, 1, seed=blocks))
        x = torch.randn(8, 32)
        with torch.no_grad():
            expected = unscaled(x) * 2 ** (-blocks / 2)
            assert torch.allclose(scaled(x), expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_nanogpt_init_computes_what_a_root_l_branch_scale_computes_at_initialisation():
    x = torch.randn(8, 24)
    for preactivation in (True, False):
        nano = stack(build_variant("nanoGPT init", 18, 24, 24, 1, seed=3, preactivation=preactivation))
        scaled = stack(build_variant("branch ÷ √L", 18, 24, 24, 1, seed=3, preactivation=preactivation))
        with torch.no_grad():
            assert torch.allclose(nano(x), scaled(x), rtol=1e-5, atol=1e-6)
        assert [float(b.residual_scale) for b in blocks_of(scaled)] == pytest.approx([1 / math.sqrt(8)] * 8)
        assert [float(b.residual_scale) for b in blocks_of(nano)] == [1.0] * 8


def test_every_variant_shares_one_architecture_so_they_train_together():
    keys = {architecture_key(build_variant(v, 10, 8, 4, 3, seed=0)) for v in VARIANTS}
    assert len(keys) == 1


def test_variants_start_from_the_same_random_numbers():
    plain, residual = (build_variant(v, 8, 6, 4, 3, seed=11) for v in ("plain", "residual"))
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), residual.parameters()))
    assert gate_and_scale("plain", 4) == (0.0, 1.0) and gate_and_scale("shortcut × 0.5", 4) == (0.5, 1.0)


# --- the zero branch and the first gradient step --------------------------------------------------

def test_zero_branch_inner_weights_get_exactly_zero_gradient_at_the_first_step():
    task = near_identity_task(0.5, features=4, samples=64, seed=0)
    net = build_variant("zero-init branch", 10, 8, 4, 4, seed=0)
    wake = branch_wakeup(net, task, Recipe(steps=4, batch_size=16, optimizer="sgd", lr=0.1), seed=0)
    assert wake.inner[0] == 0.0 and wake.last[0] > 0  # only the zeroed layers move first
    assert wake.first_alive == 2 and np.all(wake.inner[1:] > 0)
    with pytest.raises(ValueError, match="Block"):
        branch_wakeup(nn.Linear(4, 4), task, Recipe(steps=1, batch_size=4))


def test_wakeup_counts_steps_from_one():
    wake = Wakeup(np.array([0.0, 0.1, 0.5]), np.array([1.0, 1.0, 1.0]))
    assert (wake.first_alive, wake.steps_until(0.5), wake.steps_until(0.6)) == (2, 3, 0)
    assert Wakeup(np.zeros(3), np.ones(3)).first_alive == 0


def test_last_affine_is_the_layer_zero_init_zeroes():
    for preactivation, norm in ((True, None), (False, "batch"), (True, "layer")):
        net = mlp(6, 4, 2, 2, residual=True, norm=norm, preactivation=preactivation, zero_init_branch=True)
        for block in blocks_of(net):
            assert not last_affine(block.branch).weight.any()
    with pytest.raises(ValueError, match="branch"):
        last_affine(nn.ReLU())


# --- tasks, training and refusals -----------------------------------------------------------------

def test_near_identity_task_is_the_identity_at_epsilon_zero_and_shares_x():
    identity, bent = near_identity_task(0.0, 3, 20, seed=5), near_identity_task(0.5, 3, 20, seed=5)
    assert torch.equal(identity.y, identity.x) and torch.equal(bent.x, identity.x)
    generator = torch.Generator().manual_seed(5)  # drawn by hand: x first, then W with entries N(0, 1/3)
    x = torch.randn(20, 3, generator=generator)
    w = torch.randn(3, 3, generator=generator) / math.sqrt(3)
    assert torch.allclose(bent.y, x + 0.5 * torch.tanh(x @ w)) and bent.task == "regression"


def test_sweep_and_variant_training_return_every_configuration():
    recipe = Recipe(steps=3, batch_size=8, optimizer="adam", lr=0.01)
    sizes = Sizes(features=2, samples=16, width=4, depths=(4, 6), tasks=((0.0, ("no norm, pre-activation",)),),
                  recipe=recipe, probe_width=4, probe_blocks=1, probe_samples=4, train_depth=4, train_width=4,
                  train_recipe=recipe, wakeup_steps=2)
    sweep = identity_sweep(sizes, range(2))
    assert set(sweep) == {0.0} and len(sweep[0.0].configurations) == 6
    assert "| 0 | no norm, pre-activation | plain |" in loss_table(sweep, (4, 6), window=1)
    data = Dataset("tiny", torch.randn(16, 3), torch.arange(16) % 2, "classification")
    runs = train_variants(data, ("plain", "residual", "nanoGPT init"), depth=4, width=4, seeds=(0, 1), recipe=recipe)
    assert all(len(runs.histories[v]) == 2 and len(runs.histories[v][0].loss) == 3 for v in runs.configurations)


def test_sizes_of_both_profiles_name_known_settings():
    for sizes in SIZES.values():
        assert all(setting in ("no norm, pre-activation", "batch norm, post-activation")
                   for _, settings_ in sizes.tasks for setting in settings_)


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("call, name", [
    (lambda: build_variant("scaled", 4, 4, 2, 2, seed=0), "variant"),
    (lambda: near_identity_task(-0.1), "epsilon"),
    (lambda: block_factor(False), "pre-activation"),
    (lambda: block_factor(True, gate=-1.0), "gate"),
    (lambda: predicted_second_moments(-1, preactivation=True), "blocks"),
    (lambda: gate_and_scale("residual", 0), "blocks"),
    (lambda: probe_variants(0, 4, 4, (0,), preactivation=True), "blocks"),
    (lambda: activation_statistics(nn.Linear(2, 2), torch.zeros(1, 2)), "model"),
    (lambda: identity_sweep("quick", (0,)), "sizes"),
])
def test_helpers_refuse_bad_arguments_by_name(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
