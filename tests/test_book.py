"""The built book as a reader gets it, read from the HTML of every chapter in _toc.yml: every glued
number in place, no error output, every figure captioned, every solution and checker verdict
there, each as many as the chapter's notebook asks for. (The browser tests check how the pages behave.)"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

import chapter_cells
from chapter_cells import TOC_CHAPTERS
from conftest import ROOT
from resbook import degradation
from resbook.profile import get_profile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page(built_book):
    """``page(path)``: the built HTML page of the chapter notebook at ``path``, parsed (once per chapter)."""
    parsed: dict[Path, BeautifulSoup] = {}

    def read(path: Path) -> BeautifulSoup:
        if path not in parsed:
            html = built_book / path.relative_to(ROOT).with_suffix(".html")
            parsed[path] = BeautifulSoup(html.read_text(), "html.parser")
        return parsed[path]

    return read


def chapters(test):
    return pytest.mark.parametrize("path", TOC_CHAPTERS, ids=lambda p: p.name)(test)


# --- every chapter ------------------------------------------------------------------------------------

@chapters
def test_every_glued_number_reached_the_text(page, path):
    text = page(path).get_text()
    assert "{glue" not in text and "glue:text" not in text
    glued = chapter_cells.glued_numbers(chapter_cells.read(path))
    assert len(page(path).select("span.pasted-text")) == glued


@chapters
def test_no_cell_wrote_an_error_or_a_warning(page, path):
    assert not page(path).select(".output.stderr, .output.traceback, .output.error")
    assert "Traceback" not in page(path).get_text()


@chapters
def test_every_figure_has_a_caption_and_alt_text(page, path):
    figures = page(path).select("figure")
    assert len(figures) == chapter_cells.captioned_figures(chapter_cells.read(path))
    for figure in figures:
        assert figure.select_one("figcaption").get_text(strip=True)
        assert all(img.get("alt") for img in figure.select("img"))


@chapters
def test_every_interactive_figure_is_in_the_page_with_frames(page, path):
    figures = page(path).select(".resbook-interactive")
    assert len(figures) == chapter_cells.interactive_figures(chapter_cells.read(path))
    assert all(str(figure).count("data:image/png;base64,") >= 2 for figure in figures)


@chapters
def test_solutions_are_in_the_page_and_checkers_passed(page, path):
    notebook = chapter_cells.read(path)
    assert len(page(path).select("div.solution")) == chapter_cells.solution_directives(notebook)
    verdicts = [p.get_text() for p in page(path).select("div.cell_output pre")
                if p.get_text().startswith(("✓", "✗"))]
    assert len(verdicts) == len(chapter_cells.checker_calls(notebook))
    assert all(v.startswith("✓") and v.rstrip().endswith(" checks") for v in verdicts), verdicts


# --- chapter 0: what its own text and table say ---------------------------------------------------------

CHAPTER_0 = ROOT / "book" / "00_degradation.ipynb"


def chapter_0_depths() -> list[int]:
    """The depths chapter 0 sweeps in this profile (its module's sizes)."""
    return list(get_profile().pick(degradation.SIZES).depths)


@pytest.fixture(scope="module")
def chapter_0(page):
    if CHAPTER_0 not in TOC_CHAPTERS:
        pytest.skip("chapter 0 is not in _toc.yml")
    return page(CHAPTER_0)


def test_chapter_0_numbers_in_the_prose_are_the_numbers_the_chapter_printed(chapter_0):
    # The cell prints the four final losses; the paragraph after it quotes them through glue.
    printed = next(p.get_text() for p in chapter_0.select("div.cell_output pre")
                   if "final training loss:" in p.get_text())
    values = re.findall(r"\d+\.\d+", printed)
    pasted = {span.get_text() for span in chapter_0.select("span.pasted-text")}
    assert len(values) == 4 and set(values) <= pasted, (values, pasted)


def test_chapter_0_loss_and_test_error_tables_have_a_row_for_every_depth_of_the_profile(chapter_0):
    by_depth = [t for t in chapter_0.select("table") if t.select_one("thead th").get_text(strip=True) == "depth"]
    assert len(by_depth) == 2  # training loss, then test error
    for table in by_depth:
        depths = [int(row.select("td")[0].get_text()) for row in table.select("tbody tr")]
        assert depths == chapter_0_depths()
    assert all("%" in cell.get_text() for cell in by_depth[1].select("tbody td")[1:3])


def test_chapter_0_intervention_table_has_the_recipe_and_every_intervention(chapter_0):
    from resbook.degradation import INTERVENTIONS

    table = next(t for t in chapter_0.select("table") if "trained with" in t.get_text())
    names = [row.select("td")[0].get_text(strip=True) for row in table.select("tbody tr")]
    assert names == ["the recipe above"] + [i.name for i in INTERVENTIONS]


def test_chapter_0_interactive_figure_has_a_frame_per_depth(chapter_0):
    html = str(chapter_0.select_one(".resbook-interactive"))
    assert html.count("data:image/png;base64,") == len(chapter_0_depths())


def test_chapter_0_has_at_least_three_figures_four_solutions_and_two_checkers(chapter_0):
    # What chapter 0 is written with today; the per-chapter tests above compare each page with its notebook.
    assert len(chapter_0.select("figure")) >= 3
    assert len(chapter_0.select(".solution")) >= 4
    assert len(chapter_0.select("span.pasted-text")) >= 15
    assert sum(p.get_text().startswith("✓") for p in chapter_0.select("div.cell_output pre")) == 2
