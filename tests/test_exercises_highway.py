"""Facts about chapter 2's checkers (resbook/exercises/highway.py): each common mistake is named by its
hint, and the reference answers are the chapter's own solution cells (book/02_highway.ipynb)."""
import numpy as np
import pytest
import torch

from chapter_cells import reference_solution
from exercise_cases import assert_refused, refusals
from resbook.exercises import check_backward_through_blocks, check_lag_below_half
from resbook.highway import block_jacobians
from resbook.models import Block, mlp


def backward_through_blocks(upstream, jacobians, active):
    return reference_solution("backward_through_blocks")(upstream, jacobians, active)


def lag_below_half(signal):
    return reference_solution("lag_below_half")(signal)


# --- backward_through_blocks ------------------------------------------------------------------------

def blockwise(step, order=reversed, use_active=True):
    def backward(upstream, jacobians, active):
        masks = active if (active is not None and use_active) else [None] * len(jacobians)
        g = upstream
        for jacobian, mask in order(list(zip(jacobians, masks))):
            g = step(g, jacobian, mask)
        return g
    return backward


def masked(g, mask):
    return g if mask is None else g * mask


def in_place(upstream, jacobians, active):
    g = upstream
    for jacobian, mask in zip(reversed(jacobians), reversed(active or [None] * len(jacobians))):
        if mask is not None:
            g *= mask
        g += g @ jacobian
    return g


BACKWARD_MISTAKES = [
    (blockwise(lambda g, j, m: masked(g, m) @ j), "the identity path (the I in I + J) is missing"),
    (blockwise(lambda g, j, m: (g + g @ j) * (1 if m is None else m)), "applies D after (I + J)"),
    (blockwise(lambda g, j, m: masked(g, m) + j @ masked(g, m)), "not J · g"),
    (blockwise(lambda g, j, m: masked(g, m) + masked(g, m) @ j, order=lambda pairs: pairs),
     "from the first to the last"),
    (blockwise(lambda g, j, m: masked(g, m) + masked(g, m) @ j, use_active=False), "ignores `active`"),
    (in_place, "changed the tensors it was given"),
    (lambda u, js, a: None, "should return a torch.Tensor, got NoneType"),
    (lambda u, js, a: backward_through_blocks(u, js, a).float(), "torch.float64 tensor"),
]


def test_the_chapters_backward_solution_is_the_product_of_block_jacobians_on_a_real_net():
    # Independent computation: autograd's vector-Jacobian product through pre-activation blocks.
    torch.manual_seed(0)
    net = mlp(10, 5, 5, 2, residual=True, norm=None, preactivation=True).double().eval()
    blocks = torch.nn.Sequential(*[m for m in net if isinstance(m, Block)])
    x = torch.randn(5, dtype=torch.float64)
    upstream = torch.randn(5, dtype=torch.float64)
    branch_jacobians, signal = [], x
    for block in blocks:
        branch_jacobians.append(torch.func.jacrev(lambda v, b=block: b.branch(v[None])[0])(signal))
        signal = block(signal[None])[0]
    _, pull_back = torch.func.vjp(lambda v: blocks(v[None])[0], x)
    assert torch.allclose(backward_through_blocks(upstream, branch_jacobians, None), pull_back(upstream)[0])
    assert len(block_jacobians(net, x)[0]) == len(branch_jacobians)


# --- lag_below_half ----------------------------------------------------------------------------------

def autocorrelation(signal, centred=True, normalised=True):
    s = signal - signal.mean() if centred else signal
    r = np.array([np.dot(s[: len(s) - k], s[k:]) for k in range(len(s))])
    return r / r[0] if normalised else r / len(s)


def first_below(r, shift=0):
    return int(np.nonzero(r[1:] < 0.5)[0][0]) + 1 + shift


def in_place_lag(signal):
    signal -= signal.mean()
    return lag_below_half(signal)


LAG_MISTAKES = [
    (lambda s: first_below(autocorrelation(s, centred=False)), "subtract the mean first"),
    (lambda s: first_below(autocorrelation(s, normalised=False)), "divide so that r(0) = 1"),
    (lambda s: first_below(autocorrelation(s), shift=-1), "one lag short"),
    (lambda s: float(autocorrelation(s)[1]), "should return an int"),
    (in_place_lag, "changed the signal it was given"),
]


@pytest.mark.parametrize("checker, mistake, hint", refusals({check_backward_through_blocks: BACKWARD_MISTAKES,
                                                             check_lag_below_half: LAG_MISTAKES}))
def test_each_checker_names_each_common_mistake(capsys, checker, mistake, hint):
    assert_refused(capsys, checker, mistake, hint)


def test_the_chapters_lag_solution_gives_the_theoretical_lags_of_known_signals():
    # White noise: r(1) ≈ 0, so lag 1. A sinusoid of period 60: cos(2πk/60) < 1/2 from k = 11 on.
    assert lag_below_half(np.random.default_rng(0).standard_normal(5000)) == 1
    assert lag_below_half(np.sin(2 * np.pi * np.arange(6000) / 60)) == 11
