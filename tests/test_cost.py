"""The arithmetic of training, counted: the log that every training run leaves, against FLOPs
counted independently by torch's own FlopCounterMode."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resbook import cost
from resbook.batched import train_together
from resbook.data import spirals
from resbook.models import plain_mlp, residual_mlp
from resbook.recipe import Recipe
from resbook.training import train


def test_training_flops_match_torch_s_count_of_one_step_s_matrix_products():
    """FlopCounterMode counts the products autograd really runs (none for the data's gradient)."""
    torch.manual_seed(0)
    model, x = residual_mlp(4, 16, 2, 3, norm=None), torch.randn(32, 2)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    assert cost.training_flops(model, batch_size=32, steps=1) == counter.get_total_flops()


def test_every_training_run_is_logged_with_the_steps_it_took():
    data, recipe = spirals(n=128, seed=0), Recipe(steps=5, batch_size=32)
    torch.manual_seed(0)
    one, pair = plain_mlp(4, 8, 2, 2), [residual_mlp(4, 8, 2, 2) for _ in range(2)]
    cost.clear()
    train(one, data, recipe, seed=0)
    train_together(pair, data, recipe, seeds=[0, 1])
    logged = cost.runs()
    assert [run.nets for run in logged] == [1, 2]
    per_net = cost.training_flops(one, 32, 5)
    assert logged[0].flops == per_net and logged[1].flops == 2 * per_net  # same widths, same weights
    assert all(run.end >= run.start for run in logged)
    assert cost.check_trained_on("cpu") == 2
    with pytest.raises(AssertionError, match="not on cuda"):
        cost.check_trained_on("cuda")
    cost.clear()
    assert cost.runs() == []


def test_busy_seconds_counts_overlapping_runs_once():
    runs = [cost.Run(1, 0.0, 0.0, 2.0), cost.Run(1, 0.0, 1.0, 3.0), cost.Run(1, 0.0, 5.0, 6.0)]  # 0–3 and 5–6
    assert cost.busy_seconds(runs) == pytest.approx(4.0)
    assert cost.busy_seconds([]) == 0.0


def test_matmul_rate_is_a_positive_rate_and_refuses_tiny_sizes():
    assert cost.matmul_rate(size=64, repeats=1) > 0
    with pytest.raises(ValueError, match="size"):
        cost.matmul_rate(size=2)
