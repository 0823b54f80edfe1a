"""Chapter 3, the eigenvalue shift: why ``(I + W)^L`` survives where ``W^L`` vanishes, and what
eigenvalues do not tell.

A linear plain stack multiplies by ``W`` at every layer, a linear residual stack by ``I + W``. If
``Wv = λv`` then ``(I + W)v = (1 + λ)v``: same eigenvectors, eigenvalues shifted by one, so depth
turns ``λ^L`` into ``(1 + λ)^L``. This module draws the matrices, follows the singular values of
their powers against depth, checks Weyl's band (``‖W‖₂ ≤ ε`` ⇒ every singular value of ``I + W`` in
``[1 − ε, 1 + ε]``), measures the growth of products of random residual layers, and measures the
singular values of the input–output Jacobian of real plain and residual MLPs
(:mod:`resbook.jacobians`).
"""
from __future__ import annotations

import math
from copy import deepcopy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._checks import (check_bool, check_choice, check_choices, check_int, check_ints, check_module,
                      check_positive_float, check_real, check_sequence, check_tensor)
from .device import on_one_thread
from .jacobians import freeze_batch_statistics, jacobian_singular_values
from .models import Block, mlp
from .recipe import Recipe

DTYPE = torch.float64  # powers reach 1e-50: float32 would round them to 0


@dataclass(frozen=True)
class Sizes:
    """Chapter 3's sizes in one profile."""

    matrix_size: int  # n of the random n × n matrices W
    max_depth: int  # powers W^L, (I + W)^L for L = 1 … max_depth
    weyl_draws: int  # random W per ε in the Weyl-band check
    product_size: int  # n of the random residual layers I + W_l in the growth measurement
    product_draws: int  # random residual stacks per α in the growth measurement
    product_depths: tuple[int, ...]  # L of those stacks; at most 512, or 2^L overflows float64 at α = 1
    width: int  # of the MLPs whose Jacobians are measured
    depths: tuple[int, ...]  # weight layers of those MLPs
    samples: int  # digits whose Jacobians are measured, per net
    train_depth: int  # weight layers of the nets measured again after training
    recipe: Recipe


SIZES = {
    "quick": Sizes(matrix_size=32, max_depth=60, weyl_draws=200, product_size=16, product_draws=100,
                   product_depths=(4, 16, 64, 256), width=32, depths=(4, 10, 20, 34, 66), samples=32,
                   train_depth=34, recipe=Recipe(steps=300, batch_size=128, optimizer="adam", lr=1e-3)),
    "full": Sizes(matrix_size=64, max_depth=100, weyl_draws=2000, product_size=32, product_draws=500,
                  product_depths=(4, 16, 64, 256, 512), width=64, depths=(4, 10, 20, 34, 66, 130), samples=128,
                  train_depth=66, recipe=Recipe(steps=1500, batch_size=128, optimizer="adam", lr=1e-3)),
}


def _batch(name: str, inputs: object, width: int | None = None) -> torch.Tensor:
    """``inputs`` if it is a samples × features tensor (``width`` features when given); otherwise raise."""
    inputs = check_tensor(name, inputs)
    if inputs.ndim != 2 or inputs.shape[0] < 2 or (width is not None and inputs.shape[1] != width):
        raise ValueError(f"{name} must be samples × features (at least 2 samples"
                         f"{'' if width is None else f', {width} features'}), got shape {tuple(inputs.shape)}")
    return inputs


# --- matrices ---------------------------------------------------------------------------------

def spectral_radius(matrix: torch.Tensor) -> float:
    """``ρ(W) = max |λ_i(W)|``, the largest eigenvalue modulus."""
    return float(torch.linalg.eigvals(_square("matrix", matrix)).abs().max())


