"""Grouped aggregations: non-windowed, time windows (tumbling/hopping), sessions, sliding.

Rules (Kafka Streams, record caching off; see docs/semantics.md):

* stream time = the largest timestamp the operator has seen; it advances before the record
  is applied;
* a record is dropped from window W iff ``W.end <= stream_time - grace`` (counted as late);
* emit ``changes`` forwards every update; emit ``final`` forwards a window once, when
  ``W.end + grace <= stream_time``; windows closing together come out by (end, key);
* a window's state is deleted when it closes, in both modes;
* null keys and null values are skipped (counted);
* the output timestamp is the largest input timestamp aggregated so far.
"""

from __future__ import annotations

import bisect
import heapq
from typing import Iterable

from ..ir.nodes import Aggregate
from ..windows import HoppingWindow, SessionWindow, SlidingWindow, TumblingWindow
from .aggregation import build_agg_ops
from .failures import LateRecord, late_window
from .ordering import key_order, sorted_keys
from .processors import OpContext, Processor
from .records import Record

__all__ = ["make_aggregate_processor"]

_NEG_INF = -(1 << 62)


class _AggBase(Processor):
    def __init__(self, node: Aggregate, ctx: OpContext):
        super().__init__(node, ctx)
        self.ops = build_agg_ops(node.aggregator)
        self.final = node.emit == "final"
        self.meta = ctx.stores.kv("meta")

    def _next_seq(self) -> int:
        """A tie-breaking counter, kept in the store so that it survives snapshot/restore."""
        n = self.meta.get("seq", 0)
        self.meta.put("seq", n + 1)
        return n

    def _advance(self, ts: int) -> int:
        st = self.meta.get("stream_time", _NEG_INF)
        if ts > st:
            st = ts
            self.meta.put("stream_time", st)
        return st

    def _heap(self) -> list:
        h = self.meta.get("expiry")
        if h is None:
            h = []
            self.meta.put("expiry", h)
        return h


class NonWindowedAggregate(_AggBase):
    """Running aggregate per key; every update is emitted. State: ``aggregates`` maps key ->
    ``(agg, max_ts)``. One loop (``_run``) serves ``process``, ``process_batch`` and
    ``process_mixed``."""

    def __init__(self, node: Aggregate, ctx: OpContext):
        super().__init__(node, ctx)
        self.store = ctx.stores.kv("aggregates")

    run_marks = True

    def _run(self, items: Iterable[tuple[str, Record]], fail, marks: list | None = None
             ) -> list[Record]:
        data = self.store.data
        get = data.get
        init, add, result = self.ops.init, self.ops.add, self.ops.result
        skipped = self.ctx.skipped
        out: list[Record] = []
        append = out.append
        for _port, rec in items:
            if marks is not None:
                marks.append(len(out))
            k, v = rec.key, rec.value
            if k is None or v is None:
                skipped()
                continue
            try:
                cur = get(k)
                ts = rec.ts
                if cur is None:
                    agg = add(init(), v)
                else:
                    agg = add(cur[0], v)
                    if cur[1] > ts:
                        ts = cur[1]
                data[k] = (agg, ts)  # stays when result() raises, as state changes do
                append(Record(k, result(agg), ts, None, rec.origin))
            except Exception as e:
                fail(rec, e)
        return out


