"""The mutation score of each core module after `make mutants`, read from mutmut's results in mutants/.

A mutant is killed when a test failed on it; timed out when its tests ran past the limit (counted apart: a
hang is not a failing test); survived when every test passed; untested when no test of the selection reaches
the mutated function. Mutants not run yet (a run stopped early, or given a sample of mutant names) are not
checked, and the score is killed / checked.

    python tools/mutation_score.py [--survivors]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "mutants" / "src"
KILLED, TIMEOUT, SURVIVED, UNTESTED = "killed", "timeout", "survived", "untested"
NOT_CHECKED, OTHER = "not checked", "other"
COLUMNS = (KILLED, TIMEOUT, SURVIVED, UNTESTED, OTHER, NOT_CHECKED)
STATUS_BY_EXIT_CODE = {1: KILLED, 3: KILLED, 0: SURVIVED, 5: UNTESTED, 33: UNTESTED, None: NOT_CHECKED,
                       36: TIMEOUT, 24: TIMEOUT, -24: TIMEOUT, 152: TIMEOUT, 255: TIMEOUT}
LINGERING = (SURVIVED, TIMEOUT, UNTESTED)


def statuses(meta: Path) -> dict[str, str]:
    """Each mutant of one module's results file with its status."""
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: STATUS_BY_EXIT_CODE.get(code, OTHER) for name, code in codes.items()}


def row(module: str, counts: Counter) -> str:
    """One line of the table: the score, then the count of each status."""
    checked = sum(counts.values()) - counts[NOT_CHECKED]
    score = f"{100 * counts[KILLED] / checked:5.1f} %" if checked else "    –  "
    return f"{module:<10} {score} {checked:>8}" + "".join(f" {counts[c]:>11}" for c in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="also list the mutants not killed, by name")
    arguments = parser.parse_args()
    metas = sorted(RESULTS.rglob("*.py.meta"))
    if not metas:
        raise SystemExit(f"no mutmut results under {RESULTS}: run `make mutants` first")
    print(f"{'module':<10} {'score':>7} {'checked':>8}" + "".join(f" {c:>11}" for c in COLUMNS))
    total, lingering = Counter(), []
    for meta in metas:
        found = statuses(meta)
        counts = Counter(found.values())
        total += counts
        print(row(meta.name.removesuffix(".py.meta"), counts))
        lingering += [f"{status:<9} {name}" for name, status in sorted(found.items()) if status in LINGERING]
    print(row("all", total))
    if arguments.survivors:
        print("\n".join(["", *lingering]))


if __name__ == "__main__":
    main()
