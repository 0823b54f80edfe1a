"""Plain and residual MLPs, built from one block so that the only difference is the identity path.

A block computes ``y = g·x + α·F(x)``. With the gate ``g = 1`` it is the residual block
``y = x + F(x)`` of He et al. (2016); with ``g = 0`` the identity path is cut and the same two
layers form a plain net. The gate ``g`` and the residual scale ``α`` are buffers, not settings: nets
that differ only in them (plain and residual twins; branch scales such as 1/√L; ``α = 0`` for a
deleted block) share one architecture, so they can be trained side by side (see :mod:`resbook.batched`).

Depth counts weight (Linear) layers as ResNet does: a stem, two per block, and a head, so a
``depth``-layer net has ``(depth - 2) / 2`` blocks.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_bool, check_choice, check_int, check_positive_float
from ._limits import check_bytes

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}
NORMS = ("batch", "layer", None)
MAX_RESIDUAL_SCALE = 1e3  # beyond this a few blocks overflow float32
_BLOCK_OBJECT_BYTES = 20_000  # the Python objects of one block (its modules), measured with tracemalloc
KINDS = ("plain", "residual")  # the two nets every comparison in the book is about: g = 0 and g = 1


class Block(nn.Module):
    """``y = act(g·x + α·F(x))``: a residual block when the identity gate ``g`` is 1, two plain layers when it is 0."""

    def __init__(self, branch: nn.Module, identity_gate: float, residual_scale: float, after: nn.Module):
        super().__init__()
        self.branch = branch
        self.register_buffer("identity_gate", torch.tensor(float(identity_gate)))
        self.register_buffer("residual_scale", torch.tensor(float(residual_scale)))
        self.after = after  # the activation after the sum (post-activation) or nn.Identity (pre-activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The book's subject in one line: y = x + F(x), the identity path gated by g.
        return self.after(self.identity_gate * x + self.residual_scale * self.branch(x))


def _norm(norm: str | None, width: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def _linear(fan_in: int, fan_out: int, activation: str) -> nn.Linear:
    """A Linear layer with He (Kaiming) initialisation for ReLU-like activations, LeCun's otherwise."""
    layer = nn.Linear(fan_in, fan_out)
    gain_for = "relu" if activation in ("relu", "gelu") else "linear"
    nn.init.kaiming_normal_(layer.weight, nonlinearity=gain_for)
    nn.init.zeros_(layer.bias)
    return layer


def _branch(width: int, norm: str | None, activation: str, preactivation: bool) -> nn.Sequential:
    act = ACTIVATIONS[activation]
    if preactivation:  # He et al. (2016b): norm -> act -> linear, twice
        return nn.Sequential(_norm(norm, width), act(), _linear(width, width, activation),
                             _norm(norm, width), act(), _linear(width, width, activation))
    return nn.Sequential(_linear(width, width, activation), _norm(norm, width), act(),
                         _linear(width, width, activation), _norm(norm, width))


def _zero_last_affine(branch: nn.Sequential) -> None:
    """Make the branch output exactly zero at initialisation: zero its last scaling layer."""
    last = [m for m in branch if isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.LayerNorm))][-1]
    nn.init.zeros_(last.weight)
    if last.bias is not None:
        nn.init.zeros_(last.bias)


