"""Every chapter ran top to bottom, alone, in the book build, within the time budget's reach.

The build executes each chapter once (in a fresh kernel whose working folder is a new temporary one)
and keeps the run in its execution cache; these tests read that run instead of executing again.
"""
from __future__ import annotations

import re

import nbformat
import pytest
import yaml

from chapter_cells import TOC_CHAPTERS
from conftest import BUILD_OUTPUT_VARIABLE, ROOT, build_output

BUDGET_SECONDS = 45  # per chapter, quick profile, 2 CPU cores (reported, not asserted: machines are noisy)


def test_the_build_runs_each_chapter_in_a_temporary_folder_and_keeps_the_run_in_its_own_build_folder():
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    assert execute["run_in_temp"] is True  # a chapter that reads or writes files beside it fails there
    assert execute["execute_notebooks"] == "cache" and execute["allow_errors"] is False
    # A `cache:` path is relative to where the build runs, so builds into different output folders
    # would share one cache (and tools/build_book.py would clear the wrong one).
    assert "cache" not in execute


def test_the_tests_build_into_the_repository_unless_told_to_build_elsewhere(monkeypatch, tmp_path):
    monkeypatch.delenv(BUILD_OUTPUT_VARIABLE, raising=False)
    assert build_output() == ROOT
    monkeypatch.setenv(BUILD_OUTPUT_VARIABLE, str(tmp_path / "new" / ".." / "mine"))
    assert build_output() == tmp_path / "mine"
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(BUILD_OUTPUT_VARIABLE, str(tmp_path / "a_file"))
    with pytest.raises(ValueError, match=f"{BUILD_OUTPUT_VARIABLE}=.*a_file.* is a file"):
        build_output()


@pytest.mark.slow
@pytest.mark.parametrize("path", TOC_CHAPTERS, ids=lambda p: p.name)
def test_chapter_ran_every_cell_once_in_order_in_a_fresh_kernel_without_errors(path, executed_chapter):
    run = executed_chapter(path)
    printed = "".join(o.get("text", "") for c in run.notebook.cells for o in c.get("outputs", []))
    profile = re.search(r"profile: (\w+)", printed)  # the line resbook.chapter.setup() prints
    print(f"\n{path.name}: executed in {run.seconds:.1f} s by the book build at {run.executed_at:%Y-%m-%d %H:%M:%S}, "
          f"profile {profile.group(1) if profile else '?'} (budget {BUDGET_SECONDS} s in quick)")
    committed = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    ran = [c for c in run.notebook.cells if c.cell_type == "code"]
    assert [c.source for c in ran] == committed  # the run is of the chapter as it is now
    # A fresh kernel counts from 1: every cell ran once, top to bottom, none skipped or repeated.
    assert [c.execution_count for c in ran] == list(range(1, len(ran) + 1))
    errors = [(i, o.get("ename")) for i, c in enumerate(ran) for o in c.outputs if o.output_type == "error"]
    assert errors == []
