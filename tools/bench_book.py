"""The whole book, measured (`make bench`): every chapter's time and memory, rebuild times, the cost
of training against the machine's arithmetic floor, and batched kernels against the plain way.

Writes _build/bench.md (and prints it as it goes):

1. **Chapters.** Each chapter of _toc.yml executed alone in a fresh kernel (tools/run_chapters.py),
   in the profile the device implies (``RESBOOK_PROFILE`` or ``--profile`` overrides): seconds, the
   kernel's peak resident memory (and peak CUDA memory on a GPU), with the budgets of the quick
   profile on 2 CPU cores (≤ 45 s each, aim ≤ 25 s).
2. **Training against the floor.** ``resbook.cost`` logs every training run of a chapter: its
   matrix-product FLOPs and the wall time it covered. The floor is the time those FLOPs take at the
   measured rate of one large float32 matrix product on this machine; the ratio shows how far
   per-operation overhead, not arithmetic, sets the time of small nets.
3. **Rebuilds** (``--rebuild``; three builds of a copy of the working tree, several minutes): the
   whole ``make book`` from an empty cache, a rebuild with nothing changed, and a rebuild after one
   chapter's code changed (only that chapter executes again).
4. **Batched kernels against the plain way:** nets trained together against one at a time; a
   loss-landscape grid evaluated batched (vmap) against a loop over its points; the path-length
   decomposition by dynamic programming against enumerating every path; input–output Jacobians
   with ``vmap(jacrev)`` against a loop over samples. Each is the fastest of a few repeats.

Usage: python tools/bench_book.py [--profile quick|full] [--rebuild] [--chapters book/NN_x.ipynb ...]
       python tools/bench_book.py --profile full --no-kernels --timeout 3600 --executed /tmp/full  # a CPU's full run
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import nbformat
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from run_chapters import run as run_chapter  # noqa: E402

# Run in the chapter's kernel after its last cell: what it used and what its training cost.
PROBE = """import json as _json, resource as _resource, torch as _torch
from resbook import cost as _cost
_runs = _cost.runs()
_usage = _resource.getrusage(_resource.RUSAGE_SELF)
print(_json.dumps({
    "cpu_seconds": _usage.ru_utime + _usage.ru_stime,
    "peak_rss_mb": _usage.ru_maxrss / 1024,
    "cuda_peak_mb": (_torch.cuda.max_memory_allocated() / 2**20
                     if _torch.cuda.is_available() else None),
    "train_runs": len(_runs), "nets": sum(r.nets for r in _runs),
    "train_flops": sum(r.flops for r in _runs),
    "train_seconds": _cost.busy_seconds(_runs)}))"""
BRUTE_FORCE_BLOCKS = 14  # 2**14 paths: seconds; each block more doubles it
BUDGET, AIM = 45.0, 25.0  # seconds per chapter, quick profile, 2 CPU cores
BOOK_BUDGET, BOOK_AIM, REBUILD_BUDGET, REBUILD_AIM = 300.0, 180.0, 30.0, 10.0
COPY_IGNORE = shutil.ignore_patterns(".venv", "_build", "node_modules", ".git", "student", "notebooks",
                                     ".hypothesis", ".pytest_cache", "mutants", ".whl", "__pycache__")


def toc_chapters() -> list[Path]:
    """The chapter notebooks that _toc.yml lists, in the book's order."""
    files = re.findall(r"file:\s*(book/\d\d_\S+)", (ROOT / "_toc.yml").read_text())
    return [ROOT / f"{name}.ipynb" for name in files]


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs: other work on a shared machine only ever adds time."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def slowest_cell(notebook: nbformat.NotebookNode) -> tuple[float, str]:
    """The longest-running code cell of an executed notebook (nbclient records each cell's start and end
    in its metadata): its seconds and its first line."""
    slowest = (0.0, "")
    for cell in notebook.cells:
        times = cell.get("metadata", {}).get("execution", {})
        start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            slowest = max(slowest, (seconds, cell.source.strip().splitlines()[0] if cell.source.strip() else ""))
    return slowest