class TimeWindowAggregate(_AggBase):
    """Tumbling and hopping windows.

    State: ``windows`` maps window start -> {key: (agg, max_ts)}; ``meta`` holds stream time and
    the sorted list of open window starts. All windows share one size, so ordering by start is
    ordering by end: closing pops whole windows from the front, keys sorted within each.
    """

    def __init__(self, node: Aggregate, ctx: OpContext):
        super().__init__(node, ctx)
        self.window = node.window
        self.size = node.window.size
        self.grace = node.window.grace
        self.windows = ctx.stores.kv("windows").data
        self.meta_data = self.meta.data
        self.meta_data.setdefault("stream_time", _NEG_INF)
        self.meta_data.setdefault("starts", [])

    run_marks = True

    def _run(self, items: Iterable[tuple[str, Record]], fail, marks: list | None = None
             ) -> list[Record]:
        meta = self.meta_data
        windows = self.windows
        starts = meta["starts"]
        size, grace, final = self.size, self.grace, self.final
        adv = self.window.advance
        init, add, result = self.ops.init, self.ops.add, self.ops.result
        ctx = self.ctx
        letters = self.late_letters
        out: list[Record] = []
        append = out.append
        st = meta["stream_time"]  # (only this loop changes it: kept in a local too)
        for _port, rec in items:
            if marks is not None:
                marks.append(len(out))
            k, v, ts = rec.key, rec.value, rec.ts
            if k is None or v is None:
                ctx.skipped()
                continue
            if ts > st:
                st = meta["stream_time"] = ts
            close = st - grace
            mark = len(out)
            try:
                # Every window's new aggregate first, then the state: a record whose
                # aggregator raises on one of its (hopping) windows changes none of them.
                late = 0
                updates = []
                late_windows = None
                lo = ts - size + 1
                if lo < 0:
                    lo = 0
                # ``window.starts(ts)`` written in place (a call per record cost a tenth)
                for start in range(lo + -lo % adv, ts - ts % adv + 1, adv):
                    end = start + size
                    if end <= close:
                        late += 1
                        if letters:
                            if late_windows is None:
                                late_windows = []
                            late_windows.append((start, end))
                        continue
                    bucket = windows.get(start)
                    cur = bucket.get(k) if bucket is not None else None
                    if cur is None:
                        updates.append((start, end, bucket, add(init(), v), ts))
                    else:
                        updates.append((start, end, bucket, add(cur[0], v),
                                        cur[1] if cur[1] > ts else ts))
                if late:
                    ctx.late(late)
                    for start, end in late_windows or ():  # late="dead-letter"
                        fail(rec, late_window(start, end, st, grace))
                for start, end, bucket, agg, mts in updates:
                    if bucket is None:
                        bucket = windows[start] = {}
                        bisect.insort(starts, start)
                    bucket[k] = (agg, mts)
                    if not final:
                        append(Record(k, result(agg), mts, (start, end), rec.origin))
                if starts and starts[0] + size <= close:
                    self._expire(close, out)
            except Exception as e:
                del out[mark:]
                fail(rec, e)
        return out

    def closing(self, close: int) -> list[tuple[int, dict]]:
        """Remove the windows that close at ``close`` (stream time - grace): ``(start,
        {key: (agg, max_ts)})`` in end order. Emit-final emits their keys sorted by
        ``key_order`` (``sorted_keys``)."""
        starts = self.meta_data["starts"]
        size = self.size
        n = 0
        while n < len(starts) and starts[n] + size <= close:
            n += 1
        closed = [(start, self.windows.pop(start, None)) for start in starts[:n]]
        del starts[:n]
        return closed

    def _expire(self, close: int, out: list[Record]) -> None:
        closed = self.closing(close)
        if not self.final:
            return
        result = self.ops.result
        size = self.size
        for start, bucket in closed:
            if bucket:
                window = (start, start + size)
                keys = sorted_keys(bucket)
                out.extend([Record(k, result(agg), mts, window) for k, (agg, mts)
                            in zip(keys, map(bucket.__getitem__, keys))])

    def state_size(self) -> int:
        return sum(len(b) for b in self.windows.values())

    def on_end(self) -> list[Record]:
        out: list[Record] = []
        self._expire(1 << 62, out)
        return out


