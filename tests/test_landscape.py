"""Facts about chapter 4's landscapes (resbook/landscape.py): the toy saddle and its skip, the escape-time
law, chains of weights, filter-normalised slices of real nets, their curvature, minima and the path's
principal components — each compared with an independent computation."""
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.decomposition import PCA

from resbook import landscape
from resbook.data import spirals, teacher_regression
from resbook.landscape import (chain_steps_to_fit, escape_law, filter_normalised_direction, local_minima,
                               loss_grid, negative_share_by_loss, path_pca_shares, random_walk_path,
                               slice_curvature, slope_against_log, toy_descent,
                               toy_loss, toy_steps_to_fit, train_recording_paths)
from resbook.models import mlp, twins
from resbook.recipe import Recipe


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only waits
    yield
    torch.set_num_threads(threads)


# --- the toy -----------------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(alpha=st.floats(-3, 3), skip=st.booleans())
def test_sympy_and_autograd_agree_on_the_toy_hessian_at_the_origin_eigenvalues_plus_minus_two_target(alpha, skip):
    w1, w2, a = sp.symbols("w1 w2 alpha")
    loss = toy_loss(w1, w2, a, skip)
    hessian = sp.hessian(loss, (w1, w2)).subs({w1: 0, w2: 0})
    target = a - (1 if skip else 0)  # the skip only shifts the target: alpha - 1
    assert sp.simplify(hessian - sp.Matrix([[0, -2 * target], [-2 * target, 0]])) == sp.zeros(2, 2)
    assert sp.diff(loss, w1).subs({w1: 0, w2: 0}) == 0  # the origin is a critical point for every alpha
    autograd = torch.func.hessian(lambda w: toy_loss(w[0], w[1], alpha, skip))(torch.zeros(2, dtype=torch.float64))
    exact = torch.tensor(hessian.subs(a, alpha).tolist(), dtype=torch.float64)
    torch.testing.assert_close(autograd, exact)
    eigenvalues = sorted(float(e) for e in torch.linalg.eigvalsh(exact))
    assert eigenvalues == pytest.approx(sorted([-2 * abs(alpha - skip), 2 * abs(alpha - skip)]), abs=1e-12)


@pytest.mark.parametrize("alpha, skip, lr", [(1.0, False, 0.05), (2.0, True, 0.05), (3.0, False, 0.02),
                                             (1.5, False, 0.1), (0.5, False, 0.05)])
def test_the_escape_time_grows_by_one_over_ln_one_plus_two_lr_alpha_per_factor_e_of_epsilon(alpha, skip, lr):
    # Tolerance: the law is the linearisation near the saddle; the last steps away from it add a
    # constant, which the slope does not see, and rounding of steps to integers leaves < 1 %.
    eps = np.logspace(-9, -3, 7)
    steps = toy_steps_to_fit(alpha, skip, eps, lr)
    law = escape_law(eps, alpha, lr, skip)
    assert slope_against_log(eps, steps) == pytest.approx(slope_against_log(eps, law), rel=0.01)
    assert slope_against_log(eps, law) == pytest.approx(1 / math.log(1 + 2 * lr * (alpha - skip)))


def test_the_skip_at_alpha_two_escapes_as_the_plain_toy_at_alpha_one_and_at_alpha_one_starts_at_a_minimum():
    eps = np.logspace(-8, -2, 4)
    assert np.array_equal(toy_steps_to_fit(2.0, True, eps, 0.05), toy_steps_to_fit(1.0, False, eps, 0.05))
    assert np.array_equal(toy_steps_to_fit(1.0, True, eps, 0.05), np.zeros(4))


@pytest.mark.parametrize("alpha, skip, eps", [(1.0, False, 1e-3), (2.0, True, 1e-2), (1.0, False, 0.3)])
def test_toy_steps_to_fit_is_the_first_step_of_the_full_two_weight_descent_below_the_tolerance(alpha, skip, eps):
    path = toy_descent(alpha, skip, eps, 0.05, 500)  # both weights updated from the 2-D gradient
    losses = toy_loss(path[:, 0], path[:, 1], alpha, skip)
    assert toy_steps_to_fit(alpha, skip, [eps], 0.05)[0] == np.argmax(losses < 1e-4)


def test_toy_descent_from_the_origin_never_moves_and_a_negative_target_on_the_diagonal_returns_to_it():
    assert np.array_equal(toy_descent(1.0, False, 0.0, 0.1, 20), np.zeros((21, 2)))
    path = toy_descent(0.5, True, 0.1, 0.1, 300)  # target alpha - 1 < 0: the diagonal is the stable direction
    assert np.abs(path[-1]).max() < 1e-6
    assert toy_loss(path[-1, 0], path[-1, 1], 0.5, True) == pytest.approx(0.25)


