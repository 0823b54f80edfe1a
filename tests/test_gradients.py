"""Facts about measuring the gradient each layer receives."""
import pytest
import torch

from resbook.data import digits, teacher_regression
from resbook.device import one_thread
from resbook.gradients import backward_signal_norms, gradient_norms_per_layer
from resbook.models import Block, plain_mlp, residual_mlp, weight_layers


def test_gradient_norms_match_backward_on_the_same_batch():
    # Independent computation: ordinary backward() and the .grad of each Linear weight.
    torch.manual_seed(0)
    data = digits()
    model = residual_mlp(8, 16, data.n_features, data.n_outputs)
    norms = gradient_norms_per_layer(model, data)
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(data.x), data.y).backward()
    expected = [float(layer.weight.grad.norm()) for layer in weight_layers(model)]
    assert norms == pytest.approx(expected, rel=1e-5)


def test_two_layer_linear_net_gradient_matches_the_formula():
    # L = mean((x W1ᵀ W2ᵀ - y)²): ∂L/∂W2 = (2/n) rᵀ h with h = x W1ᵀ, ∂L/∂W1 = (2/n) (r W2)ᵀ x.
    torch.manual_seed(1)
    data = teacher_regression(n=20, features=3)
    model = plain_mlp(2, 4, 3, 1, norm=None, activation="identity")
    first, last = weight_layers(model)
    with torch.no_grad():
        first.bias.zero_(), last.bias.zero_()
        h = data.x @ first.weight.T
        r = h @ last.weight.T - data.y
        n = r.numel()
        expected = [float((2 / n * (r @ last.weight).T @ data.x).norm()), float((2 / n * r.T @ h).norm())]
    assert gradient_norms_per_layer(model, data) == pytest.approx(expected, rel=1e-5)


def test_measuring_changes_neither_weights_nor_running_statistics():
    torch.manual_seed(2)
    data = digits()
    model = plain_mlp(6, 8, 64, 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gradient_norms_per_layer(model, data)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_one_norm_per_weight_layer():
    torch.manual_seed(3)
    assert len(gradient_norms_per_layer(plain_mlp(12, 8, 64, 10), digits())) == 12


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="data"):
        gradient_norms_per_layer(plain_mlp(4, 4, 2, 1), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="Linear"):
        gradient_norms_per_layer(torch.nn.ReLU(), teacher_regression(n=4, features=2))


@pytest.mark.parametrize("model", [lambda x: x, torch.zeros(2, 2), "plain_mlp"])
def test_a_model_that_is_not_a_module_is_refused_by_name(model):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        gradient_norms_per_layer(model, teacher_regression(n=4, features=2))


# --- measuring leaves the model as it was (issue 16, item 7) --------------------------------------

def model_state(model):
    return model.training, {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    assert model.training is before[0]
    assert all(torch.equal(before[1][k], v) for k, v in model.state_dict().items())


def test_an_eval_mode_model_is_measured_in_training_mode_and_left_in_eval_mode():
    torch.manual_seed(4)
    data = digits()
    model = plain_mlp(6, 8, 64, 10).eval()
    before = model_state(model)
    norms = gradient_norms_per_layer(model, data)
    assert_unchanged(model, before)
    # Independent computation: backward() on a copy in training mode, as the docstring says.
    import copy

    twin = copy.deepcopy(model).train()
    torch.nn.functional.cross_entropy(twin(data.x), data.y).backward()
    assert norms == pytest.approx([float(layer.weight.grad.norm()) for layer in weight_layers(twin)], rel=1e-5)


class RaisesInTraining(torch.nn.Module):
    """Fails only in training mode, after the BatchNorm before it has updated its running statistics."""

    def forward(self, x):
        if self.training:
            raise RuntimeError("failed half-way through the forward pass")
        return x


@pytest.mark.parametrize("training", [True, False])
def test_a_measurement_that_raises_leaves_mode_and_running_statistics_unchanged(training):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), RaisesInTraining()).train(training)
    before = model_state(model)
    from resbook.data import Dataset

    four_targets = Dataset("four targets", torch.randn(8, 3), torch.randn(8, 4), "regression")
    with pytest.raises(RuntimeError, match="half-way"):
        gradient_norms_per_layer(model, four_targets)
    assert_unchanged(model, before)


