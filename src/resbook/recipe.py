"""How a net is trained, written down once: the optimizer and its settings, steps, batch size,
learning-rate schedule, gradient clipping and a per-layer normalised step.

A :class:`Recipe` is a small frozen record; :func:`make_optimizer` turns it into the torch optimizer
that both trainers use (:func:`resbook.training.train` for one net, :func:`resbook.batched.train_together`
for many). Nets trained together may differ in the settings that act on one net at a time — the
learning rate, the clipping threshold and the per-layer normalised step (:data:`PER_NET`) — and must
agree on the rest (:meth:`Recipe.shared`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

import torch

from ._checks import check_bool, check_choice, check_int, check_positive_float

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")
PER_NET = ("lr", "clip_norm", "normalise_per_layer")  # settings that may differ between nets trained together


@dataclass(frozen=True)
class Recipe:
    """One training recipe.

    Attributes:
        steps: optimisation steps.
        batch_size: samples per minibatch.
        optimizer: ``"sgd"`` (with ``momentum``), ``"adam"`` or ``"adamw"`` (with ``betas``).
        lr: peak learning rate.
        momentum: SGD's momentum (ignored by Adam).
        weight_decay: L2 penalty added to the gradient (SGD, Adam) or decoupled decay (AdamW).
        betas: Adam's decay rates of the first and second moments.
        schedule: learning rate against step after the warm-up: ``"constant"``, ``"cosine"`` (to 0 at
            the last step) or ``"linear"`` (to 0 at the last step).
        warmup_steps: steps of linear warm-up from ``lr / warmup_steps`` to ``lr``.
        clip_norm: if set, each net's gradient (all its parameters as one vector) is scaled down to this
            Euclidean norm when it is longer, as ``torch.nn.utils.clip_grad_norm_`` does.
        normalise_per_layer: a LARS-like step: the gradient of every weight matrix is rescaled to the
            norm of that matrix, so each layer moves by ``lr`` times its own size whatever the size of its
            gradient; biases and normalisation parameters keep their raw gradients.
    """

    steps: int
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float | None = None
    normalise_per_layer: bool = False

    def __post_init__(self) -> None:
        # Each value is checked and stored as the plain Python type (a NumPy number becomes an int or float).
        checked = dict(
            steps=check_int("steps", self.steps, 1),
            batch_size=check_int("batch_size", self.batch_size, 1),
            optimizer=check_choice("optimizer", self.optimizer, OPTIMIZERS),
            lr=_check_real("lr", self.lr, low=0.0, low_open=True),
            momentum=_check_real("momentum", self.momentum, low=0.0, high=1.0),
            weight_decay=_check_real("weight_decay", self.weight_decay, low=0.0),
            betas=_check_betas(self.betas),
            schedule=check_choice("schedule", self.schedule, SCHEDULES),
            warmup_steps=check_int("warmup_steps", self.warmup_steps, 0),
            clip_norm=None if self.clip_norm is None else _check_real("clip_norm", self.clip_norm, low=0.0,
                                                                      low_open=True),
            normalise_per_layer=check_bool("normalise_per_layer", self.normalise_per_layer),
        )
        if checked["warmup_steps"] >= checked["steps"]:
            raise ValueError(f"warmup_steps must be < steps ({self.steps}), got {self.warmup_steps}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def lr_factor(self, step: int) -> float:
        """The schedule: the learning rate at ``step`` (counted from 0) is ``lr * lr_factor(step)``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup_steps) / (self.steps - self.warmup_steps)
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    def shared(self) -> dict[str, object]:
        """The settings that nets trained together must share (all but :data:`PER_NET`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PER_NET}

    def describe(self) -> str:
        """One line for a chapter's text, e.g. ``SGD (momentum 0.9), lr 0.05, batch 128, 400 steps``."""
        if self.optimizer == "sgd":
            name = f"SGD (momentum {self.momentum:g})"
        else:
            name = f"{'Adam' if self.optimizer == 'adam' else 'AdamW'} (betas {self.betas[0]:g}, {self.betas[1]:g})"
        parts = [name, f"lr {self.lr:g}", f"batch {self.batch_size}", f"{self.steps} steps"]
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}")
        if self.schedule != "constant" or self.warmup_steps:
            warmup = f" after {self.warmup_steps} warm-up steps" if self.warmup_steps else ""
            parts.append(f"{self.schedule} schedule{warmup}")
        if self.clip_norm is not None:
            parts.append(f"gradients clipped to norm {self.clip_norm:g}")
        if self.normalise_per_layer:
            parts.append("per-layer normalised steps")
        return ", ".join(parts)


def _check_real(name: str, value: object, *, low: float, high: float | None = None,
                low_open: bool = False) -> float:
    """A finite real number in [low, high) (or (low, high) with ``low_open``), low >= 0; bools are refused."""
    number = check_positive_float(name, value, allow_zero=True)
    if number < low or (low_open and number == low) or (high is not None and number >= high):
        interval = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'})"
        raise ValueError(f"{name} must be in {interval}, got {number!r}")
    return number


def _check_betas(betas: object) -> tuple[float, float]:
    if isinstance(betas, (str, bytes)) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
    return tuple(_check_real(f"betas[{i}]", beta, low=0.0, high=1.0) for i, beta in enumerate(betas))


def check_recipes(recipes: Recipe | Iterable[Recipe], nets: int) -> list[Recipe]:
    """One recipe per net: ``recipes`` repeated if it is one, else checked to hold ``nets`` that agree
    on everything but :data:`PER_NET`."""
    if isinstance(recipes, Recipe):
        return [recipes] * nets
    if isinstance(recipes, (str, bytes)) or not isinstance(recipes, Iterable):
        raise TypeError(f"recipe must be a resbook.recipe.Recipe or one per net, got {type(recipes).__name__}")
    recipes = list(recipes)
    for i, recipe in enumerate(recipes):
        if not isinstance(recipe, Recipe):
            raise TypeError(f"recipe[{i}] must be a resbook.recipe.Recipe, got {type(recipe).__name__}")
    if len(recipes) != nets:
        raise ValueError(f"recipe must give one Recipe per net: {nets} nets but {len(recipes)} recipes")
    first = recipes[0].shared()
    for i, recipe in enumerate(recipes[1:], 1):
        differing = sorted(k for k, v in recipe.shared().items() if first[k] != v)
        if differing:
            raise ValueError(f"recipe[{i}] differs from recipe[0] in {', '.join(differing)}; nets trained "
                             f"together may differ only in {', '.join(PER_NET)}")
    return recipes


def make_optimizer(recipe: Recipe, parameters: Iterable[torch.Tensor],
                   lr: float | None = None) -> torch.optim.Optimizer:
    """The torch optimizer of ``recipe`` over ``parameters``, at learning rate ``lr`` (default ``recipe.lr``).

    Both trainers call this. The batched trainer passes ``lr=1.0`` when its nets have different
    learning rates and scales each net's update afterwards: every optimizer here moves the weights
    by an amount proportional to the learning rate.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a resbook.recipe.Recipe, got {type(recipe).__name__}")
    lr = recipe.lr if lr is None else lr
    parameters = list(parameters)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, foreach=True)
    kind = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
    return kind(parameters, lr=lr, betas=recipe.betas, weight_decay=recipe.weight_decay, foreach=True)
