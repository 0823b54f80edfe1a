"""Exercises with checkers: call a chapter's checker on your function and read the one line it prints.

    from resbook.exercises import check_residual_forward
    check_residual_forward(residual_forward)   # ✓ residual_forward passed all 5 checks

Each chapter's checkers live in a module of this package named after the chapter's mechanism
(chapter 0: ``degradation``) and are marked with :func:`registry.register`. Importing the package
imports every such module and makes each registered checker available here by its name, so a new
chapter adds its module and nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil

from .checking import DEFAULT_TIMEOUT, Check, WrongAnswer, run_checks
from .registry import register, registered

_CORE_MODULES = frozenset({"checking", "registry"})


def chapter_modules() -> list[str]:
    """The names of this package's chapter checker modules (every module but the core), sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if info.name not in _CORE_MODULES and not info.name.startswith("_"))


def _import_chapter_checkers() -> list[str]:
    """Import every chapter module, then bind each registered checker in this package; return their names."""
    for name in chapter_modules():
        importlib.import_module(f"{__name__}.{name}")
    for name, entry in registered().items():
        globals()[name] = entry.checker
    return sorted(registered())


__all__ = ["DEFAULT_TIMEOUT", "Check", "WrongAnswer", "register", "registered", "run_checks",
           *_import_chapter_checkers()]
