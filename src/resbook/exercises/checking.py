"""The exercise checker: run a student's function on a few cases and say, in one line, how it went.

A checker is a list of :class:`Check` cases. Each case calls the student's function, compares the
answer with the book's and raises :class:`WrongAnswer` with a hint when they differ. :func:`run_checks`
turns every outcome into one printed line and a bool: a wrong answer, an exception from the
student's code, ``sys.exit()``, a wrong type or a function that runs too long all become a sentence,
never a traceback.

Where the student's code runs (see :mod:`._isolation`). On Linux each case runs whole — the call and
the comparison — in a forked child process: the time limit is a hard kill, output is cut to
:data:`OUTPUT_LIMIT` bytes, and nothing the student's code changes reaches the kernel. Elsewhere (macOS,
Windows, or CUDA already initialised in the kernel) a case runs in a worker thread of the kernel's
process, with the kernel's global state (:data:`._in_process.KERNEL_STATE`) saved and put back; code
that swallows every exception cannot be stopped there and is abandoned, and the line says so.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_module, check_positive_float, check_tensor
from ._in_process import TimeUp
from ._isolation import Outcome, Report, run_isolated

DEFAULT_TIMEOUT = 5.0  # seconds per case: every case is a few small tensors; 5 s is generous
MAX_TIMEOUT = 3600.0  # seconds: an hour per case is already far more than any exercise needs
OUTPUT_LIMIT = 2000  # bytes of the student's own printing shown per run_checks call; the rest is counted


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


def plain_tensor(value: Any) -> Any:
    """``value`` as an exact ``torch.Tensor`` if it is a tensor of any subclass, else ``value`` itself.

    Compare answers through this: a Tensor subclass's ``__torch_function__`` can answer anything to
    ``torch.allclose`` or ``.shape``; the same data viewed as a plain tensor cannot.
    """
    return torch.Tensor.as_subclass(value, torch.Tensor) if isinstance(value, torch.Tensor) else value


# --- what a chapter's cases share --------------------------------------------------------------------

def mistake_hint(answer: Any, right: Any, mistakes: Iterable[tuple[Any, str]],
                 same: Callable[[Any, Any], bool]) -> str | None:
    """The hint of the first common mistake whose wrong answer differs from ``right`` and matches ``answer``.

    ``mistakes`` yields (the wrong answer the mistake gives, its hint); written as a generator, it computes
    each wrong answer only when it is reached. ``same(a, b)`` says whether ``a`` agrees with ``b``.
    Returns None when no mistake matches.
    """
    if not callable(same):
        raise TypeError(f"same must be a function of two answers, got {type(same).__name__}")
    for wrong, hint in mistakes:
        if not same(wrong, right) and same(answer, wrong):
            return hint
    return None


def expect_tensor_like(name: str, answer: Any, like: torch.Tensor, described: str,
                       none_hint: str, shape_hint: str) -> torch.Tensor:
    """``answer`` if it is a tensor of ``like``'s dtype and shape, else WrongAnswer saying what came back.

    ``name`` is the exercise's function, ``described`` how the message names ``like`` ("its input");
    ``none_hint`` is the hint for an answer of None, ``shape_hint`` the one for a wrong shape or dtype.
    """
    check_tensor("like", like)
    if not isinstance(answer, torch.Tensor):
        raise WrongAnswer(f"{name} should return a torch.Tensor, got {type(answer).__name__}",
                          none_hint if answer is None else "")
    if answer.shape != like.shape or answer.dtype != like.dtype:
        raise WrongAnswer(f"{name} should return a {like.dtype} tensor of shape {tuple(like.shape)} like {described}, "
                          f"got {answer.dtype} of shape {tuple(answer.shape)}", shape_hint)
    return answer


def looks_trained(make_net: Callable[[], nn.Module], seed: int, in_features: int) -> nn.Module:
    """``make_net()`` drawn under ``seed`` and returned in eval mode, its batch-norm scales and running statistics
    moved from their initial values; the caller's global random state is left as it was."""
    if not callable(make_net):
        raise TypeError(f"make_net must be a function that returns a net, got {type(make_net).__name__}")
    check_int("seed", seed, 0)
    check_int("in_features", in_features, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = make_net()
        with torch.no_grad():
            for layer in net.modules():
                if isinstance(layer, nn.BatchNorm1d):
                    layer.weight.uniform_(0.5, 1.5)
                    layer.bias.normal_(0.0, 0.2)
            for _ in range(3):  # a few training-mode passes move the running mean and variance
                net(2.0 * torch.randn(32, in_features) + 0.5)
    return net.eval()


def output_in_eval_mode(net: nn.Module, x: torch.Tensor, what: str, hint: str) -> Any:
    """The student's ``net`` on ``x``, in eval mode and without gradients, as a plain tensor if it is one.

    An error raised by the net becomes WrongAnswer("running <what> on a batch raised ...", ``hint``).
    """
    check_module("net", net)
    try:
        call_student(net.eval)
        with torch.no_grad():
            return plain_tensor(call_student(net, x))
    except StudentRaised as raised:
        error = raised.error
        raise WrongAnswer(f"running {what} on a batch raised {type(error).__name__}: {error}", hint) from None


# --- the one-line messages --------------------------------------------------------------------------

def _one_line(text: object, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _raised_message(name: str, error: BaseException) -> str:
    detail = f": {_one_line(error)}" if str(error) else ""
    return (f"{name} raised {type(error).__name__}{detail}. "
            f"Hint: call it yourself on a small input to see the traceback")


def _exit_message(name: str, request: SystemExit) -> str:
    return (f"{name} called sys.exit({'' if request.code is None else _one_line(repr(request.code), 40)}), "
            f"which would end the whole program. Hint: return the answer instead of exiting")


def _timeout_message(name: str, timeout: float, abandoned: bool) -> str:
    stopped = ("was abandoned: it ignores every attempt to stop it and may still be running in the "
               "background (restart the kernel if it slows down)") if abandoned else "was stopped"
    return (f"{name} ran longer than {timeout:g} s and {stopped}. "
            f"Hint: look for a loop that never ends, or one that runs far more often than needed")


def _case_outcome(name: str, check: Check, fn: Callable[..., Any]) -> Outcome:
    """Run one case where it stands (child or worker): ("passed", ""), ("not_written", "") or ("failed", why)."""
    try:
        check.run(fn)
    except WrongAnswer as wrong:
        return "failed", wrong.problem + (f". Hint: {wrong.hint}" if wrong.hint else "")
    except StudentRaised as raised:
        if isinstance(raised.error, NotImplementedError):
            return "not_written", ""
        return "failed", _raised_message(name, raised.error)
    except SystemExit as request:  # sys.exit() or exit() in the student's code
        return "failed", _exit_message(name, request)
    except TimeUp:  # the in-process time limit: reported by the runner
        raise
    except Exception as error:  # a bug in the checker: still one line, and said to be ours
        return "checker_bug", f"{type(error).__name__}: {_one_line(error)}"
    except BaseException as error:  # KeyboardInterrupt or another BaseException raised by the student
        return "failed", _raised_message(name, error)
    return "passed", ""


def _last_case_message(name: str, report: Report, timeout: float) -> str | None:
    """What happened in the last case that ran: None if it passed, "not_written" for a stub, else a sentence."""
    if report.ended == "died":
        return (f"{name} ended the process that ran it ({report.detail}). "
                f"Hint: call it yourself on a small input; look for os._exit, os.kill or a crash in native code")
    if report.ended != "finished":
        return _timeout_message(name, timeout, abandoned=report.ended == "abandoned")
    kind, text = report.outcomes[-1]
    if kind == "checker_bug":
        return f"the checker itself failed ({text}) — please report this"
    return {"passed": None, "not_written": "not_written"}.get(kind, text)


def _say(verdict: str, name: str, dropped: int) -> None:
    """Print the verdict, after a note of how much of the student's output was not shown, if any."""
    if dropped:
        print(f"[… {dropped:,} more bytes printed by {name} not shown]")
    print(verdict)


# --- arguments ------------------------------------------------------------------------------------

def _validate_student_function(name: str, fn: Any) -> None:
    """Raise TypeError unless ``fn`` is a function or callable object (not its result, a class or a net)."""
    if not callable(fn) or isinstance(fn, (type, nn.Module)):
        raise TypeError(f"fn must be your function itself, as in check_{name}({name}), without calling it; "
                        f"got {type(fn).__name__} {_one_line(repr(fn), 60)}")


def _validate_arguments(name: Any, checks: Any, timeout: Any) -> tuple[Check, ...]:
    if not isinstance(name, str):
        raise TypeError(f"name must be the exercise's function name, a str; got {type(name).__name__} {name!r}")
    if not name.isidentifier():
        raise ValueError(f"name must be the exercise's function name (a Python identifier), got {name!r}")
    if isinstance(checks, (str, bytes)) or not isinstance(checks, Sequence) or not all(
            isinstance(check, Check) for check in checks):
        raise TypeError(f"checks must be a sequence of Check, got {_one_line(repr(checks), 80)}")
    if not checks:
        raise ValueError("checks must hold at least one Check, got an empty sequence: "
                         "a checker with no cases would pass every function")
    if check_positive_float("timeout", timeout) > MAX_TIMEOUT:
        raise ValueError(f"timeout must be at most {MAX_TIMEOUT:g} seconds per check, got {timeout:g}")
    return tuple(checks)


def run_checks(fn: Callable[..., Any], name: str, checks: Sequence[Check],
               timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Run ``checks`` on the student's ``fn`` in order, stopping at the first failure; print one line.

    Returns True when every case passed. ``name`` is the exercise's function name, used in the line.
    Whatever ``fn`` prints is shown before the line, up to :data:`OUTPUT_LIMIT` bytes in all.
    """
    _validate_student_function(name, fn)
    checks = _validate_arguments(name, checks, timeout)
    tasks = [functools.partial(_case_outcome, name, check, fn) for check in checks]
    report = run_isolated(tasks, float(timeout), OUTPUT_LIMIT)
    if report.output:  # what the student's function printed, cut to size, before the verdict
        print(report.output, end="" if report.output.endswith("\n") else "\n")
    number = len(report.outcomes) + (report.ended != "finished")  # the last case that ran
    message = _last_case_message(name, report, float(timeout))
    if message == "not_written" and number == 1:
        _say(f"✗ {name} is not written yet — replace `raise NotImplementedError` with your code", name, report.dropped)
        return False
    if message == "not_written":
        message = _raised_message(name, NotImplementedError())  # written, but not for this case
    if message is not None:
        _say(_one_line(f"✗ check {number} of {len(checks)} ({checks[number - 1].case}): {message}", limit=400),
             name, report.dropped)
        return False
    _say(f"✓ {name} passed all {len(checks)} checks", name, report.dropped)
    return True
