"""Facts about the build: it never shows stale output and never passes a broken chapter."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
build_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_book)


def _copy_sources(target: Path) -> None:
    for name in ("src", "pyproject.toml", "requirements-dev.txt"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target / name)


def test_changing_the_package_clears_the_execution_cache(tmp_path):
    _copy_sources(tmp_path)
    build = tmp_path / "_build"
    build_book.clear_stale_cache(build, root=tmp_path)
    (build / ".jupyter_cache").mkdir()
    build_book.clear_stale_cache(build, root=tmp_path)  # nothing changed: the cache stays
    assert (build / ".jupyter_cache").exists()
    (tmp_path / "src" / "resbook" / "models.py").write_text("# changed\n")
    build_book.clear_stale_cache(build, root=tmp_path)  # the package changed: the cache goes
    assert not (build / ".jupyter_cache").exists()


def test_source_hash_follows_the_package_not_the_notebooks(tmp_path):
    _copy_sources(tmp_path)
    before = build_book.source_hash(tmp_path)
    (tmp_path / "notes.ipynb").write_text("{}")
    assert build_book.source_hash(tmp_path) == before
    (tmp_path / "src" / "resbook" / "data.py").write_text("# changed\n")
    assert build_book.source_hash(tmp_path) != before


@pytest.mark.slow
def test_a_raising_cell_fails_the_build_even_without_warnings_as_errors(tmp_path):
    # The book's configuration and one chapter whose cell raises. Jupyter Book 1 exits 0 on this
    # unless nb_execution_raise_on_error is set, so build without -W: the config alone must fail it.
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    for folder in ("_ext", "_templates", "_static"):  # what the config names: extension, templates, icon
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book" / "references.bib")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise RuntimeError('broken chapter')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "book" / "99_broken.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/99_broken\n")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run([str(jupyter_book), "build", str(tmp_path), "--all"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "broken chapter" in result.stdout + result.stderr
