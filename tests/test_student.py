"""Facts about the student edition: solutions become stubs, nothing else changes."""
import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import chapter_cells
from resbook.student import (SOLUTION_TAG, STUB_TAG, function_stub, student_edition, untagged_solutions,
                             write_student_edition)

ROOT = Path(__file__).resolve().parents[1]

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
STUB_WITHOUT_DEF = ('# YOUR CODE HERE\n'
                    'print("This exercise is open: replace this cell with your code, then run it.")')


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


def test_a_stub_without_a_function_says_the_exercise_is_open_and_lets_run_all_go_on(capsys):
    exec(student_edition(synthetic_chapter()).cells[6].source, {})  # does not raise
    assert "exercise is open" in capsys.readouterr().out


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

CHAPTERS = chapter_cells.TOC_CHAPTERS


@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_solution_cell_of_a_chapter_is_tagged_so_students_do_not_see_it(chapter):
    assert untagged_solutions(nbformat.read(chapter, as_version=4)) == []


def top_level_names(source: str) -> set[str]:
    """Names a cell binds at top level: assignments, loop and with targets, imports, defs, classes."""
    bound = set()
    for node in chapter_cells.python_tree(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        else:
            bound |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return bound


def names_bound_anywhere(source: str) -> set[str]:
    """Every name the cell binds, in any scope (a function's arguments and locals included)."""
    tree = chapter_cells.python_tree(source)
    return top_level_names(source) | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                                      and isinstance(n.ctx, ast.Store)} | {
        a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
        for a in n.posonlyargs + n.args + n.kwonlyargs + [n.vararg, n.kwarg] if a is not None}


def names_only_solutions_define(notebook) -> list[tuple[int, str]]:
    """(cell, name) for each untagged code cell that reads a name which only a solution cell has bound:
    no untagged cell before it binds the name, and the solution's stub in the student edition does not."""
    available, lost, found = set(), set(), []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        bound = top_level_names(cell.source)
        if SOLUTION_TAG in chapter_cells.tags(cell):
            kept = top_level_names(function_stub(cell.source))
            lost, available = (lost | bound) - kept - available, available | kept
            continue
        read = chapter_cells.names_used(cell.source) - names_bound_anywhere(cell.source)
        found += [(index, name) for name in sorted(read & lost)]
        lost, available = lost - bound, available | bound
    return found


def test_a_name_bound_only_by_a_solution_cell_is_caught_when_a_later_cell_reads_it():
    chapter = synthetic_chapter()
    assert names_only_solutions_define(chapter) == []
    chapter.cells[10].source = "print(answer)"  # `answer` is bound only by the stubbed solution of cell 9
    assert names_only_solutions_define(chapter) == [(10, "answer")]
    chapter.cells[7] = new_code_cell("answer = 0")  # bound by an untagged cell before: the edition has it
    assert names_only_solutions_define(chapter) == []


@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_no_cell_outside_a_solution_uses_what_only_a_solution_computes(chapter):
    # In the student edition those solution cells are stubs: the rest of the chapter must run without them.
    assert names_only_solutions_define(nbformat.read(chapter, as_version=4)) == []


@pytest.mark.slow
@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_student_edition_is_the_executed_chapter_with_a_stub_for_each_solution_cell(chapter, executed_chapter):
    # Not executed again: the book build ran these very cells in a fresh kernel, and the edition's
    # cells before its first stub are the same code, so they run as they did there.
    ran = [c for c in executed_chapter(chapter).notebook.cells if c.cell_type == "code"]
    edition = [c for c in student_edition(nbformat.read(chapter, as_version=4)).cells if c.cell_type == "code"]
    assert len(edition) == len(ran)
    stubs = [i for i, cell in enumerate(edition) if STUB_TAG in cell.metadata.get("tags", [])]
    assert stubs == [i for i, cell in enumerate(ran) if SOLUTION_TAG in cell.metadata.get("tags", [])]
    for index, (given, executed) in enumerate(zip(edition, ran)):
        expected = function_stub(executed.source) if index in stubs else executed.source
        assert given.source == expected, f"code cell {index}"
    if stubs:  # a student's Run all reaches the first exercise: those cells ran without an error
        before_first = ran[:stubs[0]]
        assert [c.execution_count for c in before_first] == list(range(1, stubs[0] + 1))
        assert not [o for c in before_first for o in c.outputs if o.output_type == "error"]


# --- stubs that are always Python, and the command line on unusual input (issue 16, item 8) -------

@pytest.mark.parametrize("solution, stub", [
    # Python splits lines at \n, \r\n and \r only; str.splitlines also splits at these three
    ("def f(x):\n    '''Doc\u2028more.'''\n    return x\n",
     "def f(x):\n    '''Doc\u2028more.'''\n    # YOUR CODE HERE\n    raise NotImplementedError"),
    ("import os\n# note\u0085\ndef f(\n      x):\n    '''a\u0085b'''\n    return x\n",
     "import os\n\n\ndef f(\n      x):\n    '''a\u0085b'''\n    # YOUR CODE HERE\n    raise NotImplementedError"),
    ("import math\n\x0cdef f(x):\n    '''Doc.'''\n\x0c\n    return x\n",
     "import math\n\n\ndef f(x):\n    '''Doc.'''\n    # YOUR CODE HERE\n    raise NotImplementedError"),
    # ast counts columns in UTF-8 bytes: a docstring of non-ASCII symbols followed by code on its line
    ("def f(x):\n    '''‖∂L/∂W‖ ü.'''; y = 1\n    return x\n",
     "def f(x):\n    '''‖∂L/∂W‖ ü.'''\n    # YOUR CODE HERE\n    raise NotImplementedError"),
])
def test_a_stub_is_valid_python_whatever_line_separators_the_solution_holds(solution, stub):
    made = function_stub(solution)
    assert made == stub
    compile(made, "<stub>", "exec")


def test_the_command_line_converts_an_nbformat_3_notebook(tmp_path):
    from nbformat import v3

    old = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[
        v3.new_code_cell(input=SOLUTION_WITH_DEF, metadata={"tags": [SOLUTION_TAG]})])])
    (tmp_path / "00_old.ipynb").write_text(nbformat.writes(old, version=3))
    result = run_cli(tmp_path / "00_old.ipynb", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    edition = nbformat.read(tmp_path / "out" / "00_old.ipynb", as_version=4)
    assert edition.nbformat == 4 and [cell.source for cell in edition.cells] == [STUB_WITH_DEF]


def test_an_output_folder_that_cannot_be_written_is_reported_in_one_line(tmp_path):
    nbformat.write(synthetic_chapter(), tmp_path / "00_chapter.ipynb")
    (tmp_path / "a_file").write_text("")
    result = run_cli(tmp_path / "00_chapter.ipynb", "-o", tmp_path / "a_file" / "inside")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    target = tmp_path / "a_file" / "inside" / "00_chapter.ipynb"
    assert result.stderr.strip().splitlines() == [f"error: cannot write '{target}': Not a directory"]


def test_a_stub_that_would_not_compile_is_never_written(tmp_path, monkeypatch, capsys):
    import resbook.student as student

    nbformat.write(synthetic_chapter(), tmp_path / "00_chapter.ipynb")
    monkeypatch.setattr(student, "STUB_BODY", "raise (")  # as if a solution's stub came out broken
    assert student.main([str(tmp_path / "00_chapter.ipynb"), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "cell 4: the stub made from this solution cell is not valid Python" in error[0]
    assert not (tmp_path / "out").exists()
