"""Every public helper of the chapter modules refuses an invalid argument with a message naming it.

The same test as tests/test_invalid_arguments.py (whose strategies and ``Helper`` this file reuses)
for the modules of the chapters (identity, highway, spectrum, landscape, paths, dilution) and the
core modules added since (jacobians, cost, device's one-thread decorator). Each helper has a small
call that works; replacing one argument by a value from its strategy must raise a ValueError or
TypeError whose message holds the argument's name as a word.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_invalid_arguments import (CLASSES, MISC, NON_FINITE, NOT_REAL, RECIPE, REGRESSION, Helper,  # noqa: E402
                                    assert_refused_naming_it, axes, net, not_bool, not_dataset, not_device,
                                    not_distinct_seeds, not_int, not_module, not_one_of, not_real, not_recipe,
                                    not_seeds)
from torch import nn  # noqa: E402

from resbook import (cost, data, device, dilution, highway, identity, jacobians, landscape, models,  # noqa: E402
                     paths, spectrum)

# --- what the working calls use ---------------------------------------------------------------

X = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))  # 16 samples of width 4
SEED = not_int(0, 2**64 - 1)  # above 2**64 - 1 no helper takes a seed
NOT_TENSOR = st.one_of(MISC, st.integers(), st.just(np.zeros((4, 4))))
ANY_REAL_NOT = st.one_of(NOT_REAL, NON_FINITE)  # where every finite real number is allowed
NOT_SEQUENCE = st.one_of(st.none(), st.integers(), st.just(object()))


def not_ints(minimum: int):
    """Not a non-empty sequence of ints >= ``minimum``."""
    return st.one_of(NOT_SEQUENCE, st.just([]), st.just([minimum - 1]), st.just(["4"]), st.just([4.5]))


def not_reals():
    """Not a sequence of finite numbers."""
    return st.one_of(st.none(), st.integers(), st.just(object()), st.just(["a"]), st.just([math.nan, 1.0, 2.0]),
                     st.just([[1.0, 2.0], [3.0, 4.0]]))


def not_names(*allowed):
    """Not a sequence of names out of ``allowed``."""
    return st.one_of(st.none(), st.integers(), st.just(object()), st.just(["no such name"]),
                     st.just([allowed[0], 3]))


def pre_net(depth: int = 4, width: int = 4, in_features: int = 4, out_features: int = 2, seed: int = 0):
    """A pre-activation residual net with batch norm (the nets chapters 5 and 6 decompose)."""
    torch.manual_seed(seed)
    return models.mlp(depth, width, in_features, out_features, residual=True, norm="batch", preactivation=True)


def net4():
    """A net for the spirals (2 features, 2 classes)."""
    torch.manual_seed(0)
    return models.mlp(4, 4, 2, 2, residual=True)


def net1d():
    """A net of one input and one output, as the shattered-gradient measurements take."""
    torch.manual_seed(0)
    return models.mlp(4, 4, 1, 1, residual=True, norm="batch")


def eval_net():
    return pre_net().eval()


CLASSES_4 = data.Dataset("four", X, torch.arange(16) % 2, "classification")
IDENTITY_SIZES = identity.Sizes(
    features=2, samples=16, width=4, depths=(4,), tasks=((0.0, ("no norm, pre-activation",)),),
    recipe=RECIPE, probe_width=4, probe_blocks=2, probe_samples=8, train_depth=4, train_width=4,
    train_recipe=RECIPE, wakeup_steps=2)
IDENTITY_SWEEP = identity.identity_sweep(IDENTITY_SIZES, (0,), kinds=("residual",))
IDENTITY_RUNS = identity.train_variants(REGRESSION, ("residual",), depth=4, width=4, seeds=(0,), recipe=RECIPE,
                                        workers=1)
PROBE = identity.probe_variants(2, 4, 8, (0,), preactivation=True, variants=("plain", "residual"))
WAKEUP = identity.Wakeup(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
GRADIENT_SWEEP = highway.gradient_sweep([CLASSES], ["residual"], [4], width=4, seeds=[0])
GRID = highway.input_grid(8)
MATRIX = spectrum.random_matrix(4, 0.5, seed=0)
SPECTRA = spectrum.jacobian_spectra(X, [4], [0], width=4, out_features=1, norms=(None,))
FLAT = torch.arange(9.0).view(3, 3)  # a 3 × 3 grid of losses
DIRECTIONS = [landscape.filter_normalised_direction(pre_net(), torch.Generator().manual_seed(s)) for s in (0, 1)]
PATH = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
JACOBIANS = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) / 4  # 2 samples, 3 blocks
WIDE = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))  # enough samples for a 2-D split
HELD = torch.randn(100, 2, generator=torch.Generator().manual_seed(1))
DILUTION_SIZES = dilution.Sizes(width=4, depth=4, scales=(1.0,), recipe=RECIPE, stack_width=2, single_samples=200,
                                mixes=(1.0,), stack_depth=2, stack_samples=200, stack_mixes=(1.0,))
DILUTION_NETS = {("residual", 1.0): [pre_net(in_features=2)]}


def dilution_net():
    return pre_net(in_features=2)


def not_model_like(*extra):
    return st.one_of(not_module(), *(st.just(e) for e in extra))


HELPERS = [
    # --- identity (chapter 1) ---
    Helper("identity.near_identity_task", identity.near_identity_task,
           lambda: dict(epsilon=0.5, features=2, samples=8, seed=0, device="cpu"),
           dict(epsilon=not_real(0.0), features=not_int(1, 4096), samples=not_int(1, 1_000_000), seed=SEED,
                device=not_device())),
    Helper("identity.blocks_of", identity.blocks_of, lambda: dict(model=pre_net()), dict(model=not_module())),
    Helper("identity.last_affine", identity.last_affine, lambda: dict(branch=pre_net()[1].branch),
           dict(branch=not_model_like(nn.ReLU()))),
    Helper("identity.gate_and_scale", identity.gate_and_scale, lambda: dict(variant="sum ÷ √2", blocks=3),
           dict(variant=not_one_of(*identity.VARIANTS), blocks=not_int(1))),
    Helper("identity.build_variant", identity.build_variant,
           lambda: dict(variant="branch ÷ √L", depth=4, width=4, in_features=2, out_features=1, seed=0,
                        preactivation=True, norm=None),
           dict(variant=not_one_of(*identity.VARIANTS), depth=not_int(2), width=not_int(1), in_features=not_int(1),
                out_features=not_int(1), seed=SEED, preactivation=not_bool(),
                norm=not_one_of("batch", "layer", none_allowed=True))),
    Helper("identity.distance_to_identity", identity.distance_to_identity,
           lambda: dict(blocks=nn.Sequential(*identity.blocks_of(pre_net())).eval(), x=X),
           dict(blocks=not_module(), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    Helper("identity.activation_statistics", identity.activation_statistics, lambda: dict(model=pre_net(), x=X),
           dict(model=not_model_like(nn.Linear(4, 4)), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    Helper("identity.block_factor", identity.block_factor,
           lambda: dict(preactivation=True, gate=1.0, scale=0.5, gain_squared=2.0),
           dict(preactivation=not_bool(), gate=not_real(0.0), scale=not_real(0.0),
                gain_squared=not_real(0.0, low_allowed=False))),
    Helper("identity.predicted_second_moments", identity.predicted_second_moments,
           lambda: dict(blocks=2, preactivation=False, gate=1.0, scale=1.0, samples=16, seed=0),
           dict(blocks=not_int(0), preactivation=not_bool(), gate=not_real(0.0), scale=not_real(0.0),
                samples=not_int(2), seed=SEED)),
    Helper("identity.Probe.growth_per_block", PROBE.growth_per_block, lambda: dict(variant="residual"),
           dict(variant=not_one_of("plain", "residual"))),
    Helper("identity.probe_variants", identity.probe_variants,
           lambda: dict(blocks=1, width=4, samples=8, seeds=(0,), preactivation=True, variants=("residual",), seed=0),
           dict(blocks=not_int(1), width=not_int(1), samples=not_int(1), seeds=not_distinct_seeds(),
                preactivation=not_bool(), variants=not_names(*identity.VARIANTS), seed=SEED)),
    Helper("identity.Wakeup.steps_until", WAKEUP.steps_until, lambda: dict(share=0.5),
           dict(share=not_real(0.0, low_allowed=False))),
    Helper("identity.branch_wakeup", identity.branch_wakeup,
           lambda: dict(model=identity.build_variant("zero-init branch", 4, 4, 2, 1, seed=0), data=REGRESSION,
                        recipe=RECIPE, seed=0),
           dict(model=not_model_like(nn.Linear(2, 1)), data=not_dataset(), recipe=not_recipe(), seed=SEED)),
    Helper("identity.identity_sweep", identity.identity_sweep,
           lambda: dict(sizes=IDENTITY_SIZES, seeds=(0,), kinds=("residual",), seed=0, device="cpu"),
           dict(sizes=MISC, seeds=not_distinct_seeds(), kinds=not_names(*identity.VARIANTS), seed=SEED,
                device=not_device())),
    Helper("identity.train_variants", identity.train_variants,
           lambda: dict(data=REGRESSION, variants=("residual",), depth=4, width=4, seeds=(0,), recipe=RECIPE,
                        preactivation=True, workers=1),
           dict(data=not_dataset(), variants=not_names(*identity.VARIANTS), depth=not_int(2), width=not_int(1),
                seeds=not_distinct_seeds(), recipe=not_recipe(), preactivation=not_bool(), workers=not_int(1))),
    Helper("identity.final_losses", identity.final_losses,
           lambda: dict(runs=IDENTITY_RUNS, configurations=["residual"], window=1),
           dict(runs=MISC, configurations=st.one_of(NOT_SEQUENCE, st.just(["plain"])), window=not_int(1))),
    Helper("identity.loss_table", identity.loss_table,
           lambda: dict(sweep=IDENTITY_SWEEP, depths=(4,), kinds=("residual",), window=1),
           dict(sweep=st.one_of(MISC, st.just({0.0: "runs"})), depths=st.one_of(not_ints(2), st.just([6])),
                kinds=st.one_of(not_names(*identity.VARIANTS), st.just(["plain"])), window=not_int(1))),
    Helper("identity.plot_losses_against_depth", identity.plot_losses_against_depth,
           lambda: dict(ax=axes(), runs=IDENTITY_SWEEP[0.0], setting="no norm, pre-activation", depths=(4,),
                        kinds=("residual",), window=1),
           dict(ax=MISC, runs=MISC, setting=not_one_of("no norm, pre-activation"),
                depths=st.one_of(not_ints(2), st.just([6])), kinds=st.one_of(not_names(*identity.VARIANTS),
                                                                             st.just(["plain"])),
                window=not_int(1))),
    Helper("identity.plot_moments", identity.plot_moments,
           lambda: dict(ax=axes(), probe=PROBE, variants=("residual",)),
           dict(ax=MISC, probe=MISC, variants=st.one_of(not_names(*identity.VARIANTS), st.just(["sum ÷ √2"])))),
    Helper("identity.plot_training", identity.plot_training,
           lambda: dict(ax=axes(), runs=IDENTITY_RUNS, variants=("residual",), window=1),
           dict(ax=MISC, runs=MISC, variants=st.one_of(not_names(*identity.VARIANTS), st.just(["plain"])),
                window=not_int(1))),
    Helper("identity.distances_at_init", identity.distances_at_init,
           lambda: dict(depths=(4,), width=4, x=X, seed=0, variants=("residual",)),
           dict(depths=not_ints(2), width=st.one_of(not_int(1), st.just(5)),
                x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))), seed=SEED,
                variants=not_names(*identity.VARIANTS))),
    # --- highway (chapter 2) ---
    Helper("highway.Variant.build", highway.VARIANTS["residual"].build,
           lambda: dict(depth=4, width=4, in_features=2, out_features=1, seed=0),
           dict(depth=not_int(2), width=not_int(1), in_features=not_int(1), out_features=not_int(1), seed=SEED)),
    *(Helper(f"highway.GradientSweep.{method}", getattr(GRADIENT_SWEEP, method),
             lambda: dict(variant="residual", depth=4, measure="signal"),
             dict(variant=not_one_of("residual"), depth=not_one_of(4), measure=not_one_of(*highway.MEASURES)))
      for method in ("ratio", "spread", "median_norms")),
    Helper("highway.gradient_sweep", highway.gradient_sweep,
           lambda: dict(batches=[CLASSES], variants=["residual"], depths=[4], width=4, seeds=[0]),
           dict(batches=st.one_of(MISC, st.just([]), st.just([CLASSES.x])),
                variants=not_names(*highway.VARIANTS), depths=not_ints(2), width=not_int(1),
                seeds=not_distinct_seeds())),
    Helper("highway.forward_signal_norms", highway.forward_signal_norms, lambda: dict(model=net4(), data=CLASSES),
           dict(model=not_model_like(nn.Linear(2, 2)), data=not_dataset())),
    Helper("highway.train_variants", highway.train_variants,
           lambda: dict(data=CLASSES, variants=["residual"], depth=4, width=4, seeds=[0], recipe=RECIPE),
           dict(data=not_dataset(), variants=not_names(*highway.VARIANTS), depth=not_int(2), width=not_int(1),
                seeds=not_distinct_seeds(), recipe=not_recipe())),
    Helper("highway.block_jacobians", highway.block_jacobians, lambda: dict(model=eval_net(), x=X[0]),
           dict(model=st.one_of(not_module(), st.just(pre_net())),
                x=st.one_of(NOT_TENSOR, st.just(X), st.just(torch.zeros(5))))),
    Helper("highway.dead_branch_gradients", highway.dead_branch_gradients,
           lambda: dict(width=4, samples=4, seed=0), dict(width=not_int(1), samples=not_int(1), seed=SEED)),
    Helper("highway.input_grid", highway.input_grid, lambda: dict(points=8, low=-1.0, high=1.0),
           dict(points=not_int(8), low=st.one_of(ANY_REAL_NOT, st.floats(1.0, 1e6)),
                high=st.one_of(ANY_REAL_NOT, st.floats(-1e6, -1.0)))),
    Helper("highway.input_gradients", highway.input_gradients, lambda: dict(models=[net1d()], grid=GRID),
           dict(models=st.one_of(MISC.filter(lambda v: v != []), st.just([]), st.just([net1d(), "net"]),
                                 st.just(net1d()), st.just([net4()])),
                grid=st.one_of(NOT_TENSOR, st.just(X), st.just(torch.zeros(1, 1))))),
    Helper("highway.shatter_sweep", highway.shatter_sweep,
           lambda: dict(kinds=["residual"], depths=[4], seeds=[0], grid=GRID, width=4, norm="batch",
                        preactivation=False),
           dict(kinds=not_names(*models.KINDS), depths=not_ints(2), seeds=not_distinct_seeds(),
                grid=st.one_of(NOT_TENSOR, st.just(X)), width=not_int(1),
                norm=not_one_of("batch", "layer", none_allowed=True), preactivation=not_bool())),
    Helper("highway.notebook_style_plain", highway.notebook_style_plain, lambda: dict(depth=4, width=4, seed=0),
           dict(depth=not_int(2), width=not_int(1), seed=SEED)),
    Helper("highway.centred_plain", highway.centred_plain, lambda: dict(depth=4, width=4, seed=0, grid=GRID),
           dict(depth=not_int(2), width=not_int(1), seed=SEED, grid=st.one_of(NOT_TENSOR, st.just(X)))),
    Helper("highway.autocorrelation", highway.autocorrelation, lambda: dict(signal=[1.0, 3.0, 2.0, 5.0]),
           dict(signal=not_reals())),
    Helper("highway.correlation_length", highway.correlation_length,
           lambda: dict(signal=[1.0, 3.0, 2.0, 5.0], threshold=0.5),
           dict(signal=not_reals(), threshold=not_real(0.0, 1.0, low_allowed=False).filter(lambda v: v != 1.0))),
    Helper("highway.decay_fits", highway.decay_fits, lambda: dict(depths=[4, 8, 16], lengths=[9.0, 5.0, 2.0]),
           dict(depths=st.one_of(not_reals(), st.just([4, 8])), lengths=st.one_of(not_reals(), st.just([1, -1, 2])))),
    # --- spectrum (chapter 3) ---
    Helper("spectrum.spectral_radius", spectrum.spectral_radius, lambda: dict(matrix=MATRIX),
           dict(matrix=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 3))))),
    Helper("spectrum.random_matrix", spectrum.random_matrix, lambda: dict(n=4, radius=0.5, seed=0, normal=True),
           dict(n=not_int(1, 4096), radius=not_real(0.0, low_allowed=False), seed=SEED, normal=not_bool())),
    Helper("spectrum.jordan_like", spectrum.jordan_like, lambda: dict(n=4, eigenvalue=-0.5, coupling=1.0),
           dict(n=not_int(1, 4096), eigenvalue=ANY_REAL_NOT,
                coupling=not_real(0.0))),
    Helper("spectrum.power_singular_values", spectrum.power_singular_values, lambda: dict(matrix=MATRIX, max_depth=3),
           dict(matrix=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 3))), max_depth=not_int(1, 100_000))),
    Helper("spectrum.gradient_gains", spectrum.gradient_gains,
           lambda: dict(matrix=MATRIX, depth=3, vectors=4, seed=0),
           dict(matrix=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 3))), depth=not_int(1, 100_000),
                vectors=not_int(1, 100_000), seed=SEED)),
    Helper("spectrum.weyl_band_excess", spectrum.weyl_band_excess,
           lambda: dict(n=4, epsilons=[0.1, 0.5], draws=2, seed=0),
           dict(n=not_int(1, 1024), epsilons=st.one_of(not_reals(), st.just([0.0]), st.just([-0.1])),
                draws=not_int(1, 100_000), seed=SEED)),
    Helper("spectrum.residual_product_growth", spectrum.residual_product_growth,
           lambda: dict(n=4, alpha=0.5, depth=3, draws=2, seed=0),
           dict(n=not_int(1, 1024), alpha=not_real(0.0), depth=not_int(1, 100_000), draws=not_int(1, 100_000),
                seed=SEED)),
    Helper("spectrum.blocks_of", spectrum.blocks_of, lambda: dict(depth=10), dict(depth=not_int(4))),
    Helper("spectrum.spectrum_net", spectrum.spectrum_net,
           lambda: dict(setting=spectrum.SETTINGS[2], depth=4, width=4, in_features=4, out_features=1, seed=0,
                        norm="batch", preactivation=True),
           dict(setting=not_one_of(*spectrum.SETTINGS), depth=not_int(4), width=not_int(1), in_features=not_int(1),
                out_features=not_int(1), seed=SEED, norm=not_one_of(*spectrum.NORMS), preactivation=not_bool())),
    Helper("spectrum.body_singular_values", spectrum.body_singular_values, lambda: dict(net=pre_net(), inputs=X),
           dict(net=not_model_like(nn.Sequential(nn.Linear(4, 4))),
                inputs=st.one_of(NOT_TENSOR, st.just(torch.zeros(16, 5)), st.just(torch.zeros(4))))),
    Helper("spectrum.jacobian_spectra", spectrum.jacobian_spectra,
           lambda: dict(inputs=X, depths=[4], seeds=[0], width=4, out_features=1, norms=(None,)),
           dict(inputs=st.one_of(NOT_TENSOR, st.just(torch.zeros(4))), depths=not_ints(4),
                seeds=not_distinct_seeds(), width=not_int(1), out_features=not_int(1),
                norms=not_names(*spectrum.NORMS))),
    Helper("spectrum.unresolved", spectrum.unresolved, lambda: dict(values=torch.rand(3, 4)),
           dict(values=st.one_of(NOT_TENSOR, st.just(torch.zeros(4))))),
    Helper("spectrum.stream_growth", spectrum.stream_growth, lambda: dict(net=pre_net(6), inputs=X, blocks=[1, 2]),
           dict(net=not_model_like(nn.Sequential(nn.Linear(4, 4))),
                inputs=st.one_of(NOT_TENSOR, st.just(torch.zeros(16, 5))),
                blocks=st.one_of(not_ints(1), st.just([3])))),
    Helper("spectrum.spread", spectrum.spread, lambda: dict(values=torch.rand(8), low=0.1, high=0.9),
           dict(values=st.one_of(NOT_TENSOR, st.just(torch.zeros(0))), low=not_real(0.0, 0.5),
                high=not_real(0.5, 1.0))),
    Helper("spectrum.plot_jacobian_spectra", spectrum.plot_jacobian_spectra,
           lambda: dict(ax=axes(), spectra=SPECTRA, norm=None),
           dict(ax=MISC, spectra=st.one_of(MISC, st.just({})), norm=not_one_of(None))),
    Helper("spectrum.nonzero", spectrum.nonzero, lambda: dict(values=torch.rand(3, 4)),
           dict(values=st.one_of(NOT_TENSOR, st.just(torch.zeros(4))))),
    Helper("spectrum.draw_powers", spectrum.draw_powers, lambda: dict(matrix=MATRIX, depth=2, max_depth=3, title="W"),
           dict(matrix=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 3))), depth=not_int(1, 3),
                max_depth=not_int(1, 100_000), title=st.one_of(st.integers(), st.none()))),
    # --- landscape (chapter 4) ---
    Helper("landscape.toy_loss", landscape.toy_loss, lambda: dict(w1=0.5, w2=0.5, alpha=2.0, skip=True),
           dict(skip=not_bool())),
    Helper("landscape.toy_descent", landscape.toy_descent,
           lambda: dict(alpha=2.0, skip=False, eps=0.1, lr=0.1, steps=3),
           dict(alpha=ANY_REAL_NOT, skip=not_bool(), eps=not_real(0.0),
                lr=not_real(0.0, low_allowed=False), steps=not_int(0))),
    Helper("landscape.toy_steps_to_fit", landscape.toy_steps_to_fit,
           lambda: dict(alpha=2.0, skip=False, eps=[0.1, 0.01], lr=0.1, tol=1e-4, max_steps=10),
           dict(alpha=ANY_REAL_NOT, skip=not_bool(), eps=not_reals(),
                lr=not_real(0.0, low_allowed=False), tol=not_real(0.0, low_allowed=False), max_steps=not_int(1))),
    Helper("landscape.chain_steps_to_fit", landscape.chain_steps_to_fit,
           lambda: dict(depth=3, alpha=2.0, skip=True, eps=[0.1, 0.01], lr=0.1, tol=1e-4, max_steps=10),
           dict(depth=not_int(1), alpha=ANY_REAL_NOT, skip=not_bool(),
                eps=not_reals(), lr=not_real(0.0, low_allowed=False), tol=not_real(0.0, low_allowed=False),
                max_steps=not_int(1))),
    Helper("landscape.escape_law", landscape.escape_law, lambda: dict(eps=[0.1, 0.01], alpha=2.0, lr=0.1, skip=False),
           dict(eps=st.one_of(not_reals(), st.just([0.0]), st.just([-0.1])),
                alpha=st.one_of(ANY_REAL_NOT, st.just(-0.5)),
                lr=not_real(0.0, low_allowed=False), skip=not_bool()),
           ),
    Helper("landscape.slope_against_log", landscape.slope_against_log,
           lambda: dict(eps=[0.1, 0.01, 0.001], steps=[3.0, 5.0, 7.0]),
           dict(eps=st.one_of(not_reals(), st.just([0.1]), st.just([0.1, -0.1])),
                steps=st.one_of(not_reals(), st.just([1.0, 2.0])))),
    Helper("landscape.filter_normalised_direction", landscape.filter_normalised_direction,
           lambda: dict(model=pre_net(), generator=torch.Generator().manual_seed(0)),
           dict(model=not_module(), generator=st.one_of(MISC, st.integers()))),
    Helper("landscape.loss_grid", landscape.loss_grid,
           lambda: dict(model=pre_net(), directions=DIRECTIONS, data=CLASSES_4, coords=torch.linspace(-1, 1, 3),
                        batched=True, chunk=4),
           dict(model=not_module(), directions=st.one_of(NOT_SEQUENCE, st.just(DIRECTIONS[:1]), st.just([{}, {}])),
                data=not_dataset(), coords=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 2))), batched=not_bool(),
                chunk=not_int(1))),
    Helper("landscape.slice_curvature", landscape.slice_curvature, lambda: dict(grid=FLAT, spacing=0.5),
           dict(grid=st.one_of(MISC, st.just(torch.zeros(2, 3)), st.just(torch.zeros(9))),
                spacing=not_real(0.0, low_allowed=False))),
    Helper("landscape.local_minima", landscape.local_minima, lambda: dict(grid=FLAT),
           dict(grid=st.one_of(MISC, st.just(torch.zeros(2, 3)), st.just(torch.zeros(9))))),
    Helper("landscape.negative_share_by_loss", landscape.negative_share_by_loss,
           lambda: dict(grid=FLAT, spacing=0.5, edges=[0.0, 4.0, 9.0]),
           dict(grid=st.one_of(MISC, st.just(torch.zeros(2, 3))), spacing=not_real(0.0, low_allowed=False),
                edges=st.one_of(not_reals(), st.just([1.0]), st.just([2.0, 1.0])))),
    Helper("landscape.train_recording_paths", landscape.train_recording_paths,
           lambda: dict(models=[net(0), net(1)], data=REGRESSION, recipe=RECIPE, seeds=[0, 1], every=1),
           dict(models=st.one_of(MISC, st.just([]), st.just([net(), "net"]), st.just(net())),
                data=not_dataset(), recipe=not_recipe(), seeds=not_seeds(2), every=not_int(1))),
    Helper("landscape.path_pca_shares", landscape.path_pca_shares, lambda: dict(path=PATH),
           dict(path=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 3)), st.just(torch.zeros(5))))),
    Helper("landscape.random_walk_path", landscape.random_walk_path,
           lambda: dict(snapshots=4, dims=3, generator=torch.Generator().manual_seed(0)),
           dict(snapshots=not_int(3), dims=not_int(1), generator=st.one_of(MISC, st.integers()))),
    Helper("landscape.path_in_two_components", landscape.path_in_two_components, lambda: dict(path=PATH),
           dict(path=st.one_of(NOT_TENSOR, st.just(torch.zeros(2, 3)), st.just(torch.zeros(5))))),
    # --- paths (chapter 5) ---
    Helper("paths.path_counts", paths.path_counts, lambda: dict(blocks=3), dict(blocks=not_int(0))),
    Helper("paths.jacobian_by_path_length", paths.jacobian_by_path_length, lambda: dict(jacobians=JACOBIANS),
           dict(jacobians=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 4, 5)), st.just(torch.zeros(3, 4))))),
    Helper("paths.jacobian_by_path_length_brute_force", paths.jacobian_by_path_length_brute_force,
           lambda: dict(jacobians=JACOBIANS),
           dict(jacobians=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 4, 5)), st.just(torch.zeros(21, 1, 1))))),
    Helper("paths.incoherent_gradient_energy", paths.incoherent_gradient_energy,
           lambda: dict(output_gradient=torch.ones(2, 4), jacobians=JACOBIANS),
           dict(output_gradient=st.one_of(NOT_TENSOR, st.just(torch.ones(4))),
                jacobians=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 4, 5))))),
    Helper("paths.poisson_binomial", paths.poisson_binomial, lambda: dict(probabilities=[0.5, 0.1]),
           dict(probabilities=st.one_of(not_reals(), st.just([1.5]), st.just([-0.1])))),
    Helper("paths.net_jacobians", paths.net_jacobians, lambda: dict(model=eval_net(), data=CLASSES_4),
           dict(model=not_model_like(nn.Linear(4, 2), models.mlp(4, 4, 4, 2, residual=True)), data=not_dataset())),
    Helper("paths.correction_sizes", paths.correction_sizes, lambda: dict(model=eval_net(), data=CLASSES_4),
           dict(model=not_model_like(nn.Linear(4, 2)), data=not_dataset())),
    Helper("paths.with_data_statistics", paths.with_data_statistics, lambda: dict(model=pre_net(), data=CLASSES_4),
           dict(model=not_module(), data=not_dataset())),
    Helper("paths.path_profile", paths.path_profile,
           lambda: dict(model=eval_net(), data=CLASSES_4, per_sample=True),
           dict(model=not_model_like(nn.Linear(4, 2)), data=not_dataset(), per_sample=not_bool())),
    Helper("paths.delete_blocks", paths.delete_blocks, lambda: dict(model=pre_net(6), deleted=[0, 1]),
           dict(model=not_model_like(nn.Linear(4, 2)),
                deleted=st.one_of(NOT_SEQUENCE, st.just("01"), st.just([2]), st.just([0, 0]), st.just([-1])))),
    Helper("paths.accuracy_without_direct_term", paths.accuracy_without_direct_term,
           lambda: dict(model=pre_net(6), data=CLASSES_4, index=1),
           dict(model=not_model_like(nn.Linear(4, 2)), data=st.one_of(not_dataset(), st.just(REGRESSION)),
                index=not_int(0, 1))),
    Helper("paths.swap_blocks", paths.swap_blocks, lambda: dict(model=pre_net(6), pairs=[(0, 1)]),
           dict(model=not_model_like(nn.Linear(4, 2)),
                pairs=st.one_of(NOT_SEQUENCE, st.just("01"), st.just([(0, 2)]), st.just([(0, 0)]),
                                st.just([0, 1])))),
    Helper("paths.lesion_accuracies", paths.lesion_accuracies,
           lambda: dict(model=pre_net(6), lesions=[paths.Lesion(), paths.Lesion((1,))], data=CLASSES_4),
           dict(model=not_model_like(nn.Linear(4, 2)),
                lesions=st.one_of(NOT_SEQUENCE, st.just([]), st.just([(1,)]), st.just([paths.Lesion((2,))])),
                data=not_dataset())),
    Helper("paths.random_deletions", paths.random_deletions, lambda: dict(blocks=4, count=2, draws=2, seed=0),
           dict(blocks=not_int(1), count=not_int(0, 4), draws=not_int(1), seed=SEED)),
    Helper("paths.random_swaps", paths.random_swaps, lambda: dict(blocks=4, count=1, draws=2, seed=0),
           dict(blocks=not_int(2), count=not_int(0, 2), draws=not_int(1), seed=SEED)),
    Helper("paths.lesion_study", paths.lesion_study, lambda: dict(model=pre_net(6), data=CLASSES_4, draws=1, seed=0),
           dict(model=not_model_like(nn.Linear(4, 2)), data=not_dataset(), draws=not_int(1),
                seed=not_int(0, 2**32 - 1))),
    Helper("paths.decomposition_seconds", paths.decomposition_seconds, lambda: dict(jacobians=JACOBIANS, repeats=1),
           dict(jacobians=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 4, 5))), repeats=not_int(1))),
    # --- dilution (chapter 6) ---
    Helper("dilution.quadratic_expectation", dilution.quadratic_expectation, lambda: dict(values=X),
           dict(values=st.one_of(NOT_TENSOR, st.just(torch.zeros(0, 2)), st.just(torch.zeros(2, 2, 2))))),
    Helper("dilution.linear_split", dilution.linear_split,
           lambda: dict(inputs=WIDE, outputs=WIDE.relu(), held_out_inputs=HELD, held_out_outputs=HELD.relu(),
                        intercept=True),
           dict(inputs=st.one_of(NOT_TENSOR, st.just(WIDE[:10])), outputs=st.one_of(NOT_TENSOR, st.just(WIDE[:10])),
                held_out_inputs=st.one_of(NOT_TENSOR, st.just(HELD[:50])),
                held_out_outputs=st.one_of(NOT_TENSOR, st.just(HELD[:50])), intercept=not_bool())),
    Helper("dilution.dilution_factor", dilution.dilution_factor,
           lambda: dict(function=torch.relu, inputs=WIDE, held_out_inputs=HELD, intercept=True),
           dict(function=st.one_of(MISC, st.integers()), inputs=st.one_of(NOT_TENSOR, st.just(WIDE[:10])),
                held_out_inputs=st.one_of(NOT_TENSOR, st.just(HELD[:50])), intercept=not_bool())),
    Helper("dilution.gradient_scale_coefficient", dilution.gradient_scale_coefficient,
           lambda: dict(jacobians=torch.ones(16, 3, 4), inputs=X, outputs=torch.ones(16, 3)),
           dict(jacobians=st.one_of(NOT_TENSOR, st.just(torch.ones(16, 4, 3))),
                inputs=st.one_of(NOT_TENSOR, st.just(torch.ones(15, 4))),
                outputs=st.one_of(NOT_TENSOR, st.just(torch.ones(15, 3))))),
    Helper("dilution.diluted_stack", dilution.diluted_stack,
           lambda: dict(mix=1.0, nonlinearity="relu", depth=2, width=2, samples=200, seed=0, tangent_samples=8),
           dict(mix=not_real(0.0), nonlinearity=not_one_of(*dilution.NONLINEARITIES), depth=not_int(1),
                width=not_int(1), samples=not_int(200), seed=SEED, tangent_samples=not_int(1))),
    Helper("dilution.fit_power_law", dilution.fit_power_law, lambda: dict(k=[0.0, 1.0, 2.0], excess=[3.0, 2.0, 1.0]),
           dict(k=st.one_of(not_reals(), st.just([0.0, -1.0, 2.0])),
                excess=st.one_of(not_reals(), st.just([1.0, 0.0, 2.0])))),
    Helper("dilution.blocks", dilution.blocks, lambda: dict(model=pre_net()),
           dict(model=not_model_like(nn.Linear(2, 2)))),
    Helper("dilution.block_inputs", dilution.block_inputs, lambda: dict(model=pre_net(), x=X),
           dict(model=not_model_like(nn.Linear(4, 2)), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    Helper("dilution.block_dilutions", dilution.block_dilutions,
           lambda: dict(model=dilution_net(), x=WIDE, held_out_x=HELD, part="layers"),
           dict(model=not_model_like(nn.Linear(2, 2)), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))),
                held_out_x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))), part=not_one_of(*dilution.PARTS))),
    Helper("dilution.effective_depth", dilution.effective_depth, lambda: dict(ks=[1.0, math.inf]),
           dict(ks=st.one_of(not_reals(), st.just([]), st.just([-1.0])))),
    Helper("dilution.linearised", dilution.linearised, lambda: dict(model=dilution_net(), x=WIDE, held_out_x=HELD),
           dict(model=not_model_like(nn.Linear(2, 2)), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))),
                held_out_x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    Helper("dilution.constructed_layer", dilution.constructed_layer, lambda: dict(k=1.0, width=2, seed=0),
           dict(k=not_real(0.0, low_allowed=False), width=not_int(1), seed=SEED)),
    Helper("dilution.net_configurations", dilution.net_configurations, lambda: dict(sizes=DILUTION_SIZES),
           dict(sizes=MISC)),
    Helper("dilution.build_net", dilution.build_net,
           lambda: dict(configuration=("plain", 1.0), seed=0, sizes=DILUTION_SIZES, data=REGRESSION),
           dict(configuration=st.one_of(MISC, st.just(("residual", 0.5))), seed=SEED, sizes=MISC,
                data=not_dataset())),
    Helper("dilution.train_nets", dilution.train_nets,
           lambda: dict(data=REGRESSION, sizes=DILUTION_SIZES, seeds=[0]),
           dict(data=not_dataset(), sizes=MISC, seeds=not_distinct_seeds())),
    Helper("dilution.measure_dilutions", dilution.measure_dilutions,
           lambda: dict(models=DILUTION_NETS, x=WIDE, held_out_x=HELD),
           dict(models=st.one_of(MISC, st.just({"plain": "net"})),
                x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))),
                held_out_x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    Helper("dilution.linearised_share", dilution.linearised_share,
           lambda: dict(model=dilution_net(), x=WIDE, held_out_x=HELD),
           dict(model=not_model_like(nn.Linear(2, 2)), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))),
                held_out_x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    Helper("dilution.relu_positive_fractions", dilution.relu_positive_fractions, lambda: dict(model=pre_net(), x=X),
           dict(model=not_model_like(nn.Linear(2, 2)), x=st.one_of(NOT_TENSOR, st.just(torch.zeros(3, 5))))),
    # --- jacobians, cost, device (core) ---
    *(Helper(f"jacobians.{name}", getattr(jacobians, name), lambda: dict(model=eval_net(), inputs=X),
             dict(model=st.one_of(not_module(), st.just(pre_net())),
                  inputs=st.one_of(NOT_TENSOR, st.just(torch.zeros(4)), st.just(torch.zeros(3, 5)),
                                   st.just(torch.zeros(3, 4, dtype=torch.long)))))
      for name in ("input_output_jacobians", "input_output_jacobians_loop", "jacobian_singular_values")),
    Helper("jacobians.freeze_batch_statistics", jacobians.freeze_batch_statistics,
           lambda: dict(model=pre_net(), batch=X),
           dict(model=not_module(), batch=st.one_of(NOT_TENSOR, st.just(X[:1]), st.just(torch.zeros(3, 5))))),
    Helper("cost.linear_weights", cost.linear_weights, lambda: dict(model=pre_net()), dict(model=not_module())),
    Helper("cost.training_flops", cost.training_flops, lambda: dict(model=pre_net(), batch_size=8, steps=2),
           dict(model=not_module(), batch_size=not_int(1), steps=not_int(0))),
    Helper("cost.check_trained_on", cost.check_trained_on, lambda: dict(device="cpu"),
           dict(device=st.one_of(st.text(max_size=6).filter(lambda s: s not in ("cpu", "cuda", "mps") and ":" not in s),
                                 st.integers(), st.floats(), st.just(object()), st.just(["cpu"])))),
    Helper("cost.busy_seconds", cost.busy_seconds, lambda: dict(logged=[cost.Run(1, 1.0, 0.0, 1.0)]),
           dict(logged=st.one_of(NOT_SEQUENCE, st.just("runs"), st.just([(1, 1.0, 0.0, 1.0)])))),
    Helper("cost.matmul_rate", cost.matmul_rate, lambda: dict(device="cpu", size=16, repeats=1),
           dict(device=not_device(), size=not_int(16), repeats=not_int(1))),
    Helper("device.on_one_thread", device.on_one_thread, lambda: dict(function=len),
           dict(function=st.one_of(MISC, st.integers()))),
]

CASES = [(helper, argument) for helper in HELPERS for argument in helper.invalid]


@pytest.mark.parametrize("helper", HELPERS, ids=lambda h: h.name)
def test_each_helper_works_with_the_arguments_the_invalid_ones_replace(helper):
    helper.call(**helper.works())
    plt.close("all")


@pytest.mark.parametrize("helper, argument", CASES, ids=[f"{h.name}-{a}" for h, a in CASES])
def test_an_invalid_argument_is_refused_with_a_message_naming_it(helper, argument):
    assert_refused_naming_it(helper, argument)


def test_every_public_function_of_the_chapter_modules_has_a_helper_or_a_reason():
    covered = {h.name.split(".")[1] for h in HELPERS if h.name.count(".") == 1}
    skipped = {"log_run", "runs", "clear", "one_thread"}  # no arguments, or called by the trainers only
    for module in (identity, highway, spectrum, landscape, paths, dilution, jacobians, cost):
        public = {name for name, value in vars(module).items() if callable(value) and not name.startswith("_")
                  and getattr(value, "__module__", None) == module.__name__ and not isinstance(value, type)}
        assert public - covered - skipped == set(), module.__name__
