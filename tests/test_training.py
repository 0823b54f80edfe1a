"""Facts about the book's training loop."""
import math

import pytest
import torch
from torch import nn

from resbook.data import digits, teacher_regression
from resbook.models import plain_mlp, residual_mlp
from resbook.training import History, batch_indices, evaluate_loss, train


def test_batches_cover_every_sample_once_per_epoch():
    index = batch_indices(n_samples=10, batch_size=5, steps=4, seed=0)
    assert index.shape == (4, 5)
    for epoch in index.view(2, 10):
        assert sorted(epoch.tolist()) == list(range(10))


def test_same_seed_same_batches_other_seed_other_batches():
    assert torch.equal(batch_indices(100, 10, 5, 3), batch_indices(100, 10, 5, 3))
    assert not torch.equal(batch_indices(100, 10, 5, 3), batch_indices(100, 10, 5, 4))


def test_training_lowers_the_loss_on_digits():
    torch.manual_seed(0)
    data = digits()
    model = residual_mlp(6, 16, data.n_features, data.n_outputs)
    before = evaluate_loss(model, data)
    history = train(model, data, steps=60, batch_size=64, lr=0.05, seed=0)
    assert len(history.loss) == 60 and not history.diverged
    assert evaluate_loss(model, data) < 0.5 * before


def test_one_training_step_equals_a_hand_written_sgd_step():
    # Independent computation: the gradient of the first minibatch, applied by hand.
    torch.manual_seed(1)
    data = teacher_regression(n=32, features=4)
    model = plain_mlp(4, 8, 4, 1, norm=None)
    expected = {n: p.detach().clone() for n, p in model.named_parameters()}
    index = batch_indices(32, 16, 1, seed=5)[0]
    loss = nn.functional.mse_loss(model(data.x[index]), data.y[index])
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for (name, _), g in zip(model.named_parameters(), grads):
        expected[name] -= 0.1 * g
    train(model, data, steps=1, batch_size=16, lr=0.1, momentum=0.9, seed=5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, expected[name])


def test_same_seed_and_weights_give_the_same_run():
    data = digits()
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(train(plain_mlp(6, 16, 64, 10), data, steps=20, seed=2).loss)
    assert runs[0] == runs[1]


def test_a_diverging_run_is_stopped_and_reported_not_raised():
    torch.manual_seed(0)
    data = teacher_regression(n=64, features=4)
    model = plain_mlp(8, 16, 4, 1, norm=None)
    history = train(model, data, steps=200, batch_size=32, lr=50.0, momentum=0.9, seed=0)
    assert history.diverged and history.diverged_at == len(history.loss) < 200
    assert all(math.isfinite(v) for v in history.loss)
    assert history.final_loss() == math.inf


def test_final_loss_is_the_mean_of_the_last_steps():
    assert History(loss=[4.0, 2.0, 1.0, 3.0]).final_loss(window=2) == 2.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps"), (dict(batch_size=0), "batch_size"), (dict(lr=-1.0), "lr"),
    (dict(lr=float("nan")), "lr"), (dict(momentum=1.0), "momentum"), (dict(seed=-1), "seed"),
    (dict(batch_size=10_000), "batch_size"),
])
def test_bad_training_arguments_raise_naming_the_argument(kwargs, message):
    data = teacher_regression(n=16, features=2)
    arguments = dict(steps=1, batch_size=8, lr=0.1, momentum=0.9, seed=0) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        train(plain_mlp(4, 4, 2, 1), data, **arguments)


def test_train_rejects_what_is_not_a_model_or_a_dataset():
    data = teacher_regression(n=16, features=2)
    with pytest.raises(TypeError, match="model"):
        train("model", data, steps=1)
    with pytest.raises(TypeError, match="data"):
        train(plain_mlp(4, 4, 2, 1), (data.x, data.y), steps=1)
