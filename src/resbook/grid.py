"""Train a grid of configurations × seeds, as few batched runs as the grid allows.

A chapter describes its experiment as configurations (any hashable label: ``("plain", 20)``,
``("residual", 56, 0.01)``), a function that builds the net of a configuration and seed, and the
recipe of each configuration. :func:`train_grid` builds every net, puts the nets that can be trained
together (same architecture, same shared recipe settings) into one group, trains the groups side by
side (:func:`resbook.batched.train_groups`) and hands back the histories and the trained nets by
configuration.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from torch import nn

from ._checks import check_dataset, check_int
from .batched import Group, architecture_key, train_groups
from .data import Dataset
from .recipe import Recipe
from .training import History


@dataclass
class GridRuns:
    """What :func:`train_grid` trained: ``histories[config][i]`` and ``models[config][i]`` are seed ``seeds[i]``'s."""

    configurations: tuple[Hashable, ...]
    seeds: tuple[int, ...]
    histories: dict[Hashable, list[History]]
    models: dict[Hashable, list[nn.Module]]
    seconds: float

    def final_losses(self, configuration: Hashable, window: int = 50) -> list[float]:
        """Each seed's mean training loss over its last ``window`` steps (``inf`` if it diverged)."""
        return [h.final_loss(window) for h in self._runs(configuration)]

    def median_final_loss(self, configuration: Hashable, window: int = 50) -> float:
        """The median over seeds of :meth:`final_losses` (``inf`` once half the seeds diverged)."""
        return statistics.median(self.final_losses(configuration, window))

    def _runs(self, configuration: Hashable) -> list[History]:
        if configuration not in self.histories:
            shown = ", ".join(map(repr, self.configurations[:6])) + (" ..." if len(self.configurations) > 6 else "")
            raise ValueError(f"no runs for configuration {configuration!r}; the grid has {shown}")
        return self.histories[configuration]


def _check_grid(configurations: Sequence[Hashable], seeds: Sequence[int]) -> tuple[tuple, tuple[int, ...]]:
    for name, values in (("configurations", configurations), ("seeds", seeds)):
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range)) or len(values) == 0:
            raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    configurations = tuple(configurations)
    try:
        distinct = len(set(configurations)) == len(configurations)
    except TypeError:
        raise TypeError("configurations must be hashable labels (str, int, tuples of them), "
                        f"got {configurations!r}") from None
    if not distinct:
        raise ValueError(f"configurations must be distinct, got {configurations!r}")
    seeds = tuple(check_int(f"seeds[{i}]", s, 0, 2**64 - 1) for i, s in enumerate(seeds))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (each is one independent run), got {seeds}")
    return configurations, seeds


def _recipe_of(recipe: Recipe | Callable[[Hashable], Recipe], configuration: Hashable) -> Recipe:
    chosen = recipe(configuration) if callable(recipe) and not isinstance(recipe, Recipe) else recipe
    if not isinstance(chosen, Recipe):
        raise TypeError(f"recipe must be a Recipe or a function of the configuration that returns one; "
                        f"for {configuration!r} got {type(chosen).__name__}")
    return chosen


def train_grid(build: Callable[[Hashable, int], nn.Module], configurations: Sequence[Hashable],
               seeds: Sequence[int], data: Dataset, recipe: Recipe | Callable[[Hashable], Recipe], *,
               workers: int | None = None, batching: str = "auto") -> GridRuns:
    """Build ``build(configuration, seed)`` for every configuration and seed, train them all, and return
    the runs by configuration.

    ``seed`` both draws the net's initial weights (``build`` decides how; :func:`resbook.models.twins`
    draws twins from one seed) and orders its minibatches. ``recipe`` is one :class:`Recipe` for all, or
    a function of the configuration (nets whose recipes differ only in learning rate, clipping or
    per-layer normalisation still train together). The costliest groups start first, so that groups
    running side by side finish together.
    """
    if not callable(build):
        raise TypeError(f"build must be a function (configuration, seed) -> torch.nn.Module, got {build!r}")
    configurations, seeds = _check_grid(configurations, seeds)
    check_dataset("data", data)
    start, groups = time.perf_counter(), {}
    for configuration in configurations:
        run_recipe = _recipe_of(recipe, configuration)
        for seed in seeds:
            model = build(configuration, seed)
            if not isinstance(model, nn.Module):
                raise TypeError(f"build({configuration!r}, {seed}) must return a torch.nn.Module, "
                                f"got {type(model).__name__}")
            key = (architecture_key(model), tuple(sorted(run_recipe.shared().items())))
            groups.setdefault(key, []).append((configuration, seed, model, run_recipe))
    members = sorted(groups.values(), key=_cost, reverse=True)
    histories = train_groups([Group([m for _, _, m, _ in group], [s for _, s, _, _ in group],
                                    [r for _, _, _, r in group]) for group in members],
                             data, workers=workers, batching=batching)
    by_run = {(c, s): (h, m) for group, group_histories in zip(members, histories)
              for (c, s, m, _), h in zip(group, group_histories)}
    return GridRuns(configurations, seeds,
                    {c: [by_run[c, s][0] for s in seeds] for c in configurations},
                    {c: [by_run[c, s][1] for s in seeds] for c in configurations},
                    time.perf_counter() - start)


def _cost(group: list[tuple]) -> int:
    """Time of a group, for scheduling: small nets on a CPU cost per operation, so modules × steps."""
    _, _, model, recipe = group[0]
    return len(list(model.modules())) * recipe.steps
