"""The student edition of a chapter: the same notebook with every solution taken out.

A code cell tagged ``solution`` becomes a stub: if it defines a function, the stub keeps the
imports before it, its signature and its docstring, and its body becomes ``raise NotImplementedError``
(the exercise's checker then says it is not written yet); otherwise the cell becomes one that prints
that the exercise is open, so that "Run all" goes on past it. The stub is tagged ``exercise-stub``
instead of ``solution``. A markdown cell tagged ``solution`` (a sphinx-exercise ``{solution}``, ``{solution-start}`` or
``{solution-end}`` cell) is removed. Every other cell is kept as it is; all outputs are cleared.

It is made from the notebook edition (:mod:`resbook.edition`, ``make notebooks``), whose Markdown reads
cleanly in Jupyter and Colab and whose solution cells keep their tag; any notebook works as input.

    python -m resbook.student --all -o student/          # every chapter of notebooks/book (make notebooks)
    python -m resbook.student notebooks/book/00_degradation.ipynb -o student/
    python -m resbook.student --all --book book -o student/   # from the chapters' MyST sources instead
"""
from __future__ import annotations

import argparse
import ast
import copy
import io
import os
import re
import sys
import tokenize
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

SOLUTION_TAG = "solution"
STUB_TAG = "exercise-stub"
STUB_BODY = "# YOUR CODE HERE\nraise NotImplementedError"
# A solution cell that defines no function becomes a cell that says the exercise is open and lets
# "Run all" go on to the next cells (a function stub raises only when called: its checker says so).
OPEN_EXERCISE = ('# YOUR CODE HERE\n'
                 'print("This exercise is open: replace this cell with your code, then run it.")')
CHAPTER_PATTERN = "[0-9][0-9]_*.ipynb"
EDITION_BOOK = Path("notebooks/book")  # where `make notebooks` writes the notebook edition's chapters


def _first_function(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next((node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))), None)


def _python_lines(source: str) -> list[str]:
    """``source`` split into lines as Python counts them (``ast`` line numbers): at ``\\n``, ``\\r\\n`` and
    ``\\r`` only. ``str.splitlines`` also splits at form feed, U+0085 or U+2028, which Python does not."""
    return re.split(r"\r\n|\r|\n", source)


