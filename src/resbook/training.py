"""One training loop for the whole book: minibatch SGD with momentum, on whichever device the data is.

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

from ._checks import check_int, check_positive_float
from .data import Dataset


@dataclass
class History:
    """What a training run did: the minibatch loss at every step, its wall time, and whether it diverged."""

    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged_at: int | None = None  # the step whose loss was NaN/inf; training stopped there

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
    return F.cross_entropy if task == "classification" else F.mse_loss


def batch_indices(n_samples: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """Indices of the minibatch of every step (steps × batch_size): the data reshuffled each epoch."""
    check_int("n_samples", n_samples, 1)
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 1)
    check_int("seed", seed, 0)
    if batch_size > n_samples:
        raise ValueError(f"batch_size must be <= the number of samples ({n_samples}), got {batch_size}")
    g = torch.Generator().manual_seed(seed)
    epochs = math.ceil(steps * batch_size / n_samples)
    order = torch.cat([torch.randperm(n_samples, generator=g) for _ in range(epochs)])
    return order[: steps * batch_size].view(steps, batch_size)


def _check_training_arguments(data, steps, batch_size, lr, momentum, seed):
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a resbook.data.Dataset, got {type(data).__name__}")
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    check_positive_float("lr", lr)
    check_positive_float("momentum", momentum, allow_zero=True)
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    check_int("seed", seed, 0)


def train(model: nn.Module, data: Dataset, *, steps: int, batch_size: int = 128, lr: float = 0.05,
          momentum: float = 0.9, seed: int = 0) -> History:
    """Train ``model`` in place with SGD + momentum on minibatches of ``data``, on ``data``'s device.

    ``seed`` fixes the order of the minibatches (the model's initial weights are the caller's).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_training_arguments(data, steps, batch_size, lr, momentum, seed)
    model.to(data.x.device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_of = loss_function(data.task)
    batches = batch_indices(len(data), batch_size, steps, seed).to(data.x.device)
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
        optimizer.step()
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def evaluate_loss(model: nn.Module, data: Dataset) -> float:
    """The loss on the whole of ``data`` with the model in evaluation mode (BatchNorm's running statistics)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a resbook.data.Dataset, got {type(data).__name__}")
    was_training = model.training
    model.eval()
    loss = loss_function(data.task)(model(data.x), data.y).item()
    model.train(was_training)
    return loss