@pytest.mark.parametrize("depth, skip, eps, lr", [(3, False, 0.3, 0.05), (4, True, 0.01, 0.05),
                                                  (2, False, 0.1, 0.1), (5, True, -0.02, 0.02)])
def test_chain_steps_equal_full_gradient_descent_on_every_weight_with_autograd(depth, skip, eps, lr):
    alpha = 2.0
    w = torch.full((depth,), eps, dtype=torch.float64, requires_grad=True)
    expected = math.inf
    for step in range(3000):
        loss = (torch.prod((1.0 if skip else 0.0) + w) - alpha) ** 2
        if loss.item() < 1e-4:
            expected = step
            break
        (gradient,) = torch.autograd.grad(loss, w)
        w = (w - lr * gradient).detach().requires_grad_()
    assert expected < math.inf
    assert chain_steps_to_fit(depth, alpha, skip, [eps], lr, max_steps=3000)[0] == expected


def test_a_deep_plain_chain_from_small_weights_does_not_fit_within_the_budget_while_the_residual_chain_does():
    assert chain_steps_to_fit(8, 2.0, False, [0.01], 0.1 / 8, max_steps=2000)[0] == math.inf
    assert chain_steps_to_fit(8, 2.0, True, [0.01], 0.1 / 8, max_steps=2000)[0] < 50


def test_a_residual_chain_diverges_with_a_fixed_learning_rate_and_fits_with_one_scaled_by_one_over_depth():
    # The curvature at the fit is 2·L·α^(2 − 2/L): stable steps need lr < 1 / (L·α^(2 − 2/L)).
    assert chain_steps_to_fit(32, 2.0, True, [0.01], 0.05)[0] == math.inf
    assert chain_steps_to_fit(32, 2.0, True, [0.01], 0.1 / 32)[0] < 50


def test_the_curvature_of_a_chain_at_its_balanced_fit_is_two_depth_alpha_to_two_minus_two_over_depth():
    for depth in (2, 3, 8):
        u = torch.full((depth,), 2.0 ** (1 / depth), dtype=torch.float64)
        hessian = torch.func.hessian(lambda w: (torch.prod(w) - 2.0) ** 2)(u)
        assert torch.linalg.eigvalsh(hessian).max().item() == pytest.approx(2 * depth * 2.0 ** (2 - 2 / depth))


def test_the_toy_helpers_refuse_bad_arguments_naming_them():
    with pytest.raises(TypeError, match="skip"):
        toy_loss(0.0, 0.0, 1.0, skip="yes")
    with pytest.raises(ValueError, match="lr"):
        toy_steps_to_fit(1.0, False, [0.1], 0.0)
    with pytest.raises(ValueError, match="eps"):
        toy_steps_to_fit(1.0, False, [], 0.1)
    with pytest.raises(ValueError, match="eps"):
        chain_steps_to_fit(3, 1.0, False, [math.nan], 0.1)
    with pytest.raises(ValueError, match="depth"):
        chain_steps_to_fit(0, 1.0, False, [0.1], 0.1)
    with pytest.raises(ValueError, match="alpha"):
        escape_law([0.1], 1.0, 0.1, skip=True)
    with pytest.raises(ValueError, match="steps"):
        toy_descent(1.0, False, 0.1, 0.1, -1)


# --- slices of real nets -------------------------------------------------------------------------------

def digits_like_net(seed=0):
    torch.manual_seed(seed)
    net = mlp(6, 8, 2, 2, residual=True)
    net(torch.randn(64, 2))  # a training-mode pass moves the running statistics off their start
    return net.eval()


def test_filter_normalisation_gives_each_filter_the_norm_of_the_matching_filter_of_the_weights():
    net = digits_like_net()
    direction = filter_normalised_direction(net, torch.Generator().manual_seed(0))
    assert set(direction) == {name for name, _ in net.named_parameters()}
    for name, weight in net.named_parameters():
        if weight.dim() == 1:  # biases and batch-norm scales do not move
            assert torch.equal(direction[name], torch.zeros_like(weight))
            continue
        for row, filter_ in zip(direction[name], weight):
            assert row.norm().item() == pytest.approx(filter_.norm().item(), rel=1e-5)
        assert not torch.allclose(direction[name] / direction[name].norm(), weight / weight.norm())


def test_two_filter_normalised_directions_from_one_generator_differ_and_repeat_with_its_seed():
    net = digits_like_net()
    generator = torch.Generator().manual_seed(3)
    first, second = (filter_normalised_direction(net, generator) for _ in range(2))
    again = filter_normalised_direction(net, torch.Generator().manual_seed(3))
    assert not torch.equal(first["0.weight"], second["0.weight"])
    assert all(torch.equal(first[name], again[name]) for name in first)


