"""Argument checks shared by the public helpers: one clear message per kind of mistake.

Each check returns the value in the plain Python type the caller works with (a NumPy integer from
``np.arange`` comes back as an ``int``, a ``float32`` as a ``float``), so a caller writes
``n = check_int("n", n, 1)`` and uses ``n`` from then on.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # data.py imports this module: Dataset is imported where it is used
    from .data import Dataset


def _described(value: Any) -> str:
    """A value as an error message shows it: its type and its repr, cut short if long."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:77] + '...'}"


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer (Python or NumPy, not bool) from
    ``minimum`` to ``maximum`` (no upper bound when ``None``); otherwise raise, naming the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_described(value)}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"an int from {minimum} to {maximum}"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_positive_float(name: str, value: Any, allow_zero: bool = False) -> float:
    """Return ``value`` as a ``float`` if it is a real number (Python or NumPy, int or float, not
    bool) that is finite and > 0 (or >= 0 with ``allow_zero``); otherwise raise, naming the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_described(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number of any sign (not bool); otherwise raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_described(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_numbers(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a float array if NumPy reads them as numbers; otherwise raise, naming the argument."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {_described(values)}") from None


def check_sequence(name: str, values: Any) -> Sequence:
    """Return ``values`` if it is a non-empty sequence (a tuple, list or range; not a string); otherwise raise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range)):
        raise TypeError(f"{name} must be a sequence (a tuple or list), got {_described(values)}")
    if len(values) == 0:
        raise ValueError(f"{name} must hold at least one value, got an empty {type(values).__name__}")
    return values


def check_choices(name: str, values: Any, allowed: Iterable[Any]) -> tuple:
    """Return ``values`` as a tuple if it is a non-empty sequence of values out of ``allowed``; the message
    for a wrong one names its place (``kinds[1]``) and lists the allowed values."""
    allowed = tuple(allowed)
    return tuple(check_choice(f"{name}[{i}]", v, allowed) for i, v in enumerate(check_sequence(name, values)))


def check_ints(name: str, values: Any, minimum: int, maximum: int | None = None, *,
               distinct: bool = False) -> tuple[int, ...]:
    """Return ``values`` as a tuple of ``int`` if it is a non-empty sequence of ints from ``minimum`` to
    ``maximum`` (each at most once if ``distinct``); otherwise raise, naming the argument."""
    checked = tuple(check_int(f"{name}[{i}]", v, minimum, maximum) for i, v in enumerate(check_sequence(name, values)))
    if distinct and len(set(checked)) != len(checked):
        raise ValueError(f"{name} must not repeat a value, got {list(checked)}")
    return checked


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a ``bool`` if it is ``True`` or ``False`` (NumPy's too); a string such
    as ``'no'`` or a number is refused rather than read by its truth value."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_described(value)}")
    return bool(value)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise, listing the allowed values."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_module(name: str, value: Any) -> nn.Module:
    """Return ``value`` if it is a ``torch.nn.Module`` (a model or a layer); otherwise raise."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {_described(value)}")
    return value


def check_tensor(name: str, value: Any) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor``; otherwise raise, naming the argument."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_described(value)}")
    return value


def check_dataset(name: str, value: Any) -> Dataset:
    """Return ``value`` if it is a ``resbook.data.Dataset``; otherwise raise, naming the argument."""
    from .data import Dataset

    if not isinstance(value, Dataset):
        raise TypeError(f"{name} must be a resbook.data.Dataset (e.g. resbook.data.digits()), "
                        f"got {type(value).__name__}")
    return value
