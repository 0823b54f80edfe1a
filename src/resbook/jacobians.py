"""The input–output Jacobian of a model, one per sample, and its singular values.

For a model ``f`` and a batch of inputs ``x_1, …, x_B`` the Jacobians are ``J_b = ∂f(x_b)/∂x_b``, one
(outputs × inputs) matrix per sample. Their singular values say how much the model stretches or
shrinks a small change of its input, and, transposed, how much it stretches the gradient on its way
back: ``‖J_bᵀ g‖ ≤ σ_max(J_b)‖g‖``.

Two ways to compute the same thing, tested equal to each other and to finite differences:

- :func:`input_output_jacobians`: batched with ``torch.func`` — ``vmap(jacrev(f))`` over the
  samples, the model called through ``functional_call`` with its own parameters and buffers;
- :func:`input_output_jacobians_loop`: a plain loop over the samples, one
  ``torch.autograd.functional.jacobian`` each (what ``make bench`` compares the batched one with).

Batch normalisation. A per-sample Jacobian treats each sample alone, so a batch-normalisation
layer must not compute statistics from the batch: in training mode it would normalise a batch of
one sample. Both functions refuse a model with a batch-normalisation layer in training mode. In
evaluation mode a freshly built net's running statistics are 0 and 1, so its batch normalisation
does nothing; :func:`freeze_batch_statistics` returns a copy whose layers normalise with the
statistics of one fixed batch, the function training mode computes on that batch, with the
statistics held fixed (their own dependence on the sample is left out of the Jacobian).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from ._checks import check_module, check_tensor

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _check_inputs(model: nn.Module, inputs: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """Refuse a model with training-mode batch norm, and inputs that are not a 2-D float batch."""
    check_module("model", model)
    check_tensor("inputs", inputs)
    if inputs.ndim != 2 or inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs must be a batch of samples × features (2-D, both at least 1), got shape "
                         f"{tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be floating point, got dtype {inputs.dtype}")
    training_norms = [name for name, m in model.named_modules() if isinstance(m, _BATCH_NORMS) and m.training]
    if training_norms:
        raise ValueError(f"model has batch normalisation in training mode ({training_norms[0]!r}): a per-sample "
                         f"Jacobian cannot use batch statistics; use resbook.jacobians.freeze_batch_statistics"
                         f"(model, batch) or model.eval()")
    return model, inputs


def _not_fitting(name: str, value: torch.Tensor, error: RuntimeError) -> ValueError:
    first_line = (str(error).splitlines() or [""])[0]
    return ValueError(f"{name} of shape {tuple(value.shape)} does not fit model: {first_line}")


def input_output_jacobians(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``J[b] = ∂model(x_b)/∂x_b`` for every sample ``x_b`` of ``inputs`` (samples × features), batched:
    ``vmap(jacrev(x ↦ functional_call(model, state, x)))``. Returns samples × outputs × features."""
    model, inputs = _check_inputs(model, inputs)
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    state = {name: value.detach() for name, value in state.items()}

    def one_sample(x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, state, (x[None],))[0]

    try:
        return vmap(jacrev(one_sample))(inputs.detach())
    except RuntimeError as error:
        raise _not_fitting("inputs", inputs, error) from None


def input_output_jacobians_loop(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The same Jacobians as :func:`input_output_jacobians`, one sample after the other with
    ``torch.autograd.functional.jacobian``: the per-sample loop the batched version replaces."""
    model, inputs = _check_inputs(model, inputs)
    try:
        jacobians = [torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x) for x in inputs.detach()]
    except RuntimeError as error:
        raise _not_fitting("inputs", inputs, error) from None
    return torch.stack(jacobians)


def jacobian_singular_values(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The singular values of every sample's input–output Jacobian, largest first (batched Jacobians,
    ``torch.linalg.svdvals``): samples × min(outputs, features)."""
    return torch.linalg.svdvals(input_output_jacobians(model, inputs))


def freeze_batch_statistics(model: nn.Module, batch: torch.Tensor) -> nn.Module:
    """A copy of ``model`` in evaluation mode whose batch-normalisation layers normalise with the
    mean and (biased) variance that training mode computes on ``batch``: on that batch the copy's
    output equals the training-mode output, and each sample can be differentiated alone.

    The model itself is left as it was; the copy lives on ``batch``'s device. A model without batch
    normalisation comes back as an evaluation-mode copy.
    """
    check_module("model", model)
    check_tensor("batch", batch)
    if batch.ndim < 2 or batch.shape[0] < 2:
        raise ValueError(f"batch must hold at least 2 samples (batch statistics of one sample are undefined), "
                         f"got shape {tuple(batch.shape)}")
    frozen = copy.deepcopy(model).to(batch.device)
    seen: dict[nn.Module, torch.Tensor] = {}

    def remember(layer: nn.Module, args: tuple) -> None:
        seen[layer] = args[0].detach()

    norms = [m for m in frozen.modules() if isinstance(m, _BATCH_NORMS)]
    hooks = [m.register_forward_pre_hook(remember) for m in norms]
    try:
        frozen.train()
        with torch.no_grad():
            frozen(batch)
    except RuntimeError as error:
        raise _not_fitting("batch", batch, error) from None
    finally:
        for hook in hooks:
            hook.remove()
    for layer in norms:
        x = seen[layer].transpose(0, 1).reshape(layer.num_features, -1)  # features × (samples, positions)
        layer.track_running_stats = True  # a layer built without running statistics gets them
        layer.register_buffer("running_mean", x.mean(1))
        layer.register_buffer("running_var", x.var(1, unbiased=False))
    return frozen.eval()
