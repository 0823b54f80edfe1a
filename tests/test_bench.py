"""`make bench` (tools/bench_book.py) reads what it reports from the right places: the chapters of
_toc.yml, and a probe that runs in a chapter's kernel after its last cell."""
from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

from resbook import cost
from resbook.data import spirals
from resbook.models import residual_mlp
from resbook.recipe import Recipe
from resbook.training import train

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bench_book  # noqa: E402


def test_the_benchmark_runs_every_chapter_of_the_table_of_contents_in_order():
    listed = re.findall(r"file:\s*(book/\d\d_\S+)", (ROOT / "_toc.yml").read_text())
    assert [p.relative_to(ROOT).with_suffix("").as_posix() for p in bench_book.toc_chapters()] == listed
    assert all(p.exists() for p in bench_book.toc_chapters())


def test_the_probe_reports_memory_and_the_training_the_kernel_did():
    cost.clear()
    model = residual_mlp(4, 8, 2, 2)
    train(model, spirals(n=64), Recipe(steps=3, batch_size=16), seed=0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(bench_book.PROBE, {})
    report = json.loads(printed.getvalue())
    assert report["train_runs"] == 1 and report["nets"] == 1
    assert report["train_flops"] == cost.training_flops(model, 16, 3)
    assert report["peak_rss_mb"] > 10 and report["train_seconds"] > 0
    assert report["cpu_seconds"] >= report["train_seconds"] * 0.5  # the kernel's own CPU time, training included
    cost.clear()


def test_the_slowest_cell_is_read_from_the_times_nbclient_records():
    import nbformat

    def cell(source, start, end):
        code = nbformat.v4.new_code_cell(source)
        code.metadata["execution"] = {"iopub.execute_input": f"2026-01-01T00:00:{start}Z",
                                      "shell.execute_reply": f"2026-01-01T00:00:{end}Z"}
        return code

    notebook = nbformat.v4.new_notebook(cells=[
        cell("import torch", "00.000", "01.500"), nbformat.v4.new_markdown_cell("prose"),
        cell("sweep = depth_sweep(data)\nplot(sweep)", "01.600", "13.850"), cell("glue('x', 1)", "13.900", "14.000"),
        nbformat.v4.new_code_cell("never run")])
    assert bench_book.slowest_cell(notebook) == (12.25, "sweep = depth_sweep(data)")
    assert bench_book.slowest_cell(nbformat.v4.new_notebook()) == (0.0, "")
