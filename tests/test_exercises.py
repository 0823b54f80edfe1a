"""Facts about every registered exercise checker and the chapters that call them: each checker is
found without being listed, accepts its chapter's own solution, rejects stubs, runaway code and
non-functions, and always answers in one printed line. (Each chapter's checkers have their own
test file for the mistakes they name, e.g. tests/test_exercises_degradation.py.)"""
import operator
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from torch import nn

import chapter_cells
from exercise_cases import SHORT, not_written, spins_forever, verdict
from resbook import exercises
from resbook.exercises import Check, registry, run_checks
from resbook.exercises.checking import (WrongAnswer, call_student, expect_tensor_like, looks_trained, mistake_hint,
                                       output_in_eval_mode)
from resbook.models import mlp

SRC = Path(__file__).resolve().parents[1] / "src"
REGISTERED = dict(exercises.registered())
CHECKERS = sorted(REGISTERED)


# --- the register: every chapter's checkers, found without a list ---------------------------------

def test_there_is_a_registered_checker():
    assert CHECKERS, "no module in resbook.exercises registered a checker"


def test_every_chapter_module_of_the_package_is_imported():
    package = Path(exercises.__file__).parent
    on_disk = sorted(p.stem for p in package.glob("*.py")
                     if not p.stem.startswith("_") and p.stem not in ("checking", "registry"))
    assert exercises.chapter_modules() == on_disk
    assert {entry.module for entry in REGISTERED.values()} <= {f"resbook.exercises.{m}" for m in on_disk}


@pytest.mark.parametrize("name", CHECKERS)
def test_every_registered_checker_is_importable_from_resbook_exercises(name):
    assert getattr(exercises, name) is REGISTERED[name].checker
    assert name in exercises.__all__


