"""Facts about the exercise checkers: they accept the reference solutions, reject stubs, common
mistakes and runaway code, and always answer in one printed line."""
import ast
import copy
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest
import torch
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from torch import nn

from exercise_solutions import deeper_twin, residual_forward
from resbook import exercises
from resbook.exercises import check_deeper_twin, check_residual_forward
from resbook.models import Block, mlp

SRC = Path(__file__).resolve().parents[1] / "src"
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


# --- every checker ----------------------------------------------------------------------------

CHECKERS = [(check_residual_forward, residual_forward, "residual_forward"),
            (check_deeper_twin, deeper_twin, "deeper_twin")]


@pytest.mark.parametrize("checker, solution, name", CHECKERS)
def test_checker_accepts_the_reference_solution(capsys, checker, solution, name):
    passed, line = verdict(capsys, checker, solution)
    assert passed is True
    assert line.startswith(f"✓ {name} passed all ") and line.endswith(" checks")


@pytest.mark.parametrize("checker, solution, name", CHECKERS)
def test_checker_says_a_stub_is_not_written_yet(capsys, checker, solution, name):
    passed, line = verdict(capsys, checker, not_written)
    assert passed is False
    assert line == f"✗ {name} is not written yet — replace `raise NotImplementedError` with your code"


@pytest.mark.parametrize("checker, solution, name", CHECKERS)
def test_checker_stops_a_function_that_never_returns(capsys, checker, solution, name):
    started = time.perf_counter()
    passed, line = verdict(capsys, checker, spins_forever, timeout=SHORT)
    assert passed is False
    assert f"{name} ran longer than {SHORT:g} s and was stopped" in line
    assert time.perf_counter() - started < 5  # stopped, not waited for


@pytest.mark.parametrize("checker, solution, name", CHECKERS)
def test_checker_reports_an_exception_in_one_line_naming_it(capsys, checker, solution, name):
    def raises(*args):
        raise ValueError("a message\nover two lines")

    passed, line = verdict(capsys, checker, raises)
    assert passed is False
    assert line.startswith("✗ check 1 of ") and f"{name} raised ValueError: a message over two lines" in line


def test_a_function_that_raises_not_implemented_only_in_a_later_case_is_not_called_unwritten(capsys):
    def partly_written(x, weights):
        if not weights:
            raise NotImplementedError
        return residual_forward(x, weights)

    passed, line = verdict(capsys, check_residual_forward, partly_written)
    assert passed is False
    assert line.startswith("✗ check 2 of 5 (no blocks): residual_forward raised NotImplementedError.")


@pytest.mark.parametrize("checker", [check_residual_forward, check_deeper_twin])
@pytest.mark.parametrize("not_a_function", [3, torch.ones(2), nn.Linear(2, 2), int, None])
def test_checker_refuses_anything_but_a_function(checker, not_a_function):
    with pytest.raises(TypeError, match="fn must be your function itself"):
        checker(not_a_function)


@pytest.mark.parametrize("timeout, error", [(0, ValueError), (-1.0, ValueError), ("3", TypeError)])
def test_checker_refuses_a_timeout_that_is_not_a_positive_number(timeout, error):
    with pytest.raises(error, match="timeout"):
        check_residual_forward(residual_forward, timeout=timeout)


# --- time limits ------------------------------------------------------------------------------

def test_the_alarm_is_disarmed_and_the_previous_handler_restored(capsys):
    before = signal.getsignal(signal.SIGALRM)
    verdict(capsys, check_residual_forward, spins_forever, timeout=SHORT)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_an_alarm_armed_by_someone_else_is_left_running(capsys):
    def outer_handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGALRM, outer_handler)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        passed, _ = verdict(capsys, check_residual_forward, residual_forward)
        assert passed
        assert signal.getsignal(signal.SIGALRM) is outer_handler
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_outside_the_main_thread_a_slow_function_is_abandoned_and_said_to_be(capsys):
    def slow(*args):
        time.sleep(1.0)  # ends by itself, so the abandoned thread does not outlive the test run

    results = []
    worker = threading.Thread(target=lambda: results.append(check_residual_forward(slow, timeout=SHORT)))
    worker.start()
    worker.join()
    lines = capsys.readouterr().out.splitlines()
    assert results == [False] and len(lines) == 1
    assert "ran longer than 0.3 s and was abandoned" in lines[0]


