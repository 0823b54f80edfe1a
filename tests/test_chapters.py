"""Every chapter runs top to bottom in a fresh kernel, alone, within the time budget's reach."""
from __future__ import annotations

import os
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import CHAPTERS

BUDGET_SECONDS = 45  # per chapter, quick profile, 2 CPU cores (reported, not asserted: machines are noisy)


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_executes_in_a_fresh_kernel(path, tmp_path, monkeypatch):
    monkeypatch.setenv("RESBOOK_PROFILE", os.environ.get("RESBOOK_PROFILE", "quick"))
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # runs where it can't see the repo
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    print(f"\n{path.name}: executed in {seconds:.1f} s (budget {BUDGET_SECONDS} s in quick)")
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
