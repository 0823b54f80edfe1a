"""Facts about the student edition: solutions become stubs, nothing else changes."""
import inspect
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from resbook.student import (STUB_TAG, function_stub, student_edition, untagged_solutions,
                             write_student_edition)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_0 = ROOT / "book" / "00_degradation.ipynb"

SOLUTION_WITH_DEF = '''import torch


def residual_forward(x, weights):
    """A residual net in plain torch: for each W, x = x + relu(x @ W)."""
    # the identity path carries x; the branch adds relu(x @ W)
    for W in weights:
        x = x + torch.relu(x @ W)
    return x
'''
STUB_WITH_DEF = '''import torch


def residual_forward(x, weights):
    """A residual net in plain torch: for each W, x = x + relu(x @ W)."""
    # YOUR CODE HERE
    raise NotImplementedError'''
SOLUTION_WITHOUT_DEF = "answer = 2 + 2\nprint(answer)"
STUB_WITHOUT_DEF = "# YOUR CODE HERE\nraise NotImplementedError"


def with_tags(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


def executed(cell, text):
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    cell.execution_count = 1
    return cell


def synthetic_chapter():
    """A chapter in miniature: a coding exercise (gated solution) and a predict-then-run exercise."""
    cells = [
        new_markdown_cell("# 0. A chapter\nSome prose."),
        executed(with_tags(new_code_cell("import torch"), "remove-cell"), ""),
        new_markdown_cell("```{exercise}\n:label: ex-forward\nWrite `residual_forward`.\n```"),
        with_tags(new_markdown_cell("```{solution-start} ex-forward\n:class: dropdown\n```"), "solution"),
        executed(with_tags(new_code_cell(SOLUTION_WITH_DEF), "solution"), ""),
        with_tags(new_markdown_cell("```{solution-end}\n```"), "solution"),
        executed(new_code_cell("check_residual_forward(residual_forward)"), "✓ passed\n"),
        new_markdown_cell("```{exercise}\n:label: ex-predict\nPredict, then run.\n```"),
        with_tags(new_markdown_cell("```{solution} ex-predict\n:class: dropdown\nIt prints 4.\n```"), "solution"),
        executed(with_tags(new_code_cell(SOLUTION_WITHOUT_DEF), "solution", "hide-input"), "4\n"),
        executed(new_code_cell("print('the end')"), "the end\n"),
    ]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
    nbformat.validate(notebook)
    return notebook


def cleared(cell):
    cell = nbformat.from_dict(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


# --- the edition ------------------------------------------------------------------------------

def test_solution_code_cells_become_stubs_in_place_and_solution_markdown_is_removed():
    chapter = synthetic_chapter()
    edition = student_edition(chapter)
    kept = [0, 1, 2, 4, 6, 7, 9, 10]  # cells 3, 5 and 8 are the solution directives
    assert [cell.id for cell in edition.cells] == [chapter.cells[i].id for i in kept]
    stubs = [cell for cell in edition.cells if STUB_TAG in cell.metadata.get("tags", [])]
    assert [cell.id for cell in stubs] == [chapter.cells[4].id, chapter.cells[9].id]
    assert [cell.source for cell in stubs] == [STUB_WITH_DEF, STUB_WITHOUT_DEF]
    assert stubs[0].metadata.tags == [STUB_TAG]
    assert stubs[1].metadata.tags == ["hide-input", STUB_TAG]


def test_every_other_cell_and_the_notebook_metadata_are_unchanged_but_outputs_are_cleared():
    chapter = synthetic_chapter()
    edition = student_edition(chapter)
    assert edition.metadata == chapter.metadata
    assert (edition.nbformat, edition.nbformat_minor) == (chapter.nbformat, chapter.nbformat_minor)
    others = [cell for cell in edition.cells if STUB_TAG not in cell.metadata.get("tags", [])]
    assert others == [cleared(chapter.cells[i]) for i in (0, 1, 2, 6, 7, 10)]
    assert all(cell.outputs == [] and cell.execution_count is None
               for cell in edition.cells if cell.cell_type == "code")
    nbformat.validate(edition)


def test_making_the_edition_leaves_the_chapter_untouched():
    chapter = synthetic_chapter()
    before = nbformat.writes(chapter)
    student_edition(chapter)
    assert nbformat.writes(chapter) == before


def test_a_stub_run_defines_the_same_function_which_raises_not_implemented():
    solution, stub = {}, {}
    exec(SOLUTION_WITH_DEF, solution)
    exec(student_edition(synthetic_chapter()).cells[3].source, stub)
    written, empty = solution["residual_forward"], stub["residual_forward"]
    assert inspect.signature(empty) == inspect.signature(written)
    assert empty.__doc__ == written.__doc__
    with pytest.raises(NotImplementedError):
        empty(None, [])


def test_a_stub_without_a_function_raises_not_implemented_when_run():
    with pytest.raises(NotImplementedError):
        exec(student_edition(synthetic_chapter()).cells[6].source, {})


@pytest.mark.parametrize("solution, stub", [
    # a signature over two lines, a comment after the colon, a decorator: signature kept, comments not
    ("@staticmethod\ndef f(a: dict = {'k': 1},\n      b=(1, 2)) -> int:  # secret\n    # secret\n    return a\n",
     "@staticmethod\ndef f(a: dict = {'k': 1},\n      b=(1, 2)) -> int:\n"
     "    # YOUR CODE HERE\n    raise NotImplementedError"),
    ("def g(x): return x + 1", "def g(x):\n    # YOUR CODE HERE\n    raise NotImplementedError"),
    ("def h(x):\n    '''Doc.'''\n    return x\n\nh(1)\n",
     "def h(x):\n    '''Doc.'''\n    # YOUR CODE HERE\n    raise NotImplementedError"),
    ("x = 1\ndef k(a):\n    return a + x\n", "def k(a):\n    # YOUR CODE HERE\n    raise NotImplementedError"),
    ("class A:\n    def m(self):\n        return 1\n", STUB_WITHOUT_DEF),
    ("%timeit sum(range(10))", STUB_WITHOUT_DEF),
])
def test_a_stub_keeps_the_first_top_level_signature_and_docstring_only(solution, stub):
    assert function_stub(solution) == stub


def test_solution_cells_that_are_not_tagged_are_found():
    chapter = synthetic_chapter()
    assert untagged_solutions(chapter) == []
    for index in (4, 8):
        chapter.cells[index].metadata["tags"] = []
    assert untagged_solutions(chapter) == [4, 8]


# --- files and the command line ---------------------------------------------------------------

def run_cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "resbook.student", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_command_line_writes_the_student_edition(tmp_path):
    chapter = tmp_path / "00_chapter.ipynb"
    nbformat.write(synthetic_chapter(), chapter)
    result = run_cli(chapter, "-o", tmp_path / "student")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "student" / "00_chapter.ipynb"
    assert result.stdout.strip() == f"wrote {written} (2 exercise stubs)"
    assert nbformat.read(written, as_version=4) == student_edition(nbformat.read(chapter, as_version=4))


def test_the_command_line_with_all_writes_every_numbered_chapter_of_the_book(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    for name in ("00_first.ipynb", "01_second.ipynb", "intro.ipynb"):
        nbformat.write(synthetic_chapter(), book / name)
    result = run_cli("--all", "--book", book, "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00_first.ipynb", "01_second.ipynb"]
    assert len(result.stdout.splitlines()) == 2


def test_the_command_line_warns_about_a_solution_cell_that_is_not_tagged(tmp_path):
    chapter = synthetic_chapter()
    chapter.cells[8].metadata["tags"] = []
    nbformat.write(chapter, tmp_path / "00_chapter.ipynb")
    result = run_cli(tmp_path / "00_chapter.ipynb", "-o", tmp_path / "out")
    assert result.returncode == 0
    assert "cell 8 is part of a solution but not tagged 'solution'" in result.stderr


def bad_arguments(tmp_path):
    (tmp_path / "notes.ipynb").write_text("not json")
    (tmp_path / "a_file").write_text("")
    nbformat.write(synthetic_chapter(), tmp_path / "00_chapter.ipynb")
    return {
        "a missing notebook": ([tmp_path / "missing.ipynb"], "does not exist"),
        "a file that is not a notebook": ([tmp_path / "notes.ipynb"], "is not a Jupyter notebook (NotJSONError"),
        "an output directory that is a file": ([tmp_path / "00_chapter.ipynb", "-o", tmp_path / "a_file"], "is a file"),
        "the chapter's own directory": ([tmp_path / "00_chapter.ipynb", "-o", tmp_path], "erase its solutions"),
        "a book without chapters": (["--all", "--book", tmp_path / "out"], "does not exist"),
    }


@pytest.mark.parametrize("case", ["a missing notebook", "a file that is not a notebook",
                                  "an output directory that is a file", "the chapter's own directory",
                                  "a book without chapters"])
def test_the_command_line_reports_a_bad_argument_in_one_line(tmp_path, case):
    args, message = bad_arguments(tmp_path)[case]
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_command_line_needs_notebooks_or_all(tmp_path):
    assert run_cli(cwd=tmp_path).returncode == 2


def test_writing_an_edition_into_a_new_directory_creates_it(tmp_path):
    nbformat.write(synthetic_chapter(), tmp_path / "00_chapter.ipynb")
    written = write_student_edition(tmp_path / "00_chapter.ipynb", tmp_path / "new" / "dir")
    assert written == tmp_path / "new" / "dir" / "00_chapter.ipynb" and written.is_file()


# --- the real chapters ------------------------------------------------------------------------

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_solution_cell_of_a_chapter_is_tagged_so_students_do_not_see_it(chapter):
    assert untagged_solutions(nbformat.read(chapter, as_version=4)) == []


@pytest.mark.slow
@pytest.mark.skipif(not CHAPTER_0.exists(), reason="book/00_degradation.ipynb is not written yet")
def test_chapter_0_student_edition_runs_from_a_fresh_kernel_up_to_its_first_exercise(tmp_path, monkeypatch):
    edition = nbformat.read(write_student_edition(CHAPTER_0, tmp_path), as_version=4)
    stubs = [i for i, cell in enumerate(edition.cells) if STUB_TAG in cell.metadata.get("tags", [])]
    assert stubs, "chapter 0 has no coding exercise (no code cell tagged 'solution')"
    edition.cells = edition.cells[:stubs[0]]
    monkeypatch.setenv("RESBOOK_PROFILE", "quick")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    # Raises CellExecutionError, naming the cell, if any cell before the first stub fails.
    NotebookClient(edition, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
