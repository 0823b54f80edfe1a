"""Train many independent nets at once: seeds, and plain next to residual, in one stacked run.

Small MLPs on a CPU are bound by the overhead of each operation more than by arithmetic, so ``k``
nets trained together cost less than ``k`` runs one after another. The nets' parameters and
buffers are stacked along a new first dimension (``torch.func.stack_module_state``) and one
forward pass computes every net on its own minibatch. Plain and residual nets share one
architecture (:mod:`resbook.models`: only the buffer ``identity_gate`` differs), so they share a run.

Two ways to batch the forward pass give the same results, up to rounding:

* ``"vmap"``: ``torch.func.vmap`` over ``functional_call``; works for any architecture.
* ``"layers"``: each Linear and BatchNorm1d layer batched by hand (one ``baddbmm``, one
  ``batch_norm``), the rest of the model (``y = g·x + α·F(x)``, the activations) run as written.
  Faster on a CPU (``tools/bench_batched.py``), for nets built from those layers only.

Each net keeps its own minibatch order, BatchNorm statistics, momentum and divergence, exactly as
if it were trained alone with :func:`resbook.training.train`.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ._checks import check_choice, check_int
from .data import Dataset
from .models import Block
from .training import History, _check_training_arguments, batch_indices, loss_function

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


_RUN_AS_WRITTEN = (nn.Sequential, Block, nn.ReLU, nn.Tanh, nn.GELU, nn.Identity)


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
    for name, _ in list(base.named_buffers()):  # what is left: each Block's identity gate g, one scalar per net
        module_name, _, key = name.rpartition(".")
        base.get_submodule(module_name).register_buffer(key, stacks[name].view(-1, 1, 1))  # broadcasts over x
    return base


def _vmapped_model(model: nn.Module, params: Stack, buffers: Stack) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` mapped over the stacked nets with ``torch.func.vmap`` (inputs and outputs: nets × samples × features)."""
    base = copy.deepcopy(model).to("meta")
    return partial(vmap(lambda p, b, x: functional_call(base, (p, b), (x,))), params, buffers)


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
        check_int(f"seeds[{i}]", seed, 0)


@torch.no_grad()
def _write_back(model: nn.Module, params: Stack, buffers: Stack, position: int) -> None:
    """Copy the stacked net at ``position`` into ``model``'s own parameters and buffers."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        tensor.copy_((params if name in params else buffers)[name][position])


def _keep_only(keep: torch.Tensor, params: Stack, buffers: Stack,
               optimizer: torch.optim.SGD) -> tuple[Stack, Stack, torch.optim.SGD]:
    """The stacks and the optimizer (with its momentum) restricted to the nets at positions ``keep``."""
    momentum = [optimizer.state[p].get("momentum_buffer") for p in params.values()]
    params = {name: p.detach()[keep].requires_grad_() for name, p in params.items()}
    buffers = {name: b[keep] for name, b in buffers.items()}
    new = torch.optim.SGD(params.values(), **{k: optimizer.defaults[k] for k in ("lr", "momentum", "foreach")})
    for p, buffer in zip(params.values(), momentum):
        if buffer is not None:
            new.state[p]["momentum_buffer"] = buffer[keep]
    return params, buffers, new


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


def train_together(models: Sequence[nn.Module], data: Dataset, *, steps: int, seeds: Sequence[int],
                   batch_size: int = 128, lr: float = 0.05, momentum: float = 0.9,
                   batching: str = "auto") -> list[History]:
    """Train every net of ``models`` in place, all at once, as :func:`resbook.training.train` trains one.

    Net ``i`` sees the minibatches of ``seeds[i]``, keeps its own BatchNorm statistics and SGD
    momentum, and stops where its loss becomes NaN or infinite (``diverged_at``) while the others
    go on. The nets must share one architecture (plain and residual nets of one size do).

    Args:
        batching: ``"layers"`` (hand-batched Linear and BatchNorm1d, faster), ``"vmap"`` (any
            architecture), or ``"auto"``: ``"layers"`` where the net allows it.

    Returns:
        One :class:`History` per net; ``seconds`` is the wall time of the whole run.
    """
    _check_models(models, seeds)
    _check_training_arguments(data, steps, batch_size, lr, momentum, seed=0)  # the seeds are checked above
    device = data.x.device
    for model in models:
        model.to(device).train()
    batched_model, loss_of = _choose_batching(models[0], batching), vmap(loss_function(data.task))
    params, buffers = stack_module_state(list(models))
    nets = batched_model(models[0], params, buffers)
    optimizer = torch.optim.SGD(params.values(), lr=lr, momentum=momentum, foreach=True)
    batches = torch.stack([batch_indices(len(data), batch_size, steps, s) for s in seeds]).to(device)
    running = list(range(len(models)))  # the model behind each position of the stacks
    histories, start = [History() for _ in models], time.perf_counter()
    for step in range(steps):
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
        optimizer.step()
        if diverged:
            keep = [position for position in range(len(running)) if position not in diverged]
            params, buffers, optimizer = _keep_only(torch.tensor(keep, device=device), params, buffers, optimizer)
            nets = batched_model(models[0], params, buffers)
            batches, running = batches[keep], [running[position] for position in keep]
    for position, model_index in enumerate(running):
        _write_back(models[model_index], params, buffers, position)
    seconds = time.perf_counter() - start
    for history in histories:
        history.seconds = seconds
    return histories


def train_groups(groups: Sequence[tuple[Sequence[nn.Module], Sequence[int]]], data: Dataset, *,
                 workers: int | None = None, **training) -> list[list[History]]:
    """Train several groups of nets, each group with :func:`train_together`, groups side by side.

    ``groups`` holds ``(models, seeds)`` pairs; the nets of one group share an architecture, the
    groups need not (a depth sweep: one group per depth). On a CPU, eager PyTorch spends a small
    net's step on per-operation overhead, which runs on one core; so the groups run on ``workers``
    threads (default: the number of cores, at most the number of groups), each with one intra-op
    thread, and finish about ``workers`` times sooner. Each group's numbers do not depend on the
    others or on the scheduling. On a GPU the groups run one after another. Keyword arguments go to
    :func:`train_together`. Returns one list of histories per group, in the order given.
    """
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence) or len(groups) == 0:
        raise ValueError("groups must be a non-empty sequence of (models, seeds) pairs")
    if workers is None:
        workers = min(os.cpu_count() or 1, len(groups)) if data.x.device.type == "cpu" else 1
    check_int("workers", workers, 1)
    if workers == 1:
        return [train_together(models, data, seeds=seeds, **training) for models, seeds in groups]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per group: intra-op threads only add overhead on tiny tensors
    try:
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(train_together, models, data, seeds=seeds, **training) for models, seeds in groups]
            return [future.result() for future in futures]
    finally:
        torch.set_num_threads(previous)
