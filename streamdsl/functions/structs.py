"""Structs: the dict values SQL projections build, and the hashable struct keys of multi-column
keys (``GROUP BY a, b`` keys records by ``{"A": a, "B": b}``, as ksqlDB's struct keys).

>>> k = FUNCTIONS["struct_key"]("A", 1, "B", "x")
>>> k == {"A": 1, "B": "x"}, hash(k) == hash(FUNCTIONS["struct_key"]("A", 1, "B", "x"))
(True, True)
>>> FUNCTIONS["struct_key"]("A", 1, "B", None) is None
True
"""

from __future__ import annotations

import csv
import io
from typing import Any

from .conversions import coerce, get_ci, parse_type

__all__ = ["FUNCTIONS", "StructKey", "ArrayKey", "as_key"]


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((str(k), _hashable(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


class StructKey(dict):
    """A record key made of several columns: a dict (it compares, serializes and prints as
    one) that can be hashed, so state stores can keep it. Never changed after it is built."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(_hashable(self))

    def __reduce__(self):
        return (StructKey, (dict(self),))


class ArrayKey(list):
    """A record key that is an array: a list that can be hashed (see ``StructKey``)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(_hashable(self))

    def __reduce__(self):
        return (ArrayKey, (list(self),))


def as_key(v: Any) -> Any:
    """``v`` usable as a record key: dicts and lists (nested too) become ``StructKey`` and
    ``ArrayKey`` (equal to them, but hashable); other values are returned as they are."""
    if isinstance(v, dict) and not isinstance(v, StructKey):
        return StructKey((k, as_key(x)) for k, x in v.items())
    if isinstance(v, list) and not isinstance(v, ArrayKey):
        return ArrayKey(as_key(x) for x in v)
    return v


def _struct_key(*kv: Any) -> StructKey | None:
    # a NULL in any key column drops the record, as ksqlDB's GROUP BY does
    for i in range(1, len(kv), 2):
        if kv[i] is None:
            return None
    return StructKey((kv[i], as_key(kv[i + 1])) for i in range(0, len(kv), 2))


def _make_key(*kv: Any) -> StructKey:
    # a key of several columns in a projection: NULL columns are kept
    return StructKey((kv[i], as_key(kv[i + 1])) for i in range(0, len(kv), 2))


def _key_field(key: Any, name: str, index: int = 0, type_text: str | None = None) -> Any:
    """Key column ``name`` (the ``index``-th) of a key of several columns: a JSON object's
    field (matched ignoring case), or a DELIMITED key's ``index``-th field, read as
    ``type_text``."""
    if isinstance(key, dict):
        return get_ci(key, name)
    if isinstance(key, str):
        fields = next(csv.reader(io.StringIO(key)), [])
        if index >= len(fields) or fields[index] == "":
            return None
        return coerce(fields[index], parse_type(type_text)) if type_text else fields[index]
    return None


FUNCTIONS = {
    "as_key": as_key,
    "struct_key": _struct_key,
    "make_key": _make_key,
    "key_field": _key_field,
    # kv(key, value) -> (key, value): what a map_kv expression returns (SQL PARTITION BY)
    "kv": lambda k, v: (k, v),
}
