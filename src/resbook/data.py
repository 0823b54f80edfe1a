"""Data sets the book trains on. Nothing is downloaded: tasks are generated from a seed, and the
8×8 handwritten digits ship inside scikit-learn (1,797 images, 10 classes)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_choice, check_int, check_positive_float, check_tensor

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Dataset:
    """Inputs ``x`` (samples × features) and targets ``y``: class indices, or real values (samples × outputs)."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    task: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__} {self.name!r}")
        check_tensor("x", self.x)
        check_tensor("y", self.y)
        check_choice("task", self.task, TASKS)
        if self.x.ndim != 2:
            raise ValueError(f"x must be 2-D (samples × features), got shape {tuple(self.x.shape)}")
        if self.y.shape[0] != self.x.shape[0]:
            raise ValueError(f"x and y must hold the same number of samples, "
                             f"got {self.x.shape[0]} and {self.y.shape[0]}")

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
        return Dataset(self.name, self.x.to(device), self.y.to(device), self.task)


def digits(device: torch.device | str = "cpu") -> Dataset:
    """scikit-learn's 8×8 digits, each pixel standardised to mean 0 and variance 1 over the set."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)  # two border pixels are always 0: leave them at 0
    return Dataset("digits", x, torch.tensor(labels, dtype=torch.long), "classification").to(device)


def spirals(n: int = 1024, turns: float = 1.5, noise: float = 0.1, seed: int = 0,
            device: torch.device | str = "cpu") -> Dataset:
    """Two interleaved spirals in the plane, ``n`` points, labels 0 and 1."""
    n = check_int("n", n, 2)
    turns = check_positive_float("turns", turns)
    noise = check_positive_float("noise", noise, allow_zero=True)
    seed = check_int("seed", seed, 0)
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
    seed = check_int("seed", seed, 0)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    w1 = torch.randn(features, hidden, generator=g) / math.sqrt(features)
    w2 = torch.randn(hidden, 1, generator=g) / math.sqrt(hidden)
    return Dataset("teacher", x, torch.tanh(x @ w1) @ w2, "regression").to(device)
