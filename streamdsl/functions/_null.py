"""The null rule most functions share: any ``None`` argument gives ``None``."""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["strict", "safe"]


def strict(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` returning ``None`` when any argument is ``None``."""
    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        for a in args:
            if a is None:
                return None
        return fn(*args)
    return call


def safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``strict`` ``fn`` whose ``ValueError`` / ``TypeError`` / ``ArithmeticError`` / ``KeyError``
    give ``None`` (ksqlDB sets the column to NULL and logs the error)."""
    inner = strict(fn)

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        try:
            return inner(*args)
        except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, OverflowError):
            return None
    return call