# --- residual_forward ---------------------------------------------------------------------------

def blockwise(block):
    def forward(x, weights):
        for W in weights:
            x = block(x, W)
        return x
    return forward


def in_place(x, weights):
    for W in weights:
        x += torch.relu(x @ W)
    return x


RESIDUAL_FORWARD_MISTAKES = [
    (blockwise(lambda x, W: torch.relu(x + x @ W)), "your output matches relu(x + x @ W)"),
    (blockwise(lambda x, W: torch.relu(x @ W)), "the identity path is missing"),
    (blockwise(lambda x, W: x + x @ W), "the branch has lost its relu"),
    (blockwise(lambda x, W: x + torch.relu(x @ W.T)), "look at the order of the product"),
    (lambda x, weights: x.clone(), "returns its input unchanged"),
    (in_place, "changed the tensors it was given"),
    (lambda x, weights: None, "should return a torch.Tensor, got NoneType. Hint: return the final x"),
    (lambda x, weights: residual_forward(x, weights).T, "of shape (4, 3)"),
    (lambda x, weights: residual_forward(x, weights).double(), "torch.float32 tensor"),
    (lambda x, weights: residual_forward(x, weights[:1]), "your output differs from the residual net's"),
]


@pytest.mark.parametrize("mistake, hint", RESIDUAL_FORWARD_MISTAKES)
def test_residual_forward_checker_names_each_common_mistake(capsys, mistake, hint):
    passed, line = verdict(capsys, check_residual_forward, mistake)
    assert passed is False
    assert line.startswith("✗ check ") and hint in line


def test_residual_forward_checker_catches_a_net_that_is_not_the_identity_at_zero_weights(capsys):
    def wrong_only_at_zero(x, weights):
        if weights and all(not W.any() for W in weights):
            return torch.relu(x)
        return residual_forward(x, weights)

    passed, line = verdict(capsys, check_residual_forward, wrong_only_at_zero)
    assert passed is False
    assert line.startswith("✗ check 3 of 5 (all-zero weights): with all-zero weights a residual net "
                           "should return its input unchanged — yours did not. Hint: ")


def test_residual_forward_checker_accepts_an_einsum_solution(capsys):
    # The same sums in another order: within the stated tolerance.
    passed, _ = verdict(capsys, check_residual_forward,
                        blockwise(lambda x, W: x + torch.einsum("bi,ij->bj", x, W).clamp(min=0)))
    assert passed


# --- deeper_twin --------------------------------------------------------------------------------

def twin_with(make_blocks, place="before head", copy_net=True):
    """A deeper_twin built from ``make_blocks(width, n)``, placed in the net as told."""
    def deeper(net, extra_blocks):
        width = net[-1].in_features
        layers = list(copy.deepcopy(net) if copy_net else net)
        blocks = make_blocks(width, extra_blocks)
        if place == "after head":
            return nn.Sequential(*layers, *blocks)
        if place == "after stem linear":
            return nn.Sequential(layers[0], *blocks, *layers[1:])
        return nn.Sequential(*layers[:-1], *blocks, layers[-1])
    return deeper


def blocks_of(width, n, **options):
    return [m for m in mlp(2 + 2 * n, width, width, width, residual=True, **options) if isinstance(m, Block)]


def zero_blocks(width, n):
    return blocks_of(width, n, zero_init_branch=True)


def changes_net(net, extra_blocks):
    with torch.no_grad():
        net[0].weight.mul_(2)
    return deeper_twin(net, extra_blocks)


