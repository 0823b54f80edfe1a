"""Chapter 5, an ensemble of paths: unroll a residual net into its 2ⁿ paths and measure which carry the gradient.

Through ``n`` pre-activation blocks ``x_l = x_{l-1} + F_l(x_{l-1})`` the input–output Jacobian is
``∏_l (I + J_l)`` with ``J_l = ∂F_l/∂x`` at the point the sample passes. Multiplied out, it is a sum
over the 2ⁿ subsets ``S`` of blocks, the *paths*: ``P_S = J_{l_k} ⋯ J_{l_1}`` for ``S = {l_1 < … < l_k}``,
and ``P_k = Σ_{|S|=k} P_S`` collects the paths of length ``k``. :func:`jacobian_by_path_length`
computes every ``P_k`` by dynamic programming over the blocks (``O(n²)`` matrix products);
:func:`jacobian_by_path_length_brute_force` enumerates the paths (``2ⁿ`` products); both take the
same stacked block Jacobians, so they can be timed against each other.

Only pre-activation blocks are decomposed: their identity path is exactly ``I``. A post-activation
block ``y = ReLU(x + F(x))`` has the Jacobian ``D (I + J)``, whose "skip" path is the product of the
masks ``D_l``, not the identity; :func:`block_jacobians` refuses such nets rather than mislabel them.

The lesion study (the second half) deletes a block by setting its identity gate to 1 and its residual
scale ``α`` to 0, so the block passes its input on unchanged, in a residual and in a plain net alike;
variants that differ only in these buffers, or in the order of their blocks, are evaluated together
with ``torch.func.vmap``.
"""
from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from ._checks import check_bool, check_dataset, check_int, check_module, check_tensor
from .data import Dataset
from .device import on_one_thread
from .models import Block, blocks_of
from .recipe import Recipe

MAX_BRUTE_FORCE_BLOCKS = 20  # 2**20 paths of up to 20 products each: minutes already


@dataclass(frozen=True)
class Sizes:
    """Chapter 5's experiment in one profile: the nets' width, the residual depths whose paths are
    measured, the depth of the plain and residual twins of the lesion study, the recipe, how many test
    samples the Jacobians are taken at, random lesions drawn per number of deleted blocks, and the
    numbers of blocks at which dynamic programming is timed against brute force."""

    width: int
    depths: tuple[int, ...]
    lesion_depth: int
    recipe: Recipe
    samples: int
    lesion_draws: int
    timing_blocks: tuple[int, ...]