def test_batch_norm_on_a_single_sample_is_refused_naming_batch_size():
    data = digits()
    one = type(data)("one image", data.x[:1], data.y[:1], "classification")
    with pytest.raises(ValueError, match="batch_size must be at least 2 for a model with BatchNorm"):
        gradient_norms_per_layer(plain_mlp(4, 8, 64, 10), one)


def test_a_model_that_does_not_fit_the_data_is_refused_naming_model_and_data():
    model = plain_mlp(4, 8, 3, 10)
    before = model_state(model)
    with pytest.raises(ValueError, match="model does not run on data 'digits' \\(64 features"):
        gradient_norms_per_layer(model, digits())
    assert_unchanged(model, before)


def test_backward_signal_through_identity_blocks_is_the_same_at_every_block():
    # Hand-computed: pre-activation blocks with linear branches that start at F = 0 are the identity, so
    # ∂L/∂x_l = ∂L/∂x_B = (softmax(z) - onehot(y)) / n · W_head for every l, z the logits.
    torch.manual_seed(4)
    data = digits()
    model = residual_mlp(10, 8, data.n_features, data.n_outputs, norm=None, activation="identity",
                         preactivation=True, zero_init_branch=True)
    with torch.no_grad():
        logits = model(data.x)
        head = weight_layers(model)[-1]
        upstream = (torch.softmax(logits, 1) - torch.nn.functional.one_hot(data.y, 10)) / len(data)
        expected = float((upstream @ head.weight).norm())
    assert backward_signal_norms(model, data) == pytest.approx([expected] * 5, rel=1e-5)


@pytest.mark.parametrize("residual", [True, False])
def test_backward_signal_matches_retained_gradients_of_the_same_forward_pass(residual):
    # Independent computation: run the layers one by one, retain_grad on each block's input and output.
    torch.manual_seed(5)
    data = digits()
    model = (residual_mlp if residual else plain_mlp)(12, 16, data.n_features, data.n_outputs)
    norms = backward_signal_norms(model, data)
    model.train()
    x, signals = data.x, []
    with one_thread():  # as the helper runs: the float32 sums in the same order as its own
        for layer in model:
            if isinstance(layer, Block) and not signals:
                signals.append(x)
            x = layer(x)
            if isinstance(layer, Block):
                signals.append(x)
        for signal in signals:
            signal.retain_grad()
        torch.nn.functional.cross_entropy(x, data.y).backward()
    assert norms == pytest.approx([float(s.grad.norm()) for s in signals], rel=1e-5)


def test_a_tiny_backward_signal_is_measured_not_rounded_to_zero():
    # Scaling the head by 1e-27 scales every ∂L/∂x_l by 1e-27 (the logits stay ≈ 0, so ∂L/∂logits does not
    # change to 1e-3): entries near 1e-30, whose float32 squares would underflow to 0.
    torch.manual_seed(7)
    data = digits()
    model = residual_mlp(6, 8, 64, 10, norm=None)
    head = weight_layers(model)[-1]
    with torch.no_grad():
        head.weight.mul_(1e-3 / head.weight.abs().max())
    large = backward_signal_norms(model, data)
    with torch.no_grad():
        head.weight.mul_(1e-27)
    tiny = backward_signal_norms(model, data)
    assert all(t > 0 for t in tiny)
    assert [t / big for t, big in zip(tiny, large)] == pytest.approx([1e-27] * len(tiny), rel=1e-2)


def test_measuring_the_backward_signal_leaves_the_model_as_it_was():
    torch.manual_seed(6)
    data = digits()
    model = residual_mlp(6, 8, 64, 10).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    backward_signal_norms(model, data)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not model.training
    assert not model._forward_hooks and not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_backward_signal_needs_blocks_and_a_dataset():
    with pytest.raises(ValueError, match="Block"):
        backward_signal_norms(torch.nn.Sequential(torch.nn.Linear(2, 1)), teacher_regression(n=4, features=2))
    with pytest.raises(TypeError, match="data"):
        backward_signal_norms(residual_mlp(4, 4, 2, 1), torch.zeros(3, 2))