def random_matrix(n: int, radius: float, *, seed: int, normal: bool = False) -> torch.Tensor:
    """An ``n × n`` Gaussian matrix scaled to spectral radius ``radius`` (float64).

    With ``normal=True``, a normal matrix with the *same eigenvalues*: ``Q B Qᵀ`` with ``Q`` random
    orthogonal and ``B`` block diagonal (each real λ alone, each pair ``a ± ib`` as ``[[a, −b], [b, a]]``),
    so its singular values are the ``|λ|``.
    """
    n = check_int("n", n, 1, 4096)
    radius = check_positive_float("radius", radius)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    check_bool("normal", normal)
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(n, n, generator=generator, dtype=DTYPE)
    matrix = gaussian * (radius / spectral_radius(gaussian))
    if not normal:
        return matrix
    eigenvalues = torch.linalg.eigvals(matrix)
    blocks, i = [], 0
    order = sorted(range(n), key=lambda k: (round(eigenvalues[k].real.item(), 12), eigenvalues[k].imag.item()))
    while i < n:
        value = eigenvalues[order[i]]
        if abs(value.imag) < 1e-12:
            blocks.append(torch.tensor([[value.real]], dtype=DTYPE))
            i += 1
        else:  # a conjugate pair, adjacent once sorted by real part
            a, b = value.real, value.imag
            blocks.append(torch.tensor([[a, -b], [b, a]], dtype=DTYPE))
            i += 2
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=DTYPE))
    return q @ torch.block_diag(*blocks) @ q.T


def jordan_like(n: int, eigenvalue: float, coupling: float) -> torch.Tensor:
    """``λI + cS`` with ``S`` the shift (ones just above the diagonal): every eigenvalue is λ, yet for
    ``c > 0`` the matrix is far from normal and ``‖W^L‖`` can grow for a while when ``|λ| < 1``."""
    n = check_int("n", n, 1, 4096)
    eigenvalue = check_real("eigenvalue", eigenvalue)
    coupling = check_positive_float("coupling", coupling, allow_zero=True)
    return eigenvalue * torch.eye(n, dtype=DTYPE) + coupling * torch.diag(torch.ones(n - 1, dtype=DTYPE), 1)


def _square(name: str, matrix: object) -> torch.Tensor:
    matrix = check_tensor(name, matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(matrix.shape)}")
    return matrix.to(DTYPE)


# --- powers -----------------------------------------------------------------------------------

@on_one_thread
def power_singular_values(matrix: torch.Tensor, max_depth: int) -> torch.Tensor:
    """``[σ_max(M^L), σ_min(M^L)]`` for ``L = 1 … max_depth``: a (max_depth × 2) float64 tensor.

    The plain stack is ``M = W``, the linear residual stack ``M = I + W``."""
    matrix = _square("matrix", matrix)
    max_depth = check_int("max_depth", max_depth, 1, 100_000)
    power, powers = torch.eye(matrix.shape[0], dtype=DTYPE), []
    for _ in range(max_depth):
        power = matrix @ power
        powers.append(power)
    values = torch.linalg.svdvals(torch.stack(powers))  # one batched SVD for every depth
    return values[:, [0, -1]]


@on_one_thread
def gradient_gains(matrix: torch.Tensor, depth: int, vectors: int, *, seed: int) -> torch.Tensor:
    """``‖(M^L)ᵀ g‖ / ‖g‖`` for ``vectors`` random gradients ``g``: how much a gradient that flows back
    through ``L`` layers ``M`` grows or shrinks. Each lies in ``[σ_min(M^L), σ_max(M^L)]``."""
    matrix = _square("matrix", matrix)
    depth = check_int("depth", depth, 1, 100_000)
    vectors = check_int("vectors", vectors, 1, 100_000)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**63 - 1))
    gradients = torch.randn(matrix.shape[0], vectors, generator=generator, dtype=DTYPE)
    back = torch.linalg.matrix_power(matrix, depth).T @ gradients
    return back.norm(dim=0) / gradients.norm(dim=0)


# --- Weyl's band and products of residual layers ------------------------------------------------

