"""How the training signal reaches each layer: gradient norms layer by layer.

Chapter 0 uses it to show why the deepest plain net never starts; chapter 2 (the gradient
highway) builds on it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ._checks import check_dataset, check_module
from .data import Dataset
from .device import on_one_thread
from .models import Block, weight_layers
from .training import check_fits, loss_function


@on_one_thread  # small layers: extra CPU threads only add overhead, and spin on a busy machine
def gradient_norms_per_layer(model: nn.Module, data: Dataset) -> list[float]:
    """‖∂L/∂W_l‖ (Frobenius) for every weight layer l from input to output, on the whole of ``data``.

    The model is measured in training mode (BatchNorm uses the batch statistics, as in training),
    then left as it was — its mode, parameters and BatchNorm statistics — also when the measurement
    raises. Gradients are computed with ``torch.autograd.grad``, so existing ``.grad``
    fields are left alone. Like :func:`resbook.training.train`, it moves the model to ``data``'s device.
    """
    check_module("model", model)
    check_dataset("data", data)
    layers = weight_layers(model)
    if not layers:
        raise ValueError("model has no Linear layers to measure")
    with _measuring(model, data):
        loss = loss_function(data.task)(model(data.x), data.y)
        grads = torch.autograd.grad(loss, [layer.weight for layer in layers])
    return [float(g.norm()) for g in grads]


@on_one_thread
def backward_signal_norms(model: nn.Module, data: Dataset) -> list[float]:
    """‖∂L/∂x_l‖ (Frobenius, over all samples) for the signal x_l between blocks, l = 0 … B, on the whole of ``data``.

    ``x_0`` enters the first :class:`~resbook.models.Block` and ``x_l`` leaves block ``l``. Backwards,
    ``∂L/∂x_{l-1} = ∂L/∂x_l · D_l (g I + α J_l)``: the block's Jacobian, with ``J_l = ∂F/∂x`` and ``D_l`` the
    derivative of the activation after the sum (``D = I`` in a pre-activation block). The weight gradient
    of a layer is this backward signal times the layer's input, so the two can tell different stories.
    Measured as :func:`gradient_norms_per_layer` measures: in training mode, the model left as it was.
    """
    check_module("model", model)
    check_dataset("data", data)
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    if not blocks:
        raise ValueError("model has no resbook.models.Block whose backward signal could be measured")
    signals: list[torch.Tensor] = []
    with _measuring(model, data):  # hooks set after its trial run, so that they see one forward pass
        hooks = [blocks[0].register_forward_pre_hook(lambda _, inputs: signals.append(inputs[0]))]
        hooks += [block.register_forward_hook(lambda _, __, output: signals.append(output)) for block in blocks]
        try:
            loss = loss_function(data.task)(model(data.x), data.y)
        finally:
            for hook in hooks:
                hook.remove()
        grads = torch.autograd.grad(loss, signals)
    return [float(g.double().norm()) for g in grads]  # float64: a vanishing signal's squares underflow float32


@contextmanager
def _measuring(model: nn.Module, data: Dataset) -> Iterator[None]:
    """Run the body in training mode with gradients on (also under ``torch.no_grad()``), the model on
    ``data``'s device; then put back its mode, parameters and BatchNorm statistics, also when it raises."""
    model.to(data.x.device)
    check_fits(model, data, len(data))  # also refuses BatchNorm on a data set of one sample
    was_training = model.training
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm running stats
    try:
        model.train()
        with torch.enable_grad():
            yield
    finally:
        model.load_state_dict(state)  # measuring must not move the running statistics
        model.train(was_training)
