"""Facts about the linter's configuration: a chapter's code line may hold 76 characters, a line of
the package or its tests 120. Checked by handing ruff a probe through stdin under a path in the
repository, so that ruff picks the configuration that path would get (nothing is written)."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT


def line_of(length: int) -> str:
    """A valid Python line of exactly ``length`` characters."""
    return "x = " + repr("a" * (length - 6))


def ruff_codes(source: str, path: str) -> list[str]:
    """The rule codes ruff reports for ``source`` as if it were the file at ``path``."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "json",
                             "--stdin-filename", path, "-"],
                            cwd=ROOT, input=source, capture_output=True, text=True, check=False)
    assert result.returncode in (0, 1), result.stderr
    return [finding["code"] for finding in json.loads(result.stdout)]


def notebook_with(line: str) -> str:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(line)])
    return nbformat.writes(notebook)


def test_probe_lines_have_the_length_asked_for():
    assert [len(line_of(n)) for n in (76, 77, 120, 121)] == [76, 77, 120, 121]


@pytest.mark.parametrize("length, codes", [(76, []), (77, ["E501"])])
def test_a_chapter_code_line_may_hold_76_characters(length, codes):
    assert ruff_codes(notebook_with(line_of(length)), "book/99_probe.ipynb") == codes


@pytest.mark.parametrize("path", ["src/resbook/probe.py", "tests/test_probe.py", "tools/probe.py"])
@pytest.mark.parametrize("length, codes", [(77, []), (120, []), (121, ["E501"])])
def test_a_line_of_code_outside_the_chapters_may_hold_120_characters(path, length, codes):
    assert ruff_codes(line_of(length) + "\n", path) == codes


def test_the_linter_reports_unused_imports_in_notebooks_too():
    assert ruff_codes(notebook_with("import os"), "book/99_probe.ipynb") == ["F401"]