def chapters_section(chapters: list[Path], profile: str, rate: float, out: Path, timeout: int,
                     report: Callable[[list[str]], None]) -> tuple[list[str], bool]:
    """Each chapter in a fresh kernel; ``report`` is given the section so far after every chapter, so that
    an interrupted run (a GPU lent for minutes, a long full profile on a CPU) keeps what it measured."""
    lines = [f"## Chapters ({profile} profile)", "",
             "CPU seconds: the kernel's user + system time, which other work on a shared machine barely "
             "changes; on 2 cores a chapter's wall time is at best half of it.", "",
             "| chapter | device | profile | seconds | CPU seconds | peak memory (MB) | status | slowest cell |",
             "|---|---|---|---:|---:|---:|---|---|"]
    cost_lines = ["## Training against the arithmetic floor", "",
                  f"Floor: the chapter's training FLOPs at {rate / 1e9:.1f} GFLOP/s, this machine's rate for "
                  "one 1024 × 1024 float32 matrix product (torch's default threads). Training time: the wall "
                  "time covered by the chapter's training runs (overlapping runs counted once).", "",
                  "| chapter | training runs | nets | training GFLOP | training seconds | floor seconds | "
                  "time ÷ floor |", "|---|---:|---:|---:|---:|---:|---:|"]
    os.environ["RESBOOK_PROFILE"] = profile
    all_ok = True
    for path in chapters:
        device, seconds, status, printed = run_chapter(path, out, timeout=timeout, probe=PROBE)
        all_ok &= status == "ok"
        probe = json.loads(printed.strip().splitlines()[-1]) if status == "ok" else {}
        memory = f"{probe['peak_rss_mb']:.0f}" if probe else "?"
        cpu = f"{probe['cpu_seconds']:.1f}" if probe else "?"
        if probe.get("cuda_peak_mb") is not None:
            memory += f" (CUDA {probe['cuda_peak_mb']:.0f})"
        over = " (over budget)" if profile == "quick" and device == "cpu" and seconds > BUDGET else ""
        cell_seconds, first_line = slowest_cell(nbformat.read(out / path.name, as_version=4))
        slowest = f"{cell_seconds:.1f} s: `{first_line[:50].replace('|', '/').replace('`', '')}`"
        lines.append(f"| {path.stem} | {device} | {profile} | {seconds:.1f}{over} | {cpu} | {memory} | {status} | "
                     f"{slowest} |")
        print(lines[-1], flush=True)
        if probe and probe["train_runs"]:
            floor = probe["train_flops"] / rate
            cost_lines.append(f"| {path.stem} | {probe['train_runs']} | {probe['nets']} | "
                              f"{probe['train_flops'] / 1e9:.1f} | {probe['train_seconds']:.1f} | {floor:.2f} | "
                              f"{probe['train_seconds'] / floor:.0f}× |")
        elif probe:
            cost_lines.append(f"| {path.stem} | 0 | 0 | – | – | – | – (no training) |")
        report(lines + [""] + cost_lines + [""])
    return lines + [""] + cost_lines + [""], all_ok