def test_a_grid_of_a_known_quadratic_is_reproduced_exactly_with_its_curvature():
    # A linear model with squared error: L(a, b) = mean((x·(θ + aδ + bη) − y)²), a quadratic in (a, b)
    # whose Hessian is 2·[δ, η]ᵀ Σ [δ, η] with Σ = xᵀx / n: computed here by hand, in float64.
    torch.set_default_dtype(torch.float64)
    try:
        data = teacher_regression(n=64, features=3, seed=1)
        model = torch.nn.Linear(3, 1)
        directions = [{"weight": torch.randn(1, 3), "bias": torch.zeros(1)} for _ in range(2)]
        coords = torch.linspace(-1, 1, 9)
        grid = loss_grid(model, directions, data, coords)
        theta, bias = model.weight.detach()[0], model.bias.detach()
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                w = theta + a * directions[0]["weight"][0] + b * directions[1]["weight"][0]
                assert grid[i, j].item() == pytest.approx(((data.x @ w + bias - data.y[:, 0]) ** 2).mean().item(),
                                                          rel=1e-12)
        d = torch.stack([directions[0]["weight"][0], directions[1]["weight"][0]], 1)
        hessian = 2 * d.T @ (data.x.T @ data.x / len(data)) @ d
        low, high = slice_curvature(grid, spacing=(coords[1] - coords[0]).item())
        expected = torch.linalg.eigvalsh(hessian)
        assert np.allclose(low, expected[0].item(), rtol=1e-8) and np.allclose(high, expected[1].item(), rtol=1e-8)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_batched_and_looped_loss_grids_agree_for_a_batch_norm_net_left_in_its_mode(chunk):
    net = digits_like_net().train()
    data = spirals(n=64)
    generator = torch.Generator().manual_seed(0)
    directions = [filter_normalised_direction(net, generator) for _ in range(2)]
    coords = torch.linspace(-1, 1, 5)
    batched = loss_grid(net, directions, data, coords, chunk=chunk)
    looped = loss_grid(net, directions, data, coords, batched=False)
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-6)  # float32 sums in another order
    assert net.training  # given in training mode, returned in training mode
    with torch.no_grad():  # the centre of the grid is the net itself, in evaluation mode
        centre = torch.nn.functional.cross_entropy(net.eval()(data.x), data.y)
    assert batched[2, 2].item() == pytest.approx(centre.item(), rel=1e-5)


def test_loss_grid_refuses_directions_that_miss_a_parameter_and_coords_that_are_not_a_line():
    net, data = digits_like_net(), spirals(n=16)
    direction = filter_normalised_direction(net, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="directions"):
        loss_grid(net, [direction, {}], data, torch.linspace(-1, 1, 3))
    with pytest.raises(ValueError, match="coords"):
        loss_grid(net, [direction, direction], data, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="data"):
        loss_grid(net, [direction, direction], data.x, torch.linspace(-1, 1, 3))


def test_a_saddle_has_negative_curvature_everywhere_and_a_bowl_nowhere():
    coords = np.linspace(-1, 1, 11)
    a, b = np.meshgrid(coords, coords, indexing="ij")
    low, high = slice_curvature(a**2 - 3 * b**2, spacing=0.2)
    assert np.allclose(low, -6) and np.allclose(high, 2)
    low, _ = slice_curvature(a**2 + a * b + b**2, spacing=0.2)
    assert np.allclose(low, 1)  # eigenvalues of [[2, 1], [1, 2]]: 1 and 3


def brute_force_minima(f):
    return sum(all(f[i, j] < f[i + di, j + dj] for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj)
               for i in range(1, f.shape[0] - 1) for j in range(1, f.shape[1] - 1))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 8), st.integers(3, 8)), elements=st.integers(0, 5)))
def test_local_minima_counts_interior_points_below_all_eight_neighbours(f):
    assert local_minima(f) == brute_force_minima(f)


def test_an_egg_crate_has_one_minimum_per_interior_cell():
    coords = np.linspace(0, 4 * np.pi, 41)
    a, b = np.meshgrid(coords, coords, indexing="ij")
    assert local_minima(np.cos(a) + np.cos(b)) == 4  # minima at (π, 3π) × (π, 3π)


def test_curvature_and_minima_refuse_a_grid_that_is_not_two_dimensional():
    with pytest.raises(ValueError, match="grid"):
        local_minima(np.zeros(5))
    with pytest.raises(ValueError, match="spacing"):
        slice_curvature(np.zeros((3, 3)), 0.0)


# --- the optimisation path ----------------------------------------------------------------------------

