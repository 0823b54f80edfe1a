"""Train many independent nets at once: seeds, plain next to residual, learning rates side by side.

Small MLPs on a CPU are bound by the overhead of each operation more than by arithmetic, so ``k``
nets trained together cost less than ``k`` runs one after another. The nets' parameters and
buffers are stacked along a new first dimension (``torch.func.stack_module_state``) and one
forward pass computes every net on its own minibatch. Nets that differ only in buffers — the
identity gate ``g`` and the residual scale ``α`` of :mod:`resbook.models` — share an architecture,
so plain and residual twins, or nets with different ``α``, share a run.

Two ways to batch the forward pass:

* ``"layers"``: each Linear and BatchNorm1d layer batched by hand (one ``baddbmm``, one
  ``batch_norm``), the rest of the model — :class:`~resbook.models.Block`'s ``y = g·x + α·F(x)``,
  ``nn.Sequential``, ``nn.Identity`` and the activations of ``resbook.models.ACTIVATIONS`` — run as
  written. Faster on a CPU (``tools/bench_batched.py``). Used by ``"auto"`` for nets built from
  those modules only.
* ``"vmap"``: ``torch.func.vmap`` over ``functional_call``, for any other architecture (LayerNorm,
  Dropout, ...), with ``randomness="different"``: each net draws its own dropout masks, so a net
  with dropout does not see the masks it would draw alone.

What is guaranteed. Each net keeps its own minibatch order, BatchNorm statistics, optimizer state,
learning rate, gradient clipping (its own gradient norm) and divergence (a net whose loss becomes
NaN or infinite stops there; the others go on). The arithmetic is the same as
:func:`resbook.training.train`'s, but sums are taken in another order (``bmm`` instead of ``mm``,
one batch norm over all nets' features), so a net's run equals its solo run up to float32 rounding.
The first steps agree within 1e-5 whatever the recipe, and an ordinary run stays that close for
tens of steps (``tests/test_batched.py``). Where training is chaotic (a large learning rate, a deep
plain net) the rounding differences grow with every step, and nothing beyond the first steps is
guaranteed. Measured on BatchNorm nets (depth 8, width 32) at lr 5 on spirals: with ``"vmap"`` the
gap grew about tenfold a step (1e-7 at step 1, 7e-6 at step 4, the size of the loss by step 10),
and of 8 residual seeds that diverged alone at steps 44–86, 7 diverged batched at other steps and
one not at all; with ``"layers"`` the same nets stayed within 3e-7 for 10 steps and diverged at the
same steps as alone — an observation about those nets, not a guarantee. Chapters therefore compare
distributions over seeds, never one run with its solo twin.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from . import cost
from ._checks import check_choice, check_dataset, check_int
from .data import Dataset
from .models import ACTIVATIONS, Block
from .recipe import Recipe, check_recipes, make_optimizer
from .training import History, batch_indices, check_fits, loss_function, take_step

BATCHINGS = ("auto", "layers", "vmap")
Stack = dict[str, torch.Tensor]  # a parameter or buffer name -> that tensor of every net, stacked on dim 0


class _StackedLinear(nn.Module):
    """A Linear layer of every net at once: ``y[i] = x[i] W[i]ᵀ + b[i]`` for net ``i``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight, self.bias = weight, bias  # the stacks (nets × out × in, nets × out), not copies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class _StackedBatchNorm(nn.Module):
    """BatchNorm1d of every net at once: each net's features normalised with that net's own statistics.

    Net ``i``'s features become channels ``i·C … (i+1)·C - 1`` of one ordinary batch norm, whose
    running statistics are views of the stacked buffers, so they are updated in place per net.
    """

    def __init__(self, norm: nn.BatchNorm1d, **stacks: torch.Tensor):
        super().__init__()
        self.momentum, self.eps = norm.momentum, norm.eps
        self.weight, self.bias = stacks["weight"], stacks["bias"]
        self.running_mean, self.running_var = stacks["running_mean"], stacks["running_var"]
        self.num_batches_tracked = stacks["num_batches_tracked"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nets, samples, features = x.shape
        self.num_batches_tracked.add_(1)
        y = F.batch_norm(x.transpose(0, 1).reshape(samples, nets * features),
                         self.running_mean.view(-1), self.running_var.view(-1),
                         self.weight.view(-1), self.bias.view(-1), True, self.momentum, self.eps)
        return y.view(samples, nets, features).transpose(0, 1)


# Modules the "layers" batching runs as written on stacked inputs: containers, the block, the activations.
_RUN_AS_WRITTEN = (nn.Sequential, Block, nn.Identity, *ACTIVATIONS.values())


def _has_stacked_version(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return module.bias is not None
    if isinstance(module, nn.BatchNorm1d):
        return module.affine and module.track_running_stats and module.momentum is not None
    return type(module) in _RUN_AS_WRITTEN


def _stacked_model(model: nn.Module, params: Stack, buffers: Stack) -> nn.Module:
    """A copy of ``model`` that runs every stacked net at once (inputs and outputs: nets × samples × features).

    Its Linear and BatchNorm1d layers are replaced by stacked versions holding the stacks; the rest,
    ``y = g·x + α·F(x)`` and the activations, runs as written in :mod:`resbook.models`.
    """
    stacks, base = {**params, **buffers}, copy.deepcopy(model).to("meta")
    for parent_name, parent in list(base.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Linear, nn.BatchNorm1d)):
                prefix = f"{parent_name}.{name}".lstrip(".")
                own = {key: stacks[f"{prefix}.{key}"]
                       for key, _ in [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]}
                stacked = _StackedLinear(**own) if isinstance(child, nn.Linear) else _StackedBatchNorm(child, **own)
                setattr(parent, name, stacked)
    for name, _ in list(base.named_buffers()):  # what is left: each Block's gate g and scale α
        if stacks[name].dim() != 1:
            raise ValueError(f"batching='layers' needs every buffer outside Linear and BatchNorm1d layers to be "
                             f"one number per net; {name!r} has shape {tuple(stacks[name].shape[1:])} per net "
                             "(use batching='vmap')")
        module_name, _, key = name.rpartition(".")
        base.get_submodule(module_name).register_buffer(key, stacks[name].view(-1, 1, 1))  # broadcasts over x
    return base


def _vmapped_model(model: nn.Module, params: Stack, buffers: Stack) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` mapped over the stacked nets with ``torch.func.vmap`` (in and out: nets × samples × features)."""
    base = copy.deepcopy(model).to("meta")
    mapped = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), randomness="different")
    return partial(mapped, params, buffers)


def _choose_batching(model: nn.Module, batching: str) -> Callable[..., Callable[[torch.Tensor], torch.Tensor]]:
    check_choice("batching", batching, BATCHINGS)
    stackable = all(_has_stacked_version(m) for m in model.modules())
    if batching == "layers" and not stackable:
        raise ValueError("batching='layers' needs a net built from Linear, BatchNorm1d, activations and "
                         "resbook Blocks only; use batching='vmap' for this architecture")
    return _stacked_model if batching == "layers" or (batching == "auto" and stackable) else _vmapped_model


def _architecture(model: nn.Module) -> list[tuple]:
    """What must agree for nets to be stacked: every module's type and settings, every tensor's name and shape."""
    modules = [(name, type(m).__name__, sorted((k, repr(v)) for k, v in vars(m).items()
                                               if not k.startswith("_") and k != "training"))
               for name, m in model.named_modules()]
    tensors = [(name, tuple(t.shape), t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()]]
    return modules + tensors


def architecture_key(model: nn.Module) -> tuple:
    """A hashable summary of :func:`_architecture`: nets with equal keys can be trained together."""
    return tuple((entry[0], entry[1], tuple(map(tuple, entry[2]))) if isinstance(entry[2], list) else entry
                 for entry in _architecture(model))


def _check_models(models: Sequence[nn.Module], seeds: Sequence[int]) -> None:
    if isinstance(models, nn.Module) or not isinstance(models, Sequence):
        raise TypeError(f"models must be a sequence of torch.nn.Module, got {type(models).__name__}")
    if len(models) == 0:
        raise ValueError("models must hold at least one net, got an empty sequence")
    for i, model in enumerate(models):
        if not isinstance(model, nn.Module):
            raise TypeError(f"models[{i}] must be a torch.nn.Module, got {type(model).__name__}")
    if len({id(m) for m in models}) < len(models):
        raise ValueError("models must be distinct objects: the same net appears twice")
    first = _architecture(models[0])
    for i, model in enumerate(models[1:], 1):
        if _architecture(model) != first:
            raise ValueError(f"models[{i}] does not have the architecture of models[0] (module types, settings, "
                             "parameter and buffer names and shapes must agree)")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a sequence of ints, one per net, got {type(seeds).__name__}")
    if len(seeds) != len(models):
        raise ValueError(f"seeds must give one seed per net: {len(models)} models but {len(seeds)} seeds")
    for i, seed in enumerate(seeds):
        check_int(f"seeds[{i}]", seed, 0, 2**64 - 1)


@torch.no_grad()
def _write_back(model: nn.Module, params: Stack, buffers: Stack, position: int) -> None:
    """Copy the stacked net at ``position`` into ``model``'s own parameters and buffers."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        tensor.copy_((params if name in params else buffers)[name][position])


class _PerNet(NamedTuple):
    """The per-net settings of the running nets, one entry each (see ``resbook.recipe.PER_NET``)."""

    lr: torch.Tensor  # learning rates
    clip_norm: torch.Tensor  # inf where a net is not clipped
    normalise: torch.Tensor  # bool: per-layer normalised step

    @classmethod
    def of(cls, recipes: Sequence[Recipe], device: torch.device) -> "_PerNet":
        clip = [math.inf if r.clip_norm is None else r.clip_norm for r in recipes]
        return cls(torch.tensor([r.lr for r in recipes], device=device),
                   torch.tensor(clip, device=device),
                   torch.tensor([r.normalise_per_layer for r in recipes], device=device))

    def keep(self, keep: torch.Tensor) -> "_PerNet":
        return _PerNet(*(t[keep] for t in self))

    @property
    def shared_lr(self) -> bool:
        return bool((self.lr == self.lr[0]).all())


def _per_net(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` (one per net) shaped to broadcast over a stacked tensor ``like`` (nets × ...)."""
    return values.view(-1, *[1] * (like.dim() - 1)).to(like.dtype)


def _norms(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each stacked tensor's Euclidean norm per net (one value per net)."""
    return [torch.linalg.vector_norm(t, dim=tuple(range(1, t.dim()))) if t.dim() > 1 else t.abs() for t in tensors]


@torch.no_grad()
def _prepare_gradients(params: Sequence[torch.Tensor], settings: _PerNet) -> None:
    """:func:`resbook.training.prepare_gradients` for every net at once, each with its own norms."""
    if settings.normalise.any():
        matrices = [p for p in params if p.dim() >= 3 and p.grad is not None]  # nets × out × in (× ...)
        for p, gradient_norm, weight_norm in zip(matrices, _norms([p.grad for p in matrices]), _norms(matrices)):
            scale = torch.where(settings.normalise & (gradient_norm > 0) & (weight_norm > 0),
                                weight_norm / gradient_norm, torch.ones_like(gradient_norm))
            p.grad.mul_(_per_net(scale, p))
    if torch.isfinite(settings.clip_norm).any():
        grads = [p.grad for p in params if p.grad is not None]
        total = torch.stack([n.square() for n in _norms(grads)]).sum(0).sqrt()  # each net's whole gradient
        scale = (settings.clip_norm / (total + 1e-6)).clamp(max=1.0)  # as torch.nn.utils.clip_grad_norm_
        for g in grads:
            g.mul_(_per_net(scale, g))


def _step(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], settings: _PerNet, factor: float) -> bool:
    """One optimizer step at each net's learning rate times the schedule's ``factor``; False on overflow.

    With one learning rate for all, the optimizer takes it directly. Otherwise it steps at learning
    rate ``factor`` and each net's move is scaled by its own rate: every optimizer of
    :mod:`resbook.recipe` moves the weights in proportion to the learning rate.
    """
    if settings.shared_lr:
        for group in optimizer.param_groups:
            group["lr"] = float(settings.lr[0]) * factor
        return take_step(optimizer)
    for group in optimizer.param_groups:
        group["lr"] = factor
    with torch.no_grad():
        before = [p.detach().clone() for p in params]
        if not take_step(optimizer):
            return False
        # p ← before + lr·(p − before), written as lerp(p, before, 1 − lr)
        torch._foreach_lerp_([p.detach() for p in params], before, [_per_net(1 - settings.lr, p) for p in params])
    return True


