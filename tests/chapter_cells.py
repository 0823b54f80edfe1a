"""What the tests read from a chapter notebook as committed: which chapters the book lists, their
solution cells, checker calls, figures, glued numbers and interactive figures.

Tests of the built book compare what a page shows with these counts, so that every chapter is
checked against its own notebook rather than against numbers written for chapter 0.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_NAME = re.compile(r"book/\d\d_[^/]+")
GLUE_TEXT_ROLE = re.compile(r"\{glue:text\}`[^`]+`")


def _toc_files(toc: dict[str, Any]) -> list[str]:
    """Every `file:` of a Jupyter Book table of contents, in reading order."""
    files, stack = [], list(toc.get("chapters", [])) + list(toc.get("parts", []))
    while stack:
        entry = stack.pop(0)
        if "file" in entry:
            files.append(entry["file"])
        stack[:0] = entry.get("chapters", []) + entry.get("sections", [])
    return files


def toc_chapters(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks (book/NN_<name>.ipynb) that _toc.yml lists, in the book's order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [Path(f).with_suffix("").as_posix() for f in _toc_files(toc)]
    return [root / f"{name}.ipynb" for name in names if CHAPTER_NAME.fullmatch(name)]


TOC_CHAPTERS = toc_chapters()


def read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def python_tree(source: str) -> ast.Module:
    """The cell's code as Python (IPython magics such as %pip become plain calls)."""
    return ast.parse(TransformerManager().transform_cell(source))


@dataclass(frozen=True)
class Solution:
    """A code cell tagged `solution` that defines a function at top level (a coding exercise's answer)."""

    index: int
    function: str
    source: str


@dataclass(frozen=True)
class CheckerCall:
    """A code cell that calls a checker on a function, as `check_residual_forward(residual_forward);`."""

    index: int
    checker: str
    argument: str
    source: str


def solutions(notebook: NotebookNode) -> list[Solution]:
    """Every solution cell that defines a function, with the first such function's name."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "solution" in tags(cell):
            function = next((node for node in python_tree(cell.source).body
                             if isinstance(node, ast.FunctionDef)), None)
            if function is not None:
                found.append(Solution(index, function.name, cell.source))
    return found


def checker_calls(notebook: NotebookNode) -> list[CheckerCall]:
    """Every top-level call of a `check_<name>` function in a code cell a student sees: not in a
    solution, and not in a `remove-cell` (the closing `check_trained_on(device)` is no exercise)."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or {"solution", "remove-cell"} & set(tags(cell)):
            continue
        for node in python_tree(cell.source).body:
            call = node.value if isinstance(node, ast.Expr) else None
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id.startswith("check_")):
                argument = call.args[0].id if call.args and isinstance(call.args[0], ast.Name) else ""
                found.append(CheckerCall(index, call.func.id, argument, cell.source))
    return found


def solution_for(notebook: NotebookNode, call: CheckerCall) -> Solution | None:
    """The last solution cell before ``call`` that defines the function the call checks."""
    earlier = [s for s in solutions(notebook) if s.index < call.index and s.function == call.argument]
    return earlier[-1] if earlier else None


def _binds(statement: ast.Import | ast.ImportFrom) -> set[str]:
    return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}


def imports_before(notebook: NotebookNode, index: int, names: set[str] | None = None) -> str:
    """The top-level import statements of the code cells before cell ``index`` (only those that bind
    one of ``names``, if given), as one block of code."""
    statements = []
    for cell in notebook.cells[:index]:
        if cell.cell_type == "code":
            statements += [ast.unparse(node) for node in python_tree(cell.source).body
                           if isinstance(node, (ast.Import, ast.ImportFrom))
                           and (names is None or _binds(node) & names)]
    return "\n".join(statements)


def names_used(source: str) -> set[str]:
    """Every name the code reads."""
    return {node.id for node in ast.walk(python_tree(source))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def load_solution(notebook: NotebookNode, solution: Solution) -> Any:
    """The function that the solution cell defines, run with the chapter's earlier imports of the names
    it uses (so an import the solution does not need cannot break it)."""
    namespace: dict[str, Any] = {}
    exec(imports_before(notebook, solution.index, names_used(solution.source)), namespace)
    exec(solution.source, namespace)
    return namespace[solution.function]


def captioned_figures(notebook: NotebookNode) -> int:
    """Code cells whose figure carries a caption (cell metadata mystnb.figure.caption)."""
    return sum(bool(cell.metadata.get("mystnb", {}).get("figure", {}).get("caption"))
               for cell in notebook.cells if cell.cell_type == "code")


def solution_directives(notebook: NotebookNode) -> int:
    """Solutions in the chapter: `{solution}` and `{solution-start}` directives (one box each on the page)."""
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    return len(re.findall(r"```\{solution(?:-start)?\}", text))


def glued_numbers(notebook: NotebookNode) -> int:
    """Inline `{glue:text}` roles in the chapter's prose (each becomes one pasted number in the page)."""
    return sum(len(GLUE_TEXT_ROLE.findall(cell.source)) for cell in notebook.cells if cell.cell_type == "markdown")


def interactive_figures(notebook: NotebookNode) -> int:
    """Top-level calls of `interactive_figure(...)` in the chapter's code cells (one figure each)."""
    return sum(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
               == "interactive_figure"
               for cell in notebook.cells if cell.cell_type == "code"
               for node in ast.walk(python_tree(cell.source)))


@functools.cache
def reference_solution(function: str) -> Any:
    """The chapters' own solution of the coding exercise ``function``: the solution cell checked by the
    last checker call on it in the book. LookupError if no chapter checks such a function."""
    for path in reversed(TOC_CHAPTERS):
        notebook = read(path)
        for call in reversed(checker_calls(notebook)):
            solution = solution_for(notebook, call) if call.argument == function else None
            if solution is not None:
                return load_solution(notebook, solution)
    raise LookupError(f"no chapter in _toc.yml has a solution cell for {function!r} followed by its checker")
