"""The notebook edition: every chapter (and the intro) as a notebook that reads well in Jupyter and Colab.

Made from the book build's own results, so that its numbers are the HTML book's: the chapter's cells, in
order, with the Markdown turned into plain Jupyter Markdown (:mod:`resbook.myst_markdown`), the glued
numbers as the build computed them (read from ``<build>/jupyter_execute/book/NN_name.glue.json``), and:

- the install cell first, pinned to the commit that built the edition, then a note under the title saying
  that the numbers in the text are the build's and a run prints its own;
- citations as "(He et al., 2016a)", with the full entries at the end of the notebook;
- exercises as bold "Exercise N: title" headings; a text solution folded in a ``<details>`` block; a code
  solution stays a code cell (tagged ``solution``, its input collapsed in JupyterLab), after a bold
  "Solution to Exercise N" line, with its prose folded in a ``<details>`` block;
- a figure's caption (cell metadata ``mystnb.figure.caption``) as a Markdown cell after its code cell;
- cell tags kept (the student edition, :mod:`resbook.student`, finds the solutions by their tag); outputs
  cleared: a reader's run makes its own.

    python -m resbook.edition --build _build --out notebooks      # after `make book`; `make notebooks`
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from resbook.myst_markdown import Context, translate
from resbook.student import SOLUTION_TAG, chapter_paths, read_notebook

ROOT = Path(__file__).resolve().parents[2]
HEADING = re.compile(r"^#\s+(.+)$", re.MULTILINE)


def html_book_url(repository_url: str) -> str:
    """The HTML book's address on GitHub Pages: ``https://github.com/o/r`` -> ``https://o.github.io/r/``."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)/?", str(repository_url))
    if not match:
        raise ValueError(f"repository_url must be https://github.com/<owner>/<name>, got {repository_url!r}")
    return f"https://{match.group(1).lower()}.github.io/{match.group(2)}/"


def repository_url(root: Path = ROOT) -> str:
    """``repository.url`` from the book's ``_config.yml``."""
    import yaml  # a dependency of the book build, which is where editions are made

    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


class Bibliography:
    """The book's references.bib: author-year citations and the full entries, formatted by pybtex."""

    def __init__(self, bib_path: Path) -> None:
        from pybtex.database import parse_file  # installed with sphinxcontrib-bibtex (the book build)
        from pybtex.plugin import find_plugin

        self.entries = parse_file(str(bib_path)).entries
        self.cited: list[str] = []
        # Each plugin looked up once: pybtex's render_as("text") looks its backend up among all installed
        # packages' entry points on every call, which made writing the edition take minutes in a test session.
        self._text, self._markdown = (find_plugin("pybtex.backends", name)() for name in ("text", "markdown"))
        self._style = find_plugin("pybtex.style.formatting", "plain")()

    def _names_and_year(self, key: str) -> tuple[str, str]:
        if key not in self.entries:
            raise ValueError(f"citation key {key!r} is not in references.bib")
        if key not in self.cited:
            self.cited.append(key)
        entry = self.entries[key]
        last = [person.rich_last_names[0].render(self._text) if person.rich_last_names else str(person)
                for person in entry.persons.get("author", entry.persons.get("editor", []))]
        names = last[0] + " et al." if len(last) > 2 else " and ".join(last)
        return names, entry.fields.get("year", "n.d.")

    def cite(self, keys: list[str], textual: bool) -> str:
        """"He et al. (2016a)" (``textual``) or "(He et al., 2016a)"; several keys joined by "; "."""
        pairs = [self._names_and_year(key) for key in keys]
        if textual:
            return "; ".join(f"{names} ({year})" for names, year in pairs)
        return "(" + "; ".join(f"{names}, {year}" for names, year in pairs) + ")"

    def full_entries(self) -> list[str]:
        """The cited works, one Markdown line each, in pybtex's plain style, sorted by their label."""
        keys = sorted(self.cited, key=lambda key: self.cite([key], True))
        formatted = self._style.format_entries([self.entries[key] for key in keys])
        return [" ".join(entry.text.render(self._markdown).split()) for entry in formatted]


