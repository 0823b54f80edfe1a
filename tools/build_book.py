"""Build the HTML book from clean sources, never from stale execution results.

Jupyter Book caches executed notebooks keyed on their code cells only, so a change to
src/resbook/ would leave outputs computed by older code. This script keys the cache on a hash of
the package and the pinned dependencies as well: when they change, the cache is cleared and every
chapter is executed again. It removes the previous HTML (so no page of an earlier build, e.g. of a
chapter since removed, survives), then builds with warnings as errors and `--all` (so warnings are
not hidden by Sphinx's own incremental build), and fails if any cell raised.

Each chapter is executed in a fresh kernel in a temporary folder (`execute.run_in_temp`), and the run
is kept in DIR/_build/.jupyter_cache with its duration: the tests read the executed chapters from
there instead of executing them again (tests/conftest.py, `executed_chapter`).

Usage: python tools/build_book.py [--output DIR]   (DIR defaults to the repository root: _build/)
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ["src/resbook/**/*.py", "pyproject.toml", "requirements-dev.txt"]


def source_hash(root: Path = ROOT) -> str:
    """A hash of everything besides the notebooks' code that can change a chapter's output."""
    digest = hashlib.sha256()
    for pattern in INPUTS:
        for path in sorted(root.glob(pattern)):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def clear_stale_cache(build_dir: Path, root: Path = ROOT) -> None:
    """Delete the execution cache in ``build_dir`` unless it was made from the current sources."""
    cache, stamp = build_dir / ".jupyter_cache", build_dir / ".resbook-source-hash"
    current = source_hash(root)
    if stamp.exists() and stamp.read_text() == current:
        return
    if cache.exists():
        print("resbook or its dependencies changed: clearing the execution cache", flush=True)
        shutil.rmtree(cache)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT, help="folder that receives _build/")
    args = parser.parse_args()
    clear_stale_cache(args.output / "_build")
    for old in ("html", ".doctrees"):  # no page of an earlier build survives; the execution cache does
        shutil.rmtree(args.output / "_build" / old, ignore_errors=True)
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT),
               "--path-output", str(args.output), "--all", "-W", "--keep-going"]
    print(" ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