def test_a_new_chapter_module_is_found_without_editing_the_package(tmp_path):
    # A copy of the package with one more chapter module; nothing else changed.
    package = tmp_path / "resbook"
    shutil.copytree(SRC / "resbook", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "exercises" / "toy_chapter.py").write_text(
        "from .checking import Check, run_checks\nfrom .registry import register\n\n"
        "TOY = (Check('two', lambda fn: None),)\n\n\n"
        "@register(TOY)\ndef check_toy(fn, timeout=1.0):\n    return run_checks(fn, 'toy', TOY, timeout)\n")
    script = ("from resbook.exercises import check_toy, registered\n"
              "print(check_toy.__module__, len(registered()['check_toy'].checks))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(package.parent)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["resbook.exercises.toy_chapter", "1"]


@pytest.fixture
def empty_register(monkeypatch):
    """The register emptied for one test (the book's checkers are back afterwards)."""
    monkeypatch.setattr(registry, "_REGISTERED", {})


def a_check():
    return Check("a case", lambda fn: None)


def test_register_records_the_checker_and_its_checks_and_returns_it_unchanged(empty_register):
    def check_thing(fn):
        return True

    checks = [a_check(), a_check()]
    assert registry.register(checks)(check_thing) is check_thing
    entry = registry.registered()["check_thing"]
    assert (entry.checker, entry.checks, entry.exercise) == (check_thing, tuple(checks), "thing")
    assert entry.module == __name__


@pytest.mark.parametrize("checks, error, message", [
    ([], TypeError, "non-empty sequence of Check"),
    ([lambda fn: None], TypeError, "non-empty sequence of Check"),
    ("cases", TypeError, "sequence of Check, got str"),
    (None, TypeError, "sequence of Check, got NoneType"),
])
def test_register_refuses_checks_that_are_not_check_cases(empty_register, checks, error, message):
    def check_thing(fn):
        return True

    with pytest.raises(error, match=message):
        registry.register(checks)(check_thing)
    assert dict(registry.registered()) == {}


@pytest.mark.parametrize("name", ["thing", "check_", "check_two words", "checkthing"])
def test_register_refuses_a_name_that_is_not_check_and_a_function_name(empty_register, name):
    def checker(fn):
        return True

    checker.__name__ = name
    with pytest.raises(ValueError, match=f"check_<function the student writes>, got {name!r}"):
        registry.register([a_check()])(checker)


def test_register_refuses_a_checker_that_is_not_a_function(empty_register):
    with pytest.raises(TypeError, match="checker must be a function, got int"):
        registry.register([a_check()])(3)


def test_two_modules_cannot_register_the_same_checker_name(empty_register):
    def check_thing(fn):
        return True

    registry.register([a_check()])(check_thing)
    other = type(check_thing)(check_thing.__code__, {"__name__": "resbook.exercises.other"}, "check_thing")
    with pytest.raises(ValueError, match="'check_thing' is already registered by test_exercises"):
        registry.register([a_check()])(other)


# --- the chapters call registered checkers on their own solutions --------------------------------

CHAPTERS = chapter_cells.TOC_CHAPTERS


def test_every_registered_checker_is_called_by_a_chapter():
    called = {call.checker for path in CHAPTERS for call in chapter_cells.checker_calls(chapter_cells.read(path))}
    assert set(CHECKERS) - called == set(), "registered checkers that no chapter in _toc.yml calls"


@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_checker_call_in_a_chapter_names_a_registered_checker_the_chapter_imported(chapter):
    notebook = chapter_cells.read(chapter)
    for call in chapter_cells.checker_calls(notebook):
        assert call.checker in REGISTERED, f"cell {call.index}: {call.checker} is not registered"
        assert call.argument == REGISTERED[call.checker].exercise, f"cell {call.index}: {call.source!r}"
        namespace = {}
        exec(chapter_cells.imports_before(notebook, call.index + 1, {call.checker}), namespace)
        assert namespace.get(call.checker) is REGISTERED[call.checker].checker, (
            f"cell {call.index}: {call.checker} is not imported from resbook.exercises")
        assert call.source.rstrip().endswith(";"), f"cell {call.index}: end the call with ';'"


@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_checker_call_in_a_chapter_follows_a_solution_that_passes_it(capsys, chapter):
    # The chapter prints the checker's line but does not fail its build on a ✗; this test does.
    notebook = chapter_cells.read(chapter)
    for call in chapter_cells.checker_calls(notebook):
        solution = chapter_cells.solution_for(notebook, call)
        assert solution is not None, f"cell {call.index}: no solution cell before it defines {call.argument}"
        passed, line = verdict(capsys, REGISTERED[call.checker].checker,
                               chapter_cells.load_solution(notebook, solution))
        assert passed, f"{chapter.name} cell {solution.index}: {line}"


# --- every checker ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CHECKERS)
def test_checker_accepts_the_chapter_solution_and_counts_its_registered_checks(capsys, name):
    entry = REGISTERED[name]
    passed, line = verdict(capsys, entry.checker, chapter_cells.reference_solution(entry.exercise))
    assert passed is True
    assert line == f"✓ {entry.exercise} passed all {len(entry.checks)} checks"


@pytest.mark.parametrize("name", CHECKERS)
def test_checker_says_a_stub_is_not_written_yet(capsys, name):
    entry = REGISTERED[name]
    passed, line = verdict(capsys, entry.checker, not_written)
    assert passed is False
    assert line == f"✗ {entry.exercise} is not written yet — replace `raise NotImplementedError` with your code"


@pytest.mark.parametrize("name", CHECKERS)
def test_checker_stops_a_function_that_never_returns(capsys, name):
    entry = REGISTERED[name]
    started = time.perf_counter()
    passed, line = verdict(capsys, entry.checker, spins_forever, timeout=SHORT)
    assert passed is False
    assert line.startswith(f"✗ check 1 of {len(entry.checks)} ({entry.checks[0].case}): ")
    assert f"{entry.exercise} ran longer than {SHORT:g} s and was stopped" in line
    assert time.perf_counter() - started < 5  # stopped, not waited for


@pytest.mark.parametrize("name", CHECKERS)
def test_checker_reports_an_exception_in_one_line_naming_it(capsys, name):
    entry = REGISTERED[name]

    def raises(*args):
        raise ValueError("a message\nover two lines")

    passed, line = verdict(capsys, entry.checker, raises)
    assert passed is False
    assert line.startswith(f"✗ check 1 of {len(entry.checks)} ({entry.checks[0].case}): ")
    assert f"{entry.exercise} raised ValueError: a message over two lines" in line


@pytest.mark.parametrize("name", CHECKERS)
@pytest.mark.parametrize("not_a_function", [3, torch.ones(2), nn.Linear(2, 2), int, None])
def test_checker_refuses_anything_but_a_function(name, not_a_function):
    with pytest.raises(TypeError, match="fn must be your function itself"):
        REGISTERED[name].checker(not_a_function)


@pytest.mark.parametrize("name", CHECKERS)
@pytest.mark.parametrize("timeout, error", [(0, ValueError), (-1.0, ValueError), ("3", TypeError)])
def test_checker_refuses_a_timeout_that_is_not_a_positive_number(name, timeout, error):
    entry = REGISTERED[name]
    with pytest.raises(error, match="timeout"):
        entry.checker(chapter_cells.reference_solution(entry.exercise), timeout=timeout)


# --- the checking machinery, shown on a checker of two cases ----------------------------------------
# (Where the student's code runs and how it is stopped is stated in tests/test_checker_isolation.py.)

def returns_its_argument(argument):
    def case(fn):
        if call_student(fn, argument) != argument:
            raise exercises.WrongAnswer("wrong")
    return case


TWO_CASES = (Check("first", returns_its_argument(2)), Check("second", returns_its_argument(0)))


def check_identity(fn, timeout=exercises.DEFAULT_TIMEOUT):
    return run_checks(fn, "identity", TWO_CASES, timeout)


def identity(x):
    return x


def test_a_function_that_raises_not_implemented_only_in_a_later_case_is_not_called_unwritten(capsys):
    def partly_written(x):
        if x == 0:
            raise NotImplementedError
        return x

    passed, line = verdict(capsys, check_identity, partly_written)
    assert passed is False
    assert line.startswith("✗ check 2 of 2 (second): identity raised NotImplementedError.")


def test_a_stopped_check_leaves_the_alarm_handler_and_timer_as_they_were(capsys):
    before = signal.getsignal(signal.SIGALRM)
    verdict(capsys, check_identity, spins_forever, timeout=SHORT)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_an_alarm_armed_by_someone_else_is_left_running(capsys):
    def outer_handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, outer_handler)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        passed, _ = verdict(capsys, check_identity, identity)
        assert passed
        assert signal.getsignal(signal.SIGALRM) is outer_handler
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- what the chapters' cases share (resbook.exercises.checking) -------------------------------------