# Quick: 3 residual depths, a plain twin and a net without blocks × 3 seeds, trained together.
SIZES = {
    "quick": Sizes(width=32, depths=(8, 20, 56), lesion_depth=20,
                   recipe=Recipe(steps=400, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                   samples=128, lesion_draws=4, timing_blocks=(2, 4, 6, 8, 10, 12)),
    "full": Sizes(width=64, depths=(8, 20, 56, 110), lesion_depth=20,
                  recipe=Recipe(steps=1000, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9),
                  samples=256, lesion_draws=8, timing_blocks=(2, 4, 6, 8, 10, 12, 14, 16)),
}


# --- counting paths ------------------------------------------------------------------------------

def path_counts(blocks: int) -> list[int]:
    """How many paths of each length ``k = 0 … n`` run through ``n`` residual blocks: ``C(n, k)``, 2ⁿ in all."""
    blocks = check_int("blocks", blocks, 0)
    return [math.comb(blocks, k) for k in range(blocks + 1)]


# --- the decomposition ----------------------------------------------------------------------------

def _check_jacobians(jacobians: object) -> torch.Tensor:
    jacobians = check_tensor("jacobians", jacobians)
    if jacobians.dim() < 3 or jacobians.shape[-1] != jacobians.shape[-2] or not jacobians.is_floating_point():
        raise ValueError("jacobians must be a floating-point tensor of shape (..., blocks, width, width), "
                         f"got {jacobians.dtype} of shape {tuple(jacobians.shape)}")
    return jacobians


@on_one_thread
def jacobian_by_path_length(jacobians: torch.Tensor) -> torch.Tensor:
    """``P_k = Σ_{|S|=k} P_S`` for ``k = 0 … n`` by dynamic programming: ``O(n²)`` products, not 2ⁿ.

    ``jacobians[..., l, :, :]`` is block ``l``'s branch Jacobian ``J_l`` (first block first). After block
    ``l`` the paths of length ``k`` either skip it or pass through it: ``P_k ← P_k + J_l P_{k-1}``.
    Returns shape ``(..., n + 1, width, width)``; ``Σ_k P_k = ∏_l (I + J_l)``.
    """
    jacobians = _check_jacobians(jacobians)
    *batch, blocks, width, _ = jacobians.shape
    by_length = jacobians.new_zeros(*batch, blocks + 1, width, width)
    by_length[..., 0, :, :] = torch.eye(width, dtype=jacobians.dtype, device=jacobians.device)
    for block in range(blocks):  # lengths 1 … block + 1 gain the paths that end in this block
        through = jacobians[..., block, None, :, :] @ by_length[..., : block + 1, :, :]
        by_length = torch.cat([by_length[..., :1, :, :], by_length[..., 1: block + 2, :, :] + through,
                               by_length[..., block + 2:, :, :]], dim=-3)
    return by_length


@on_one_thread
def jacobian_by_path_length_brute_force(jacobians: torch.Tensor) -> torch.Tensor:
    """The same ``P_k`` as :func:`jacobian_by_path_length`, by enumerating all 2ⁿ paths one by one:
    ``P_S = J_{l_k} ⋯ J_{l_1}`` for every subset ``S = {l_1 < … < l_k}``, added to ``P_{|S|}``.
    At most :data:`MAX_BRUTE_FORCE_BLOCKS` blocks."""
    jacobians = _check_jacobians(jacobians)
    *batch, blocks, width, _ = jacobians.shape
    if blocks > MAX_BRUTE_FORCE_BLOCKS:
        raise ValueError(f"jacobians holds {blocks} blocks: brute force enumerates 2**{blocks} paths; "
                         f"use at most {MAX_BRUTE_FORCE_BLOCKS} blocks, or jacobian_by_path_length")
    identity = torch.eye(width, dtype=jacobians.dtype, device=jacobians.device).expand(*batch, width, width)
    by_length = [torch.zeros_like(identity) for _ in range(blocks + 1)]
    for path in itertools.product((False, True), repeat=blocks):
        product = identity
        for block in itertools.compress(range(blocks), path):
            product = jacobians[..., block, :, :] @ product
        by_length[sum(path)] = by_length[sum(path)] + product
    return torch.stack(by_length, dim=-3)


@on_one_thread
def incoherent_gradient_energy(output_gradient: torch.Tensor, jacobians: torch.Tensor) -> torch.Tensor:
    """``E_k = Σ_{|S|=k} ‖g P_S‖²``: what ``‖g P_k‖²`` would be if the paths of length ``k`` were orthogonal.

    By dynamic programming from the last block back: ``Q_k ← Q_k + J_lᵀ Q_{k-1} J_l`` from ``Q_0 = gᵀg``,
    and ``E_k = tr Q_k``. ``output_gradient`` has shape ``(..., width)``; returns ``(..., n + 1)``.
    """
    jacobians = _check_jacobians(jacobians)
    output_gradient = check_tensor("output_gradient", output_gradient)
    if output_gradient.shape != jacobians.shape[:-3] + jacobians.shape[-1:]:
        raise ValueError(f"output_gradient must have shape {tuple(jacobians.shape[:-3] + jacobians.shape[-1:])} "
                         f"(one gradient per Jacobian stack), got {tuple(output_gradient.shape)}")
    blocks = jacobians.shape[-3]
    gram = output_gradient[..., :, None] * output_gradient[..., None, :]
    energy = torch.zeros(*gram.shape[:-2], blocks + 1, *gram.shape[-2:], dtype=gram.dtype, device=gram.device)
    energy[..., 0, :, :] = gram
    for done, block in enumerate(reversed(range(blocks))):  # after ``done`` blocks, lengths 0 … done exist
        jacobian = jacobians[..., block, None, :, :]
        through = jacobian.transpose(-1, -2) @ energy[..., : done + 1, :, :] @ jacobian
        energy = torch.cat([energy[..., :1, :, :], energy[..., 1: done + 2, :, :] + through,
                            energy[..., done + 2:, :, :]], dim=-3)
    return energy.diagonal(dim1=-2, dim2=-1).sum(-1)


def poisson_binomial(probabilities: Sequence[float]) -> np.ndarray:
    """The distribution of the number of successes of independent trials with these ``probabilities``.

    With ``p_l = r_l² / (1 + r_l²)`` it is ``e_k(r²) / ∏(1 + r_l²)``: the share of paths of length ``k``
    in ``Σ_S ‖g P_S‖²`` when each block scales a random direction by its branch gain ``r_l``.
    """
    try:
        probabilities = np.asarray(probabilities, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"probabilities must be a sequence of numbers, got {probabilities!r}"[:200]) from None
    if probabilities.ndim != 1 or not np.all((probabilities >= 0) & (probabilities <= 1)):
        raise ValueError(f"probabilities must be a 1-D sequence of numbers in [0, 1], got {probabilities!r}"[:200])
    pmf = np.array([1.0])
    for p in probabilities:
        pmf = np.concatenate([pmf * (1 - p), [0.0]]) + np.concatenate([[0.0], pmf * p])
    return pmf


# --- a net's blocks, Jacobians and gradients -------------------------------------------------------

def _split(model: nn.Module) -> tuple[nn.Sequential, list[Block], nn.Sequential]:
    """Stem, blocks and head of a net built by :func:`resbook.models.mlp` (a Sequential)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from resbook.models.mlp, got {type(model).__name__}")
    blocks_of(model)
    where = [i for i, m in enumerate(model) if isinstance(m, Block)]
    return model[: where[0]], list(model[where[0]: where[-1] + 1]), model[where[-1] + 1:]


def _check_decomposable(blocks: list[Block]) -> None:
    for index, block in enumerate(blocks):
        if not isinstance(block.after, nn.Identity):
            raise ValueError(f"model's block {index} applies {type(block.after).__name__} after the sum "
                             "(post-activation): its skip path is D_l, not I; build the net with preactivation=True")
        if float(block.identity_gate) != 1.0:
            raise ValueError(f"model's block {index} has identity gate {float(block.identity_gate):g}: only residual "
                             "blocks (gate 1) split into paths")


@dataclass
class NetJacobians:
    """At each sample: the branch Jacobians ``α_l ∂F_l/∂x`` (samples × n × width × width), the gradient
    of the sample's loss with respect to the last block's output ``g`` (samples × width), and the whole
    Jacobian ``∂x_n/∂x_0`` from autograd (samples × width × width)."""

    blocks: torch.Tensor
    output_gradient: torch.Tensor
    whole: torch.Tensor


def _batch_jacobian(function, x: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobians of a function that treats samples independently (eval mode): samples × out × in."""
    return torch.func.jacrev(lambda v: function(v).sum(0))(x).transpose(0, 1)


@on_one_thread
def net_jacobians(model: nn.Module, data: Dataset) -> NetJacobians:
    """:class:`NetJacobians` of a pre-activation residual net on ``data``, in evaluation mode (BatchNorm's
    running statistics, so samples are independent). The model's mode is restored afterwards."""
    stem, blocks, head = _split(model)
    _check_decomposable(blocks)
    check_dataset("data", data)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = stem(data.x)
        first, jacobians = x, []
        for block in blocks:
            jacobians.append(_batch_jacobian(lambda v, b=block: b.residual_scale * b.branch(v), x))
            with torch.no_grad():
                x = block(x)
        whole = _batch_jacobian(lambda v: nn.Sequential(*blocks)(v), first)
        last = x.detach().requires_grad_()
        loss = nn.functional.cross_entropy(head(last), data.y, reduction="sum")
        gradient, = torch.autograd.grad(loss, last)
    finally:
        model.train(was_training)
    return NetJacobians(torch.stack(jacobians, 1).detach(), gradient, whole.detach())


@on_one_thread
def with_data_statistics(model: nn.Module, data: Dataset) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are the exact mean and variance of ``data``
    at every layer (one pass in training mode, cumulative average): an initialised net as it normalises
    its first training batches, instead of with the default statistics (0, 1). In evaluation mode."""
    check_module("model", model)
    check_dataset("data", data)
    copied = copy.deepcopy(model)
    for norm in copied.modules():
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            norm.reset_running_stats()
            norm.momentum = None
    with torch.no_grad():
        copied.train()(data.x)
    return copied.eval()


@dataclass
class PathProfile:
    """Which path lengths carry one net's gradient on a set of samples, pooled over the samples.

    ``gradient_share[k] = ‖g P_k‖ / ‖g J‖`` (norms of the stacked per-sample vectors); the lengths' vectors
    add up to the whole gradient ``g J``, and a share above 1 means the other lengths cancel part of it.
    ``truncation_error[k] = ‖g J − Σ_{j≤k} g P_j‖ / ‖g J‖``: what is lost keeping only paths up to length ``k``.
    ``incoherent_share[k] = Σ_{|S|=k} ‖g P_S‖² / ‖g J‖²``: ``gradient_share[k]²`` if the paths of length
    ``k`` were orthogonal (see :attr:`coherence`).
    ``branch_gain[l] = (mean ‖J_l‖²_F / width)^½``, block ``l``'s gain on a random direction.
    ``decomposition_error``: the largest ``|Σ_k P_k − ∂x_n/∂x_0|`` over the largest entry.
    """

    gradient_share: np.ndarray
    truncation_error: np.ndarray
    incoherent_share: np.ndarray
    branch_gain: np.ndarray
    decomposition_error: float

    @property
    def blocks(self) -> int:
        return len(self.branch_gain)

    @property
    def peak_length(self) -> int:
        """The path length whose paths carry the largest part of the gradient."""
        return int(np.argmax(self.gradient_share))

    @property
    def predicted_share(self) -> np.ndarray:
        """``‖g P_k‖ / ‖g J‖`` predicted from the gains alone, for paths that neither align nor cancel:
        the square root of the Poisson-binomial distribution with ``p_l = r_l² / (1 + r_l²)``."""
        squared = self.branch_gain**2
        return np.sqrt(poisson_binomial(squared / (1 + squared)))

    @property
    def predicted_peak_length(self) -> int:
        return int(np.argmax(self.predicted_share))

    @property
    def mean_length(self) -> float:
        """The mean path length weighted by the squared share: ``Σ_k k ‖g P_k‖² / Σ_k ‖g P_k‖²``."""
        return float(np.average(np.arange(self.blocks + 1), weights=self.gradient_share**2))

    @property
    def predicted_mean_length(self) -> float:
        """The same mean for paths that neither align nor cancel: ``Σ_l r_l² / (1 + r_l²)``."""
        return float(np.sum(self.branch_gain**2 / (1 + self.branch_gain**2)))

    @property
    def coherence(self) -> np.ndarray:
        """``‖g P_k‖² / Σ_{|S|=k} ‖g P_S‖²`` per length: 1 if the paths of length ``k`` are orthogonal, more
        if they point the same way, less if they cancel; NaN where every path of that length vanishes."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.incoherent_share > 0, self.gradient_share**2 / self.incoherent_share, np.nan)

    @property
    def veit_share(self) -> np.ndarray:
        """Veit et al.'s measure, the number of paths of length ``k`` times the size of one:
        ``sqrt(C(n, k) Σ_{|S|=k} ‖g P_S‖²) / ‖g J‖``, the count times the root-mean-square path. Unlike
        :attr:`gradient_share` it ignores how the paths of one length cancel or reinforce each other."""
        counts = np.array(path_counts(self.blocks), dtype=float)
        return np.sqrt(counts * self.incoherent_share)

    @property
    def mean_coherence(self) -> float:
        """``Σ_k ‖g P_k‖² / Σ_S ‖g P_S‖²``: how much the paths of each length reinforce each other, overall."""
        return float(np.sum(self.gradient_share**2) / np.sum(self.incoherent_share))


@on_one_thread
def path_profile(model: nn.Module, data: Dataset, *, per_sample: bool = True) -> PathProfile:
    """The :class:`PathProfile` of a pre-activation residual net on ``data`` (evaluation mode), computed
    from the per-sample Jacobians of :func:`net_jacobians`.

    With ``per_sample`` (the default) each sample's output gradient ``g_s`` is first divided by the norm
    of its whole gradient ``‖g_s J_s‖``, so every sample weighs the same in the pooled shares: a trained
    net's loss gradient is concentrated on a few badly fitted samples, which would otherwise decide
    them alone. Without it the per-sample gradient vectors are pooled as they are."""
    check_bool("per_sample", per_sample)
    measured = net_jacobians(model, data)
    jacobians, gradient, whole = measured.blocks, measured.output_gradient, measured.whole
    if per_sample:
        size = torch.einsum("sd,sde->se", gradient, whole).norm(dim=1, keepdim=True)
        gradient = torch.where(size > 0, gradient / size.clamp_min(torch.finfo(size.dtype).tiny), gradient)
    by_length = jacobian_by_path_length(jacobians)
    error = float((by_length.sum(1) - whole).abs().max() / whole.abs().max())
    contributions = torch.einsum("sd,skde->ske", gradient, by_length)  # g P_k per sample
    total = torch.einsum("sd,sde->se", gradient, whole)
    norm = float(total.square().sum().sqrt())
    share = contributions.square().sum((0, 2)).sqrt() / norm
    kept = total[:, None, :] - contributions.cumsum(1)
    truncation = kept.square().sum((0, 2)).sqrt() / norm
    incoherent = incoherent_gradient_energy(gradient, jacobians).sum(0) / norm**2
    gain = (jacobians.square().sum((-1, -2)).mean(0) / jacobians.shape[-1]).sqrt()
    return PathProfile(*(t.double().cpu().numpy() for t in (share, truncation, incoherent, gain)), error)


@on_one_thread
@torch.no_grad()
def correction_sizes(model: nn.Module, data: Dataset) -> np.ndarray:
    """The boosting view: ``‖α_l F_l(x)‖ / ‖x‖`` at every block's input ``x``, mean over ``data``'s samples,
    in evaluation mode (the model's mode is restored)."""
    stem, blocks, _ = _split(model)
    check_dataset("data", data)
    was_training = model.training
    model.eval()
    try:
        x, sizes = stem(data.x), []
        for block in blocks:
            correction = block.residual_scale * block.branch(x)
            sizes.append(float((correction.norm(dim=1) / x.norm(dim=1).clamp_min(1e-12)).mean()))
            x = block(x)
    finally:
        model.train(was_training)
    return np.array(sizes)


# --- the lesion study -----------------------------------------------------------------------------

def _check_block_indices(name: str, indices: object, blocks: int) -> tuple[int, ...]:
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence):
        raise TypeError(f"{name} must be a sequence of block indices, got {type(indices).__name__}")
    checked = tuple(check_int(f"{name}[{i}]", index, 0, blocks - 1) for i, index in enumerate(indices))
    if len(set(checked)) != len(checked):
        raise ValueError(f"{name} must name each block at most once, got {checked}")
    return checked


