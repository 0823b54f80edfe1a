"""One training loop for the whole book: a :class:`~resbook.recipe.Recipe` applied to one net, on
whichever device the data is.

A run whose loss becomes NaN or infinite stops there and says so in its :class:`History`; it never
raises, so a chapter can plot a diverged run next to the others.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from . import cost
from ._checks import check_choice, check_dataset, check_int, check_module
from ._limits import check_bytes
from .data import TASKS, Dataset
from .device import on_one_thread
from .recipe import Recipe, make_optimizer


@dataclass
class History:
    """What a training run did: the minibatch loss at every step, its wall time, whether it diverged, and
    how the gradient was spread over depth at every step."""

    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged_at: int | None = None  # the step whose loss was NaN/inf; training stopped there
    # ‖∂L/∂W‖ of the first Linear layer ÷ that of the last, for the minibatch gradient of every step
    # (before clipping or normalisation): far above 1, exploding towards the input; far below, vanishing.
    gradient_ratio: list[float] = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def final_loss(self, window: int = 50) -> float:
        """Mean minibatch loss over the last ``window`` steps; ``inf`` for a run that diverged."""
        check_int("window", window, 1)
        if self.diverged or not self.loss:
            return math.inf
        tail = self.loss[-window:]
        return sum(tail) / len(tail)


def loss_function(task: str):
    """Cross-entropy for classification, mean squared error for regression."""
    check_choice("task", task, TASKS)
    return F.cross_entropy if task == "classification" else F.mse_loss


def batch_indices(n_samples: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """Indices of the minibatch of every step (steps × batch_size): the data reshuffled each epoch."""
    check_int("n_samples", n_samples, 1)
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 1)
    check_int("seed", seed, 0, 2**64 - 1)
    if batch_size > n_samples:
        raise ValueError(f"batch_size must be <= the number of samples ({n_samples}), got {batch_size}")
    check_bytes(f"the minibatch indices of {steps} steps of batch_size {batch_size}", 8 * steps * batch_size,
                "lower steps or batch_size")
    g = torch.Generator().manual_seed(seed)
    epochs = math.ceil(steps * batch_size / n_samples)
    order = torch.cat([torch.randperm(n_samples, generator=g) for _ in range(epochs)])
    return order[: steps * batch_size].view(steps, batch_size)


def minibatches(data: Dataset, batch_size: int, count: int, seed: int = 0) -> list[Dataset]:
    """The first ``count`` minibatches that training with ``seed`` would draw, each as a Dataset."""
    check_dataset("data", data)
    index = batch_indices(len(data), batch_size, check_int("count", count, 1), seed).to(data.x.device)
    return [Dataset(data.name, data.x[i], data.y[i], data.task) for i in index]


def _normalise_per_layer(parameters: list[nn.Parameter]) -> None:
    """Rescale the gradient of every weight matrix to the norm of the matrix (a LARS-like step)."""
    for p in parameters:
        if p.grad is not None and p.ndim >= 2:
            gradient_norm, weight_norm = p.grad.norm(), p.detach().norm()
            if gradient_norm > 0 and weight_norm > 0:
                p.grad.mul_(weight_norm / gradient_norm)


def prepare_gradients(parameters: list[nn.Parameter], recipe: Recipe) -> None:
    """What the recipe does to one net's gradients before the optimizer's step: the per-layer
    normalised step, then clipping of the whole gradient to ``clip_norm``."""
    if recipe.normalise_per_layer:
        _normalise_per_layer(parameters)
    if recipe.clip_norm is not None:
        nn.utils.clip_grad_norm_(parameters, recipe.clip_norm)


def train(model: nn.Module, data: Dataset, recipe: Recipe, *, seed: int = 0) -> History:
    """Train ``model`` in place with ``recipe`` on minibatches of ``data``, on ``data``'s device.

    ``seed`` fixes the order of the minibatches (the model's initial weights are the caller's).
    Before training, :func:`check_fits` refuses a model that does not fit ``data`` and a run whose
    estimated tensors exceed 4 GiB (:data:`resbook._limits.MAX_BYTES`).
    """
    check_module("model", model)
    check_dataset("data", data)
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a resbook.recipe.Recipe, got {type(recipe).__name__}")
    check_fits(model, data, recipe.batch_size, recipe=recipe)
    batches = batch_indices(len(data), recipe.batch_size, recipe.steps, seed).to(data.x.device)
    model.to(data.x.device).train()
    parameters = list(model.parameters())
    optimizer = make_optimizer(recipe, parameters)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    first_and_last = (linear[0], linear[-1]) if linear else ()
    loss_of = loss_function(data.task)
    history, start = History(), time.perf_counter()
    for step, index in enumerate(batches):
        loss = loss_of(model(data.x[index]), data.y[index])
        value = loss.item()
        if not math.isfinite(value):
            history.diverged_at = step
            break
        history.loss.append(value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if first_and_last:
            first, last = (layer.weight.grad.norm() for layer in first_and_last)
            history.gradient_ratio.append((first / last).item())
        prepare_gradients(parameters, recipe)
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * recipe.lr_factor(step)
        if not take_step(optimizer):
            history.diverged_at = step + 1
            break
    history.seconds = time.perf_counter() - start
    cost.log_run([model], recipe.batch_size, [len(history.loss)], start, data.x.device)
    return history


def take_step(optimizer: torch.optim.Optimizer) -> bool:
    """``optimizer.step()``; False where the step size overflows float32 (a learning rate of 1e39),
    which the caller reports as divergence at the next step, as if the weights had become infinite."""
    try:
        optimizer.step()
    except RuntimeError as error:
        if "overflow" not in str(error):
            raise
        return False
    return True


@on_one_thread  # one small net on a few thousand samples: a second thread only adds waiting
@torch.no_grad()
def evaluate_loss(model: nn.Module, data: Dataset) -> float:
    """The loss on the whole of ``data`` with the model in evaluation mode (BatchNorm's running statistics).

    The model's mode is restored afterwards, also when the forward pass raises.
    """
    check_module("model", model)
    check_dataset("data", data)
    was_training = model.training
    model.eval()
    try:
        check_fits(model, data, len(data))
        return loss_function(data.task)(model(data.x), data.y).item()
    finally:
        model.train(was_training)


def check_fits(model: nn.Module, data: Dataset, batch_size: int, *, nets: int = 1,
               recipe: Recipe | None = None) -> None:
    """Refuse, with a ``ValueError`` naming ``model``, ``data`` or ``batch_size``, a model that cannot run
    on ``data``, before anything is trained: a dtype other than the data's, a forward pass that fails
    on two samples (a feature count other than the data's), fewer outputs than the data's classes
    (or a regression output of another size), BatchNorm on batches of one sample, or a run whose
    estimated tensors exceed the size limit (:data:`resbook._limits.MAX_BYTES`, 4 GiB)."""
    check_module("model", model)
    check_dataset("data", data)
    batch_size = check_int("batch_size", batch_size, 1)
    nets = check_int("nets", nets, 1)
    dtypes = {t.dtype for t in model.parameters() if t.is_floating_point()}
    if dtypes and dtypes != {data.x.dtype}:
        raise ValueError(f"model has {', '.join(sorted(map(str, dtypes)))} parameters but data.x is {data.x.dtype}: "
                         f"convert one to the other (e.g. model.to({data.x.dtype}))")
    if batch_size == 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError("batch_size must be at least 2 for a model with BatchNorm (it normalises over the "
                         "batch, so a batch of one sample has no variance), got 1")
    outputs = _trial_outputs(model, data)
    expected = f"{data.n_outputs} {'classes' if data.task == 'classification' else 'targets per sample'}"
    if outputs.ndim != 2 or outputs.shape[1] < data.n_outputs or (
            data.task == "regression" and outputs.shape[1] != data.n_outputs):
        raise ValueError(f"model gives outputs of shape {tuple(outputs.shape[1:])} per sample but data "
                         f"{data.name!r} has {expected}")
    if recipe is not None:
        check_bytes(f"the minibatch indices of {nets} net{'s' * (nets != 1)} × {recipe.steps} steps × batch_size "
                    f"{batch_size}", 8 * nets * recipe.steps * batch_size, "lower steps or batch_size")
    check_bytes(f"training {nets} net{'s' * (nets != 1)} of this size on batches of {batch_size}",
                _training_bytes(model, batch_size, nets=nets, recipe=recipe), "lower the width, depth or batch_size")


def _trial_outputs(model: nn.Module, data: Dataset) -> torch.Tensor:
    """The model's outputs on two samples, in evaluation mode: BatchNorm's statistics stay as they are
    and dropout draws no random numbers."""
    was_training = model.training
    try:
        with torch.no_grad():
            outputs = model.eval()(data.x[:2].to(next(model.parameters(), data.x).device))
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        raise ValueError(f"model does not run on data {data.name!r} ({data.n_features} features, "
                         f"{data.x.dtype}): {type(error).__name__}: {(str(error).splitlines() or [''])[0]}") from error
    finally:
        model.train(was_training)
    if not isinstance(outputs, torch.Tensor):
        raise ValueError(f"model must return a tensor of outputs, got {type(outputs).__name__}")
    return outputs


def _training_bytes(model: nn.Module, batch_size: int, *, nets: int = 1, recipe: Recipe | None = None) -> int:
    """An estimate of the bytes a training run allocates: per net, the parameters and buffers, their
    gradients and the optimizer's state (one tensor each for SGD, two for Adam), the activations of a
    minibatch (four tensors of batch_size × out_features per Linear layer: its output, a normalisation,
    an activation, a block's sum)."""
    numbers = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    itemsize = next((p.element_size() for p in model.parameters()), 4)
    states = 2 if recipe is not None and recipe.optimizer in ("adam", "adamw") else 1
    widths = sum(m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return nets * itemsize * (numbers * (2 + states) + 4 * batch_size * widths)


@on_one_thread
@torch.no_grad()
def _wrong(model: nn.Module, data: Dataset, caller: str) -> torch.Tensor:
    """Per sample of ``data``: does ``model`` get its class wrong? In evaluation mode, the mode restored."""
    check_module("model", model)
    check_dataset("data", data)
    if data.task != "classification":
        raise ValueError(f"{caller} needs a classification data set; {data.name!r} is {data.task}")
    was_training = model.training
    model.eval()
    try:
        return model(data.x).argmax(1) != data.y
    finally:
        model.train(was_training)


def misclassified(model: nn.Module, data: Dataset) -> set[int]:
    """The indices of ``data``'s samples whose class ``model`` gets wrong, in evaluation mode
    (classification only; the model's mode is restored): which samples, not just how many."""
    return set(torch.nonzero(_wrong(model, data, "misclassified")).flatten().tolist())


def error_rate(model: nn.Module, data: Dataset) -> float:
    """The fraction of ``data``'s samples whose class the model gets wrong (see :func:`misclassified`)."""
    return _wrong(model, data, "error_rate").float().mean().item()
