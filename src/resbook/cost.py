"""What a training run costs, against what this machine's arithmetic allows (`make bench`).

Every run of :func:`resbook.training.train` and :func:`resbook.batched.train_together` is logged here
(nets, steps taken, arithmetic, start and end), so that a benchmark can ask, after a chapter ran,
how many floating-point operations its training did and how long it took, and compare with the
*floor*: the time those operations would take at the measured rate of one large matrix product.

The arithmetic of training an MLP is that of its linear layers: per sample and step, a weight
matrix of ``n_in × n_out`` costs ``2·n_in·n_out`` FLOPs forward (a multiply and an add per weight)
and twice that backward (the gradient with respect to the input and to the weight), so
``6 · batch · Σ n_in·n_out`` per step, less ``2 · batch · n_in·n_out`` of the first layer, whose input
(the data) needs no gradient. Biases, normalisation and activations are a few per cent more for the
nets of this book and are not counted.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_int, check_module
from .device import check_device


@dataclass(frozen=True)
class Run:
    """One training run: nets trained (together), FLOPs done, wall-clock interval (perf_counter), and
    the device it ran on (``"cpu"``, ``"cuda"``, ...)."""

    nets: int
    flops: float
    start: float
    end: float
    device: str = "cpu"


_LOG: list[Run] = []
_LOCK = threading.Lock()  # train_groups runs groups on several threads


def linear_weights(model: nn.Module) -> int:
    """Σ n_in·n_out over the model's ``nn.Linear`` layers: multiply-adds per sample forward."""
    check_module("model", model)
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def training_flops(model: nn.Module, batch_size: int, steps: int) -> float:
    """FLOPs of the matrix products of ``steps`` training steps on batches of ``batch_size``:
    ``batch · (6 · Σ n_in·n_out − 2 · n_in·n_out of the first layer) · steps``."""
    check_module("model", model)
    check_int("batch_size", batch_size, 1)
    check_int("steps", steps, 0)
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    no_input_gradient = first.in_features * first.out_features if first is not None else 0
    return float(batch_size * (6 * linear_weights(model) - 2 * no_input_gradient) * steps)


def log_run(models: Sequence[nn.Module], batch_size: int, steps_taken: Sequence[int], start: float,
            device: torch.device) -> None:
    """Log a finished run on ``device``: net ``i`` of ``models`` took ``steps_taken[i]`` steps since ``start``."""
    flops = sum(training_flops(m, batch_size, s) for m, s in zip(models, steps_taken))
    with _LOCK:
        _LOG.append(Run(len(models), flops, start, time.perf_counter(), torch.device(device).type))


def check_trained_on(device: torch.device | str) -> int:
    """Raise ``AssertionError`` unless every training run logged so far ran on ``device`` (the one
    :func:`resbook.chapter.setup` chose); return how many runs were checked. A chapter ends with this,
    so that a GPU run of the book proves its training really used the GPU."""
    if not isinstance(device, (torch.device, str)):
        raise TypeError(f"device must be a torch.device or a str such as 'cpu', got {type(device).__name__}")
    try:
        expected = torch.device(device).type
    except RuntimeError as error:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}: {error}") from None
    elsewhere = sorted({run.device for run in runs()} - {expected})
    assert not elsewhere, f"training ran on {elsewhere}, not on {expected}, the device setup() chose"
    return len(runs())


def runs() -> list[Run]:
    """The runs logged so far in this process, oldest first."""
    with _LOCK:
        return list(_LOG)


def clear() -> None:
    """Forget the runs logged so far."""
    with _LOCK:
        _LOG.clear()


def busy_seconds(logged: Sequence[Run]) -> float:
    """Wall-clock time covered by the runs: the union of their intervals (runs on threads overlap)."""
    if isinstance(logged, (str, bytes)) or not isinstance(logged, Sequence) or not all(
            isinstance(run, Run) for run in logged):
        raise TypeError(f"logged must be a sequence of resbook.cost.Run (e.g. cost.runs()), got {logged!r}"[:200])
    total, reach = 0.0, float("-inf")
    for run in sorted(logged, key=lambda r: r.start):
        if run.end > reach:
            total += run.end - max(run.start, reach)
            reach = run.end
    return total


def matmul_rate(device: torch.device | str = "cpu", size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of one ``size × size`` float32 matrix product on ``device`` (best of ``repeats``):
    ``2·size³`` FLOPs per product, the fastest this machine does dense arithmetic."""
    check_int("size", size, 16)
    check_int("repeats", repeats, 1)
    device = check_device("device", device)
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    best = float("inf")
    for _ in range(repeats + 1):  # the first product warms up the library
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best