def delete_blocks(model: nn.Module, deleted: Sequence[int]) -> nn.Module:
    """A copy of ``model`` in which the blocks ``deleted`` (indices from 0, first block first) pass their
    input on unchanged: identity gate 1 and residual scale ``α = 0``, so ``y = x``, in a residual or a
    plain net alike (for a plain block that also removes the only path through it)."""
    deleted = _check_block_indices("deleted", deleted, len(blocks_of(model)))
    copied = copy.deepcopy(model)
    blocks = blocks_of(copied)
    for index in deleted:
        blocks[index].identity_gate.fill_(1.0)
        blocks[index].residual_scale.fill_(0.0)
    return copied


@on_one_thread
@torch.no_grad()
def accuracy_without_direct_term(model: nn.Module, data: Dataset, index: int) -> float:
    """Test accuracy of a pre-activation residual net when block ``index``'s branch output ``F(x)`` is
    removed from the final stream only: ``x_n - α F(x_{index})``. Every later block still reads a stream
    that contains it, so this removes the paths that end at the block, not what it does to later blocks'
    inputs (which :func:`delete_blocks` removes too)."""
    check_dataset("data", data)
    if data.task != "classification":
        raise ValueError(f"accuracy_without_direct_term needs a classification data set; {data.name!r} is {data.task}")
    stem, blocks, head = _split(model)
    _check_decomposable(blocks)
    index = check_int("index", index, 0, len(blocks) - 1)
    was_training = model.training
    model.eval()
    try:
        x = stem(data.x)
        for position, block in enumerate(blocks):
            if position == index:
                direct = block.residual_scale * block.branch(x)
            x = block(x)
        predicted = head(x - direct).argmax(1)
    finally:
        model.train(was_training)
    return float((predicted == data.y).float().mean())


