"""Joins: stream-stream (windowed), stream-table (lookup), table-table (both materialized).

Rules (Kafka Streams 3.1+, see docs/semantics.md):

* stream-stream: records match iff ``|t_left - t_right| <= within``; output timestamp is
  ``max(t_left, t_right)``; both sides share one stream time; an input record is dropped
  (late) iff ``t + within + grace < stream_time``. Left/outer joins hold unmatched records back
  and emit them with a ``None`` partner once ``t + within + grace < stream_time``, with their
  own timestamp, ordered by (timestamp, side (right first), key), before the triggering
  record's own results. A left join never emits a right record without a partner.
* stream-table: the stream record sees the table row as it is when the record is processed;
  output timestamp = the stream record's; table updates emit nothing.
* table-table: output timestamp = the larger of the two sides' current timestamps; a result
  row that stops existing becomes a tombstone.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

from ..ir.fn import Fn
from ..ir.nodes import StreamStreamJoin, StreamTableJoin, TableTableJoin
from .ordering import key_order
from .processors import OpContext, Processor
from .records import Record

__all__ = ["default_joiner", "make_joiner", "StreamStreamJoinProcessor", "StreamTableJoinProcessor",
           "TableTableJoinProcessor"]

_NEG_INF = -(1 << 62)


def default_joiner(left: Any, right: Any) -> Any:
    """Merged dict when both sides are dicts (or one is a dict and the other missing),
    else the tuple ``(left, right)``.

    >>> default_joiner({"a": 1}, {"b": 2})
    {'a': 1, 'b': 2}
    >>> default_joiner({"a": 1}, None)
    {'a': 1}
    >>> default_joiner(1, None)
    (1, None)
    """
    if isinstance(left, dict) and (isinstance(right, dict) or right is None):
        return {**left, **(right or {})}
    if left is None and isinstance(right, dict):
        return dict(right)
    return (left, right)


def make_joiner(fn: Fn | None) -> Callable[[Any, Any], Any]:
    return default_joiner if fn is None else fn.compile_kv()


class StreamStreamJoinProcessor(Processor):
    """Windowed stream-stream join (inner, left, outer)."""

    def __init__(self, node: StreamStreamJoin, ctx: OpContext):
        super().__init__(node, ctx)
        self.within = node.within
        self.grace = node.grace
        self.joiner = make_joiner(node.joiner)
        self.outer_left = node.how in ("left", "outer")
        self.outer_right = node.how == "outer"
        self.meta = ctx.stores.kv("meta")
        # side -> key -> list of [ts, seq, value]  (records kept for matching)
        self.buffers = {"left": ctx.stores.kv("left"), "right": ctx.stores.kv("right")}
        # unmatched held-back records: seq -> (ts, side, key, value)
        self.unmatched = ctx.stores.kv("unmatched")

    def _next_seq(self) -> int:
        """Identifies buffered records; kept in the store so that it survives snapshot/restore."""
        n = self.meta.get("seq", 0)
        self.meta.put("seq", n + 1)
        return n

    def _heap(self, name: str) -> list:
        h = self.meta.get(name)
        if h is None:
            h = []
            self.meta.put(name, h)
        return h

    def process(self, port: str, rec: Record) -> list[Record]:
        k, v, t = rec.key, rec.value, rec.ts
        if k is None or v is None:
            self.ctx.skipped()
            return []
        st = max(self.meta.get("stream_time", _NEG_INF), t)
        self.meta.put("stream_time", st)
        out: list[Record] = []
        if t + self.within + self.grace < st:
            self.ctx.late()
            return out
        if t == st:
            self._emit_expired(st, out)
        is_left = port == "left"
        other = self.buffers["right" if is_left else "left"]
        mine = self.buffers[port]
        seq = self._next_seq()
        entry = [t, seq, v, False]  # ts, seq, value, matched
        lst = mine.get(k)
        if lst is None:
            lst = []
            mine.put(k, lst)
        lst.append(entry)
        heapq.heappush(self._heap("expiry"), (t, seq, port, k))
        matched = False
        partners = sorted((e for e in (other.get(k) or ()) if abs(e[0] - t) <= self.within),
                          key=lambda e: (e[0], e[1]))
        for e in partners:
            matched = True
            if not e[3]:
                e[3] = True
                self.unmatched.delete(e[1])
            lv, rv = (v, e[2]) if is_left else (e[2], v)
            out.append(Record(k, self.joiner(lv, rv), max(t, e[0]), None, rec.origin))
        if matched:
            entry[3] = True
        elif (is_left and self.outer_left) or (not is_left and self.outer_right):
            self.unmatched.put(seq, (t, port, k, v))
            heapq.heappush(self._heap("held"),
                           (t, 1 if is_left else 0, key_order(k), seq))
        self._cleanup(st)
        return out

    def _emit_expired(self, st: int, out: list[Record], everything: bool = False) -> None:
        held = self._heap("held")
        limit = self.within + self.grace
        while held and (everything or held[0][0] + limit < st):
            t, _, _, seq = heapq.heappop(held)
            item = self.unmatched.get(seq)
            if item is None:
                continue  # matched meanwhile
            self.unmatched.delete(seq)
            _, side, k, v = item
            value = self.joiner(v, None) if side == "left" else self.joiner(None, v)
            out.append(Record(k, value, t))

    def _cleanup(self, st: int) -> None:
        # A buffered record at t can still match records with t' >= st - within - grace
        # (later ones are late), so it is needed while t + within >= st - within - grace.
        heap = self._heap("expiry")
        horizon = st - 2 * self.within - self.grace
        while heap and heap[0][0] < horizon:
            t, seq, side, k = heapq.heappop(heap)
            if seq in self.unmatched:
                continue  # still held back; freed when emitted
            buf = self.buffers[side]
            lst = buf.get(k)
            if lst is None:
                continue
            lst[:] = [e for e in lst if e[1] != seq]
            if not lst:
                buf.delete(k)

    def on_end(self) -> list[Record]:
        out: list[Record] = []
        self._emit_expired(1 << 62, out, everything=True)
        self.buffers["left"].clear()
        self.buffers["right"].clear()
        self.meta.put("expiry", [])
        return out


class StreamTableJoinProcessor(Processor):
    """Stream records look up the table's current row; table updates only update the row."""

    def __init__(self, node: StreamTableJoin, ctx: OpContext):
        super().__init__(node, ctx)
        self.joiner = make_joiner(node.joiner)
        self.left_join = node.how == "left"
        self.table = ctx.stores.kv("table")

    def process(self, port: str, rec: Record) -> list[Record]:
        if port == "right":
            if rec.key is None:
                self.ctx.skipped()
            elif rec.value is None:
                self.table.delete(rec.key)
            else:
                self.table.put(rec.key, rec.value)
            return []
        if rec.key is None or rec.value is None:
            self.ctx.skipped()
            return []
        row = self.table.get(rec.key)
        if row is None and not self.left_join:
            return []
        return [Record(rec.key, self.joiner(rec.value, row), rec.ts, None, rec.origin)]