DEEPER_TWIN_MISTAKES = [
    (lambda net, extra_blocks: net, "deeper_twin returned `net` itself"),
    (lambda net, extra_blocks: None, "got NoneType. Hint: did you forget `return`?"),
    (lambda net, extra_blocks: copy.deepcopy(net),
     "the twin has 6 weight layers; a depth-6 net with 2 more blocks has 10"),
    (twin_with(blocks_of), "the twin computes a different function"),
    (twin_with(zero_blocks, place="after stem linear"), "what must F be, and what must x be"),
    (twin_with(zero_blocks, place="after head"), "running the twin in eval mode on a batch raised RuntimeError"),
    (twin_with(zero_blocks, copy_net=False), "the twin shares layers with `net`"),
    (changes_net, "deeper_twin changed `net`"),
]


@pytest.mark.parametrize("mistake, hint", DEEPER_TWIN_MISTAKES)
def test_deeper_twin_checker_names_each_common_mistake(capsys, mistake, hint):
    passed, line = verdict(capsys, check_deeper_twin, mistake)
    assert passed is False
    assert line.startswith("✗ check ") and hint in line


def test_deeper_twin_checker_tries_a_net_with_no_blocks_yet(capsys):
    def after_last_block(net, extra_blocks):
        layers = list(copy.deepcopy(net))
        end = max(i for i, m in enumerate(layers) if isinstance(m, Block)) + 1
        return nn.Sequential(*layers[:end], *zero_blocks(net[-1].in_features, extra_blocks), *layers[end:])

    passed, line = verdict(capsys, check_deeper_twin, after_last_block)
    assert passed is False
    assert line.startswith("✗ check 5 of 5 (a depth-2 net") and "deeper_twin raised ValueError" in line


def test_deeper_twin_checker_leaves_the_global_random_state_alone(capsys):
    def deeper_twin_without_randomness(net, extra_blocks):  # the solution draws new weights; undo that
        with torch.random.fork_rng(devices=[]):
            return deeper_twin(net, extra_blocks)

    state = torch.get_rng_state()
    passed, _ = verdict(capsys, check_deeper_twin, deeper_twin_without_randomness)
    assert passed
    assert torch.equal(torch.get_rng_state(), state)


# --- the chapters' own solutions ---------------------------------------------------------------

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "book").glob("[0-9][0-9]_*.ipynb"))


def chapter_imports(notebook):
    """Every top-level import statement of the chapter's code cells."""
    statements = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(TransformerManager().transform_cell(cell.source))  # magics become plain Python
        statements += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(statements)


def checked_solutions(notebook):
    """(function name, solution cell source) for each solution cell whose function has a checker."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            function = next((node for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)), None)
            if function is not None and hasattr(exercises, f"check_{function.name}"):
                found.append((function.name, cell.source))
    return found


@pytest.mark.skipif(not CHAPTERS, reason="no chapters written yet")
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_checked_solution_in_a_chapter_passes_its_checker(capsys, chapter):
    # The chapter prints the checker's line but does not fail its build on a ✗; this test does.
    notebook = nbformat.read(chapter, as_version=4)
    for name, source in checked_solutions(notebook):
        namespace = {}
        exec(chapter_imports(notebook), namespace)
        exec(source, namespace)
        passed, line = verdict(capsys, getattr(exercises, f"check_{name}"), namespace[name])
        assert passed, f"{chapter.name}: {line}"


# --- in a real kernel ---------------------------------------------------------------------------

@pytest.mark.slow
def test_in_a_jupyter_kernel_a_runaway_function_is_stopped_by_the_alarm(monkeypatch, tmp_path):
    # The reason for SIGALRM: a notebook kernel runs cells in its main thread, so the loop is
    # interrupted, not abandoned in a thread that keeps a core busy.
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from resbook.exercises import check_residual_forward\n"
        "def residual_forward(x, weights):\n    while True:\n        pass\n"
        "assert check_residual_forward(residual_forward, timeout=0.5) is False")])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[0].outputs)
    assert "ran longer than 0.5 s and was stopped" in printed