def swap_blocks(model: nn.Module, pairs: Sequence[tuple[int, int]]) -> nn.Module:
    """A copy of ``model`` (an ``nn.Sequential`` of :func:`resbook.models.mlp`) with each pair of blocks
    ``(i, j)`` in ``pairs`` trading places; every block is named at most once."""
    stem, blocks, head = _split(model)
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not all(
            isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
        raise TypeError(f"pairs must be a sequence of (i, j) pairs of block indices, got {pairs!r}"[:200])
    flat = _check_block_indices("pairs", [index for pair in pairs for index in pair], len(blocks))
    order = list(range(len(blocks)))
    for first, second in zip(flat[::2], flat[1::2]):
        order[first], order[second] = order[second], order[first]
    copied = copy.deepcopy(model)
    _, copied_blocks, _ = _split(copied)
    return nn.Sequential(*copied[: len(stem)], *(copied_blocks[i] for i in order), *copied[len(stem) + len(blocks):])


@dataclass(frozen=True)
class Lesion:
    """One variant of a trained net: ``delete_blocks(swap_blocks(net, swapped), deleted)``, the pairs of blocks
    ``swapped`` trading places first, then the blocks at positions ``deleted`` (from 0) deleted.
    ``Lesion()`` is the net itself."""

    deleted: tuple[int, ...] = ()
    swapped: tuple[tuple[int, int], ...] = ()


def _lesioned_state(model: nn.Sequential, lesion: Lesion, positions: list[int],
                    name: str = "lesion") -> dict[str, torch.Tensor]:
    """The parameters and buffers of ``model`` with ``lesion`` (the argument ``name``) applied, by name,
    without copying the net."""
    if not isinstance(lesion, Lesion):
        raise TypeError(f"lesions must hold resbook.paths.Lesion objects, got {type(lesion).__name__}")
    flat = _check_block_indices(f"{name}.swapped", [i for pair in lesion.swapped for i in pair], len(positions))
    deleted = _check_block_indices(f"{name}.deleted", lesion.deleted, len(positions))
    order = list(range(len(positions)))
    for first, second in zip(flat[::2], flat[1::2]):
        order[first], order[second] = order[second], order[first]
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    source = {str(p): str(positions[order[i]]) for i, p in enumerate(positions)}
    lesioned = {}
    for name in state:
        head, _, rest = name.partition(".")
        lesioned[name] = state[f"{source.get(head, head)}.{rest}"]
        if head in source and positions.index(int(head)) in deleted and rest in (
                "identity_gate", "residual_scale"):
            lesioned[name] = torch.ones_like(lesioned[name]) * (rest == "identity_gate")
    return lesioned


@on_one_thread
@torch.no_grad()
def lesion_accuracies(model: nn.Module, lesions: Sequence[Lesion], data: Dataset) -> np.ndarray:
    """The accuracy on ``data`` (evaluation mode) of every lesioned variant of ``model``, all at once: each
    variant's parameters and buffers are gathered from the net's own (no copies), stacked, and one ``vmap``
    of the forward pass runs them all. Variants differ only in the buffers ``g``, ``α`` and the order of
    the blocks, so they share an architecture."""
    _split(model)
    if isinstance(lesions, (str, bytes)) or not isinstance(lesions, Sequence) or not lesions:
        raise TypeError(f"lesions must be a non-empty sequence of Lesion, got {lesions!r}"[:200])
    check_dataset("data", data)
    positions = [i for i, m in enumerate(model) if isinstance(m, Block)]
    states = [_lesioned_state(model, lesion, positions, f"lesions[{i}]") for i, lesion in enumerate(lesions)]
    stacked = {name: torch.stack([state[name] for state in states]) for name in states[0]}
    buffers = {name for name, _ in model.named_buffers()}
    params = {name: value for name, value in stacked.items() if name not in buffers}
    base = copy.deepcopy(model).eval().to("meta")
    logits = vmap(lambda p, b: functional_call(base, (p, b), (data.x,)))(
        params, {name: value for name, value in stacked.items() if name in buffers})
    return (logits.argmax(-1) == data.y).float().mean(-1).cpu().numpy()


def random_deletions(blocks: int, count: int, draws: int, seed: int) -> list[tuple[int, ...]]:
    """``draws`` random sets of ``count`` blocks out of ``blocks`` (sorted indices), drawn with ``seed``."""
    blocks = check_int("blocks", blocks, 1)
    count = check_int("count", count, 0, blocks)
    draws = check_int("draws", draws, 1)
    generator = np.random.default_rng(check_int("seed", seed, 0, 2**64 - 1))
    return [tuple(sorted(int(i) for i in generator.choice(blocks, count, replace=False))) for _ in range(draws)]


def random_swaps(blocks: int, count: int, draws: int, seed: int) -> list[tuple[tuple[int, int], ...]]:
    """``draws`` random sets of ``count`` disjoint pairs of blocks, drawn with ``seed``."""
    blocks = check_int("blocks", blocks, 2)
    count = check_int("count", count, 0, blocks // 2)
    picks = random_deletions(blocks, 2 * count, draws, seed)
    generator = np.random.default_rng(seed + 1)
    pairs = []
    for pick in picks:
        shuffled = [int(i) for i in generator.permutation(pick)]
        pairs.append(tuple(zip(shuffled[::2], shuffled[1::2])))
    return pairs


@dataclass
class LesionStudy:
    """Test accuracies of one trained net and its lesioned variants: ``single[l]`` with block ``l`` deleted,
    ``all_deleted`` with every block deleted (stem and head alone), ``deleted[i]`` the ``draws`` variants
    with ``deleted_counts[i]`` random blocks deleted, ``swapped[i]`` those with ``swap_counts[i]`` random
    pairs of blocks swapped."""

    intact: float
    single: np.ndarray
    all_deleted: float
    deleted_counts: tuple[int, ...]
    deleted: np.ndarray
    swap_counts: tuple[int, ...]
    swapped: np.ndarray


def lesion_study(model: nn.Module, data: Dataset, *, draws: int, seed: int) -> LesionStudy:
    """Delete each block, all blocks, ``k`` random blocks (ten values of ``k`` from 0 to ``n``) and swap ``k``
    random pairs (seven from 0 to ``n/2``), ``draws`` times each, drawn with ``seed``; all evaluated in one batch."""
    blocks = len(_split(model)[1])
    draws = check_int("draws", draws, 1)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    deleted_counts = tuple(sorted({round(i * blocks / 9) for i in range(10)}))  # at most ten counts, 0 … n
    swap_counts = tuple(sorted({round(i * (blocks // 2) / 6) for i in range(7)}))  # at most seven, 0 … n/2
    lesions = [Lesion(), *(Lesion((block,)) for block in range(blocks)), Lesion(tuple(range(blocks)))]
    for count in deleted_counts:
        lesions += [Lesion(d) for d in random_deletions(blocks, count, draws, seed + count)]
    for count in swap_counts:
        lesions += [Lesion(swapped=s) for s in random_swaps(blocks, count, draws, seed + blocks + 1 + count)]
    accuracy = lesion_accuracies(model, lesions, data)
    randomly = accuracy[blocks + 2:]
    return LesionStudy(float(accuracy[0]), accuracy[1: blocks + 1], float(accuracy[blocks + 1]),
                       deleted_counts, randomly[: len(deleted_counts) * draws].reshape(-1, draws),
                       swap_counts, randomly[len(deleted_counts) * draws:].reshape(-1, draws))


@on_one_thread
def decomposition_seconds(jacobians: torch.Tensor, repeats: int = 3) -> tuple[float, float]:
    """Wall-clock seconds of :func:`jacobian_by_path_length` and of
    :func:`jacobian_by_path_length_brute_force` on the same ``jacobians``: the fastest of ``repeats`` runs
    each, or of the runs made before one second has passed (a long run is not repeated)."""
    repeats = check_int("repeats", repeats, 1)
    seconds = []
    for decompose in (jacobian_by_path_length, jacobian_by_path_length_brute_force):
        runs = []
        while len(runs) < repeats and sum(runs) < 1.0:
            start = time.perf_counter()
            decompose(jacobians)
            runs.append(time.perf_counter() - start)
        seconds.append(min(runs))
    return seconds[0], seconds[1]
