"""Deterministic orders: key sorting, and the input order of a run (the timestamp-synchronized
merge of its sources, DESIGN.md "Determinism")."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TypeVar

from .ingest import BadRecord, make_ingest

if TYPE_CHECKING:
    from ..ir.plan import Plan
    from .records import InputEvent

__all__ = ["key_order", "sorted_keys", "merge_by_timestamp", "merge_inputs", "UNDECODABLE_TS"]

#: The merge timestamp of an event that cannot be ingested: it goes first (it is
#: dead-lettered, so its place changes no result).
UNDECODABLE_TS = -(1 << 62)

T = TypeVar("T")


def key_order(k: Any) -> tuple:
    """A total order over keys of mixed types (numbers, then strings, then the rest by repr).

    >>> sorted(["b", 2, "a", 1, None], key=key_order)
    [None, 1, 2, 'a', 'b']
    """
    if k is None:
        return (0, 0, "")
    if isinstance(k, bool):
        return (1, int(k), "")
    if isinstance(k, (int, float)):
        return (1, k, "")
    if isinstance(k, str):
        return (2, 0, k)
    if isinstance(k, tuple):
        return (3, 0, tuple(key_order(x) for x in k))
    return (4, 0, repr(k))


def sorted_keys(keys: Iterable[Any]) -> list[Any]:
    """``sorted(keys, key=key_order)``, without a Python call per key when every key is a
    ``str`` (or every key an ``int``), where the natural order is the same.

    >>> sorted_keys(["b", "a"]), sorted_keys([2, 1]), sorted_keys([2, "a", 1])
    (['a', 'b'], [1, 2], [1, 2, 'a'])
    """
    keys = list(keys)
    if keys:
        t = type(keys[0])
        if (t is str or t is int) and set(map(type, keys)) == {t}:
            keys.sort()
            return keys
    keys.sort(key=key_order)
    return keys


def merge_by_timestamp(inputs: list[Iterable[T]], ts: Callable[[T], int]) -> Iterator[T]:
    """Kafka Streams' timestamp-synchronized merge.

    The next item is the input head with the smallest timestamp, ties going to the earlier
    input; each input keeps its own order: ``heapq.merge`` with ``ts`` as the key, which
    breaks ties by input order (the standard library's own stable merge; the hand-written
    heap it replaced took as long).

    >>> list(merge_by_timestamp([[5, 1], [3]], ts=lambda x: x))
    [3, 5, 1]
    >>> list(merge_by_timestamp([[(1, "a"), (2, "a")], [(1, "b")]], ts=lambda x: x[0]))
    [(1, 'a'), (1, 'b'), (2, 'a')]
    """
    return heapq.merge(*inputs, key=ts)


def merge_inputs(plan: "Plan", inputs: dict[str, Iterable["InputEvent"]]) -> Iterator["InputEvent"]:
    """Merge per-source event sequences in Kafka Streams' timestamp-synchronized order: the
    input order of every run over files and in-memory inputs, on every backend.

    Each source keeps its own order; the next event is the head with the smallest timestamp
    (as the source's key/timestamp extraction gives it), ties going to the source declared
    first. Undecodable events go first (``UNDECODABLE_TS``).
    """
    topics = [t for t in plan.source_topics() if t in inputs]
    if len(topics) == 1:
        return iter(inputs[topics[0]])
    first_source = {}
    for s in plan.sources():
        first_source.setdefault(s.topic, s)
    ingest = {t: make_ingest(first_source[t]) for t in topics}

    def ts_of(ev: "InputEvent") -> int:
        try:
            return ingest[ev.topic](ev).ts
        except BadRecord:
            return UNDECODABLE_TS
    return merge_by_timestamp([inputs[t] for t in topics], ts_of)