def _keep_only(keep: torch.Tensor, params: Stack, buffers: Stack, optimizer: torch.optim.Optimizer,
               recipe: Recipe) -> tuple[Stack, Stack, torch.optim.Optimizer]:
    """The stacks and a new optimizer restricted to the nets at positions ``keep``.

    Every piece of the optimizer's state that is a tensor with one slice per net (momentum, Adam's
    moments) is restricted the same way; the rest (e.g. Adam's step count, equal for all) is copied.
    """
    nets = next(iter(params.values())).shape[0]
    new_params = {name: p.detach()[keep].requires_grad_() for name, p in params.items()}
    new = make_optimizer(recipe, new_params.values(), lr=optimizer.param_groups[0]["lr"])
    for (name, old), p in zip(params.items(), new_params.values()):
        for key, value in optimizer.state[old].items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                if value.shape[0] != nets:
                    raise ValueError(f"optimizer state {key!r} of {name!r} has shape {tuple(value.shape)}, "
                                     f"not one slice per net ({nets})")
                value = value[keep]
            elif isinstance(value, torch.Tensor):
                value = value.clone()
            new.state[p][key] = value
    return new_params, {name: b[keep] for name, b in buffers.items()}, new


@torch.no_grad()
def _record_gradient_ratio(params: Stack, first_and_last: tuple[str, ...], diverged: list[int],
                           histories: list[History]) -> None:
    """Append each net's first-to-last Linear layer gradient ratio (as train() records it), but for nets
    that diverged at this step."""
    if not first_and_last:
        return
    first, last = (_norms([params[name].grad])[0] for name in first_and_last)
    for position, (ratio, history) in enumerate(zip((first / last).tolist(), histories)):
        if position not in diverged:
            history.gradient_ratio.append(ratio)