def book_index(book_dir: Path) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Page titles (page -> first heading) and ``(label)=`` targets (label -> page, heading) of the book."""
    titles, labels = {}, {}
    for path in sorted([*book_dir.glob("*.md"), *book_dir.glob("*.ipynb")]):
        page = f"{book_dir.name}/{path.stem}"
        text = path.read_text() if path.suffix == ".md" else "\n".join(
            cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
        if heading := HEADING.search(text):
            titles[page] = heading.group(1).strip()
        for match in re.finditer(r"^\(([^()\s]+)\)=\s*\n+#+\s+(.+)$", text, re.MULTILINE):
            labels[match.group(1)] = (page, match.group(2).strip())
    return titles, labels


def make_context(glue: dict[str, str], bibliography: Bibliography, html_url: str, book_dir: Path) -> Context:
    """A translation context for one document of ``book_dir``."""
    titles, labels = book_index(book_dir)

    def page_url(page: str, anchor: str) -> str:
        return f"{html_url}{page}.html" + (f"#{anchor}" if anchor else "")

    return Context(glue=glue, cite=bibliography.cite, page_url=page_url, labels=labels, page_titles=titles,
                   directory=book_dir.name)


def read_glue(build_dir: Path, chapter: Path) -> dict[str, str]:
    """The chapter's glued values (name -> ``text/plain``) as the build computed them.

    Refuses a build whose executed chapter has other code cells than the chapter now: its numbers would
    belong to other code.
    """
    executed_path = build_dir / "jupyter_execute" / chapter.parent.name / chapter.name
    if not executed_path.is_file():
        raise ValueError(f"no executed {chapter.name} in {str(build_dir)!r}: build the book first (make book)")
    code = [[cell.source for cell in read_notebook(path).cells if cell.cell_type == "code"]
            for path in (executed_path, chapter)]
    if code[0] != code[1]:
        raise ValueError(f"the build in {str(build_dir)!r} executed another version of {chapter.name}: "
                         f"build the book again")
    glue_path = executed_path.with_suffix(".glue.json")
    data = json.loads(glue_path.read_text()) if glue_path.is_file() else {}
    return {name: output["data"]["text/plain"] for name, output in data.items() if "text/plain" in output["data"]}


def _markdown_cell(source: str, cell_id: str, tags: Sequence[str] = ()) -> NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = cell_id
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _tag_solution(cell: NotebookNode) -> NotebookNode:
    tags = cell.metadata.setdefault("tags", [])
    if SOLUTION_TAG not in tags:
        tags.append(SOLUTION_TAG)
    return cell


def pinned_install_cell(cell: NotebookNode, url: str, commit: str) -> NotebookNode:
    """The chapter's install cell, installing ``resbook`` from ``url`` at ``commit``."""
    pattern = re.compile(r"git\+" + re.escape(url) + r"(@[^\"'\s]*)?")
    if cell.cell_type != "code" or not pattern.search(cell.source):
        raise ValueError(f"the first cell does not install resbook from git+{url}")
    cell = copy.deepcopy(cell)
    cell.source = pattern.sub(f"git+{url}@{commit}", cell.source)
    return cell


def edition_note(html_url: str, url: str, commit: str) -> str:
    """The note under the title: where the numbers come from, and that a run prints its own."""
    return (f"> **Notebook edition** of the chapter in the [web book]({html_url}), built from commit "
            f"[`{commit[:7]}`]({url}/tree/{commit}), which the first cell installs. The numbers quoted in "
            f"the text are the ones that build computed; when you run the cells they print your own run's "
            f"numbers, which can differ a little on other hardware, and more with the `full` profile on a GPU. "
            f"Exercise solutions are folded away: open one after you have tried the exercise.")


def _translate_markdown(cell: NotebookNode, context: Context) -> NotebookNode | None:
    inside = context.inside_solution
    text = translate(cell.source, context)
    if not text:
        return None
    edited = copy.deepcopy(cell)
    if inside is not None:  # prose of a code solution, between its solution-start and solution-end
        number = context.exercises.get(inside, "?")
        text = f"<details>\n<summary>Solution to Exercise {number}, explained</summary>\n\n{text}\n\n</details>"
    edited.source = text
    return _tag_solution(edited) if inside is not None or "{solution" in cell.source else edited


def _code_cells(cell: NotebookNode, context: Context, figures: list[int]) -> list[NotebookNode]:
    edited = copy.deepcopy(cell)
    edited.outputs, edited.execution_count = [], None
    if context.inside_solution is not None:
        _tag_solution(edited).metadata.setdefault("jupyter", {})["source_hidden"] = True
    caption = cell.metadata.get("mystnb", {}).get("figure", {}).get("caption")
    if not caption:
        return [edited]
    figures.append(len(figures) + 1)
    text = f"**Figure {figures[-1]}.** {translate(caption, context)}"
    return [edited, _markdown_cell(text, f"{cell.id}-caption"[:64])]