def build_seconds(copy: Path, output: Path) -> float:
    """The wall time of ``make book``'s build of ``copy``; a failed build stops the benchmark with its log's tail."""
    start = time.perf_counter()
    build = subprocess.run([sys.executable, str(copy / "tools" / "build_book.py"), "--output", str(output)],
                           cwd=copy, capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(f"the book build of {copy} failed:\n" + "\n".join((build.stdout + build.stderr)
                                                                             .splitlines()[-30:]))
    return time.perf_counter() - start


def rebuild_section(changed: Path) -> list[str]:
    """Three builds of a copy of the working tree: cold, unchanged, one chapter's code changed."""
    with tempfile.TemporaryDirectory() as folder:
        copy, output = Path(folder) / "book", Path(folder) / "out"
        shutil.copytree(ROOT, copy, ignore=COPY_IGNORE)
        cold = build_seconds(copy, output)
        unchanged = build_seconds(copy, output)
        notebook_path = copy / changed.relative_to(ROOT)
        notebook = nbformat.read(notebook_path, as_version=4)
        last_code = [c for c in notebook.cells if c.cell_type == "code"][-1]
        last_code.source += "\n# a changed line (make bench)"
        nbformat.write(notebook, notebook_path)
        one_changed = build_seconds(copy, output)

    def verdict(value: float, budget: float, aim: float) -> str:
        return "within the aim" if value <= aim else "within the budget" if value <= budget else "OVER the budget"

    return ["## Rebuilds (`make book`, 2 CPU cores)", "", "| build | seconds | budget (aim) | |",
            "|---|---:|---:|---|",
            f"| everything, empty cache | {cold:.0f} | {BOOK_BUDGET:.0f} ({BOOK_AIM:.0f}) | "
            f"{verdict(cold, BOOK_BUDGET, BOOK_AIM)} |",
            f"| nothing changed | {unchanged:.0f} | {REBUILD_BUDGET:.0f} ({REBUILD_AIM:.0f}) | "
            f"{verdict(unchanged, REBUILD_BUDGET, REBUILD_AIM)} |",
            f"| one chapter's code changed ({changed.stem}) | {one_changed:.0f} | – | |", ""]


def kernels_section(repeats: int) -> list[str]:
    """Batched against plain, on the book's own helpers."""
    from bench_batched import bench as bench_training

    from resbook.data import Dataset, digits
    from resbook.jacobians import input_output_jacobians, input_output_jacobians_loop
    from resbook.landscape import filter_normalised_direction, loss_grid
    from resbook.models import residual_mlp
    from resbook.paths import (MAX_BRUTE_FORCE_BLOCKS, jacobian_by_path_length,
                               jacobian_by_path_length_brute_force)

    data, rows = digits(), []
    torch.manual_seed(0)

    times = bench_training(56, 8, 100, repeats, data)
    rows.append(("8 nets of depth 56 trained 100 steps: together (hand-batched layers) vs one at a time",
                 times["together (layers)"], times["one at a time"]))

    net = residual_mlp(20, 32, data.n_features, data.n_outputs).eval()
    generator = torch.Generator().manual_seed(0)
    directions = [filter_normalised_direction(net, generator) for _ in range(2)]
    subset = Dataset(f"{data.name}, first 300", data.x[:300], data.y[:300], data.task)
    coords = torch.linspace(-1, 1, 31)
    batched = best_seconds(lambda: loss_grid(net, directions, subset, coords, batched=True), repeats)
    looped = best_seconds(lambda: loss_grid(net, directions, subset, coords, batched=False), repeats)
    rows.append((f"loss landscape, 31 × 31 grid, depth-20 net, {len(subset)} samples: vmap vs a loop over points",
                 batched, looped))

    blocks = min(BRUTE_FORCE_BLOCKS, MAX_BRUTE_FORCE_BLOCKS)
    jacobians = torch.randn(blocks, 16, 16, dtype=torch.float64) / 16
    dp = best_seconds(lambda: jacobian_by_path_length(jacobians), repeats)
    brute = best_seconds(lambda: jacobian_by_path_length_brute_force(jacobians), 1)
    rows.append((f"path-length decomposition, {blocks} blocks of width 16: dynamic programming "
                 f"vs all 2^{blocks} paths one by one", dp, brute))

    inputs = data.x[:64]
    vmapped = best_seconds(lambda: input_output_jacobians(net, inputs), repeats)
    loop = best_seconds(lambda: input_output_jacobians_loop(net, inputs), repeats)
    rows.append(("input–output Jacobians of 64 digits, depth-20 net: vmap(jacrev) vs a loop over samples",
                 vmapped, loop))

    lines = ["## Batched kernels against the plain way", "",
             "| what | batched (s) | plain (s) | speed-up |", "|---|---:|---:|---:|"]
    lines += [f"| {what} | {fast:.3g} | {slow:.3g} | {slow / fast:.1f}× |" for what, fast, slow in rows]
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("quick", "full"), default=None,
                        help="default: RESBOOK_PROFILE, else the device's (quick without a GPU)")
    parser.add_argument("--chapters", nargs="*", type=Path, default=None, help="default: every chapter of _toc.yml")
    parser.add_argument("--rebuild", action="store_true", help="also time three builds of the book (minutes)")
    parser.add_argument("--no-kernels", action="store_true", help="skip the batched-against-plain kernels")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds per cell (the full profile on a CPU needs more)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build")
    parser.add_argument("--executed", type=Path, default=None,
                        help="keep the executed chapters in this folder (default: a temporary one)")
    args = parser.parse_args()

    from resbook.cost import matmul_rate
    from resbook.device import choose_device

    device = choose_device()
    profile = args.profile or os.environ.get("RESBOOK_PROFILE") or ("full" if device.type == "cuda" else "quick")
    chapters = [p.resolve() for p in args.chapters] if args.chapters else toc_chapters()
    args.out.mkdir(parents=True, exist_ok=True)
    rate = matmul_rate(device)
    header = [f"# The book, measured ({time.strftime('%Y-%m-%d %H:%M')})", "",
              f"torch {torch.__version__} · {torch.get_num_threads()} threads · device {device.type} · "
              f"{os.cpu_count()} CPUs · matmul {rate / 1e9:.1f} GFLOP/s", ""]
    report = args.out / "bench.md"

    def write(sections: list[str]) -> None:
        report.write_text("\n".join(header + sections))

    with tempfile.TemporaryDirectory() as executed:
        kept = args.executed or Path(executed)
        kept.mkdir(parents=True, exist_ok=True)
        sections, ok = chapters_section(chapters, profile, rate, kept, args.timeout, write)
    if args.rebuild:
        sections += rebuild_section(chapters[0])
        write(sections)
    if not args.no_kernels:
        sections += kernels_section(args.repeats)
    write(sections)
    print("\n".join(header + sections))
    print(f"wrote {report}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