class TableTableJoinProcessor(Processor):
    """Table-table inner/left/outer join; both sides materialized as ``(value, ts)``."""

    def __init__(self, node: TableTableJoin, ctx: OpContext):
        super().__init__(node, ctx)
        self.joiner = make_joiner(node.joiner)
        self.how = node.how
        self.sides = {"left": ctx.stores.kv("left"), "right": ctx.stores.kv("right")}

    def _result(self, lv: Any, rv: Any) -> Any:
        """The joined row for the two current values, or None if no row should exist."""
        if self.how == "inner":
            return None if lv is None or rv is None else self.joiner(lv, rv)
        if self.how == "left":
            return None if lv is None else self.joiner(lv, rv)
        return None if lv is None and rv is None else self.joiner(lv, rv)

    def _exists(self, lv: Any, rv: Any) -> bool:
        if self.how == "inner":
            return lv is not None and rv is not None
        if self.how == "left":
            return lv is not None
        return lv is not None or rv is not None

    def process(self, port: str, rec: Record) -> list[Record]:
        k = rec.key
        if k is None:
            self.ctx.skipped()
            return []
        mine = self.sides[port]
        other = self.sides["right" if port == "left" else "left"]
        old = mine.get(k)
        if rec.value is None:
            mine.delete(k)
        else:
            mine.put(k, (rec.value, rec.ts))
        o = other.get(k)
        ov, ots = (o[0], o[1]) if o is not None else (None, None)
        oldv = old[0] if old is not None else None
        lv_old, rv_old = (oldv, ov) if port == "left" else (ov, oldv)
        lv_new, rv_new = (rec.value, ov) if port == "left" else (ov, rec.value)
        ts = rec.ts if ots is None else max(rec.ts, ots)
        if self._exists(lv_new, rv_new):
            return [Record(k, self._result(lv_new, rv_new), ts, rec.window, rec.origin)]
        if self._exists(lv_old, rv_old):
            return [Record(k, None, ts, rec.window, rec.origin)]
        return []
