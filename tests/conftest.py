"""Shared fixtures: the repository's paths and the built book (built once per test session)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book exactly as `make book` does (into the repository's _build) and return its html folder.

    The build executes every chapter unless the execution cache is current for the package's
    sources (tools/build_book.py), so a `make test` after `make book` does not execute twice.
    """
    result = subprocess.run([sys.executable, "tools/build_book.py"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"the book did not build:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium (Playwright's own downloads are unavailable here),
    with no name resolution outside this machine: a page that tries to load anything from outside
    fails, and Chromium's background calls to Google fail quietly."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium",
            "args": ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"]}
