"""Argument checks shared by every layer, each raising :class:`~fxplain.InvalidInputError`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidInputError


def is_integer(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``[low, high]``; else raise."""
    if not is_integer(value) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InvalidInputError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (batch sizes, step counts); else raise."""
    if not is_integer(value) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_seed(value: Any) -> int:
    """A seed: an integer in ``[0, 2**63)``."""
    if not is_integer(value) or not 0 <= value < 2**63:
        raise InvalidInputError(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


def is_finite_number(value: Any) -> bool:
    """A real (not bool) finite number."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and bool(np.isfinite(value))
