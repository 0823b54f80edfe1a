"""How the training signal reaches each layer: gradient norms layer by layer.

Chapter 0 uses it to show why the deepest plain net never starts; chapter 2 (the gradient
highway) builds on it.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_dataset, check_module
from .data import Dataset
from .models import weight_layers
from .training import check_fits, loss_function


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
    model.to(data.x.device)
    check_fits(model, data, len(data))  # also refuses BatchNorm on a data set of one sample
    was_training = model.training
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm running stats
    try:
        model.train()
        with torch.enable_grad():  # also when called under torch.no_grad()
            loss = loss_function(data.task)(model(data.x), data.y)
            grads = torch.autograd.grad(loss, [layer.weight for layer in layers])
    finally:
        model.load_state_dict(state)  # measuring must not move the running statistics
        model.train(was_training)
    return [float(g.norm()) for g in grads]
