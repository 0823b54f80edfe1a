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
import time

import torch

from resbook.batched import train_groups, train_together
from resbook.data import digits
from resbook.degradation import build_pair
from resbook.models import mlp
from resbook.profile import PROFILES
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
    runs = {
        "one at a time": lambda ms: [train(m, data, steps=steps, seed=s) for m, s in zip(ms, seeds)],
        "together (layers)": lambda ms: train_together(ms, data, steps=steps, seeds=seeds, batching="layers"),
        "together (vmap)": lambda ms: train_together(ms, data, steps=steps, seeds=seeds, batching="vmap"),
    }
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            fresh = copy.deepcopy(models)
            best[name] = min(best[name], seconds(lambda: run(fresh)))
    return best


def bench_sweep(data, steps: int) -> dict[str, float]:
    """Chapter 0's whole depth sweep in the quick profile (plain and residual × seeds × depths), three ways."""
    profile = PROFILES["quick"]
    groups = []
    for depth in sorted(profile.depths, reverse=True):
        pairs = [build_pair(depth, profile.width, data, seed) for seed in range(profile.seeds)]
        groups.append(([p for p, _ in pairs] + [r for _, r in pairs], list(range(profile.seeds)) * 2))
    fresh = lambda: copy.deepcopy(groups)  # noqa: E731
    return {
        "one at a time": seconds(lambda: [train(m, data, steps=steps, seed=s)
                                          for models, seeds in fresh() for m, s in zip(models, seeds)]),
        "each depth together": seconds(lambda: train_groups(fresh(), data, workers=1, steps=steps)),
        "depths side by side": seconds(lambda: train_groups(fresh(), data, steps=steps)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument("--nets", type=int, nargs="+", default=[4, 8], help="nets per group (plain + residual × seeds)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sweep-steps", type=int, default=PROFILES["quick"].steps,
                        help="steps of the chapter-0 sweep comparison (0 skips it)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = digits()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, "
          f"best of {args.repeats}; width 32, batch 128, BatchNorm, digits")
    print(f"{'depth':>5} {'nets':>4} {'one at a time':>14} {'layers':>8} {'vmap':>8} {'speed-up layers':>16} {'speed-up vmap':>14}")
    for depth in args.depths:
        for nets in args.nets:
            t = bench(depth, nets, args.steps, args.repeats, data)
            one, layers, vmap = t["one at a time"], t["together (layers)"], t["together (vmap)"]
            print(f"{depth:>5} {nets:>4} {one:>13.1f}s {layers:>7.1f}s {vmap:>7.1f}s {one / layers:>15.2f}× {one / vmap:>13.2f}×",
                  flush=True)

    if args.sweep_steps:
        profile = PROFILES["quick"]
        print(f"\nchapter 0's sweep (quick profile: depths {profile.depths}, {profile.seeds} seeds, "
              f"plain + residual, {args.sweep_steps} steps):")
        times = bench_sweep(data, args.sweep_steps)
        for name, value in times.items():
            print(f"  {name:>20}: {value:6.1f}s  ({times['one at a time'] / value:.2f}× one at a time)", flush=True)


if __name__ == "__main__":
    main()
