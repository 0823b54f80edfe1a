"""The register of exercise checkers: each chapter's checker module registers its own.

A chapter's module in ``resbook.exercises`` (named after its mechanism, as ``degradation.py``) marks
each checker with :func:`register`, giving the cases the checker runs:

    @register(RESIDUAL_FORWARD_CHECKS)
    def check_residual_forward(fn, timeout=DEFAULT_TIMEOUT): ...

``resbook.exercises`` imports every module of the package, so a new chapter's checkers become
``from resbook.exercises import check_...`` without editing any other file; the tests take the
register as the list of checkers to test, and the chapters' solution cells as their reference answers.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from .checking import Check

PREFIX = "check_"
Checker = TypeVar("Checker", bound=Callable[..., bool])


@dataclass(frozen=True)
class Registered:
    """A checker as registered: the student's function it checks (``exercise``), its cases, and where it lives."""

    checker: Callable[..., bool]
    checks: tuple[Check, ...]

    @property
    def name(self) -> str:
        """The checker's name, ``check_<exercise>``, as chapters import it."""
        return self.checker.__name__

    @property
    def exercise(self) -> str:
        """The name of the function the student writes, e.g. ``residual_forward``."""
        return self.name[len(PREFIX):]

    @property
    def module(self) -> str:
        """The module that registered it, e.g. ``resbook.exercises.degradation``."""
        return self.checker.__module__


_REGISTERED: dict[str, Registered] = {}


def _validate(checker: Any, checks: tuple[Any, ...]) -> None:
    if not inspect.isfunction(checker):
        raise TypeError(f"checker must be a function, got {type(checker).__name__} {checker!r}")
    name = checker.__name__
    if not name.startswith(PREFIX) or not name[len(PREFIX):].isidentifier():
        raise ValueError(f"checker's name must be {PREFIX}<function the student writes>, got {name!r}")
    if not checks or not all(isinstance(check, Check) for check in checks):
        raise TypeError(f"checks of {name} must be a non-empty sequence of Check, got {checks!r}")
    if name in _REGISTERED and _REGISTERED[name].checker.__module__ != checker.__module__:
        raise ValueError(f"a checker named {name!r} is already registered by {_REGISTERED[name].module}; "
                         f"each exercise's function name must be unique in the book")


def register(checks: Sequence[Check]) -> Callable[[Checker], Checker]:
    """Decorator: record the checker it decorates, with the ``checks`` it runs, and return it unchanged.

    Raises TypeError if ``checks`` is not a non-empty sequence of :class:`Check` or the checker is not a
    function, ValueError if its name is not ``check_<name>`` or another module registered that name.
    Registering again from the same module (a reload) replaces the earlier entry.
    """
    if isinstance(checks, (str, bytes)) or not isinstance(checks, Sequence):
        raise TypeError(f"checks must be a sequence of Check, got {type(checks).__name__}")
    checks = tuple(checks)

    def decorate(checker: Checker) -> Checker:
        _validate(checker, checks)
        _REGISTERED[checker.__name__] = Registered(checker, checks)
        return checker

    return decorate


def registered() -> MappingProxyType[str, Registered]:
    """Every registered checker, by name (``check_residual_forward`` → its :class:`Registered`), read-only."""
    return MappingProxyType(_REGISTERED)