def _record(step: int, losses: list[float], histories: list[History]) -> list[int]:
    """Append each net's loss to its history; return the positions of the nets whose loss is NaN or infinite."""
    diverged = []
    for position, (loss, history) in enumerate(zip(losses, histories)):
        if math.isfinite(loss):
            history.loss.append(loss)
        else:
            history.diverged_at = step
            diverged.append(position)
    return diverged


def train_together(models: Sequence[nn.Module], data: Dataset, recipe: Recipe | Sequence[Recipe], *,
                   seeds: Sequence[int], batching: str = "auto",
                   on_step: Callable[[int, list[int], Stack], None] | None = None) -> list[History]:
    """Train every net of ``models`` in place, all at once, as :func:`resbook.training.train` trains one.

    Net ``i`` sees the minibatches of ``seeds[i]`` and is trained with ``recipe`` (one for all, or one
    per net: they may differ in learning rate, clipping and per-layer normalisation only). Each keeps
    its own BatchNorm statistics and optimizer state, and stops where its loss becomes NaN or infinite
    (``diverged_at``) while the others go on. The nets must share one architecture (plain and residual
    twins do). See the module's docstring for how closely this matches training each net alone.
    Before training, :func:`resbook.training.check_fits` refuses nets that do not fit ``data`` and a
    run whose estimated tensors (all nets together) exceed 4 GiB (:data:`resbook._limits.MAX_BYTES`).

    Args:
        batching: ``"layers"`` (hand-batched Linear and BatchNorm1d, faster), ``"vmap"`` (any
            architecture), or ``"auto"``: ``"layers"`` where the net allows it.
        on_step: if given, called after every step's update as ``on_step(step, running, params)``:
            ``step`` counts from 0, row ``i`` of every stacked parameter in ``params`` (name -> nets ×
            shape, detached; copy what you keep) belongs to ``models[running[i]]``; diverged nets have
            left the stacks. E.g. to record the weights along training.

    Returns:
        One :class:`History` per net; ``seconds`` is the wall time of the whole run.
    """
    _check_models(models, seeds)
    check_dataset("data", data)
    recipes = check_recipes(recipe, len(models))
    if on_step is not None and not callable(on_step):
        raise TypeError(f"on_step must be None or a function (step, running, params), got {on_step!r}")
    recipe, device = recipes[0], data.x.device
    check_fits(models[0], data, recipe.batch_size, nets=len(models), recipe=recipe)
    batches = torch.stack([batch_indices(len(data), recipe.batch_size, recipe.steps, s) for s in seeds]).to(device)
    batched_model, loss_of = _choose_batching(models[0], batching), vmap(loss_function(data.task))
    for model in models:
        model.to(device).train()
    params, buffers = stack_module_state(list(models))
    nets, settings = batched_model(models[0], params, buffers), _PerNet.of(recipes, device)
    optimizer = make_optimizer(recipe, params.values())
    running = list(range(len(models)))  # the model behind each position of the stacks
    linear = [f"{name}.weight" for name, m in models[0].named_modules() if isinstance(m, nn.Linear)]
    first_and_last = (linear[0], linear[-1]) if linear else ()
    histories, start = [History() for _ in models], time.perf_counter()
    for step in range(recipe.steps):
        index = batches[:, step]
        losses = loss_of(nets(data.x[index]), data.y[index])
        diverged = _record(step, losses.tolist(), [histories[i] for i in running])
        for position in diverged:  # a diverged net stops before its update, as in train()
            _write_back(models[running[position]], params, buffers, position)
        if len(diverged) == len(running):
            running = []
            break
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # the nets are independent: a diverged net's NaN reaches only its own gradients
        _record_gradient_ratio(params, first_and_last, diverged, [histories[i] for i in running])
        _prepare_gradients(list(params.values()), settings)
        if not _step(optimizer, list(params.values()), settings, recipe.lr_factor(step)):
            for model_index in running:  # the step size overflowed float32: as train() reports it
                histories[model_index].diverged_at = step + 1
            running = []
            break
        if diverged:
            keep = [position for position in range(len(running)) if position not in diverged]
            keep_index = torch.tensor(keep, device=device)
            params, buffers, optimizer = _keep_only(keep_index, params, buffers, optimizer, recipe)
            nets, settings = batched_model(models[0], params, buffers), settings.keep(keep_index)
            batches, running = batches[keep], [running[position] for position in keep]
        if on_step is not None:
            on_step(step, list(running), {name: p.detach() for name, p in params.items()})
    for position, model_index in enumerate(running):
        _write_back(models[model_index], params, buffers, position)
    seconds = time.perf_counter() - start
    for history in histories:
        history.seconds = seconds
    cost.log_run(models, recipe.batch_size, [len(h.loss) for h in histories], start, device)
    return histories


