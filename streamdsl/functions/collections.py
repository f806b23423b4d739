"""Array and map functions; arrays are 1-based, as in ksqlDB (a negative index counts from
the end; an index outside the array gives NULL).

>>> FUNCTIONS["subscript"]([10, 20, 30], 1), FUNCTIONS["subscript"]([10, 20, 30], -1)
(10, 30)
>>> FUNCTIONS["array_join"]([1, None, 2], "|"), FUNCTIONS["slice"]([1, 2, 3, 4], 2, 3)
('1|null|2', [2, 3])
"""

from __future__ import annotations

from typing import Any

from ._null import strict
from .strings import to_text

__all__ = ["FUNCTIONS"]


def _subscript(container: Any, index: Any) -> Any:
    if container is None or index is None:
        return None
    if isinstance(container, dict):
        return container.get(index)
    if isinstance(container, (list, tuple)) and isinstance(index, int):
        n = len(container)
        i = index - 1 if index > 0 else n + index
        return container[i] if 0 <= i < n and index != 0 else None
    return None


def _distinct(values: list) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _array_join(values: Any, sep: Any = ",") -> Any:
    if values is None:
        return None
    sep = "" if sep is None else sep
    # a NULL element is written "null", as Java's StringJoiner writes it
    return sep.join("null" if v is None else to_text(v) for v in values)


@strict
def _array_sort(values: list, order: str = "ASC") -> list:
    # nulls last, whatever the order (ksqlDB ARRAY_SORT)
    present = sorted((v for v in values if v is not None), reverse=order.upper() == "DESC")
    return present + [None] * (len(values) - len(present))


@strict
def _slice(values: list, start: int, end: int) -> list | None:
    if start < 1 or end < start:
        return None if start < 1 or end < 1 else []
    return list(values[start - 1:end])


def _elt(n: Any, *args: Any) -> Any:
    if n is None or n < 1 or n > len(args):
        return None
    return args[n - 1]


def _field(s: Any, *args: Any) -> int:
    if s is None:
        return 0
    for i, a in enumerate(args, 1):
        if a == s:
            return i
    return 0


def _map(*kv: Any) -> dict:
    return {kv[i]: kv[i + 1] for i in range(0, len(kv), 2)}


FUNCTIONS = {
    "subscript": _subscript,
    "array": lambda *items: list(items),
    "map": _map,
    "array_contains": strict(lambda values, x: x in values),
    "array_length": strict(lambda values: len(values)),
    "array_join": _array_join,
    "array_distinct": strict(_distinct),
    "array_max": strict(lambda values: max((v for v in values if v is not None), default=None)),
    "array_min": strict(lambda values: min((v for v in values if v is not None), default=None)),
    "array_sort": _array_sort,
    "array_remove": strict(lambda values, x: [v for v in values if v != x]),
    "array_union": strict(lambda a, b: _distinct(list(a) + list(b))),
    "array_intersect": strict(lambda a, b: [v for v in _distinct(list(a)) if v in b]),
    "array_except": strict(lambda a, b: [v for v in _distinct(list(a)) if v not in b]),
    "array_concat": lambda a, b: None if a is None and b is None else list(a or []) + list(b or []),
    "slice": _slice,
    "map_keys": strict(lambda m: list(m)),
    "map_values": strict(lambda m: list(m.values())),
    "elt": _elt,
    "field": _field,
}
