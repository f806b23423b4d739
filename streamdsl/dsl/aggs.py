"""Named aggregates for ``agg(...)``: ``sd.count()``, ``sd.sum("amount")`` ..."""

from __future__ import annotations

from typing import Any

from ..ir.aggregators import AggFunc, agg_func

__all__ = ["count", "sum", "min", "max", "avg", "collect", "first", "last"]


def count() -> AggFunc:
    """Number of non-null values."""
    return AggFunc("count")


def sum(f: Any) -> AggFunc:  # noqa: A001 - mirrors SQL
    """Sum of ``f`` (field name, expression or callable); nulls ignored."""
    return agg_func("sum", f)


def min(f: Any) -> AggFunc:  # noqa: A001
    return agg_func("min", f)


def max(f: Any) -> AggFunc:  # noqa: A001
    return agg_func("max", f)


def avg(f: Any) -> AggFunc:
    """Mean of non-null ``f`` values (None while there are none)."""
    return agg_func("avg", f)


def collect(f: Any) -> AggFunc:
    """List of ``f`` values in processing order (ksqlDB COLLECT_LIST)."""
    return agg_func("collect", f)


def first(f: Any) -> AggFunc:
    """First ``f`` value in processing order (ksqlDB EARLIEST_BY_OFFSET)."""
    return agg_func("first", f)


def last(f: Any) -> AggFunc:
    """Last ``f`` value in processing order (ksqlDB LATEST_BY_OFFSET)."""
    return agg_func("last", f)