def _segment(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    """Source text from (line, column) ``start`` to ``end``; lines count from 1, columns in characters."""
    (first, start_col), (last, end_col) = start, end
    if first == last:
        return lines[first - 1][start_col:end_col]
    middle = lines[first:last - 1]
    return "\n".join([lines[first - 1][start_col:], *middle, lines[last - 1][:end_col]])


def _signature_end(lines: list[str], def_line: int) -> tuple[int, int]:
    """(line, column) just after the colon that ends the ``def`` starting on ``def_line``."""
    text = "\n".join(lines[def_line - 1:]) + "\n"
    depth, seen_def = 0, False
    for token in tokenize.generate_tokens(io.StringIO(text, newline="\n").readline):
        seen_def = seen_def or (token.type == tokenize.NAME and token.string == "def")
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif seen_def and depth == 0 and token.type == tokenize.OP and token.string == ":":
            line, column = token.end
            return def_line + line - 1, column
    raise ValueError("no colon after def")  # unreachable for source that ast has parsed


def function_stub(source: str) -> str:
    """The stub for a solution cell: its first top-level function with the body replaced, or a bare stub.

    The stub keeps the imports that precede the function, its decorators, signature and docstring.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. IPython magics: no function to keep
        return OPEN_EXERCISE
    function = _first_function(tree)
    if function is None:
        return OPEN_EXERCISE
    lines = _python_lines(source)
    imports = [ast.get_source_segment(source, node) for node in tree.body[:tree.body.index(function)]
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    start = min([function.lineno] + [decorator.lineno for decorator in function.decorator_list])
    body = function.body[0]
    header = _segment(lines, (start, 0), _signature_end(lines, function.lineno)).lstrip("\f")
    kept = [header]
    docstring = ast.get_docstring(function, clean=False) is not None
    if docstring:  # ast's columns count UTF-8 bytes: let ast cut the docstring out
        kept.append("    " + ast.get_source_segment(source, body))
    kept += ["    " + line for line in STUB_BODY.splitlines()]
    function_text = "\n".join(kept)
    return "\n".join(imports) + "\n\n\n" + function_text if imports else function_text


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stub_cell(cell: NotebookNode, index: int) -> NotebookNode:
    stub = copy.deepcopy(cell)
    stub.source = function_stub(cell.source)
    try:  # a student must never receive a stub that does not run
        compile(stub.source, f"<stub of cell {index}>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        raise ValueError(f"cell {index}: the stub made from this solution cell is not valid Python "
                         f"({type(error).__name__}: {error}); nothing was written") from None
    stub.metadata["tags"] = [tag for tag in _tags(cell) if tag != SOLUTION_TAG] + [STUB_TAG]
    return stub


def _cleared(cell: NotebookNode) -> NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def student_edition(notebook: NotebookNode) -> NotebookNode:
    """A new notebook: solution code cells become stubs, solution markdown cells go, outputs are cleared.

    Raises ``ValueError`` naming the cell if a solution cell's stub would not be valid Python.
    """
    if not isinstance(notebook, dict) or "cells" not in notebook:
        raise TypeError(f"notebook must be an nbformat NotebookNode, got {type(notebook).__name__}")
    edition = copy.deepcopy(notebook)
    cells = []
    for index, cell in enumerate(notebook.cells):
        if SOLUTION_TAG not in _tags(cell):
            cells.append(_cleared(cell))
        elif cell.cell_type == "code":
            cells.append(_cleared(_stub_cell(cell, index)))
        # a markdown (or raw) solution cell is left out
    edition.cells = cells
    return edition


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at ``path``; ValueError with the reason if there is none, or it is not a notebook."""
    if not path.is_file():
        raise ValueError(f"notebook {str(path)!r} does not exist" if not path.exists()
                         else f"notebook {str(path)!r} is not a file")
    try:
        notebook = nbformat.from_dict(nbformat.read(path, as_version=4))  # an older format converted to 4
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds for text that is not a notebook
        reason = str(error).split("\n")[0]
        raise ValueError(f"{str(path)!r} is not a Jupyter notebook ({type(error).__name__}: {reason})") from error
    return notebook


def write_student_edition(notebook_path: str | Path, out_dir: str | Path) -> Path:
    """Write the student edition of ``notebook_path`` into ``out_dir`` under the same name; return its path."""
    notebook_path, out_dir = _path("notebook_path", notebook_path), _path("out_dir", out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is a file, not a directory")
    notebook = read_notebook(notebook_path)
    try:
        edition = student_edition(notebook)
    except ValueError as error:
        raise ValueError(f"{str(notebook_path)!r}: {error}") from None
    target = out_dir / notebook_path.name
    if target.resolve() == notebook_path.resolve():
        raise ValueError(f"out_dir {str(out_dir)!r} holds the chapter itself: writing there would erase its solutions")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(edition, target)
    except OSError as error:
        raise ValueError(f"cannot write {str(target)!r}: {error.strerror or error}") from None
    return target


def _path(name: str, value: object) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {type(value).__name__} {value!r}")
    return Path(value)


def chapter_paths(book_dir: str | Path) -> list[Path]:
    """The chapters in ``book_dir``: notebooks named ``NN_name.ipynb``, in order."""
    book_dir = _path("book_dir", book_dir)
    if not book_dir.is_dir():
        hint = " (make notebooks writes the notebook edition there)" if book_dir == EDITION_BOOK else ""
        raise ValueError(f"book directory {str(book_dir)!r} does not exist{hint}")
    chapters = sorted(book_dir.glob(CHAPTER_PATTERN))
    if not chapters:
        raise ValueError(f"no chapters ({CHAPTER_PATTERN}) in {str(book_dir)!r}")
    return chapters


def untagged_solutions(notebook: NotebookNode) -> list[int]:
    """Indices of cells that are part of a solution but lack the ``solution`` tag, so would reach students.

    Those are markdown cells holding a ``{solution...}`` directive, and code cells between a
    ``{solution-start}`` and its ``{solution-end}``.
    """
    found, inside = [], False
    for index, cell in enumerate(notebook.cells):
        is_markdown = cell.cell_type == "markdown"
        part_of_solution = "{solution" in cell.source if is_markdown else inside
        if part_of_solution and SOLUTION_TAG not in _tags(cell):
            found.append(index)
        if is_markdown and "{solution-start}" in cell.source:
            inside = True
        if is_markdown and "{solution-end}" in cell.source:
            inside = False
    return found


def _report(chapter: Path, written: Path) -> None:
    """Print what was written, and warn about solutions the student edition kept."""
    stubs = sum(STUB_TAG in _tags(cell) for cell in nbformat.read(written, as_version=4).cells)
    print(f"wrote {written} ({stubs} exercise stub{'s' * (stubs != 1)})")
    for index in untagged_solutions(read_notebook(chapter)):
        print(f"warning: {chapter} cell {index} is part of a solution but not tagged {SOLUTION_TAG!r}, "
              f"so the student edition keeps it", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write student editions; on a bad argument print one error line and return 2."""
    parser = argparse.ArgumentParser(prog="python -m resbook.student", description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="chapter notebooks (.ipynb)")
    parser.add_argument("--all", action="store_true", help=f"every chapter in the book directory ({CHAPTER_PATTERN})")
    parser.add_argument("--book", type=Path, default=EDITION_BOOK,
                        help=f"the chapters' folder for --all (default: {EDITION_BOOK}, the notebook edition)")
    parser.add_argument("-o", "--out", type=Path, default=Path("student"), help="output directory (default: student)")
    args = parser.parse_args(argv)
    if bool(args.all) == bool(args.notebooks):
        parser.error("give either notebooks or --all")
    try:
        for notebook in chapter_paths(args.book) if args.all else args.notebooks:
            _report(notebook, write_student_edition(notebook, args.out))
    except ValueError as error:
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
