"""The built-in functions SQL expressions call, with ksqlDB's null rules and types.

Each module holds one family (strings, numbers, dates and times, collections, conversions,
structs) as a ``FUNCTIONS`` dict of plain Python callables; ``streamdsl.expr`` merges them into
its registry, so ``Func("instr", ...)`` works wherever an expression is evaluated (in every
backend and every worker process). Arguments arrive evaluated; a ``None`` argument gives
``None`` unless ksqlDB's reference says otherwise (``CONCAT`` skips nulls, ``COALESCE`` picks
the first non-null ...). A function that cannot compute its result (a bad number, an unknown
time zone) gives ``None``, as ksqlDB gives NULL for that column and logs the error.

>>> BUILTINS["instr"]("CORPORATE FLOOR", "OR", 3)
5
>>> BUILTINS["div"](-7, 2), BUILTINS["div"](7.0, 2)
(-3, 3.5)
"""

from __future__ import annotations

from typing import Any, Callable

from . import collections, conversions, numbers, strings, structs, times

__all__ = ["BUILTINS"]

BUILTINS: dict[str, Callable[..., Any]] = {}
for _module in (strings, numbers, times, collections, conversions, structs):
    _clash = set(BUILTINS) & set(_module.FUNCTIONS)
    assert not _clash, f"function names defined twice: {sorted(_clash)}"
    BUILTINS.update(_module.FUNCTIONS)
