"""Shared fixtures: the repository's paths, the built book (built once per test session) and the
chapters as the build executed them.

RESBOOK_BUILD_OUTPUT=DIR builds into DIR/_build instead of the repository's _build, so that several
people can run the slow tests on one machine without building over each other.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
BUILD_OUTPUT_VARIABLE = "RESBOOK_BUILD_OUTPUT"


def build_output() -> Path:
    """The folder that receives _build/: $RESBOOK_BUILD_OUTPUT if set, else the repository's root."""
    value = os.environ.get(BUILD_OUTPUT_VARIABLE, "").strip()
    if not value:
        return ROOT
    output = Path(value).expanduser().resolve()
    if output.exists() and not output.is_dir():
        raise ValueError(f"{BUILD_OUTPUT_VARIABLE}={value!r} is a file; it must name a folder (created if missing)")
    return output


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book exactly as `make book` does and return its html folder (DIR/_build/html, DIR from
    :func:`build_output`).

    The build executes every chapter, each in a fresh kernel in a temporary folder, unless the
    execution cache is current for the chapter and the package's sources (tools/build_book.py), so a
    `make test` after `make book` does not execute twice.
    """
    output = build_output()
    result = subprocess.run([sys.executable, "tools/build_book.py", "--output", str(output)],
                            cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"the book did not build:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return output / "_build" / "html"


@dataclass(frozen=True)
class ExecutedChapter:
    """A chapter as the book build executed it: its code cells with their outputs, and the run's record."""

    notebook: NotebookNode  # code cells only, as jupyter-cache keeps them
    seconds: float  # how long the execution took
    executed_at: datetime


@pytest.fixture(scope="session")
def executed_chapter(built_book: Path) -> Callable[[Path], ExecutedChapter]:
    """``executed_chapter(path)``: the build's execution of the chapter at ``path``, as committed now.

    Read from the build's jupyter-cache, which matches notebooks on their code cells: a chapter whose
    code changed since it was executed has no match, and the test that asks for it fails.
    """
    cache = get_cache(str(built_book.parent / ".jupyter_cache"))

    def executed(path: Path) -> ExecutedChapter:
        try:
            record = cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            pytest.fail(f"the build's execution cache has no run of {path.name} as it is now")
        bundle = cache.get_cache_bundle(record.pk)
        return ExecutedChapter(bundle.nb, float(record.data["execution_seconds"]), record.created)

    return executed


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium (Playwright's own downloads are unavailable here),
    with no name resolution outside this machine: a page that tries to load anything from outside
    fails, and Chromium's background calls to Google fail quietly."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium",
            "args": ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"]}
