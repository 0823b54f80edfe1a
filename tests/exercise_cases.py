"""What the exercise tests share: run a checker and read the one line it prints, and state in one call
that a wrong answer is refused with its hint (in the case named, where that matters) or that a right
answer passes. Used by tests/test_exercises*.py and tests/test_checker_isolation.py."""
from resbook.exercises import registered

SHORT = 0.3  # seconds: far above what any case takes (milliseconds), far below a runaway loop


def verdict(capsys, checker, fn, **options):
    """Run a checker; return (passed, the one line it printed), asserting it printed exactly one line."""
    passed = checker(fn, **options)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return passed, lines[0]


def not_written(*args):
    raise NotImplementedError


def spins_forever(*args):
    while True:
        pass


def failed_case(checker, case_starts: str) -> str:
    """The start of the line that reports a failure of the registered case whose name starts with ``case_starts``."""
    checks = registered()[checker.__name__].checks
    numbers = [n for n, check in enumerate(checks, start=1) if check.case.startswith(case_starts)]
    assert len(numbers) == 1, [check.case for check in checks]
    return f"✗ check {numbers[0]} of {len(checks)} ({checks[numbers[0] - 1].case}): "


def refusals(tables: dict) -> list[tuple]:
    """Rows (checker, wrong answer, hint) for ``pytest.mark.parametrize``, from ``{checker: [(wrong answer,
    the hint it must be refused with), ...]}``."""
    return [(checker, answer, hint) for checker, table in tables.items() for answer, hint in table]


def assert_refused(capsys, checker, answer, hint: str) -> str:
    """Assert that ``checker`` refuses ``answer`` in a line that reports a failed check and holds ``hint``."""
    passed, line = verdict(capsys, checker, answer)
    assert passed is False, line
    assert line.startswith("✗ check ") and hint in line, line
    return line


def assert_refused_in(capsys, checker, answer, case_starts: str, saying: str = "") -> str:
    """Assert that ``checker`` first refuses ``answer`` in the case whose name starts with ``case_starts``,
    in a line that goes on with ``saying``; return the line."""
    passed, line = verdict(capsys, checker, answer)
    assert passed is False, line
    assert line.startswith(failed_case(checker, case_starts) + saying), line
    return line


def assert_accepted(capsys, checker, answer) -> None:
    """Assert that ``checker`` passes ``answer`` and says, in its one line, that all its registered checks passed."""
    entry = registered()[checker.__name__]
    passed, line = verdict(capsys, checker, answer)
    assert passed is True, line
    assert line == f"✓ {entry.exercise} passed all {len(entry.checks)} checks"
