"""Where a student's code runs during a check: in a forked child process, or guarded in the kernel's own.

:func:`run_isolated` runs a checker's cases (tasks that call the student's function, compare and
return a small outcome made by the checker) until one does not pass, and reports the outcomes, how
the run ended, and what was printed, cut to a bounded size.

* **Forked child** (Linux, CUDA not initialised here): one child per run. It sets torch to one
  thread (a child forked after torch ran multi-threaded hangs in its first parallel op otherwise),
  sends everything written to its stdout and stderr — Python's and the file descriptors' — through a
  pipe, runs the cases (each with the global state put back after it, so cases do not leak into one
  another) and writes each outcome as a JSON line to a second pipe. The parent keeps the first
  ``output_limit`` bytes of output and kills the child's process group when a case runs out of time:
  a loop that swallows every exception, ignores signals or calls ``sys.exit`` cannot outlive the
  check, and nothing it changes reaches the kernel. Only JSON written by the checker's own code
  crosses back: nothing the student made is unpickled in the kernel.
* **In the kernel's process** (macOS, Windows, CUDA in use): each case runs in a worker thread, with
  the kernel's global state saved and put back (:mod:`._in_process`) and its output cut to size.
  At the time limit an exception is raised inside the worker, again every 50 ms for a second; code
  that swallows all of them cannot be stopped and is abandoned (it keeps running in the background).
"""
from __future__ import annotations

import builtins
import gc
import io
import json
import os
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._in_process import BoundedOutput, kernel_state_kept, run_in_thread

Outcome = tuple[str, str]  # (kind, text), made by the checker's own code
# Waits are cut into slices this long (seconds): an interrupt (Ctrl-C, a kernel's interrupt button)
# may land in another thread, and the main thread only acts on it when it wakes.
WAKE = 0.1


@dataclass(frozen=True)
class Report:
    """How a run of tasks went: the outcomes of the tasks that finished, in order, and how the run ended —
    "finished" (every task ran, or up to the first whose outcome is not "passed"), or, for the task after
    the last outcome, "stopped" (time up: killed or interrupted), "abandoned" (time up and still running
    in a thread) or "died" (the child process ended without an outcome; ``detail`` says how)."""

    outcomes: tuple[Outcome, ...]
    ended: str
    output: str  # what the tasks printed, at most output_limit bytes of it
    dropped: int  # bytes of output not kept
    detail: str = ""


def fork_is_usable() -> bool:
    """Whether checks run in a forked child: Linux with fork, and no CUDA context in this process
    (a forked child cannot use CUDA once the parent initialised it). macOS is left out: fork is not
    safe there once system frameworks run threads."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and not torch.cuda.is_initialized()


def run_isolated(tasks: Sequence[Callable[[], Outcome]], timeout: float, output_limit: int) -> Report:
    """Run ``tasks`` in order until one does not pass, each within ``timeout`` seconds, in a forked child
    where :func:`fork_is_usable`, else in guarded worker threads; keep ``output_limit`` bytes of output."""
    runner = _run_in_child if fork_is_usable() else _run_in_process
    return runner(tuple(tasks), timeout, output_limit)


def _finished(outcomes: Sequence[Outcome], count: int) -> bool:
    return len(outcomes) == count or bool(outcomes) and outcomes[-1][0] != "passed"


# --- in a forked child ------------------------------------------------------------------------------

def _no_input(prompt: object = "") -> str:
    raise EOFError("input() cannot be used in a function that a checker runs")


def _stay_at_one_thread(count: int) -> None:
    """torch.set_num_threads in the child: ignored, because a forked child's torch hangs in its next
    parallel op once its thread pool grows past one (the parent's pool threads do not exist in it)."""


def _child(tasks: tuple[Callable[[], Outcome], ...], result_pipe: int, output_pipe: int) -> None:
    """The child's whole life: one thread, output into the pipe, run the tasks, one JSON line per outcome."""
    try:
        os.setpgid(0, 0)  # its own process group, so that whatever it starts is killed with it
    except OSError:  # then only the child itself is killed
        pass
    gc.disable()  # a collection would touch, and so copy, every page of the kernel's memory
    torch.set_num_threads(1)
    torch.set_num_threads = _stay_at_one_thread
    devnull = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((devnull, 0), (output_pipe, 1), (output_pipe, 2)):
        os.dup2(source, target)
    sys.stdin = open(0, closefd=False)
    sys.stdout = sys.stderr = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                               errors="replace", line_buffering=True)
    builtins.input = _no_input  # a notebook's input() would ask the kernel's front end from the child
    outcomes: list[Outcome] = []
    while not _finished(outcomes, len(tasks)):
        with kernel_state_kept():  # one case's changes do not reach the next
            try:
                outcomes.append(tasks[len(outcomes)]())
            except BaseException as error:  # the task reports the student's errors itself; this is ours
                outcomes.append(("checker_bug", f"{type(error).__name__}: {error}"))
        try:
            sys.stdout.flush()  # its output reaches the pipe before its outcome
        except BaseException:  # a broken stream must not cost the outcome
            pass
        _send(result_pipe, outcomes[-1])


def _send(result_pipe: int, outcome: Outcome) -> None:
    line = json.dumps(list(outcome)).encode() + b"\n"
    while line:
        line = line[os.write(result_pipe, line):]


