"""How much faster is training nets together than one after another? (`make bench`)

For the chapter's nets (BatchNorm MLPs of width 32, batch 128, on the digits), trains a group of
plain and residual nets over a few seeds, once one at a time with `resbook.training.train` and once
together with `resbook.batched.train_together` (both ways of batching), and prints the wall times
and the speed-up. The three are interleaved and each is timed several times; the fastest time of
each is kept, since other work on a shared machine only ever adds time.
"""
from __future__ import annotations

import argparse
import copy
from functools import partial
import time

import torch

from resbook.batched import train_together
from resbook.data import digits
from resbook.degradation import SIZES, depth_sweep
from resbook.models import KINDS, mlp, twins
from resbook.profile import PROFILES
from resbook.recipe import Recipe
from resbook.training import train


def group(depth: int, nets: int, data) -> tuple[list[torch.nn.Module], list[int]]:
    """Plain and residual nets alternately, two of each kind per seed: the chapter's comparison."""
    torch.manual_seed(0)
    models = [mlp(depth, 32, data.n_features, data.n_outputs, residual=i % 2 == 0) for i in range(nets)]
    return models, [i // 2 for i in range(nets)]


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench(depth: int, nets: int, steps: int, repeats: int, data) -> dict[str, float]:
    models, seeds = group(depth, nets, data)
    recipe = Recipe(steps=steps)
    runs = {
        "one at a time": lambda ms: [train(m, data, recipe, seed=s) for m, s in zip(ms, seeds)],
        "together (layers)": lambda ms: train_together(ms, data, recipe, seeds=seeds, batching="layers"),
        "together (vmap)": lambda ms: train_together(ms, data, recipe, seeds=seeds, batching="vmap"),
    }
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            fresh = copy.deepcopy(models)
            best[name] = min(best[name], seconds(partial(run, fresh)))
    return best


def bench_sweep(data, steps: int) -> dict[str, float]:
    """Chapter 0's whole depth sweep in the quick profile (plain and residual × seeds × depths), two ways:
    one net after another, and the chapter's own helper (:func:`resbook.degradation.depth_sweep`, which
    trains through :func:`resbook.grid.train_grid`: each depth's nets together, depths side by side)."""
    sizes, seeds = SIZES["quick"], range(PROFILES["quick"].seeds)
    recipe = Recipe(**{**sizes.recipe.__dict__, "steps": steps})

    def one_at_a_time():
        for depth in sizes.depths:
            for seed in seeds:
                for net in twins(depth, sizes.width, data.n_features, data.n_outputs, seed=seed, kinds=KINDS):
                    train(net, data, recipe, seed=seed)

    def sweep(threads: int):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)  # train_groups' default: one worker per core, one thread each
        try:
            return depth_sweep(data, sizes.depths, seeds, width=sizes.width, recipe=recipe)
        finally:
            torch.set_num_threads(previous)

    return {
        "one at a time": seconds(one_at_a_time),
        "together (grid)": seconds(lambda: sweep(torch.get_num_threads())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument("--nets", type=int, nargs="+", default=[4, 8], help="nets per group (plain + residual × seeds)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep-steps", type=int, default=SIZES["quick"].recipe.steps,
                        help="steps of the chapter-0 sweep comparison (0 skips it)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = digits()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, "
          f"best of {args.repeats}; width 32, batch 128, BatchNorm, digits")
    print(f"{'depth':>5} {'nets':>4} {'one at a time':>14} {'layers':>8} {'vmap':>8} "
          f"{'speed-up layers':>16} {'speed-up vmap':>14}")
    for depth in args.depths:
        for nets in args.nets:
            t = bench(depth, nets, args.steps, args.repeats, data)
            one, layers, vmap = t["one at a time"], t["together (layers)"], t["together (vmap)"]
            print(f"{depth:>5} {nets:>4} {one:>13.1f}s {layers:>7.1f}s {vmap:>7.1f}s "
                  f"{one / layers:>15.2f}× {one / vmap:>13.2f}×", flush=True)

    if args.sweep_steps:
        sizes = SIZES["quick"]
        print(f"\nchapter 0's sweep (quick profile: depths {sizes.depths}, {PROFILES['quick'].seeds} seeds, "
              f"plain + residual, {args.sweep_steps} steps):")
        times = bench_sweep(data, args.sweep_steps)
        for name, value in times.items():
            print(f"  {name:>20}: {value:6.1f}s  ({times['one at a time'] / value:.2f}× one at a time)", flush=True)


if __name__ == "__main__":
    main()