class SessionAggregate(_AggBase):
    """Session windows: ``[first ts, last ts]``, merged by records within ``gap``."""

    def __init__(self, node: Aggregate, ctx: OpContext):
        super().__init__(node, ctx)
        w = node.window
        assert isinstance(w, SessionWindow)
        self.gap = w.gap
        self.grace = w.grace
        self.store = ctx.stores.kv("sessions")  # key -> sorted list of [start, end, agg]

    def _run(self, items: Iterable[tuple[str, Record]], fail) -> list[Record]:
        """The session rules over ``(port, record)`` pairs, with the state in local variables: stream time and the tie-break counter written back once,
        the store's dicts used directly, and the expiry heap looked at only when its head is
        due. The new aggregate is computed before any session is removed: a user function
        that raises leaves the state as it was."""
        meta = self.meta.data
        store = self.store.data
        heap = meta.get("expiry")  # created (as process does) at the first non-skipped record
        gap, grace, final = self.gap, self.grace, self.final
        init, add, merge, result = self.ops.init, self.ops.add, self.ops.merge, self.ops.result
        ctx = self.ctx
        letters = self.late_letters
        out: list[Record] = []
        st0 = st = meta.get("stream_time", _NEG_INF)
        seq0 = seq = meta.get("seq", 0)
        try:
            for _port, rec in items:
                k, v, ts = rec.key, rec.value, rec.ts
                if k is None or v is None:
                    ctx.skipped()
                    continue
                if heap is None:
                    heap = self._heap()
                if ts > st:
                    st = ts
                close = st - grace - gap
                mark = len(out)
                try:
                    sessions = store.get(k) or []
                    lo, hi = ts - gap, ts + gap
                    overlapping = [s for s in sessions if s[1] >= lo and s[0] <= hi]
                    m_start = m_end = ts
                    for s in overlapping:
                        if s[0] < m_start:
                            m_start = s[0]
                        if s[1] > m_end:
                            m_end = s[1]
                    if m_end < close:
                        ctx.late()
                        if letters:
                            fail(rec, LateRecord(
                                f"late: session [{m_start}, {m_end}] closed at stream time {st} "
                                f"(its end {m_end} + gap {gap} + grace {grace} < {st})",
                                (m_start, m_end), st))
                    else:
                        agg = init()
                        for s in overlapping:
                            agg = merge(agg, s[2])
                        agg = add(agg, v)
                        for s in overlapping:
                            sessions.remove(s)
                            if not final:
                                out.append(Record(k, None, s[1], (s[0], s[1]), rec.origin))
                        bisect.insort(sessions, [m_start, m_end, agg], key=_first)
                        store[k] = sessions
                        heapq.heappush(heap, (m_end, key_order(k), m_start, seq, k))
                        seq += 1
                        if not final:
                            out.append(Record(k, result(agg), m_end, (m_start, m_end), rec.origin))
                    if heap and heap[0][0] <= close:
                        self._expire(close, out)
                except Exception as e:
                    del out[mark:]
                    fail(rec, e)
        finally:
            if st != st0:
                meta["stream_time"] = st
            if seq != seq0:
                meta["seq"] = seq
        return out

    def _expire(self, close: int, out: list[Record]) -> None:
        heap = self._heap()
        while heap and heap[0][0] <= close:
            end, _, start, _, k = heapq.heappop(heap)
            sessions = self.store.get(k)
            if not sessions:
                continue
            for s in sessions:
                if s[0] == start and s[1] == end:
                    sessions.remove(s)
                    if self.final:
                        out.append(Record(k, self.ops.result(s[2]), end, (start, end)))
                    break
            if sessions:
                self.store.put(k, sessions)
            else:
                self.store.delete(k)

    def on_end(self) -> list[Record]:
        out: list[Record] = []
        self._expire(1 << 62, out)
        return out