def chapter_edition(chapter: Path, glue: dict[str, str], commit: str, url: str,
                    book_dir: Path | None = None) -> NotebookNode:
    """The notebook edition of ``chapter`` (see the module's docstring), with the numbers in ``glue``."""
    book_dir = book_dir or chapter.parent
    notebook = read_notebook(chapter)
    html_url, bibliography = html_book_url(url), Bibliography(book_dir / "references.bib")
    context = make_context(glue, bibliography, html_url, book_dir)
    cells, figures, noted = [pinned_install_cell(notebook.cells[0], url, commit)], [], False
    for cell in notebook.cells[1:]:
        if cell.cell_type == "markdown":
            edited = _translate_markdown(cell, context)
            if edited is not None and not noted and edited.source.startswith("# "):
                title, _, rest = edited.source.partition("\n")
                edited.source = f"{title}\n\n{edition_note(html_url, url, commit)}\n{rest}"
                noted = True
            cells += [edited] if edited is not None else []
        else:
            cells += _code_cells(cell, context, figures)
    if bibliography.cited:
        entries = "\n".join(f"- {entry}" for entry in bibliography.full_entries())
        cells.append(_markdown_cell(f"**The works cited in this chapter**\n\n{entries}", "edition-references"))
    edition = copy.deepcopy(notebook)
    edition.cells = cells
    return edition


def intro_edition(intro: Path, commit: str, url: str) -> NotebookNode:
    """The intro (a MyST Markdown page) as a notebook of one Markdown cell, its links pointing at the web book."""
    html_url, bibliography = html_book_url(url), Bibliography(intro.parent / "references.bib")
    text = translate(intro.read_text(), make_context({}, bibliography, html_url, intro.parent))
    title, _, rest = text.partition("\n")
    note = (f"> **Notebook edition** of the [web book]({html_url}), built from commit "
            f"[`{commit[:7]}`]({url}/tree/{commit}). Each chapter is a notebook beside this one.")
    cells = [_markdown_cell(f"{title}\n\n{note}\n{rest}", "edition-intro")]
    if bibliography.cited:
        entries = "\n".join(f"- {entry}" for entry in bibliography.full_entries())
        cells.append(_markdown_cell(f"**The works cited**\n\n{entries}", "edition-references"))
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def current_commit(root: Path = ROOT) -> str:
    """The commit checked out in ``root``; a warning on stderr if the book's sources differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "book", "src", "pyproject.toml"],
                                 cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise ValueError(f"cannot read the commit of {str(root)!r} ({error}); pass --commit") from None
    if changed:
        print(f"warning: the book's sources have uncommitted changes; the install cell names {commit[:7]}, "
              f"which lacks them", file=sys.stderr)
    return commit


def write_edition(build_dir: Path, out_dir: Path, commit: str, root: Path = ROOT) -> list[Path]:
    """Write the edition of every chapter and the intro under ``out_dir/book/``; return the paths written."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", str(commit)):
        raise ValueError(f"commit must be a git commit id (7 to 40 hex digits), got {commit!r}")
    url, book_dir = repository_url(root), root / "book"
    editions = {chapter.name: chapter_edition(chapter, read_glue(build_dir, chapter), commit, url, book_dir)
                for chapter in chapter_paths(book_dir)}
    editions["intro.ipynb"] = intro_edition(book_dir / "intro.md", commit, url)
    (out_dir / "book").mkdir(parents=True, exist_ok=True)
    written = []
    for name, edition in editions.items():
        nbformat.validate(edition)
        nbformat.write(edition, out_dir / "book" / name)
        written.append(out_dir / "book" / name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the notebook edition; on a bad argument print one error line and return 2."""
    parser = argparse.ArgumentParser(prog="python -m resbook.edition", description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "_build", help="the book build's _build folder")
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks", help="output folder (default: notebooks)")
    parser.add_argument("--commit", help="the commit the install cell names (default: the one checked out)")
    args = parser.parse_args(argv)
    try:
        for path in write_edition(args.build, args.out, args.commit or current_commit()):
            print(f"wrote {path}")
    except ValueError as error:
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
