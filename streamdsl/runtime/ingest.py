"""Ingest: how a raw input record becomes a ``Record`` (the envelope rule, key and timestamp
extraction, what is dead-lettered). Every backend and every connector uses these.

>>> from streamdsl.ir.nodes import Source
>>> from streamdsl.ir.fn import Fn
>>> import streamdsl as sd
>>> src = Source(name="s", topic="t", key=Fn(expr=sd.col("k")), timestamp=Fn(expr=sd.col("ts")))
>>> make_ingest(src)(to_event("t", {"k": "a", "ts": 5}, 0))
Record(key='a', value={'k': 'a', 'ts': 5}, ts=5)
"""

from __future__ import annotations

from typing import Any, Callable

from ..expr import Col
from ..ir.nodes import Source
from ..timeutil import MAX_TIMESTAMP, to_timestamp
from .._accel import speedups as _speedups
from .records import InputEvent, Record

__all__ = ["BadRecord", "to_event", "make_ingest", "make_ingest_items", "field_name"]

_ENVELOPE = frozenset(("key", "value", "timestamp"))


class BadRecord(Exception):
    """A record that cannot be ingested (missing key/timestamp field, undecodable)."""


def to_event(topic: str, item: Any, position: int) -> InputEvent:
    """The envelope rule of in-memory items: a ``(key, value, timestamp)`` tuple, a
    ``{"key", "value", "timestamp"}`` dict (``value`` present, no other field), an
    ``InputEvent``, or a bare value (key and timestamp then come from the stream declaration).

    >>> to_event("t", {"value": 1, "key": "a"}, 3)
    InputEvent(topic='t', key='a', value=1, timestamp=None, position=3, error=None)
    >>> to_event("t", {"value": 1, "other": 2}, 0).value
    {'value': 1, 'other': 2}
    """
    if type(item) is dict and not ("value" in item and item.keys() <= _ENVELOPE):
        return InputEvent(topic, None, item, None, position)
    if isinstance(item, InputEvent):
        return item
    if isinstance(item, tuple) and len(item) == 3:
        return InputEvent(topic, item[0], item[1], item[2], position)
    if isinstance(item, dict) and "value" in item and item.keys() <= _ENVELOPE:
        return InputEvent(topic, item.get("key"), item["value"], item.get("timestamp"), position)
    return InputEvent(topic, None, item, None, position)


def field_name(fn: Any) -> str | None:
    """The field an ``Fn`` reads when it is a bare column (``sd.col("x")`` or ``key="x"``)."""
    return fn.expr.name if fn is not None and isinstance(fn.expr, Col) else None


def make_ingest(node: Source) -> Callable[[InputEvent], Record]:
    """Turn a raw input event into a record: decode errors, key and timestamp extraction.

    Raises ``BadRecord`` with the reason for a record that must be dead-lettered.
    """
    key_fn = node.key.compile_value() if node.key is not None else None
    key_field = field_name(node.key)
    ts_fn = node.timestamp.compile_value() if node.timestamp is not None else None
    ts_field = field_name(node.timestamp)
    table = node.table
    topic = node.topic

    def ingest(ev: InputEvent) -> Record:
        if ev.error is not None:
            raise BadRecord(ev.error)
        value = ev.value
        if value is None and not table:
            key = ev.key if key_fn is None else None
        elif key_fn is None or (value is None and table):
            key = ev.key
        else:
            if key_field is not None and isinstance(value, dict) and key_field not in value:
                raise BadRecord(f"missing key field {key_field!r}")
            try:
                key = key_fn(value)
            except Exception as e:
                raise BadRecord(f"cannot compute the key: {type(e).__name__}: {e}") from e
        if ts_fn is None or value is None:
            ts = ev.timestamp
            if ts is None:
                raise BadRecord("record has no timestamp (declare timestamp= on "
                                f"{'table' if table else 'stream'}({topic!r}) or send one)")
        else:
            try:
                ts = ts_fn(value)
            except Exception as e:
                raise BadRecord(f"cannot compute the timestamp: {type(e).__name__}: {e}") from e
            if ts is None:
                if ts_field is not None:
                    raise BadRecord(f"missing timestamp field {ts_field!r}")
                raise BadRecord("the timestamp function returned None")
        if type(ts) is not int or not 0 <= ts < MAX_TIMESTAMP:
            try:
                ts = to_timestamp(ts)
            except (TypeError, ValueError) as e:
                raise BadRecord(f"bad timestamp: {e}") from e
        return Record(key, value, ts, None, (topic, ev.position))

    if key_field is not None and ts_field is not None:
        # The common case, a dict value with key and timestamp fields and an int timestamp
        # (stream or table: only a table's tombstone, a None value, differs), without the
        # general path's checks; anything else falls back to it.
        def ingest_fields(ev: InputEvent) -> Record:
            value = ev.value
            if type(value) is dict and ev.error is None:
                key = value.get(key_field, _MISSING)
                ts = value.get(ts_field)
                if key is not _MISSING and type(ts) is int and 0 <= ts < MAX_TIMESTAMP:
                    return Record(key, value, ts, None, (topic, ev.position))
            return ingest(ev)
        return ingest_fields
    return ingest


