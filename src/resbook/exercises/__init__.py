"""Exercises with checkers: call a chapter's checker on your function and read the one line it prints.

    from resbook.exercises import check_residual_forward
    check_residual_forward(residual_forward)   # ✓ residual_forward passed all 5 checks
"""
from .checking import DEFAULT_TIMEOUT, Check, WrongAnswer, run_checks
from .degradation import check_deeper_twin, check_residual_forward

__all__ = ["DEFAULT_TIMEOUT", "Check", "WrongAnswer", "run_checks", "check_deeper_twin", "check_residual_forward"]