def test_mistake_hint_names_the_first_mistake_the_answer_matches_and_never_one_that_gives_the_right_answer():
    mistakes = [(3, "gives the right answer"), (5, "off by two"), (5, "also off by two")]
    assert mistake_hint(5, 3, mistakes, operator.eq) == "off by two"
    assert mistake_hint(3, 3, mistakes, operator.eq) is None
    assert mistake_hint(9, 3, mistakes, operator.eq) is None


def test_mistake_hint_computes_the_wrong_answers_only_until_one_matches():
    computed = []

    def wrong_answers():
        for value, hint in [(5, "first"), (7, "second")]:
            computed.append(value)
            yield value, hint

    assert mistake_hint(5, 3, wrong_answers(), operator.eq) == "first" and computed == [5]


def test_mistake_hint_refuses_a_comparison_that_is_not_a_function():
    with pytest.raises(TypeError, match="same must be a function of two answers, got str"):
        mistake_hint(1, 2, [], "==")


@pytest.mark.parametrize("answer, problem, hint", [
    (None, "f should return a torch.Tensor, got NoneType", "return it"),
    ([0.0], "f should return a torch.Tensor, got list", ""),
    (torch.zeros(2, 3), "f should return a torch.float32 tensor of shape (3, 2) like its input, "
                        "got torch.float32 of shape (2, 3)", "same shape"),
    (torch.zeros(3, 2, dtype=torch.float64), "f should return a torch.float32 tensor of shape (3, 2) like its input, "
                                             "got torch.float64 of shape (3, 2)", "same shape"),
])
def test_expect_tensor_like_says_what_came_back_instead_of_a_tensor_like_the_model(answer, problem, hint):
    with pytest.raises(WrongAnswer) as raised:
        expect_tensor_like("f", answer, torch.ones(3, 2), "its input", none_hint="return it", shape_hint="same shape")
    assert (raised.value.problem, raised.value.hint) == (problem, hint)


def test_expect_tensor_like_returns_a_right_answer_and_refuses_a_model_that_is_not_a_tensor():
    answer = torch.zeros(3, 2)
    assert expect_tensor_like("f", answer, torch.ones(3, 2), "x", none_hint="", shape_hint="") is answer
    with pytest.raises(TypeError, match="like must be a torch.Tensor, got list"):
        expect_tensor_like("f", answer, [1.0], "x", none_hint="", shape_hint="")


def test_looks_trained_draws_one_eval_mode_net_per_seed_with_moved_batch_norm_and_keeps_the_random_state():
    state = torch.get_rng_state()
    first, again = (looks_trained(lambda: mlp(4, 6, 5, 3, residual=True), 1, 5) for _ in range(2))
    assert torch.equal(torch.get_rng_state(), state)
    assert not any(module.training for module in first.modules())
    norms = [m for m in first.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and all(m.running_mean.any() and not torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("make_net, seed, in_features, error, message", [
    (None, 0, 5, TypeError, "make_net must be a function"), (mlp, 0.5, 5, TypeError, "seed must be an int"),
    (mlp, 0, 0, ValueError, "in_features must be >= 1")])
def test_looks_trained_refuses_arguments_it_cannot_use(make_net, seed, in_features, error, message):
    with pytest.raises(error, match=message):
        looks_trained(make_net, seed, in_features)


def test_output_in_eval_mode_runs_the_net_in_eval_mode_and_reports_its_error_as_a_wrong_answer():
    net, x = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.9)).train(), torch.ones(4, 2)
    output = output_in_eval_mode(net, x, "the net", "a hint")
    assert not net.training and not output.requires_grad and torch.allclose(output, x @ net[0].weight.T + net[0].bias)
    with pytest.raises(WrongAnswer, match="running the net on a batch raised RuntimeError: ") as raised:
        output_in_eval_mode(nn.Linear(3, 2), x, "the net", "a hint")
    assert raised.value.hint == "a hint"
    with pytest.raises(TypeError, match="net must be a torch.nn.Module, got function"):
        output_in_eval_mode(lambda v: v, x, "the net", "a hint")


# --- in a real kernel ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", CHECKERS[:1])
def test_in_a_jupyter_kernel_a_runaway_function_is_stopped(monkeypatch, tmp_path, name):
    # Where students call checkers: the loop is stopped, not abandoned where it keeps a core busy.
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    exercise = REGISTERED[name].exercise
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"from resbook.exercises import {name}\n"
        f"def {exercise}(*args):\n    while True:\n        pass\n"
        f"assert {name}({exercise}, timeout=0.5) is False")])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[0].outputs)
    assert f"{exercise} ran longer than 0.5 s and was stopped" in printed
