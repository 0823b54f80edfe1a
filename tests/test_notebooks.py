"""Facts every chapter notebook keeps as committed: clean, listed, installable in Colab."""
from __future__ import annotations

import re

import nbformat
import pytest
import yaml

from chapter_cells import TOC_CHAPTERS
from conftest import CHAPTERS, ROOT

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]["url"]


def test_there_is_at_least_one_chapter():
    assert CHAPTERS, "no book/NN_*.ipynb found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {index} has stored outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_first_cell_installs_resbook_from_this_repository_and_is_hidden(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata.get("tags", [])
    assert "google.colab" in first.source
    addresses = re.findall(r"git\+(https://[^\"'\s]+)", first.source)
    assert addresses == [REPOSITORY], f"install from {addresses}, but _config.yml says {REPOSITORY}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_in_the_table_of_contents(path):
    # The tests of the built book and its pages run over the chapters that _toc.yml lists.
    assert path in TOC_CHAPTERS


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_template(path):
    notebook = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for heading in ["You will learn", "## The claim", "## The math", "## The experiment",
                    "## What to remember", "## Exercises", "## References"]:
        assert heading in markdown, f"missing template part {heading!r}"
    assert markdown.count("```{exercise}") >= 3, "fewer than three exercises"
    assert "interactive_figure(" in "\n".join(c.source for c in notebook.cells), "no interactive figure"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_figure_cell_has_a_caption_and_alt_text(path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            mystnb = cell.metadata.get("mystnb", {})
            assert mystnb.get("figure", {}).get("caption"), f"cell {index}: figure without caption"
            assert mystnb.get("image", {}).get("alt"), f"cell {index}: figure without alt text"


def test_every_book_page_is_listed_and_exists():
    listed = re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())
    for name in listed:
        assert any((ROOT / f"{name}{suffix}").exists() for suffix in (".md", ".ipynb")), name
