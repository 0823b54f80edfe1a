"""Facts about the book's training loop."""
import math
import time

import pytest
import torch
from torch import nn

from resbook.data import digits, spirals, teacher_regression
from resbook.models import plain_mlp, residual_mlp
from resbook.recipe import Recipe
from resbook.training import (History, batch_indices, check_fits, error_rate, evaluate_loss, loss_function,
                               minibatches, misclassified, train)


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
    history = train(model, data, Recipe(steps=60, batch_size=64, lr=0.05), seed=0)
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
    train(model, data, Recipe(steps=1, batch_size=16, lr=0.1, momentum=0.9), seed=5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, expected[name])


def test_each_epoch_is_shuffled_anew():
    first, second = batch_indices(n_samples=20, batch_size=20, steps=2, seed=0)
    assert sorted(first.tolist()) == sorted(second.tolist()) and not torch.equal(first, second)


def test_same_seed_and_weights_give_the_same_run():
    data = digits()
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(train(plain_mlp(6, 16, 64, 10), data, Recipe(steps=20), seed=2).loss)
    assert runs[0] == runs[1]


def test_a_diverging_run_is_stopped_and_reported_not_raised():
    torch.manual_seed(0)
    data = teacher_regression(n=64, features=4)
    model = plain_mlp(8, 16, 4, 1, norm=None)
    history = train(model, data, Recipe(steps=200, batch_size=32, lr=50.0, momentum=0.9), seed=0)
    assert history.diverged and history.diverged_at == len(history.loss) < 200
    assert all(math.isfinite(v) for v in history.loss)
    assert history.final_loss() == math.inf


def test_a_step_size_beyond_float32_is_reported_as_divergence_not_raised():
    torch.manual_seed(0)
    data = teacher_regression(n=64, features=4)
    history = train(plain_mlp(4, 8, 4, 1), data, Recipe(steps=5, batch_size=32, lr=1e39))
    assert history.diverged_at == 1 and len(history.loss) == 1


def test_final_loss_is_the_mean_of_the_last_steps():
    history = History(loss=[8.0, 4.0, 2.0, 1.0])
    assert history.final_loss(window=2) == 1.5 and history.final_loss(window=3) == 7 / 3
    assert history.final_loss(window=10) == 15 / 4


def one_step_by_hand(model, data, recipe, transform):
    """The parameters after one plain SGD step (momentum has no effect on the first step) on the
    gradient of the first minibatch, changed by ``transform(name, parameter, gradient)``."""
    index = batch_indices(len(data), recipe.batch_size, 1, seed=0)[0]
    loss = nn.functional.mse_loss(model(data.x[index]), data.y[index])
    names, parameters = zip(*model.named_parameters())
    grads = dict(zip(names, torch.autograd.grad(loss, parameters)))
    grads = transform(grads, dict(model.named_parameters()))
    return {name: p.detach() - recipe.lr * grads[name] for name, p in model.named_parameters()}


def check_one_step(recipe, transform, norm=None):
    torch.manual_seed(3)
    data = teacher_regression(n=32, features=4)
    model = plain_mlp(4, 8, 4, 1, norm=norm)
    expected = one_step_by_hand(model, data, recipe, transform)
    train(model, data, recipe, seed=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_clipping_scales_the_whole_gradient_down_to_the_threshold():
    def clip(grads, _):
        total = torch.sqrt(sum(g.square().sum() for g in grads.values()))
        assert total > 0.05  # the threshold below really clips
        return {name: g * 0.05 / total for name, g in grads.items()}

    check_one_step(Recipe(steps=1, batch_size=16, lr=0.1, clip_norm=0.05), clip)


def test_a_gradient_shorter_than_the_clipping_threshold_is_left_alone():
    check_one_step(Recipe(steps=1, batch_size=16, lr=0.1, clip_norm=1e6), lambda grads, _: grads)


def test_per_layer_normalised_step_gives_each_weight_matrix_a_step_of_its_own_size():
    def normalise(grads, params):
        return {name: g * params[name].norm() / g.norm() if g.dim() == 2 else g for name, g in grads.items()}

    check_one_step(Recipe(steps=1, batch_size=16, lr=0.01, normalise_per_layer=True), normalise, norm="batch")


def test_first_adam_step_moves_each_weight_by_about_the_learning_rate():
    # Adam's first step: m = (1-b1) g, v = (1-b2) g², bias-corrected to g and g²: a step of lr·g/(|g|+eps).
    def adam(grads, _):
        return {name: g / (g.abs() + 1e-8) for name, g in grads.items()}

    check_one_step(Recipe(steps=1, batch_size=16, lr=1e-3, optimizer="adam"), adam)


def test_the_schedule_sets_the_learning_rate_of_every_step():
    # Two steps without momentum, the second at half the rate (linear schedule over two steps).
    torch.manual_seed(4)
    data = teacher_regression(n=32, features=4)
    model = plain_mlp(4, 8, 4, 1, norm=None)
    recipe = Recipe(steps=2, batch_size=16, lr=0.1, momentum=0.0, schedule="linear")
    by_hand = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
    for step, index in enumerate(batch_indices(32, 16, 2, seed=0)):
        loss = nn.functional.mse_loss(torch.func.functional_call(model, by_hand, (data.x[index],)), data.y[index])
        grads = torch.autograd.grad(loss, list(by_hand.values()))
        by_hand = {n: (p - 0.1 * recipe.lr_factor(step) * g).detach().requires_grad_()
                   for (n, p), g in zip(by_hand.items(), grads)}
    train(model, data, recipe, seed=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), by_hand[name].detach(), msg=name)