@on_one_thread
def weyl_band_excess(n: int, epsilons: Sequence[float], draws: int, *, seed: int) -> torch.Tensor:
    """For random ``W`` scaled to ``‖W‖₂ = ε``: how far the singular values of ``I + W`` reach past
    Weyl's band ``[1 − ε, 1 + ε]`` (≤ 0 inside), and how much of the band they use.

    Returns (len(epsilons) × draws × 2): ``[max σ − (1 + ε), (1 − ε) − min σ]`` per draw, both ≤ 0 when
    Weyl's inequality ``|σ_i(I + W) − 1| ≤ ‖W‖₂`` holds."""
    n = check_int("n", n, 1, 1024)
    draws = check_int("draws", draws, 1, 100_000)
    epsilons = [check_positive_float(f"epsilons[{i}]", e) for i, e in enumerate(check_sequence("epsilons", epsilons))]
    if not epsilons:
        raise ValueError("epsilons must hold at least one ε")
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**63 - 1))
    results = []
    for epsilon in epsilons:
        w = torch.randn(draws, n, n, generator=generator, dtype=DTYPE)
        w *= epsilon / torch.linalg.matrix_norm(w, ord=2)[:, None, None]
        values = torch.linalg.svdvals(torch.eye(n, dtype=DTYPE) + w)
        results.append(torch.stack([values[:, 0] - (1 + epsilon), (1 - epsilon) - values[:, -1]], dim=1))
    return torch.stack(results)


@dataclass(frozen=True)
class ProductGrowth:
    """Products ``P = (I + W_L) ⋯ (I + W_1)`` of random residual layers, ``W_l`` with entries N(0, α²/n)."""

    alpha: float
    depth: int
    mean_squared_gain: float  # mean over draws of ‖P x‖² / ‖x‖²: the typical growth, E = (1 + α²)^L
    largest_norm: float  # the largest ‖P‖₂ over the draws
    smallest_bound: float  # the smallest worst-case bound ∏ (1 + ‖W_l‖₂) over the draws

    @property
    def variance_prediction(self) -> float:
        """``(1 + α²)^L``: the expected squared gain of a fixed x, each layer independent."""
        return (1 + self.alpha**2) ** self.depth


@on_one_thread
def residual_product_growth(n: int, alpha: float, depth: int, draws: int, *, seed: int) -> ProductGrowth:
    """Draw ``draws`` stacks of ``depth`` residual layers ``I + W_l`` (``W_l`` entries N(0, α²/n), so
    ``E‖W_l x‖² = α²‖x‖²`` while ``‖W_l‖₂ ≈ 2α``) and measure their growth (see :class:`ProductGrowth`)."""
    n = check_int("n", n, 1, 1024)
    alpha = check_positive_float("alpha", alpha, allow_zero=True)
    depth = check_int("depth", depth, 1, 100_000)
    draws = check_int("draws", draws, 1, 100_000)
    generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**63 - 1))
    product = torch.eye(n, dtype=DTYPE).expand(draws, n, n)
    bound = torch.ones(draws, dtype=DTYPE)
    for _ in range(depth):
        w = torch.randn(draws, n, n, generator=generator, dtype=DTYPE) * (alpha / math.sqrt(n))
        product = product + w @ product
        # ‖W_l‖₂ in float32 (about 3 times faster); the factor 1 + 1e-5 covers its rounding, so that the
        # product stays an upper bound
        bound = bound * (1 + torch.linalg.matrix_norm(w.float(), ord=2).to(DTYPE) * (1 + 1e-5))
    x = torch.randn(draws, n, 1, generator=generator, dtype=DTYPE)
    gains = (product @ x).norm(dim=(1, 2)) ** 2 / x.norm(dim=(1, 2)) ** 2
    return ProductGrowth(alpha, depth, float(gains.mean()), float(torch.linalg.matrix_norm(product, ord=2).max()),
                         float(bound.min()))


# --- Jacobians of real networks -----------------------------------------------------------------

SETTINGS = ("plain", "residual", "residual, α = 1/√L")  # the nets whose Jacobians are compared
NORMS = (None, "batch")  # no normalisation, and batch norm with a fixed batch's statistics