_MISSING = object()


def make_ingest_items(node: Source, *, pure: bool = False
                      ) -> Callable[[list, int, Callable], list[Record]]:
    """``make_ingest(node)`` over ``to_event`` for a run of in-memory items, without an
    ``InputEvent`` each.

    ``ingest(items, pos0, bad)`` returns the records of the items that ingest, in order; item
    ``i`` has position ``pos0 + i``; ``bad(event, reason)`` gets each one that does not. A
    plain dict value with the key and timestamp fields (an int timestamp), or with the
    timestamp field when the source declares no key, takes a loop without a call
    (tests/core/test_ingest.py checks it against ``make_ingest`` of each ``to_event``), compiled
    when the compiled kernel is in use and not ``pure`` (tests/core/test_speedups.py).
    """
    sp = None if pure else _speedups
    ingest = make_ingest(node)
    topic = node.topic
    key_field = field_name(node.key)
    ts_field = field_name(node.timestamp)
    new = object.__new__

    def slow(item: Any, pos: int, out: list, bad: Callable) -> None:
        ev = to_event(topic, item, pos)
        try:
            out.append(ingest(ev))
        except BadRecord as e:
            bad(ev, str(e))

    top = MAX_TIMESTAMP
    if ts_field is not None and node.key is None:
        # a keyless source (its key is the one the item came with: None for a plain value)
        if sp is not None:  # the same loop compiled (streamdsl/_speedups.pyx)
            kloop = sp.ingest_keyless

            def ingest_keyless_compiled(items: list, pos0: int, bad: Callable) -> list[Record]:
                return kloop(items, pos0, bad, topic, ts_field, top, slow)
            return ingest_keyless_compiled

        def ingest_keyless(items: list, pos0: int, bad: Callable) -> list[Record]:
            out: list[Record] = []
            append = out.append
            i = pos0
            for v in items:
                if type(v) is dict and "value" not in v:
                    ts = v.get(ts_field)
                    if type(ts) is int and 0 <= ts < top:
                        r = new(Record)
                        r.key = None
                        r.value = v
                        r.ts = ts
                        r.window = None
                        r.origin = (topic, i)
                        append(r)
                        i += 1
                        continue
                slow(v, i, out, bad)
                i += 1
            return out
        return ingest_keyless

    if key_field is None or ts_field is None:
        def ingest_items(items: list, pos0: int, bad: Callable) -> list[Record]:
            out: list[Record] = []
            for i, item in enumerate(items, pos0):
                slow(item, i, out, bad)
            return out
        return ingest_items

    missing = _MISSING
    if sp is not None:  # the same loop compiled (streamdsl/_speedups.pyx)
        loop = sp.ingest_fields

        def ingest_fields_compiled(items: list, pos0: int, bad: Callable) -> list[Record]:
            return loop(items, pos0, bad, topic, key_field, ts_field, top, slow, missing)
        return ingest_fields_compiled

    def ingest_fields(items: list, pos0: int, bad: Callable) -> list[Record]:
        out: list[Record] = []
        append = out.append
        i = pos0
        for v in items:
            if type(v) is dict and "value" not in v:
                k = v.get(key_field, missing)
                ts = v.get(ts_field)
                if k is not missing and type(ts) is int and 0 <= ts < top:
                    # Record(...) without its __init__ call: a third cheaper
                    r = new(Record)
                    r.key = k
                    r.value = v
                    r.ts = ts
                    r.window = None
                    r.origin = (topic, i)
                    append(r)
                    i += 1
                    continue
            slow(v, i, out, bad)
            i += 1
        return out
    return ingest_fields
