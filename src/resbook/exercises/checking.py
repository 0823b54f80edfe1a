"""The exercise checker: run a student's function on a few cases and say, in one line, how it went.

A checker is a list of :class:`Check` cases. Each case calls the student's function, compares the
answer with the book's and raises :class:`WrongAnswer` with a hint when they differ. :func:`run_checks`
turns every outcome into one printed line and a bool: a wrong answer, an exception from the
student's code, a wrong type or a function that runs too long all become a sentence, never a traceback.

Time limits. In the main thread of a Linux or macOS kernel (Jupyter, Colab, pytest) a case runs
under ``SIGALRM``: the alarm interrupts a runaway loop and the kernel is free again. Where that is
not possible (Windows, a worker thread, or an alarm already armed by someone else, e.g. a test
runner's timeout) the case runs in a daemon thread that is waited for ``timeout`` seconds; Python
cannot kill a thread, so a runaway one is abandoned and the message says so.
"""
from __future__ import annotations

import functools
import inspect
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._checks import check_positive_float

DEFAULT_TIMEOUT = 5.0  # seconds per case: every case is a few small tensors; 5 s is generous


class WrongAnswer(Exception):
    """Raised by a case when the student's answer is wrong: ``problem`` says what, ``hint`` how to look for it."""

    def __init__(self, problem: str, hint: str = ""):
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


class StudentRaised(Exception):
    """The student's code raised ``error``; carried out of a case so it is not mistaken for a checker bug."""

    def __init__(self, error: Exception):
        super().__init__(repr(error))
        self.error = error


class _NotWritten(Exception):
    """The student's function still raises NotImplementedError: the stub has not been replaced."""


class _TimeUp(BaseException):
    """Raised by the alarm; a BaseException so that a student's ``except Exception`` cannot swallow it."""


@dataclass(frozen=True)
class Check:
    """One case: ``case`` names it for the reader, ``run`` calls the student's function and may raise WrongAnswer."""

    case: str
    run: Callable[[Callable[..., Any]], None]


def call_student(fn: Callable[..., Any], *args: Any) -> Any:
    """Call student code; any exception it raises comes out as :class:`StudentRaised`."""
    try:
        return fn(*args)
    except Exception as error:  # the student's mistake, reported in words by run_checks
        raise StudentRaised(error) from error


def _can_use_alarm() -> bool:
    """SIGALRM is usable: it exists, we are in the main thread and no one else's timer is armed."""
    return (hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0)


def _run_with_alarm(task: Callable[[], None], timeout: float) -> None:
    def time_up(signum: int, frame: Any) -> None:
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, time_up)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        task()
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:  # restored even if the alarm fires just as the task returns
            signal.signal(signal.SIGALRM, previous)


def _run_in_thread(task: Callable[[], None], timeout: float) -> None:
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            task()
            outcome.append(None)
        except BaseException as error:  # handed back to the calling thread below
            outcome.append(error)

    worker = threading.Thread(target=target, daemon=True, name="resbook-exercise-check")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _TimeUp()
    if outcome and outcome[0] is not None:
        raise outcome[0]


def run_with_timeout(task: Callable[[], None], timeout: float, use_alarm: bool | None = None) -> None:
    """Run ``task()``; raise ``_TimeUp`` after ``timeout`` seconds (by alarm where possible, else by thread)."""
    use_alarm = _can_use_alarm() if use_alarm is None else use_alarm
    (_run_with_alarm if use_alarm else _run_in_thread)(task, timeout)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _raised_message(name: str, error: Exception) -> str:
    detail = f": {_one_line(error)}" if str(error) else ""
    return (f"{name} raised {type(error).__name__}{detail}. "
            f"Hint: call it yourself on a small input to see the traceback")


def _timeout_message(name: str, timeout: float, used_alarm: bool) -> str:
    stopped = "was stopped" if used_alarm else (
        "was abandoned (it may still be running in the background: restart the kernel if it slows down)")
    return (f"{name} ran longer than {timeout:g} s and {stopped}. "
            f"Hint: look for a loop that never ends, or one that runs far more often than needed")


def _outcome(name: str, check: Check, fn: Callable[..., Any], timeout: float) -> str | None:
    """None if the case passed, else the sentence that says why it did not (a stub raises _NotWritten)."""
    used_alarm = _can_use_alarm()
    try:
        run_with_timeout(lambda: check.run(fn), timeout, use_alarm=used_alarm)
    except WrongAnswer as wrong:
        return wrong.problem + (f". Hint: {wrong.hint}" if wrong.hint else "")
    except StudentRaised as raised:
        if isinstance(raised.error, NotImplementedError):
            raise _NotWritten() from None
        return _raised_message(name, raised.error)
    except _TimeUp:
        return _timeout_message(name, timeout, used_alarm)
    except Exception as error:  # a bug in the checker: still one line, and said to be ours
        return f"the checker itself failed ({type(error).__name__}: {_one_line(error)}) — please report this"
    return None


def _validate_student_function(name: str, fn: Any) -> None:
    """Raise TypeError unless ``fn`` is a function (not its result, not a class, not a net)."""
    if not (inspect.isroutine(fn) or isinstance(fn, functools.partial)):
        raise TypeError(f"fn must be your function itself, as in check_{name}({name}), without calling it; "
                        f"got {type(fn).__name__} {_one_line(repr(fn), 60)}")


def run_checks(fn: Callable[..., Any], name: str, checks: Sequence[Check],
               timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Run ``checks`` on the student's ``fn`` in order, stopping at the first failure; print one line.

    Returns True when every case passed. ``name`` is the exercise's function name, used in the line.
    """
    _validate_student_function(name, fn)
    check_positive_float("timeout", timeout)
    for number, check in enumerate(checks, start=1):
        try:
            message = _outcome(name, check, fn, timeout)
        except _NotWritten:
            if number == 1:
                print(f"✗ {name} is not written yet — replace `raise NotImplementedError` with your code")
                return False
            message = _raised_message(name, NotImplementedError())  # written, but not for this case
        if message is not None:
            print(_one_line(f"✗ check {number} of {len(checks)} ({check.case}): {message}", limit=400))
            return False
    print(f"✓ {name} passed all {len(checks)} checks")
    return True