def blocks_of(depth: int) -> int:
    """The number of blocks ``L`` of a ``depth``-layer net (stem, two layers per block, head)."""
    return (check_int("depth", depth, 4) - 2) // 2


def spectrum_net(setting: str, depth: int, width: int, in_features: int, out_features: int, *, seed: int,
                 norm: str | None = None, preactivation: bool = True) -> nn.Sequential:
    """An MLP of ``setting`` (see :data:`SETTINGS`), pre-activation blocks ``y = x + F(x)`` unless
    ``preactivation=False`` (``y = ReLU(x + F(x))``), weights drawn with ``seed``: the plain and residual
    nets of one seed share their weights, α = 1/√L scales only the branches."""
    check_choice("setting", setting, SETTINGS)
    check_choice("norm", norm, NORMS)
    check_bool("preactivation", preactivation)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    scale = 1 / math.sqrt(blocks_of(depth)) if setting == SETTINGS[2] else 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return mlp(depth, width, in_features, out_features, residual=setting != "plain", norm=norm,
                   preactivation=preactivation, residual_scale=scale)


@on_one_thread
def body_singular_values(net: nn.Sequential, inputs: torch.Tensor) -> torch.Tensor:
    """Singular values of the Jacobian of the net's blocks, ``∂x_L/∂x_0``, at the stem's outputs
    ``x_0`` of ``inputs`` (samples × width). Batch norm is frozen at the statistics of ``inputs``.

    Computed in float64, on a copy: through many layers the singular values span 10¹⁰ or more, and in
    float32 rounding alone would leave ``σ_max·1e-7`` where the true value is zero."""
    if not isinstance(check_module("net", net), nn.Sequential):
        raise TypeError(f"net must be an nn.Sequential from resbook.models.mlp, got {type(net).__name__}")
    first = next((m for m in net.modules() if isinstance(m, nn.Linear)), None)
    _batch("inputs", inputs, first.in_features if first is not None else None)
    frozen = freeze_batch_statistics(net, inputs).double()
    inputs = inputs.double()
    blocks = [m for m in frozen if isinstance(m, Block)]
    if not blocks:
        raise ValueError("net has no resbook.models.Block: build it with resbook.models.mlp")
    stem = frozen[: list(frozen).index(blocks[0])]
    with torch.no_grad():
        start = stem(inputs)
    return jacobian_singular_values(nn.Sequential(*blocks), start)


def jacobian_spectra(inputs: torch.Tensor, depths: Sequence[int], seeds: Sequence[int], *, width: int,
                     out_features: int, norms: Sequence[str | None] = NORMS) -> dict[tuple, torch.Tensor]:
    """``spectra[setting, norm, depth]``: every singular value of ``∂x_L/∂x_0`` at initialisation, over
    seeds and samples (one flat tensor), for each setting of :data:`SETTINGS`."""
    _batch("inputs", inputs)
    depths, norms = check_ints("depths", depths, 4), check_choices("norms", norms, NORMS)
    seeds = check_ints("seeds", seeds, 0, 2**63 - 1)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    spectra = {}
    for norm in norms:
        for depth in depths:
            for setting in SETTINGS:
                values = [body_singular_values(spectrum_net(setting, depth, width, inputs.shape[1], out_features,
                                                            seed=seed, norm=norm), inputs) for seed in seeds]
                spectra[setting, norm, depth] = torch.cat(values)  # (seeds · samples) × width
    return spectra


def unresolved(values: torch.Tensor) -> torch.Tensor:
    """Which singular values lie below floating-point resolution for their own sample: ``σ < n·eps·σ_max``
    per row of ``values`` (samples × n), the usual numerical-rank cutoff. Below it a value cannot be told
    from zero: a plain net's exact zeros (a rank lost to its ReLUs) land there, but so does the smallest
    singular value of an invertible but extremely ill-conditioned Jacobian."""
    values = check_tensor("values", values)
    if values.dim() != 2:
        raise ValueError(f"values must be samples × singular values (2-D), got shape {tuple(values.shape)}")
    eps = torch.finfo(values.dtype).eps
    return values < values.shape[1] * eps * values.max(dim=1, keepdim=True).values