class Group(NamedTuple):
    """Nets of one architecture trained together: the models, one seed each, and the recipe (or one per net)."""

    models: Sequence[nn.Module]
    seeds: Sequence[int]
    recipe: Recipe | Sequence[Recipe]


def train_groups(groups: Sequence[Group], data: Dataset, *, workers: int | None = None,
                 batching: str = "auto") -> list[list[History]]:
    """Train several :class:`Group` s of nets, each with :func:`train_together`, groups side by side.

    The nets of one group share an architecture; the groups need not (a depth sweep: one group per
    depth). On a CPU, eager PyTorch spends a small net's step on per-operation overhead, which runs
    on one core; so the groups run on ``workers`` threads (default: the number of cores, at most the
    number of groups), each with one intra-op thread, and finish about ``workers`` times sooner. Each
    group's numbers do not depend on the others or on the scheduling. On a GPU the groups run one
    after another. Returns one list of histories per group, in the order given.
    """
    check_dataset("data", data)
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence) or len(groups) == 0:
        raise ValueError("groups must be a non-empty sequence of Group(models, seeds, recipe)")
    groups = [_check_group(i, group) for i, group in enumerate(groups)]
    every_net = [id(m) for group in groups for m in group.models]
    if len(set(every_net)) < len(every_net):
        raise ValueError("groups must not share nets: the same net appears in two groups (or twice in one)")
    if workers is None:
        workers = min(os.cpu_count() or 1, len(groups)) if data.x.device.type == "cpu" else 1
    workers = check_int("workers", workers, 1)
    train = partial(_train_group, data=data, batching=batching)
    if workers == 1:
        return [train(group) for group in groups]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per group: intra-op threads only add overhead on tiny tensors
    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(train, groups))
    finally:
        torch.set_num_threads(previous)


def _check_group(index: int, group: object) -> Group:
    if not isinstance(group, tuple) or len(group) != 3:
        raise TypeError(f"groups[{index}] must be a Group(models, seeds, recipe), got {type(group).__name__}")
    return Group(*group)


def _train_group(group: Group, data: Dataset, batching: str) -> list[History]:
    return train_together(group.models, data, group.recipe, seeds=group.seeds, batching=batching)