def test_path_pca_shares_equal_scikit_learns_explained_variance_of_the_moves_to_the_end():
    path = torch.randn(12, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = PCA().fit((path[:-1] - path[-1]).numpy()).explained_variance_ratio_
    assert np.allclose(path_pca_shares(path)[:len(expected)], expected)


def test_a_straight_path_lies_wholly_in_its_first_component_and_a_planar_one_in_its_first_two():
    t = torch.linspace(0, 1, 20, dtype=torch.float64)[:, None]
    direction, other = torch.randn(2, 50, dtype=torch.float64)
    assert path_pca_shares(t * direction)[0] == pytest.approx(1.0)
    planar = path_pca_shares(t * direction + torch.sin(6 * t) * other)
    assert planar[:2].sum() == pytest.approx(1.0) and planar[1] > 1e-3


def test_recorded_paths_start_at_the_initial_weights_and_end_at_the_trained_ones():
    data = spirals(n=128)
    models = list(twins(6, 8, 2, 2, seed=0))
    initial = [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in models]
    histories, paths = train_recording_paths(models, data, Recipe(steps=12, batch_size=32), seeds=[0, 0], every=4)
    for model, path, start, history in zip(models, paths, initial, histories):
        assert path.shape == (1 + 12 // 4, start.numel()) and len(history.loss) == 12
        assert torch.equal(path[0], start)
        torch.testing.assert_close(path[-1], torch.cat([p.detach().flatten() for p in model.parameters()]))
    with pytest.raises(ValueError, match="every"):
        train_recording_paths(models, data, Recipe(steps=2, batch_size=32), seeds=[0, 0], every=0)


def test_path_pca_refuses_a_path_of_fewer_than_three_snapshots():
    with pytest.raises(ValueError, match="path"):
        path_pca_shares(torch.zeros(2, 5))


def test_every_profile_has_its_sizes():
    assert set(landscape.SIZES) == {"quick", "full"}
    assert all(sizes.grid % 2 == 1 for sizes in landscape.SIZES.values())  # the trained net at the centre


def test_the_path_in_two_components_is_scikit_learns_projection_up_to_the_sign_of_each_axis():
    path = torch.randn(15, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pca = PCA(n_components=2).fit((path[:-1] - path[-1]).numpy())
    expected = pca.transform((path - path[-1]).numpy())  # the end, too, at its place on the path
    projected = landscape.path_in_two_components(path)
    assert projected.shape == (15, 2)
    for k in range(2):
        sign = np.sign(projected[0, k] * expected[0, k])
        assert np.allclose(projected[:, k] * sign, expected[:, k])


def test_the_helpers_leave_the_number_of_threads_as_they_found_it():
    threads = torch.get_num_threads()
    net, data = digits_like_net(), spirals(n=16)
    direction = filter_normalised_direction(net, torch.Generator().manual_seed(0))
    loss_grid(net, [direction, direction], data, torch.linspace(-1, 1, 3))
    assert torch.get_num_threads() == threads


def test_a_random_walk_puts_about_six_over_pi_squared_times_five_quarters_of_its_path_in_two_components():
    # Brownian motion, centred: the k-th Karhunen-Loeve variance is proportional to 1 / k², summing to
    # π²/6, so two components hold 6/π² (1 + 1/4); a trained path is low-dimensional only above this.
    shares = [path_pca_shares(random_walk_path(201, 20_000, torch.Generator().manual_seed(seed)))
              for seed in range(3)]
    two = np.mean([s[:2].sum() for s in shares])
    assert abs(two - 7.5 / math.pi**2) < 0.02
    assert abs(np.mean([s[0] for s in shares]) - 6 / math.pi**2) < 0.03


def test_random_walk_path_refuses_too_few_snapshots_and_a_missing_generator():
    with pytest.raises(ValueError, match="snapshots"):
        random_walk_path(2, 10, torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        random_walk_path(10, 10, 0)


def test_the_negative_share_by_loss_band_splits_a_bowl_with_a_saddle_rim_by_its_loss():
    # f = r² inside r < 1 (a bowl: no negative curvature) and a saddle a² − b² shifted to losses ≥ 2
    # outside: the low band (inside the bowl) never curves down, the high band (the saddle) often.
    a, b = np.meshgrid(np.linspace(-2, 2, 81), np.linspace(-2, 2, 81), indexing="ij")
    r2 = a**2 + b**2
    f = np.where(r2 < 1, r2, 10 + a**2 - b**2)
    low, high = negative_share_by_loss(f, 4 / 80, [0, 0.8, 5, 100])[::2]
    assert low == 0
    assert high > 40
    assert math.isnan(negative_share_by_loss(f, 4 / 80, [1000, 2000])[0])
    with pytest.raises(ValueError, match="edges"):
        negative_share_by_loss(f, 0.1, [1, 1])
