"""Facts about chapter 5's module (resbook/paths.py): a residual net's Jacobian splits exactly into path
lengths, the dynamic programme equals brute-force enumeration and autograd, and lesioned variants
evaluated together equal the same nets lesioned and run one by one."""
import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from resbook.data import Dataset, digits
from resbook.models import blocks_of, mlp
from resbook.paths import (
    accuracy_without_direct_term,
    SIZES, Lesion, correction_sizes, decomposition_seconds, delete_blocks, incoherent_gradient_energy,
    jacobian_by_path_length, jacobian_by_path_length_brute_force, lesion_accuracies, lesion_study,
    net_jacobians, path_counts, path_profile, poisson_binomial, random_deletions, random_swaps,
    swap_blocks, with_data_statistics)
from resbook.profile import PROFILE_NAMES
from resbook.training import error_rate

DATA = digits()
FEW = Dataset("few", DATA.x[:24], DATA.y[:24], "classification")


def net(depth=10, *, residual=True, preactivation=True, seed=0, width=8):
    torch.manual_seed(seed)
    model = mlp(depth, width, DATA.n_features, DATA.n_outputs, residual=residual, preactivation=preactivation)
    return with_data_statistics(model, DATA)


def random_jacobians(batch, blocks, width, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return 0.6 * torch.randn(*batch, blocks, width, width, generator=generator, dtype=dtype)


# --- counting and decomposing ------------------------------------------------------------------

@pytest.mark.parametrize("blocks", range(0, 8))
def test_paths_through_n_blocks_are_the_terms_of_the_expanded_product(blocks):
    t = sp.Symbol("t")
    f = sp.symbols(f"f1:{blocks + 2}")[:blocks]
    expanded = sp.Poly(sp.expand(sp.prod([1 + t * fl for fl in f])), t)
    terms = [len(sp.Add.make_args(expanded.coeff_monomial(t**k))) for k in range(blocks + 1)]
    assert path_counts(blocks) == terms
    assert sum(path_counts(blocks)) == 2**blocks


@settings(max_examples=30, deadline=None)
@given(blocks=st.integers(1, 7), width=st.integers(1, 4), batch=st.lists(st.integers(1, 3), max_size=2),
       seed=st.integers(0, 2**16))
def test_dynamic_programme_equals_brute_force_enumeration_of_every_path(blocks, width, batch, seed):
    jacobians = random_jacobians(batch, blocks, width, seed)
    assert torch.allclose(jacobian_by_path_length(jacobians), jacobian_by_path_length_brute_force(jacobians),
                          atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(blocks=st.integers(0, 8), width=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_path_lengths_sum_to_the_product_of_identity_plus_branch(blocks, width, seed):
    jacobians = random_jacobians((), blocks, width, seed)
    product = torch.eye(width, dtype=torch.float64)
    for jacobian in jacobians:
        product = (torch.eye(width, dtype=torch.float64) + jacobian) @ product
    by_length = jacobian_by_path_length(jacobians)
    assert by_length.shape == (blocks + 1, width, width)
    assert torch.allclose(by_length.sum(0), product, atol=1e-10)
    assert torch.equal(by_length[0], torch.eye(width, dtype=torch.float64))  # the path that skips every block


def test_the_longest_path_is_the_ordered_product_of_every_branch():
    a = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    by_length = jacobian_by_path_length(torch.stack([a, b]))
    assert torch.equal(by_length[2], b @ a)  # block 2 after block 1: J_2 J_1, not J_1 J_2
    assert not torch.equal(b @ a, a @ b)
    assert torch.equal(by_length[1], a + b)


@settings(max_examples=20, deadline=None)
@given(blocks=st.integers(1, 6), width=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_incoherent_energy_is_the_sum_of_squared_path_gradients(blocks, width, seed):
    jacobians = random_jacobians((2,), blocks, width, seed)
    gradient = random_jacobians((2,), 1, width, seed + 1)[:, 0, 0]
    expected = torch.zeros(2, blocks + 1, dtype=torch.float64)
    for path in itertools.product((False, True), repeat=blocks):
        product = torch.eye(width, dtype=torch.float64).expand(2, width, width)
        for block in itertools.compress(range(blocks), path):
            product = jacobians[:, block] @ product
        expected[:, sum(path)] += (gradient[:, None, :] @ product)[:, 0].square().sum(-1)
    assert torch.allclose(incoherent_gradient_energy(gradient, jacobians), expected, atol=1e-10)


def test_brute_force_refuses_more_blocks_than_it_can_enumerate():
    with pytest.raises(ValueError, match="jacobians"):
        jacobian_by_path_length_brute_force(torch.zeros(21, 1, 1))


@pytest.mark.parametrize("bad", [torch.zeros(3, 2), torch.zeros(2, 2, 3), torch.zeros(2, 2, 2, dtype=torch.long)])
def test_jacobians_of_the_wrong_shape_are_refused(bad):
    with pytest.raises(ValueError, match="jacobians"):
        jacobian_by_path_length(bad)
    with pytest.raises(TypeError, match="jacobians"):
        jacobian_by_path_length([[1.0]])


def test_poisson_binomial_equals_enumeration_and_the_binomial_when_all_gains_agree():
    p = [0.1, 0.5, 0.8]
    expected = np.zeros(4)
    for outcome in itertools.product((0, 1), repeat=3):
        expected[sum(outcome)] += np.prod([q if o else 1 - q for q, o in zip(p, outcome)])
    assert np.allclose(poisson_binomial(p), expected)
    assert np.allclose(poisson_binomial([0.5] * 6), np.array(path_counts(6)) / 2**6)
    with pytest.raises(ValueError, match="probabilities"):
        poisson_binomial([1.5])


# --- a real net --------------------------------------------------------------------------------

@settings(max_examples=6, deadline=None)
@given(depth=st.sampled_from([4, 6, 10]), seed=st.integers(0, 100))
def test_decomposition_of_a_preactivation_net_sums_to_autograds_jacobian(depth, seed):
    model = net(depth, seed=seed)
    measured = net_jacobians(model, FEW)
    blocks = nn.Sequential(*blocks_of(model))
    stem = nn.Sequential(*[m for m in model][: list(model).index(blocks_of(model)[0])])
    with torch.no_grad():
        x0 = stem(FEW.x[:3])
    for i in range(3):  # autograd's Jacobian of the blocks, one sample at a time, knows nothing of paths
        whole = torch.autograd.functional.jacobian(lambda v: blocks(v[None])[0], x0[i])
        assert torch.allclose(jacobian_by_path_length(measured.blocks[i].double()).sum(0), whole.double(),
                              atol=1e-5, rtol=1e-4)


def test_block_jacobian_matches_finite_differences():
    model = net(6, seed=3).double()
    data = Dataset("few", FEW.x[:2].double(), FEW.y[:2], "classification")
    measured = net_jacobians(model, data)
    block = blocks_of(model)[1]
    with torch.no_grad():
        stem_and_first = nn.Sequential(*list(model)[: list(model).index(block)])
        x = stem_and_first(data.x)[0]
        step = 1e-6
        columns = [(block(x + step * e[None])[0] - block(x - step * e[None])[0]) / (2 * step)
                   for e in torch.eye(len(x), dtype=torch.float64)]
    numeric = torch.stack(columns, 1) - torch.eye(len(x), dtype=torch.float64)  # the branch alone: J = ∂y/∂x − I
    assert torch.allclose(measured.blocks[0, 1], numeric, atol=1e-6)


def test_output_gradient_is_the_gradient_of_each_samples_loss():
    model = net(6, seed=1)
    measured = net_jacobians(model, FEW)
    blocks = blocks_of(model)
    position = list(model).index(blocks[-1]) + 1
    with torch.no_grad():
        last = nn.Sequential(*list(model)[:position])(FEW.x[:1])
    last.requires_grad_()
    loss = nn.functional.cross_entropy(nn.Sequential(*list(model)[position:])(last), FEW.y[:1])
    loss.backward()
    assert torch.allclose(measured.output_gradient[0], last.grad[0], atol=1e-6)


def test_post_activation_and_plain_nets_are_refused_by_the_decomposition():
    with pytest.raises(ValueError, match="post-activation"):
        net_jacobians(net(6, preactivation=False), FEW)
    with pytest.raises(ValueError, match="identity gate"):
        net_jacobians(net(6, residual=False), FEW)
    with pytest.raises(TypeError, match="model"):
        net_jacobians(nn.Linear(3, 3), FEW)


def test_path_profile_recovers_the_whole_gradient_and_its_shares_are_consistent():
    profile = path_profile(net(12, seed=2), FEW)
    assert profile.blocks == 5
    assert profile.decomposition_error < 1e-5
    assert profile.truncation_error[-1] < 1e-5  # all paths kept: the whole gradient
    assert profile.gradient_share[0] > 0 and np.all(np.isfinite(profile.gradient_share))
    assert profile.coherence[0] == pytest.approx(1.0)  # one path of length 0: coherent with itself
    assert profile.coherence[-1] == pytest.approx(1.0, rel=1e-4)  # one path of length n
    squared = profile.branch_gain**2
    assert profile.predicted_mean_length == pytest.approx(float(np.sum(squared / (1 + squared))))
    assert profile.predicted_share == pytest.approx(np.sqrt(poisson_binomial(squared / (1 + squared))))


def test_zero_branches_carry_no_gradient_and_no_correction():
    model = net(8)
    for block in blocks_of(model):
        block.residual_scale.fill_(0.0)
    profile = path_profile(model, FEW)
    assert profile.gradient_share[0] == pytest.approx(1.0)
    assert np.all(profile.gradient_share[1:] == 0)
    assert np.all(correction_sizes(model, FEW) == 0)


def test_correction_size_of_the_first_block_by_hand():
    model = net(6, seed=4)
    first = blocks_of(model)[0]
    stem = nn.Sequential(*list(model)[: list(model).index(first)])
    with torch.no_grad():
        x = stem(FEW.x)
        expected = ((first.branch(x)).norm(dim=1) / x.norm(dim=1)).mean()
    assert correction_sizes(model, FEW)[0] == pytest.approx(float(expected), rel=1e-5)


def test_data_statistics_are_the_mean_and_variance_of_the_data():
    model = with_data_statistics(mlp(4, 8, DATA.n_features, DATA.n_outputs, residual=True, preactivation=True), DATA)
    first_norm = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    stem = model[0]
    with torch.no_grad():
        h = stem(DATA.x)
    assert torch.allclose(first_norm.running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(first_norm.running_var, h.var(0), rtol=1e-4)
    assert not model.training


# --- lesions -----------------------------------------------------------------------------------

def test_deleting_no_block_changes_nothing():
    model = net(10, seed=5)
    copied = delete_blocks(model, [])
    assert copied is not model
    with torch.no_grad():
        assert torch.equal(copied(DATA.x[:50]), model(DATA.x[:50]))
    assert lesion_accuracies(model, [Lesion()], DATA)[0] == pytest.approx(1 - error_rate(model, DATA))


@pytest.mark.parametrize("residual", [True, False])
def test_a_deleted_block_passes_its_input_on_unchanged_in_residual_and_plain_nets(residual):
    model = net(8, residual=residual, seed=6)
    deleted = delete_blocks(model, [1])
    block = blocks_of(deleted)[1]
    x = torch.randn(5, 8)
    with torch.no_grad():
        assert torch.equal(block(x), x)
    assert float(blocks_of(model)[1].identity_gate) == (1.0 if residual else 0.0)  # the original untouched


def test_every_block_deleted_leaves_stem_and_head():
    model = net(10, seed=7)
    blocks = blocks_of(model)
    stem = nn.Sequential(*list(model)[: list(model).index(blocks[0])])
    head = nn.Sequential(*list(model)[list(model).index(blocks[-1]) + 1:])
    with torch.no_grad():
        assert torch.allclose(delete_blocks(model, [0, 1, 2, 3])(DATA.x), head(stem(DATA.x)))


@pytest.mark.parametrize("deleted, error", [([4], ValueError), ([-1], ValueError), ([1, 1], ValueError),
                                            ([1.0], TypeError), ("1", TypeError), (3, TypeError)])
def test_bad_block_indices_are_refused_naming_the_argument(deleted, error):
    with pytest.raises(error, match="deleted"):
        delete_blocks(net(10), deleted)


def test_swapping_a_pair_twice_gives_back_the_same_function():
    model = net(10, seed=8)
    twice = swap_blocks(swap_blocks(model, [(0, 3)]), [(0, 3)])
    with torch.no_grad():
        assert torch.equal(twice(DATA.x[:40]), model(DATA.x[:40]))
        assert not torch.allclose(swap_blocks(model, [(0, 3)])(DATA.x[:40]), model(DATA.x[:40]))
    with pytest.raises(ValueError, match="pairs"):
        swap_blocks(model, [(0, 4)])
    with pytest.raises(TypeError, match="pairs"):
        swap_blocks(model, [(0, 1, 2)])


def test_lesioned_variants_evaluated_together_equal_the_nets_run_one_by_one():
    model = net(12, seed=9)
    lesions = [Lesion(), Lesion((0,)), Lesion((2, 4)), Lesion(swapped=((0, 3),)),
               Lesion((1,), ((1, 4), (0, 2))), Lesion(tuple(range(5)))]
    together = lesion_accuracies(model, lesions, DATA)
    alone = [1 - error_rate(delete_blocks(swap_blocks(model, list(lesion.swapped)), list(lesion.deleted)), DATA)
             for lesion in lesions]
    assert together == pytest.approx(alone, abs=1e-6)
    with pytest.raises(TypeError, match="lesions"):
        lesion_accuracies(model, [(0,)], DATA)


def test_lesion_study_reads_the_same_numbers_as_single_lesions():
    model = net(8, seed=10)
    study = lesion_study(model, DATA, draws=2, seed=0)
    assert study.intact == pytest.approx(1 - error_rate(model, DATA), abs=1e-6)
    assert study.single == pytest.approx([1 - error_rate(delete_blocks(model, [b]), DATA) for b in range(3)], abs=1e-6)
    assert study.all_deleted == pytest.approx(1 - error_rate(delete_blocks(model, [0, 1, 2]), DATA), abs=1e-6)
    assert study.deleted.shape == (len(study.deleted_counts), 2) and study.deleted_counts[-1] == 3
    assert np.allclose(study.deleted[0], study.intact) and np.allclose(study.deleted[-1], study.all_deleted)
    assert np.allclose(study.swapped[0], study.intact)


def test_random_deletions_and_swaps_are_distinct_blocks_the_same_for_a_seed():
    drawn = random_deletions(10, 4, 5, seed=1)
    assert drawn == random_deletions(10, 4, 5, seed=1)
    assert all(len(set(d)) == 4 and all(0 <= b < 10 for b in d) for d in drawn)
    swaps = random_swaps(10, 3, 4, seed=2)
    assert all(len({b for pair in s for b in pair}) == 6 for s in swaps)
    with pytest.raises(ValueError, match="count"):
        random_deletions(3, 4, 1, seed=0)


def test_sizes_and_timings():
    assert set(SIZES) == set(PROFILE_NAMES)
    for sizes in SIZES.values():
        assert sizes.lesion_depth in sizes.depths
        assert max(sizes.timing_blocks) <= 20
    dp, brute = decomposition_seconds(random_jacobians((1,), 8, 4, 0), repeats=1)
    assert dp > 0 and brute > 0
    assert math.isfinite(dp + brute)


def test_each_sample_weighs_the_same_when_normalised():
    model = net(12, seed=5)
    pooled = path_profile(model, FEW)  # per_sample: every sample's ‖g_s J_s‖ made 1
    alone = [path_profile(model, Dataset("one", FEW.x[i:i + 1], FEW.y[i:i + 1], "classification"))
             for i in range(len(FEW.x))]
    expected = np.mean([p.gradient_share**2 for p in alone], 0)  # each sample's squared shares, averaged
    assert pooled.gradient_share**2 == pytest.approx(expected, rel=1e-4, abs=1e-9)
    single = Dataset("one", FEW.x[:1], FEW.y[:1], "classification")
    assert path_profile(model, single, per_sample=False).gradient_share == pytest.approx(
        path_profile(model, single).gradient_share, rel=1e-5)  # one sample: normalising changes nothing
    with pytest.raises(TypeError, match="per_sample"):
        path_profile(model, FEW, per_sample=1)


def test_counting_paths_times_their_size_bounds_the_norm_of_their_sum():
    # ‖Σ_{|S|=k} g P_S‖² ≤ C(n, k) Σ ‖g P_S‖² (Cauchy–Schwarz), with equality for the single paths k = 0, n
    profile = path_profile(net(12, seed=6), FEW, per_sample=False)
    assert np.all(profile.veit_share >= profile.gradient_share * (1 - 1e-5))
    assert profile.veit_share[[0, -1]] == pytest.approx(profile.gradient_share[[0, -1]], rel=1e-4)


def test_removing_the_last_blocks_direct_term_is_deleting_it():
    # no later branch reads the last block's output, so removing its term from the sum deletes it
    model = net(10, seed=7)
    last = len(blocks_of(model)) - 1
    expected = 1 - error_rate(delete_blocks(model, [last]), FEW)
    assert accuracy_without_direct_term(model, FEW, last) == pytest.approx(expected)
    for block in blocks_of(model):
        block.residual_scale.fill_(0.0)  # zero branches: removing a term changes nothing
    assert accuracy_without_direct_term(model, FEW, 0) == pytest.approx(1 - error_rate(model, FEW))
    with pytest.raises(ValueError, match="index"):
        accuracy_without_direct_term(model, FEW, last + 1)


