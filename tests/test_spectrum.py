"""Facts of chapter 3, the eigenvalue shift (resbook.spectrum): a residual layer I + W has W's
eigenvectors with eigenvalues shifted by one; Weyl's band holds; a normal twin has the same eigenvalues
and singular values |λ|; the growth of random residual stacks matches (1 + α²)^L and never exceeds its
worst-case bound; the Jacobians of plain and residual nets are what their blocks say."""
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resbook.models import Block
from resbook.spectrum import (DTYPE, SETTINGS, SIZES, blocks_of, body_singular_values, draw_powers,
                              gradient_gains, jacobian_spectra, jordan_like, power_singular_values,
                              random_matrix, residual_product_growth, spectral_radius, spectrum_net, spread,
                              stream_growth, unresolved, weyl_band_excess)

SEEDS = st.integers(0, 2**31)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), seed=SEEDS, scale=st.floats(0.01, 3.0))
def test_residual_layer_has_the_eigenvalues_of_w_shifted_by_one(n, seed, scale):
    # A random Gaussian matrix is diagonalisable with probability one.
    w = random_matrix(n, scale, seed=seed).numpy()
    values, vectors = np.linalg.eig(w)
    assert np.allclose((np.eye(n) + w) @ vectors, vectors * (1 + values), atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), seed=SEEDS, epsilon=st.floats(0.001, 0.99))
def test_singular_values_of_i_plus_w_lie_in_weyls_band(n, seed, epsilon):
    excess = weyl_band_excess(n, [epsilon], 3, seed=seed)
    assert excess.shape == (1, 3, 2)
    assert (excess <= 1e-12).all()


def test_weyl_band_is_reached_by_a_multiple_of_the_identity():
    # W = εI: the singular values of I + W are all 1 + ε, the band's upper edge (sympy, exactly).
    eps = sp.Rational(1, 10)
    assert (sp.eye(3) + eps * sp.eye(3)).singular_values() == [sp.Rational(11, 10)] * 3


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 10), seed=SEEDS, radius=st.floats(0.05, 2.0))
def test_normal_twin_has_the_same_eigenvalues_and_singular_values_equal_to_their_moduli(n, seed, radius):
    w = random_matrix(n, radius, seed=seed)
    twin = random_matrix(n, radius, seed=seed, normal=True)
    assert torch.allclose(twin @ twin.T, twin.T @ twin, atol=1e-10)  # normal
    key = lambda z: (round(z.real, 8), round(z.imag, 8))  # noqa: E731
    ours = sorted(np.linalg.eigvals(w.numpy()).tolist(), key=key)
    theirs = sorted(np.linalg.eigvals(twin.numpy()).tolist(), key=key)
    assert np.allclose(ours, theirs, atol=1e-8)
    assert math.isclose(spectral_radius(w), radius, rel_tol=1e-9)
    assert np.allclose(np.sort(np.abs(theirs)), np.sort(torch.linalg.svdvals(twin).numpy()), atol=1e-8)


def test_power_singular_values_follow_a_diagonal_matrix_exactly():
    m = torch.diag(torch.tensor([0.5, -2.0, 1.0], dtype=DTYPE))
    expected = torch.tensor([[2.0 ** L, 0.5 ** L] for L in range(1, 6)], dtype=DTYPE)
    assert torch.allclose(power_singular_values(m, 5), expected)


def test_jordan_like_matrix_has_one_eigenvalue_yet_its_powers_grow_first():
    w = jordan_like(6, 0.5, 1.0)
    assert math.isclose(spectral_radius(w), 0.5, rel_tol=1e-6)
    norms = power_singular_values(w, 40)[:, 0]
    # the (1, 6) entry of W^L is C(L, 5)·0.5^(L−5): at L = 10 it alone is 252/32 > 1 while 0.5^10 ≈ 0.001
    assert norms[9] >= math.comb(10, 5) * 0.5 ** 5
    assert norms[-1] < norms[9]


def test_gradient_gains_lie_between_the_extreme_singular_values():
    w = random_matrix(6, 0.8, seed=3)
    top, low = power_singular_values(w, 4)[-1]
    gains = gradient_gains(w, 4, 200, seed=0)
    assert ((gains >= low * (1 - 1e-12)) & (gains <= top * (1 + 1e-12))).all()


def test_residual_product_growth_matches_the_variance_prediction_and_obeys_its_bound():
    g = residual_product_growth(16, 0.25, 16, 2000, seed=0)
    # E‖Px‖²/‖x‖² = (1 + α²)^L; 2000 draws give a mean within a few per cent
    assert abs(g.mean_squared_gain / g.variance_prediction - 1) < 0.1
    assert g.largest_norm <= g.smallest_bound
    assert g.variance_prediction == (1 + 0.25 ** 2) ** 16


def test_a_stack_with_zero_branches_is_the_identity():
    g = residual_product_growth(4, 0.0, 10, 3, seed=0)
    assert g.mean_squared_gain == pytest.approx(1.0) and g.largest_norm == pytest.approx(1.0)