@pytest.mark.parametrize("training", [True, False])
def test_evaluating_leaves_the_model_in_the_mode_it_was_in(training):
    data = digits()
    model = residual_mlp(4, 8, data.n_features, data.n_outputs).train(training)
    evaluate_loss(model, data)
    assert model.training is training
    with pytest.raises(ValueError, match="model does not run on data 'teacher' \\(3 features"):
        evaluate_loss(model, teacher_regression(n=8, features=3))  # wrong feature count: the forward raises
    assert model.training is training


def test_an_unknown_task_is_refused_rather_than_read_as_regression():
    for task in ("Classification", "foo", None):
        with pytest.raises(ValueError, match="task"):
            loss_function(task)


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(seed=2**64), "seed"),
])
def test_bad_training_arguments_raise_naming_the_argument(kwargs, message):
    data = teacher_regression(n=16, features=2)
    with pytest.raises((ValueError, TypeError), match=message):
        train(plain_mlp(4, 4, 2, 1), data, Recipe(steps=1, batch_size=8), **kwargs)


def test_a_batch_larger_than_the_data_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        train(plain_mlp(4, 4, 2, 1), teacher_regression(n=16, features=2), Recipe(steps=1, batch_size=10_000))


def test_train_rejects_what_is_not_a_model_a_dataset_or_a_recipe():
    data = teacher_regression(n=16, features=2)
    with pytest.raises(TypeError, match="model"):
        train("model", data, Recipe(steps=1))
    with pytest.raises(TypeError, match="data"):
        train(plain_mlp(4, 4, 2, 1), (data.x, data.y), Recipe(steps=1))
    with pytest.raises(TypeError, match="recipe"):
        train(plain_mlp(4, 4, 2, 1), data, {"steps": 1})


def test_a_final_loss_over_one_step_is_the_last_loss_and_over_none_is_refused():
    history = History(loss=[8.0, 4.0, 2.0, 1.0])
    assert history.final_loss(window=1) == 1.0
    with pytest.raises(ValueError, match="^window must be >= 1, got 0$"):
        history.final_loss(window=0)


def test_minibatches_are_the_batches_training_draws():
    data = teacher_regression(n=40, features=3)
    batches = minibatches(data, batch_size=8, count=3, seed=4)
    for batch, index in zip(batches, batch_indices(40, 8, 3, seed=4)):
        assert torch.equal(batch.x, data.x[index]) and torch.equal(batch.y, data.y[index])


def test_error_rate_is_the_share_of_wrong_classes_by_an_independent_count():
    torch.manual_seed(0)
    data = digits()
    model = residual_mlp(4, 8, data.n_features, data.n_outputs).train()
    predicted = model.eval()(data.x).argmax(1)
    model.train()
    wrong = sum(int(p) != int(y) for p, y in zip(predicted, data.y))
    assert error_rate(model, data) == pytest.approx(wrong / len(data)) and model.training
    with pytest.raises(ValueError, match="error_rate needs a classification"):
        error_rate(plain_mlp(4, 4, 16, 1), teacher_regression(n=8))


def test_misclassified_names_exactly_the_samples_whose_class_is_wrong():
    torch.manual_seed(1)
    data = digits()
    model = residual_mlp(4, 8, data.n_features, data.n_outputs).eval()
    predicted = model(data.x).argmax(1)
    wrong = misclassified(model, data)
    assert wrong == {i for i, (p, y) in enumerate(zip(predicted, data.y)) if int(p) != int(y)}
    assert 0 < len(wrong) < len(data) and model.training is False  # left as it was: in evaluation mode
    with pytest.raises(ValueError, match="misclassified needs a classification"):
        misclassified(model, teacher_regression(n=8, features=data.n_features))


