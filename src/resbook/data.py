"""Data sets the book trains on. Nothing is downloaded: tasks are generated from a seed, and the
8×8 handwritten digits ship inside scikit-learn (1,797 images, 10 classes)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_choice, check_int, check_positive_float
from ._limits import check_bytes
from .device import check_device

TASKS = ("classification", "regression")
MAX_TURNS = 1000.0  # spirals: more turns than float32 angles resolve would be noise, not a spiral
MAX_NOISE = 100.0  # spirals: noise relative to the radius; far beyond 1 the two classes are one cloud


def _check_data_tensor(name: str, value: object) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor, got ndarray of shape {value.shape}: "
                        f"convert it with torch.as_tensor({name})")
    if not isinstance(value, torch.Tensor):
        text = repr(value)
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__} "
                        f"{text if len(text) <= 80 else text[:77] + '...'}")
    return value


def _check_finite(name: str, value: torch.Tensor) -> None:
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must hold finite numbers only; it holds "
                         f"{int((~torch.isfinite(value)).sum())} NaN or infinite values")


@dataclass(frozen=True)
class Dataset:
    """Inputs ``x`` (samples × features, floating point) and targets ``y``: class indices 0, 1, …
    (a 1-D integer tensor) for classification; real values (samples × outputs, floating point) for
    regression — one target per sample is ``y[:, None]``, never a 1-D ``y``, which a loss would
    silently broadcast against the net's (samples × 1) output. At least one sample; all values finite."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    task: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__} {self.name!r}")
        x, y = _check_data_tensor("x", self.x), _check_data_tensor("y", self.y)
        check_choice("task", self.task, TASKS)
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (samples × features), got shape {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x must hold at least one sample and one feature, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor (e.g. torch.float32), got {x.dtype}")
        if y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y must hold the same number of samples, "
                             f"got x of shape {tuple(x.shape)} and y of shape {tuple(y.shape)}")
        _check_finite("x", x)
        if self.task == "classification":
            _check_labels(y)
        else:
            _check_regression_targets(y)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    @property
    def n_outputs(self) -> int:
        """Number of classes (classification) or of target values per sample (regression)."""
        return int(self.y.max()) + 1 if self.task == "classification" else self.y.shape[1]

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> "Dataset":
        device = check_device("device", device)
        return Dataset(self.name, self.x.to(device), self.y.to(device), self.task)


def _check_labels(y: torch.Tensor) -> None:
    """Classification targets: one class index per sample, 0, 1, …"""
    if y.ndim != 1:
        raise ValueError(f"y of a classification dataset must be 1-D (one class index per sample), "
                         f"got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y of a classification dataset must hold class indices as integers "
                        f"(e.g. torch.long), got {y.dtype}")
    if int(y.min()) < 0:
        raise ValueError(f"y of a classification dataset must hold class indices >= 0, got {int(y.min())}")


def _check_regression_targets(y: torch.Tensor) -> None:
    """Regression targets: samples × outputs, floating point, finite."""
    if y.ndim != 2:
        raise ValueError(f"y of a regression dataset must be 2-D (samples × outputs), got shape "
                         f"{tuple(y.shape)}; for one target per sample use y[:, None]")
    if not y.is_floating_point():
        raise TypeError(f"y of a regression dataset must be a floating-point tensor, got {y.dtype}")
    _check_finite("y", y)


def digits(device: torch.device | str = "cpu") -> Dataset:
    """scikit-learn's 8×8 digits, each pixel standardised to mean 0 and variance 1 over the set."""
    from sklearn.datasets import load_digits

    device = check_device("device", device)
    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)  # two border pixels are always 0: leave them at 0
    return Dataset("digits", x, torch.tensor(labels, dtype=torch.long), "classification").to(device)


def spirals(n: int = 1024, turns: float = 1.5, noise: float = 0.1, seed: int = 0,
            device: torch.device | str = "cpu") -> Dataset:
    """Two interleaved spirals in the plane, ``n`` points, labels 0 and 1.

    ``turns`` is at most :data:`MAX_TURNS` and ``noise`` (relative to the radius) at most :data:`MAX_NOISE`.
    """
    n = check_int("n", n, 2)
    check_bytes(f"spirals(n={n})", n * 7 * 4, "lower n")  # x, noise, angles, labels
    turns = _at_most("turns", check_positive_float("turns", turns), MAX_TURNS)
    noise = _at_most("noise", check_positive_float("noise", noise, allow_zero=True), MAX_NOISE)
    seed = check_int("seed", seed, 0, 2**64 - 1)
    device = check_device("device", device)
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % 2
    t = torch.rand(n, generator=g) * turns * 2 * math.pi
    radius = t / (turns * 2 * math.pi)
    angle = t + math.pi * label
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    x = x + noise * torch.randn(n, 2, generator=g) * radius[:, None]
    return Dataset("spirals", x, label, "classification").to(device)


def teacher_regression(n: int = 1024, features: int = 16, hidden: int = 32, seed: int = 0,
                       device: torch.device | str = "cpu") -> Dataset:
    """Regression targets from a random one-hidden-layer tanh teacher: ``y = tanh(x W₁) W₂``."""
    n = check_int("n", n, 1)
    features = check_int("features", features, 1)
    hidden = check_int("hidden", hidden, 1)
    check_bytes(f"teacher_regression(n={n}, features={features}, hidden={hidden})",
                4 * (n * features + features * hidden + n * hidden + n), "lower n, features or hidden")
    seed = check_int("seed", seed, 0, 2**64 - 1)
    device = check_device("device", device)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    w1 = torch.randn(features, hidden, generator=g) / math.sqrt(features)
    w2 = torch.randn(hidden, 1, generator=g) / math.sqrt(hidden)
    return Dataset("teacher", x, torch.tanh(x @ w1) @ w2, "regression").to(device)


def _at_most(name: str, value: float, maximum: float) -> float:
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}, got {value!r}")
    return value


def train_test_split(data: Dataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A fixed random split of ``data`` into a training and a test set (``test_fraction`` of the samples
    held out, at least one in each part), the same for the same ``seed``."""
    from ._checks import check_dataset

    check_dataset("data", data)
    test_fraction = check_positive_float("test_fraction", test_fraction)
    if test_fraction >= 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = check_int("seed", seed, 0, 2**64 - 1)
    n_test = round(len(data) * test_fraction)
    if not 1 <= n_test < len(data):
        raise ValueError(f"test_fraction={test_fraction:g} of {len(data)} samples leaves an empty part")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).to(data.x.device)
    test, train = order[:n_test], order[n_test:]
    return (Dataset(f"{data.name} (train)", data.x[train], data.y[train], data.task),
            Dataset(f"{data.name} (test)", data.x[test], data.y[test], data.task))