@on_one_thread
def stream_growth(net: nn.Sequential, inputs: torch.Tensor, blocks: Sequence[int]) -> list[float]:
    """The mean ``‖x_l‖² / ‖x_0‖²`` over ``inputs`` of the residual stream after block ``l``, for each ``l``
    in ``blocks``, with the net in training mode (batch norm uses the batch's statistics), in float64 on a
    copy. Random unnormalised branches multiply it by about ``1 + α²`` per block; normalised branches add
    about a constant each, so it grows linearly in ``l``."""
    if not isinstance(check_module("net", net), nn.Sequential):
        raise TypeError(f"net must be an nn.Sequential from resbook.models.mlp, got {type(net).__name__}")
    layers = [m for m in net if isinstance(m, Block)]
    if not layers:
        raise ValueError("net has no resbook.models.Block: build it with resbook.models.mlp")
    wanted = sorted(set(check_ints("blocks", blocks, 1, len(layers))))
    first = next(m for m in net.modules() if isinstance(m, nn.Linear))
    _batch("inputs", inputs, first.in_features)
    copy = deepcopy(net).double().train()
    stem = copy[: list(net).index(layers[0])]
    out = []
    with torch.no_grad():
        x = stem(check_tensor("inputs", inputs).double())
        start = x.pow(2).sum(dim=1).mean()
        for index, block in enumerate((m for m in copy if isinstance(m, Block)), 1):
            x = block(x)
            if index in wanted:
                out.append(float(x.pow(2).sum(dim=1).mean() / start))
            if index == wanted[-1]:
                break
    return out


def spread(values: torch.Tensor, low: float = 0.05, high: float = 0.95) -> tuple[float, float, float]:
    """The ``low`` quantile, median and ``high`` quantile of a set of singular values."""
    low, high = check_real("low", low), check_real("high", high)
    if not 0 <= low <= 0.5 <= high <= 1:
        raise ValueError(f"low must be in [0, 0.5] and high in [0.5, 1], got low={low!r}, high={high!r}")
    values = check_tensor("values", values).flatten().to(DTYPE)
    if values.numel() == 0:
        raise ValueError("values must hold at least one singular value")
    quantiles = torch.quantile(values, torch.tensor([low, 0.5, high], dtype=DTYPE, device=values.device))
    return tuple(float(q) for q in quantiles)


# --- figures ----------------------------------------------------------------------------------

SETTING_STYLES = {  # colour, line style: plain as everywhere in the book; the two residual nets in blues
    "plain": ("#D55E00", "--"), "residual": ("#56B4E9", "-."), "residual, α = 1/√L": ("#0072B2", "-")}


def plot_jacobian_spectra(ax, spectra: dict[tuple, torch.Tensor], norm: str | None) -> None:
    """The singular values of the Jacobians against depth, one colour per setting, for nets with
    normalisation ``norm``: median (line with dots) and 5 % and 95 % quantiles (thin lines, band between)
    of every value, except that for the plain net the values below resolution (:func:`unresolved`: exact zeros
    of its lost rank) are left out; they are a share, reported apart."""
    if not hasattr(ax, "fill_between"):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")
    if not isinstance(spectra, dict):
        raise TypeError(f"spectra must be a dict (setting, norm, depth) -> tensor (from jacobian_spectra), "
                        f"got {type(spectra).__name__}")
    depths = sorted({depth for (_, n, depth) in spectra if n == norm})
    if not depths:
        raise ValueError(f"spectra holds no nets with norm={norm!r}")
    for setting in SETTINGS:
        low, median, high = zip(*(spread(nonzero(spectra[setting, norm, d]) if setting == "plain"
                                         else spectra[setting, norm, d]) for d in depths))
        color, style = SETTING_STYLES[setting]
        ax.fill_between(depths, low, high, color=color, alpha=0.15, linewidth=0)
        for edge in (low, high):
            ax.plot(depths, edge, color=color, linestyle=style, linewidth=0.8)
        ax.plot(depths, median, color=color, linestyle=style, marker="o", label=setting)
    ax.axhline(1, color="grey", linewidth=1, linestyle=":")
    ax.set(xlabel="depth (weight layers)", ylabel="singular value", yscale="log")