class SlidingAggregate(_AggBase):
    """Kafka Streams sliding windows ``[s, s + size]`` (both ends inclusive).

    A record at ``t`` creates its left window ``[t - size, t]`` (``[0, size]`` when
    ``t < size``), updates every open window containing ``t``, creates its right window
    ``[t + 1, t + 1 + size]`` if a later record falls in it, and creates the right window of an
    earlier record that ``t`` is the first to fall into. Aggregates fold the window's records in
    (timestamp, arrival) order. Emitted in that order: updated windows (by start), the earlier
    record's right window, the left window, the right window. Because the end is inclusive, a
    window closes when ``end + grace < stream_time``.
    """

    def __init__(self, node: Aggregate, ctx: OpContext):
        super().__init__(node, ctx)
        w = node.window
        assert isinstance(w, SlidingWindow)
        self.size = w.size
        self.grace = w.grace
        self.records = ctx.stores.kv("records")  # key -> sorted list of (ts, seq, value)
        self.windows = ctx.stores.kv("windows")  # key -> {start: (agg, max_ts)}

    def _fold(self, recs, lo: int, hi: int):
        agg = self.ops.init()
        mts = None
        n = 0
        for t, _, v in recs:
            if lo <= t <= hi:
                agg = self.ops.add(agg, v)
                mts = t if mts is None else max(mts, t)
                n += 1
        return (agg, mts) if n else None

    def process(self, port: str, rec: Record) -> list[Record]:
        k, v, t = rec.key, rec.value, rec.ts
        if k is None or v is None:
            self.ctx.skipped()
            return []
        st = self._advance(t)
        close = st - self.grace
        size = self.size
        out: list[Record] = []
        # A window [s, s + size] includes its end, so it stays open while s + size >= close.
        if t + 1 + size < close:
            self.ctx.late()
            if self.late_letters:  # even its right window [t + 1, t + 1 + size] has closed
                self.ctx.defer(rec, LateRecord(
                    f"late: sliding window [{t + 1}, {t + 1 + size}] closed at stream time {st} "
                    f"(its end {t + 1 + size} + grace {self.grace} < {st})",
                    (t + 1, t + 1 + size), st))
            self._expire(close, out)
            return out
        # Everything is computed on copies and stored at the end: a record whose aggregator
        # raises is dead-lettered and leaves the key's records and windows as they were.
        recs = list(self.records.get(k) or [])
        bisect.insort(recs, (t, self._next_seq(), v), key=lambda r: (r[0], r[1]))
        wins = dict(self.windows.get(k) or {})
        emitted: list[int] = []
        created: list[int] = []

        def create(start: int) -> None:
            if start + size < close or start in wins:
                return
            res = self._fold(recs, start, start + size)
            if res is not None:
                wins[start] = res
                created.append(start)
                emitted.append(start)

        # 1. existing windows containing t (its left window included) get the record, by start
        for start in sorted(wins):
            agg, mts = wins[start]
            if start <= t <= start + size and start + size >= close:
                wins[start] = (self.ops.add(agg, v), max(mts, t))
                emitted.append(start)
        # 2. the right window of the latest earlier record, if t is the first to fall into it
        earlier = [r[0] for r in recs if r[0] < t and r[0] + 1 <= t <= r[0] + 1 + size]
        if earlier:
            create(max(earlier) + 1)
        # 3. its left window, if new
        create(max(0, t - size))
        # 4. its right window, if some later record falls into it
        if any(t < r[0] <= t + 1 + size for r in recs):
            create(t + 1)
        self.records.put(k, recs)
        self.windows.put(k, wins)
        heap = self._heap()
        for start in created:
            heapq.heappush(heap, (start + size, key_order(k), start, self._next_seq(), k))
        if not self.final:
            for start in emitted:
                agg, mts = wins[start]
                out.append(Record(k, self.ops.result(agg), mts, (start, start + size), rec.origin))
        self._expire(close, out)
        return out

    def _expire(self, close: int, out: list[Record]) -> None:
        heap = self._heap()
        while heap and heap[0][0] < close:
            end, _, start, _, k = heapq.heappop(heap)
            wins = self.windows.get(k)
            cur = wins.pop(start, None) if wins else None
            if cur is None:
                continue
            if not wins:
                self.windows.delete(k)
            if self.final:
                out.append(Record(k, self.ops.result(cur[0]), cur[1], (start, end)))
            recs = self.records.get(k)
            if recs:
                keep = [r for r in recs if r[0] >= close - 2 * self.size - 2]
                if keep:
                    self.records.put(k, keep)
                else:
                    self.records.delete(k)

    def on_end(self) -> list[Record]:
        out: list[Record] = []
        self._expire(1 << 62, out)
        self.records.clear()
        return out


def _first(s: list) -> int:
    return s[0]


def make_aggregate_processor(node: Aggregate, ctx: OpContext) -> Processor:
    w = node.window
    if w is None:
        return NonWindowedAggregate(node, ctx)
    if isinstance(w, (TumblingWindow, HoppingWindow)):
        return TimeWindowAggregate(node, ctx)
    if isinstance(w, SessionWindow):
        return SessionAggregate(node, ctx)
    if isinstance(w, SlidingWindow):
        return SlidingAggregate(node, ctx)
    raise TypeError(f"unknown window {w!r}")
