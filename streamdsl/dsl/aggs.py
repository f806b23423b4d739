"""Named aggregates for ``agg(...)``: ``sd.count()``, ``sd.sum("amount")`` ..."""

from __future__ import annotations

from typing import Any

from ..ir.aggregators import AggFunc, agg_func

__all__ = ["count", "sum", "min", "max", "avg", "collect", "first", "last", "count_distinct",
           "collect_set", "histogram", "top_k"]


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
    """List of ``f`` values in processing order, nulls included (ksqlDB COLLECT_LIST)."""
    return agg_func("collect", f)


def _offset_options(ignore_nulls: bool, n: int | None) -> dict:
    opts: dict = {}
    if ignore_nulls:
        opts["ignore_nulls"] = True
    if n is not None:
        opts["n"] = n
    return opts


def first(f: Any, *, ignore_nulls: bool = False, n: int | None = None) -> AggFunc:
    """First ``f`` value in processing order (ksqlDB EARLIEST_BY_OFFSET); ``ignore_nulls``
    skips nulls; ``n`` gives the first ``n`` values as a list."""
    return agg_func("first", f, **_offset_options(ignore_nulls, n))


def last(f: Any, *, ignore_nulls: bool = False, n: int | None = None) -> AggFunc:
    """Last ``f`` value in processing order (ksqlDB LATEST_BY_OFFSET); ``ignore_nulls`` keeps
    the last non-null value; ``n`` gives the last ``n`` values, oldest first."""
    return agg_func("last", f, **_offset_options(ignore_nulls, n))


def count_distinct(f: Any) -> AggFunc:
    """Number of distinct non-null ``f`` values (ksqlDB COUNT_DISTINCT)."""
    return agg_func("count_distinct", f)


def collect_set(f: Any) -> AggFunc:
    """Distinct ``f`` values in first-seen order (ksqlDB COLLECT_SET)."""
    return agg_func("collect_set", f)


def histogram(f: Any) -> AggFunc:
    """``{value: count}`` of the non-null ``f`` values (ksqlDB HISTOGRAM).

    >>> import streamdsl as sd
    >>> sd.histogram("page").describe()
    'histogram(page)'
    """
    return agg_func("histogram", f)


def top_k(f: Any, k: int, *, distinct: bool = False) -> AggFunc:
    """The ``k`` largest non-null ``f`` values, largest first (ksqlDB TOPK; ``distinct``:
    TOPKDISTINCT)."""
    opts: dict = {"k": k}
    if distinct:
        opts["distinct"] = True
    return agg_func("topk", f, **opts)
