"""The built book as a reader gets it, read from the HTML: every number and table in place, no error
output, every figure captioned. (The browser tests check how the pages behave.)"""
from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from resbook.profile import get_profile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chapter(built_book):
    return BeautifulSoup((built_book / "book" / "00_degradation.html").read_text(), "html.parser")


def test_every_glued_number_reached_the_text(chapter):
    text = chapter.get_text()
    assert "{glue" not in text and "glue:text" not in text
    assert len(chapter.select("span.pasted-text")) >= 15


def test_numbers_in_the_prose_are_the_numbers_the_chapter_printed(chapter):
    # The cell prints the four final losses; the paragraph after it quotes them through glue.
    printed = next(p.get_text() for p in chapter.select("div.cell_output pre") if "final training loss:" in p.get_text())
    values = re.findall(r"\d+\.\d+", printed)
    pasted = {span.get_text() for span in chapter.select("span.pasted-text")}
    assert len(values) == 4 and set(values) <= pasted, (values, pasted)


def test_loss_table_has_a_row_for_every_depth_of_the_profile(chapter):
    tables = [t for t in chapter.select("table") if "residual" in t.get_text()]
    assert len(tables) == 1
    depths = [int(row.select("td")[0].get_text()) for row in tables[0].select("tbody tr")]
    assert depths == list(get_profile().depths)


def test_no_cell_wrote_an_error_or_a_warning(chapter):
    assert not chapter.select(".output.stderr, .output.traceback, .output.error")
    assert "Traceback" not in chapter.get_text()


def test_every_figure_has_a_caption_and_alt_text(chapter):
    figures = chapter.select("figure")
    assert len(figures) >= 3
    for figure in figures:
        assert figure.select_one("figcaption").get_text(strip=True)
        assert all(img.get("alt") for img in figure.select("img"))


def test_the_interactive_figure_has_a_frame_per_depth(chapter):
    html = str(chapter.select_one(".resbook-interactive"))
    assert html.count("data:image/png;base64,") == len(get_profile().depths)


def test_solutions_are_in_the_page_and_checkers_passed(chapter):
    assert len(chapter.select(".solution")) >= 4
    verdicts = [p.get_text() for p in chapter.select("div.cell_output pre") if "checks" in p.get_text()]
    assert len(verdicts) == 2 and all(v.startswith("✓") for v in verdicts)
