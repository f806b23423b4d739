"""Small pieces the query and join compilers both build with: value structs and durations."""

from __future__ import annotations

from lark import Tree

from ..expr import Case, Expr, Func, IsTombstone, Lit

__all__ = ["value_struct", "duration"]

_UNITS = {"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000,
          "WEEK": 7 * 86_400_000}


def value_struct(pairs: list[tuple[str, Expr]], stream: bool) -> Expr:
    """The value dict ``{name: expr, ...}``; on a stream a tombstone stays a tombstone (a table
    operator never calls its function on one)."""
    args: list[Expr] = []
    for n, e in pairs:
        args += [Lit(n), e]
    struct = Func("struct", tuple(args))
    return Case(((IsTombstone(), Lit(None)),), struct) if stream else struct


def duration(d: Tree) -> int:
    """Milliseconds of a ``duration`` subtree (``5 MINUTES``)."""
    n_tok, unit_tok = d.children
    unit = str(unit_tok).upper()
    if unit.endswith("S"):
        unit = unit[:-1]
    return int(n_tok) * _UNITS[unit]