def nonzero(values: torch.Tensor) -> torch.Tensor:
    """The singular values of ``values`` (samples × n) above resolution (not :func:`unresolved`), flattened."""
    return values[~unresolved(values)]


@on_one_thread
def draw_powers(matrix: torch.Tensor, depth: int, max_depth: int, title: str):
    """A figure of the linear plain stack ``W^L`` and residual stack ``(I + W)^L``: their eigenvalues in
    the complex plane (modulus on a log scale, the same range at every depth; the circle is |z| = 1) at
    ``depth``, and their norms
    ``‖·‖₂`` against depth up to ``max_depth`` beside the eigenvalue prediction ``ρ^L``."""
    import matplotlib.pyplot as plt

    matrix = _square("matrix", matrix)
    max_depth = check_int("max_depth", max_depth, 1, 100_000)
    depth = check_int("depth", depth, 1, max_depth)
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__} {title!r}")
    residual = torch.eye(matrix.shape[0], dtype=DTYPE) + matrix
    figure = plt.figure(figsize=(6.4, 7.2))
    plane = figure.add_subplot(2, 1, 1, projection="polar")
    extremes = [np.ones(1)]  # |λ|^L is monotone in L: depths 1 and max_depth bound every frame's moduli
    for m, kind, marker, label in ((matrix, "plain", "x", "W^L"), (residual, "residual", "o", "(I + W)^L")):
        eigenvalues = torch.linalg.eigvals(m).numpy()
        extremes += [abs(eigenvalues ** d).clip(1e-300) for d in (1, max_depth)]
        values = eigenvalues**depth
        plane.scatter(np.angle(values), abs(values).clip(1e-300), s=18, marker=marker,
                      color=SETTING_STYLES[kind][0], label=f"eigenvalues of {label}")
    circle = torch.linspace(0, 2 * math.pi, 200)
    plane.plot(circle, torch.ones(200), color="grey", linewidth=1)
    low = math.floor(min(math.log10(float(np.min(ms))) for ms in extremes)) - 1
    high = math.ceil(max(math.log10(float(np.max(ms))) for ms in extremes)) + 1
    plane.set_rscale("log")
    plane.set_rlim(10.0**low, 10.0**high)  # the same decades at every depth, so frames compare
    ticks = {10.0**low, 1.0}
    if high > (high - low) / 5:  # label the top only where it is far enough from 1 not to overlap
        ticks.add(10.0 ** (high - 1))
    plane.set_rticks(sorted(ticks))
    plane.set_title(f"{title}, L = {depth}", fontsize=11)
    plane.legend(loc="upper left", bbox_to_anchor=(0.9, 1.1), fontsize=9)
    norms = figure.add_subplot(2, 1, 2)
    depths = range(1, max_depth + 1)
    for m, kind, label in ((matrix, "plain", "‖W^L‖"), (residual, "residual", "‖(I + W)^L‖")):
        color, style = SETTING_STYLES[kind][0], "--" if kind == "plain" else "-"
        norms.plot(depths, power_singular_values(m, max_depth)[:, 0], color=color, linestyle=style, label=label)
        radius = spectral_radius(m)
        norms.plot(depths, [radius**d for d in depths], color=color, linestyle=":", linewidth=1)
    norms.axvline(depth, color="grey", linewidth=1)
    norms.set(xlabel="depth L", ylabel="norm (dotted: ρ^L)", yscale="log")
    norms.legend(fontsize=9)
    return figure