def _run_in_child(tasks: tuple[Callable[[], Outcome], ...], timeout: float, output_limit: int) -> Report:
    result_read, result_write = os.pipe()
    output_read, output_write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns that a multi-threaded process forks; the
        warnings.simplefilter("ignore", DeprecationWarning)  # child only runs this module's code
        pid = os.fork()
    if pid == 0:
        try:
            os.close(result_read)
            os.close(output_read)
            _child(tasks, result_write, output_write)
        except BaseException as error:  # in the child's own set-up: said to be the checker's failure
            _send(result_write, ("checker_bug", f"{type(error).__name__} in the checker's child process: {error}"))
        finally:
            os._exit(0)  # never return into the kernel's code, never run its exit handlers
    os.close(result_write)
    os.close(output_write)
    try:
        return _Collector(pid, result_read, output_read, timeout, output_limit).run(len(tasks))
    finally:
        _kill(pid)
        os.waitpid(pid, 0)
        os.close(result_read)
        os.close(output_read)


class _Collector:
    """The parent's side: read outcomes and output as they come; each outcome restarts the clock."""

    def __init__(self, pid: int, result_read: int, output_read: int, timeout: float, output_limit: int):
        self.pid, self.result_read, self.output_read = pid, result_read, output_read
        self.timeout, self.output_limit = timeout, output_limit
        self.deadline = time.monotonic() + timeout
        self.outcomes: list[Outcome] = []
        self.pending, self.output, self.dropped = bytearray(), bytearray(), 0
        self.open_pipes = {result_read, output_read}

    def run(self, count: int) -> Report:
        try:
            exit_signal: int | None = os.pidfd_open(self.pid)  # readable once the child has ended
        except (AttributeError, OSError):  # an older kernel: poll instead
            exit_signal = None
        try:
            while not _finished(self.outcomes, count) and not _exited(self.pid):
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    return self.report("stopped")
                watched = [*self.open_pipes, *([exit_signal] if exit_signal is not None else [])]
                wait = min(remaining, WAKE if exit_signal is not None else 0.005)
                for pipe in _readable(watched, wait) & self.open_pipes:
                    self.read(pipe)
        finally:
            if exit_signal is not None:
                os.close(exit_signal)
        _kill(self.pid)  # done or gone: end it and what it started, then take what is left in the pipes
        for pipe in tuple(self.open_pipes):
            os.set_blocking(pipe, False)
            while pipe in self.open_pipes:
                self.read(pipe)
        if _finished(self.outcomes, count):
            return self.report("finished")
        return self.report("died", _exit_description(self.pid))

    def read(self, pipe: int) -> None:
        try:
            chunk = os.read(pipe, 1 << 16)
        except BlockingIOError:
            chunk = b""
        if not chunk:  # end of file, or nothing more waiting after the child ended
            self.open_pipes.discard(pipe)
        elif pipe == self.output_read:
            room = max(self.output_limit - len(self.output), 0)
            self.output += chunk[:room]
            self.dropped += max(len(chunk) - room, 0)
        else:
            self.pending += chunk
            *lines, self.pending = self.pending.split(b"\n")
            for line in lines:
                self.outcomes.append(_parse(line))
                self.deadline = time.monotonic() + self.timeout

    def report(self, ended: str, detail: str = "") -> Report:
        return Report(tuple(self.outcomes), ended, _text(self.output), self.dropped, detail)


def _readable(descriptors: list[int], seconds: float) -> set[int]:
    """Those of ``descriptors`` that can be read (or have ended) within ``seconds`` (poll: no limit on fd numbers)."""
    poller = select.poll()
    for descriptor in descriptors:
        poller.register(descriptor, select.POLLIN)
    return {descriptor for descriptor, _ in poller.poll(seconds * 1000)}


def _exited(pid: int) -> bool:
    """The child has ended (left unreaped, so that its process group id stays taken until we kill it)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _parse(line: bytes) -> Outcome:
    try:
        kind, text = json.loads(line.decode())
        if isinstance(kind, str) and isinstance(text, str):
            return kind, text
    except (ValueError, TypeError):
        pass
    return "checker_bug", f"an unreadable outcome {line[:80]!r}"


def _exit_description(pid: int) -> str:
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None:
        return "it ended in an unknown way"
    if info.si_code == os.CLD_EXITED:
        return f"with exit status {info.si_status}"
    try:
        return f"killed by {signal.Signals(info.si_status).name}"
    except ValueError:
        return f"killed by signal {info.si_status}"


def _kill(pid: int) -> None:
    """Kill the child and its process group (whatever it started); the child may already be gone."""
    for kill in (os.killpg, os.kill):  # killpg fails if the child had no time to make its group
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _text(output: bytearray) -> str:
    return bytes(output).decode("utf-8", errors="replace")


# --- in the kernel's process ------------------------------------------------------------------------

def _run_in_process(tasks: tuple[Callable[[], Outcome], ...], timeout: float, output_limit: int) -> Report:
    stream, outcomes = BoundedOutput(output_limit), []
    while not _finished(outcomes, len(tasks)):
        ended, outcome = run_in_thread(tasks[len(outcomes)], timeout, stream, WAKE)
        if ended != "returned":
            return Report(tuple(outcomes), ended, stream.text(), stream.dropped)
        outcomes.append(outcome)
    return Report(tuple(outcomes), "finished", stream.text(), stream.dropped)