def test_a_batch_of_one_and_a_data_set_of_one_sample_are_allowed():
    assert batch_indices(1, 1, 3, seed=0).tolist() == [[0], [0], [0]]
    assert sorted(batch_indices(4, 1, 4, seed=0).flatten().tolist()) == [0, 1, 2, 3]
    data = teacher_regression(n=8, features=2)
    history = train(plain_mlp(4, 4, 2, 1, norm=None), data, Recipe(steps=2, batch_size=1))
    assert len(history.loss) == 2


def test_minibatch_seeds_run_up_to_two_to_the_64_minus_one():
    assert batch_indices(4, 2, 2, seed=2**64 - 1).shape == (2, 2)


@pytest.mark.parametrize("arguments, message", [
    (dict(n_samples=0), "^n_samples must be >= 1, got 0$"), (dict(batch_size=0), "^batch_size must be >= 1, got 0$"),
    (dict(steps=0), "^steps must be >= 1, got 0$"),
])
def test_bad_minibatch_arguments_are_refused_naming_them(arguments, message):
    with pytest.raises(ValueError, match=message):
        batch_indices(**(dict(n_samples=10, batch_size=2, steps=3, seed=0) | arguments))


def test_more_minibatch_indices_than_the_size_limit_are_refused_before_any_is_drawn():
    steps, batch = 10**9, 10
    gib = steps * batch * torch.tensor([0]).element_size() / 2**30  # the indices are int64
    with pytest.raises(ValueError, match=rf"^the minibatch indices of {steps} steps of batch_size {batch} would take "
                                         rf"about {gib:,.1f} GiB, more than resbook's limit of 4 GiB: "
                                         r"lower steps or batch_size$"):
        batch_indices(10, batch, steps, seed=0)


def test_train_names_the_model_or_data_it_refuses_and_times_its_run():
    data = teacher_regression(n=16, features=2)
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got str"):
        train("model", data, Recipe(steps=1, batch_size=8))
    with pytest.raises(TypeError, match="^data must be a resbook.data.Dataset"):
        train(plain_mlp(4, 4, 2, 1), None, Recipe(steps=1, batch_size=8))
    before = time.perf_counter()
    history = train(plain_mlp(4, 4, 2, 1), data, Recipe(steps=3, batch_size=8))
    assert 0 < history.seconds <= time.perf_counter() - before


@pytest.mark.parametrize("make, message", [
    (lambda: plain_mlp(4, 4, 2, 1),
     r"^model gives outputs of shape \(1,\) per sample but data 'spirals' has 2 classes$"),
    (lambda: plain_mlp(4, 4, 2, 2), r"^model gives outputs of shape \(2,\) per sample but data 'teacher' has 1 "
                                    r"targets per sample$"),
])
def test_a_net_with_too_few_classes_or_another_number_of_targets_is_refused_before_training(make, message):
    data = spirals(n=16) if "spirals" in message else teacher_regression(n=16, features=2)
    with pytest.raises(ValueError, match=message):
        train(make(), data, Recipe(steps=1, batch_size=8))


def test_a_classifier_may_have_more_outputs_than_the_data_has_classes():
    history = train(plain_mlp(4, 4, 2, 5), spirals(n=16), Recipe(steps=2, batch_size=8))
    assert len(history.loss) == 2


def test_each_step_records_the_first_to_last_layer_gradient_ratio_of_its_minibatch():
    from resbook.gradients import gradient_norms_per_layer

    torch.manual_seed(5)
    data = digits()
    model = plain_mlp(8, 16, data.n_features, data.n_outputs)
    first_batch = minibatches(data, 64, 1, seed=3)[0]
    norms = gradient_norms_per_layer(model, first_batch)  # before training: the gradient of step 0
    history = train(model, data, Recipe(steps=4, batch_size=64, clip_norm=1e-3), seed=3)
    assert len(history.gradient_ratio) == 4
    assert history.gradient_ratio[0] == pytest.approx(norms[0] / norms[-1], rel=1e-4)  # before clipping


def test_check_fits_names_a_batch_size_below_one():
    with pytest.raises(ValueError, match="^batch_size must be >= 1, got 0$"):
        check_fits(plain_mlp(4, 4, 2, 1), teacher_regression(n=8, features=2), 0)


def test_check_fits_names_a_number_of_nets_below_one():
    with pytest.raises(ValueError, match="^nets must be >= 1, got 0$"):
        check_fits(plain_mlp(4, 4, 2, 1), teacher_regression(n=8, features=2), 4, nets=0)
