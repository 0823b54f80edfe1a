"""The chapter template (book/_template.ipynb) is a chapter in every respect but the table of contents:
it keeps the committed-notebook facts every chapter keeps, and runs alone in a fresh kernel."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

import test_notebooks
from conftest import ROOT

TEMPLATE = ROOT / "book" / "_template.ipynb"
FACTS = [test_notebooks.test_chapter_is_committed_without_outputs,
         test_notebooks.test_chapter_first_cell_installs_resbook_from_this_repository_and_is_hidden,
         test_notebooks.test_chapter_follows_the_template,
         test_notebooks.test_every_figure_cell_has_a_caption_and_alt_text]


@pytest.mark.parametrize("fact", FACTS, ids=lambda f: f.__name__)
def test_the_template_keeps_every_chapter_fact(fact):
    fact(TEMPLATE)


def test_the_template_is_not_a_chapter_of_the_book():
    assert "_template" not in (ROOT / "_toc.yml").read_text()


@pytest.mark.slow
def test_the_template_runs_alone_in_a_fresh_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("RESBOOK_PROFILE", "quick")
    notebook = nbformat.read(TEMPLATE, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