def test_plain_and_residual_spectrum_nets_share_their_weights_and_scale_only_the_branches():
    nets = [spectrum_net(s, 10, 8, 5, 3, seed=7) for s in SETTINGS]
    for a, b in zip(nets[0].parameters(), nets[2].parameters()):
        assert torch.equal(a, b)
    scales = [[float(m.residual_scale) for m in net if isinstance(m, Block)] for net in nets]
    assert scales[1] == [1.0] * 4 and scales[2] == pytest.approx([0.5] * 4)  # 1/√L, L = 4 blocks
    assert blocks_of(10) == 4


def test_zero_branch_residual_net_has_the_identity_as_its_jacobian():
    net = spectrum_net("residual", 10, 8, 5, 3, seed=0)
    for block in (m for m in net if isinstance(m, Block)):
        block.residual_scale.fill_(0.0)
    values = body_singular_values(net, torch.randn(4, 5))
    assert values.dtype == torch.float64 and torch.allclose(values, torch.ones(4, 8, dtype=torch.float64))


def test_one_plain_relu_block_loses_the_directions_its_relu_switches_off():
    # A plain pre-activation block from the stem's output: F(x) = W₂ ReLU(W₁ ReLU(x)); its Jacobian has rank
    # at most the number of units that are on, so some singular values are exactly zero.
    net = spectrum_net("plain", 4, 16, 5, 3, seed=0)
    values = body_singular_values(net, torch.randn(8, 5))
    assert (unresolved(values).sum(dim=1) > 0).all()
    assert (values[unresolved(values)] < 1e-12).all()  # they are zeros, not merely small


def test_unresolved_is_relative_to_each_samples_largest_value():
    values = torch.tensor([[1e10, 1.0, 1e-7], [1.0, 1e-3, 1e-16]], dtype=torch.float64)
    eps = torch.finfo(torch.float64).eps
    assert unresolved(values).tolist() == [[False, False, 1e-7 < 3 * eps * 1e10], [False, False, True]]
    with pytest.raises(ValueError, match="2-D"):
        unresolved(values.flatten())


def test_stream_grows_geometrically_without_norm_and_linearly_with_batch_norm():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    plain = stream_growth(spectrum_net("residual", 34, 32, 5, 3, seed=0), x, (1, 16))
    batch = stream_growth(spectrum_net("residual", 34, 32, 5, 3, seed=0, norm="batch"), x, (1, 16))
    assert plain[1] > 100 * batch[1]  # (1 + α²)^l against about 1 + c·l
    assert batch[1] < 16 * 2 and batch[1] > batch[0]


def test_jacobian_spectra_holds_every_singular_value_of_every_net():
    spectra = jacobian_spectra(torch.randn(3, 5), (4, 6), range(2), width=4, out_features=2)
    assert set(spectra) == {(s, n, d) for s in SETTINGS for n in (None, "batch") for d in (4, 6)}
    assert all(v.shape == (2 * 3, 4) for v in spectra.values())


def test_spread_gives_quantiles_of_a_known_set():
    low, median, high = spread(torch.arange(101.0))
    assert (low, median, high) == pytest.approx((5.0, 50.0, 95.0))


def test_sizes_cover_both_profiles_with_depths_that_make_whole_blocks():
    assert set(SIZES) == {"quick", "full"}
    for sizes in SIZES.values():
        assert all(d % 2 == 0 and d >= 4 for d in sizes.depths + (sizes.train_depth,))


def test_draw_powers_returns_a_figure_with_both_panels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = draw_powers(random_matrix(4, 0.5, seed=0), 3, 5, "test")
    assert len(figure.axes) == 2
    plt.close(figure)


def test_draw_powers_keeps_the_radial_range_across_depths_so_frames_compare():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = random_matrix(4, 0.1, seed=0)
    limits = []
    for depth in (1, 50):
        figure = draw_powers(w, depth, 50, "test")
        limits.append(figure.axes[0].get_ylim())
        plt.close(figure)
    assert limits[0] == limits[1] and limits[0][0] < 0.1**50  # W^50's eigenvalues fit, at depth 1 too


@pytest.mark.parametrize("call, error, words", [
    (lambda: random_matrix(0, 0.5, seed=0), ValueError, "n must be"),
    (lambda: random_matrix(3, -1.0, seed=0), ValueError, "radius must be"),
    (lambda: power_singular_values(torch.zeros(2, 3), 2), ValueError, "matrix must be a square matrix"),
    (lambda: power_singular_values([[1.0]], 2), TypeError, "matrix must be a torch.Tensor"),
    (lambda: weyl_band_excess(3, [], 2, seed=0), ValueError, "epsilons must hold"),
    (lambda: residual_product_growth(3, 0.1, 0, 2, seed=0), ValueError, "depth must be"),
    (lambda: spectrum_net("resnet", 4, 4, 2, 2, seed=0), ValueError, "setting must be one of"),
    (lambda: spectrum_net("plain", 4, 4, 2, 2, seed=0, norm="layer"), ValueError, "norm must be one of"),
    (lambda: spread(torch.tensor([])), ValueError, "values must hold"),
])
def test_bad_arguments_are_refused_by_name(call, error, words):
    with pytest.raises(error, match=words):
        call()