def mlp(depth: int, width: int, in_features: int, out_features: int, *, residual: bool,
        norm: str | None = "batch", activation: str = "relu", preactivation: bool = False,
        residual_scale: float = 1.0, zero_init_branch: bool = False) -> nn.Sequential:
    """A ``depth``-layer MLP: stem, ``(depth - 2) / 2`` blocks of two layers, head.

    Args:
        residual: keep the identity path (``y = x + F(x)``) or cut it (``y = F(x)``).
        norm: ``"batch"``, ``"layer"`` or ``None``.
        preactivation: norm and activation before each Linear (He et al. 2016b) instead of after.
        residual_scale: ``α`` in ``y = x + α·F(x)``.
        zero_init_branch: start every branch at ``F = 0``, so each residual block starts as the identity.

    A net whose parameters and modules would take more than 4 GiB (:data:`resbook._limits.MAX_BYTES`)
    is refused with a ``ValueError`` before anything is allocated.
    """
    check_int("depth", depth, 2)
    if depth % 2:
        raise ValueError(f"depth counts weight layers (stem + 2 per block + head), so it must be even; got {depth}")
    check_int("width", width, 1)
    check_int("in_features", in_features, 1)
    check_int("out_features", out_features, 1)
    check_bool("residual", residual)
    check_choice("norm", norm, NORMS)
    check_choice("activation", activation, ACTIVATIONS)
    check_bool("preactivation", preactivation)
    check_bool("zero_init_branch", zero_init_branch)
    if check_positive_float("residual_scale", residual_scale, allow_zero=True) > MAX_RESIDUAL_SCALE:
        raise ValueError(f"residual_scale must be at most {MAX_RESIDUAL_SCALE:g}, got {residual_scale!r}")
    if zero_init_branch and not residual:
        raise ValueError("zero_init_branch=True needs residual=True: a plain net with zero branches outputs a constant")
    check_bytes(f"mlp(depth={depth}, width={width}, in_features={in_features}, out_features={out_features})",
                _parameter_count(depth, width, in_features, out_features) * torch.get_default_dtype().itemsize
                + (depth // 2) * _BLOCK_OBJECT_BYTES, "lower depth or width")

    act = ACTIVATIONS[activation]
    stem: list[nn.Module] = [_linear(in_features, width, activation)]
    head: list[nn.Module] = [nn.Linear(width, out_features)]
    if preactivation:
        head = [_norm(norm, width), act()] + head
    else:
        stem += [_norm(norm, width), act()]
    blocks = []
    for _ in range((depth - 2) // 2):
        branch = _branch(width, norm, activation, preactivation)
        if zero_init_branch:
            _zero_last_affine(branch)
        after = nn.Identity() if preactivation else act()
        blocks.append(Block(branch, 1.0 if residual else 0.0, residual_scale, after))
    return nn.Sequential(*stem, *blocks, *head)


def _parameter_count(depth: int, width: int, in_features: int, out_features: int) -> int:
    """An upper bound on the numbers (parameters and buffers) an :func:`mlp` holds, computed before
    building it: its Linear layers, four per feature of every normalisation layer, the blocks' g and α."""
    blocks = (depth - 2) // 2
    linear = in_features * width + width + blocks * 2 * (width * width + width) + width * out_features + out_features
    return linear + (2 * blocks + 2) * (4 * width + 1) + 2 * blocks  # + each norm's batch count, each block's g, α


def residual_mlp(depth: int, width: int, in_features: int, out_features: int, **options) -> nn.Sequential:
    """A residual MLP: every block computes ``y = x + F(x)``. Options as in :func:`mlp`."""
    return mlp(depth, width, in_features, out_features, residual=True, **options)


def plain_mlp(depth: int, width: int, in_features: int, out_features: int, **options) -> nn.Sequential:
    """The same MLP with the identity path cut: every block computes ``y = F(x)``. Options as in :func:`mlp`."""
    return mlp(depth, width, in_features, out_features, residual=False, **options)


def weight_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's Linear layers from input to output; ``len(weight_layers(m))`` is its depth."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def blocks_of(model: nn.Module) -> list[Block]:
    """The model's :class:`Block` s (residual or plain) from input to output; ValueError if it has none."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if isinstance(m, Block)]
    if not found:
        raise ValueError("model has no resbook.models.Block: build it with resbook.models.mlp")
    return found


def twins(depth: int, width: int, in_features: int, out_features: int, *, seed: int,
          kinds: Sequence[str] = KINDS, **options) -> tuple[nn.Sequential, ...]:
    """Nets of the given ``kinds`` ("plain", "residual") from the same initial weights, drawn with
    ``seed``: they differ in the identity gate alone. Options as in :func:`mlp`.

    The caller's random state is left as it was (the weights are drawn inside ``torch.random.fork_rng``).
    """
    seed = check_int("seed", seed, 0, 2**64 - 1)
    if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds:
        raise TypeError(f"kinds must be a non-empty sequence of {KINDS}, got {kinds!r}")
    nets = []
    for kind in kinds:
        check_choice("kinds[i]", kind, KINDS)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets.append(mlp(depth, width, in_features, out_features, residual=kind == "residual", **options))
    return tuple(nets)


def set_residual_scale(model: nn.Module, scale: float) -> nn.Module:
    """Set ``α`` of every block of ``model`` (in place) and return the model: e.g. 1/√L, or 0 to delete blocks."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    scale = check_positive_float("scale", scale, allow_zero=True)
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    if not blocks:
        raise ValueError("model has no resbook.models.Block whose residual scale could be set")
    for block in blocks:
        block.residual_scale.fill_(scale)
    return model
