"""Execute every chapter in a fresh kernel and record where and how long it ran.

Meant for scarce machine time (a GPU lent for minutes): each chapter's executed notebook and a line of
the table are written as soon as that chapter finishes, so an interrupted run still leaves its results.

    python tools/run_chapters.py --profile full --out /tmp/full      # every chapter
    python tools/run_chapters.py --profile quick book/00_degradation.ipynb

Writes OUT/<chapter>.ipynb (executed) and OUT/chapters.md (chapter · device · profile · seconds ·
status). The device is the one the chapter's setup() printed.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def printed_device(notebook: nbformat.NotebookNode) -> str:
    """The device named by the chapter's ``setup()`` line ("device: cuda · profile: ..."), or "?"."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            match = re.search(r"device: (\w+)", output.get("text", ""))
            if match:
                return match.group(1)
    return "?"


def run(path: Path, out: Path, timeout: int, probe: str | None = None) -> tuple[str, float, str, str]:
    """Execute ``path`` in a fresh kernel in a temporary folder; write the executed notebook to ``out``.

    ``probe``, if given, is code run in the same kernel after the chapter (not written to ``out``);
    what it prints is returned, e.g. the kernel's peak memory; keep it to a few milliseconds, as the
    seconds returned include it. Returns (device, seconds, status, probe output).
    """
    notebook = nbformat.read(path, as_version=4)
    cells = len(notebook.cells)
    if probe is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(probe))
    status, start = "ok", time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:  # the chapter runs alone, away from the repository
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": folder}})
        try:
            client.execute()
        except CellExecutionError as error:
            status = "failed: " + str(error).strip().splitlines()[-1][:200]
    seconds = time.perf_counter() - start
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].get("outputs", [])) if probe else ""
    notebook.cells = notebook.cells[:cells]
    nbformat.write(notebook, out / path.name)
    return printed_device(notebook), seconds, status, printed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="default: every book/NN_*.ipynb")
    parser.add_argument("--profile", choices=("quick", "full"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args()
    os.environ["RESBOOK_PROFILE"] = args.profile
    args.out.mkdir(parents=True, exist_ok=True)
    chapters = args.chapters or sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    table = args.out / "chapters.md"
    table.write_text("| chapter | device | profile | seconds | status |\n|---|---|---|---:|---|\n")
    failed = 0
    for path in chapters:
        device, seconds, status, _ = run(path, args.out, args.timeout)
        failed += status != "ok"
        line = f"| {path.stem} | {device} | {args.profile} | {seconds:.1f} | {status} |"
        with table.open("a") as handle:
            handle.write(line + "\n")
        print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
