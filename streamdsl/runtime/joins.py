"""Joins: stream-stream (windowed), stream-table (lookup), table-table (both materialized).

Rules (Kafka Streams 3.1+, see docs/semantics.md):

* stream-stream: a left record at ``t`` matches right records in ``[t - before, t + after]``
  (``before = within``; ``after`` defaults to ``within``: ``|t_left - t_right| <= within``);
  output timestamp is ``max(t_left, t_right)``; both sides share one stream time; an input
  record is dropped (late) iff ``t + after + grace < stream_time`` (a right record: ``t + before
  + grace``). Left/outer joins hold unmatched records back and emit them with a ``None`` partner
  once that bound has passed, with their own timestamp, ordered by (timestamp, side (right
  first), key), before the triggering record's own results. A left join never emits a right
  record without a partner. ``eager`` joins (Kafka Streams' ``JoinWindows.of`` before KIP-633,
  ksqlDB's joins without GRACE PERIOD) hold nothing back: a record that finds no partner when
  it arrives is emitted with a ``None`` partner at once, and again with each later partner.
* stream-table: the stream record sees the table row as it is when the record is processed;
  output timestamp = the stream record's; table updates emit nothing.
* table-table: output timestamp = the larger of the two sides' current timestamps; a result
  row that stops existing becomes a tombstone.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from operator import itemgetter
from typing import Any, Callable, Iterable

from .._accel import speedups as _speedups
from ..ir.fn import Fn
from ..ir.nodes import StreamStreamJoin, StreamTableJoin, TableTableJoin
from .failures import LateRecord
from .ordering import key_order
from .processors import OpContext, Processor
from .records import Record

__all__ = ["default_joiner", "make_joiner", "StreamStreamJoinProcessor", "StreamTableJoinProcessor",
           "TableTableJoinProcessor"]

_NEG_INF = -(1 << 62)
_ts_of = itemgetter(0)
_new = object.__new__


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
    """Windowed stream-stream join (inner, left, outer).

    State (all in stores, so snapshots capture it): a buffered record is the tuple
    ``(ts, seq, side, key, value)``; ``left``/``right`` map key -> list of them in arrival
    (seq) order; ``unmatched`` maps seq -> ``(ts, side, key, value)`` for the records of an
    outer side that have not matched yet (held back); ``meta`` holds ``stream_time``, ``seq``,
    ``held`` (heap of ``(ts, side order, key order, seq)``) and the expiry bookkeeping:
    ``fifo``, a deque of the buffered records whose timestamps did not decrease (arrival
    order: the common case), and ``expiry``, a heap of those that arrived out of order.
    One loop (``_run``) serves ``process``, ``process_batch`` and ``process_mixed``.
    """

    def __init__(self, node: StreamStreamJoin, ctx: OpContext):
        super().__init__(node, ctx)
        self.before = node.within
        self.after = node.within if node.after is None else node.after
        self.grace = node.grace
        self.eager = node.eager
        self.joiner = make_joiner(node.joiner)
        self.outer_left = node.how in ("left", "outer")
        self.outer_right = node.how == "outer"
        self.meta = ctx.stores.kv("meta")
        # side -> key -> list of (ts, seq, side, key, value)  (records kept for matching)
        self.buffers = {"left": ctx.stores.kv("left"), "right": ctx.stores.kv("right")}
        # unmatched held-back records: seq -> (ts, side, key, value)
        self.unmatched = ctx.stores.kv("unmatched")
        # what _run binds on every call (store dicts stay the same objects across restore)
        self._bound = (self.before, self.after, self.after + self.grace, self.before + self.grace,
                       self.joiner, self.outer_left, self.outer_right, self.eager, self.meta.data,
                       self.buffers["left"].data, self.buffers["right"].data, self.unmatched.data)

    def _late(self, t: int, is_left: bool, st: int) -> LateRecord:
        """A record at ``t`` too late to join: its window of partners, closed at ``st``."""
        lo, hi = (t - self.before, t + self.after) if is_left else (t - self.after,
                                                                     t + self.before)
        return LateRecord(f"late: join window [{lo}, {hi}] of this {'left' if is_left else 'right'} "
                          f"record closed at stream time {st} (its end {hi} + grace "
                          f"{self.grace} < {st})", (lo, hi), st)

    def _run(self, items: Iterable[tuple[str, Record]],
             fail: Callable[[Record, Exception], None]) -> list[Record]:
        # Exactly ``process`` record by record (the state changes of a failing record stay,
        # its outputs are dropped), with every lookup bound once per call.
        # lim_l / lim_r: a left / right record is late (or, held back, due) iff t + lim < stream
        # time; a buffered record is freed once t < stream time - (before + after + grace)
        (before, after, lim_l, lim_r, joiner, outer_left, outer_right, eager, meta, lbuf, rbuf,
         unmatched) = self._bound
        lim = min(lim_l, lim_r)
        horizon_gap = before + lim_l
        fifo = meta.get("fifo")
        if fifo is None:
            fifo = meta["fifo"] = deque()
        popleft = fifo.popleft
        push_fifo = fifo.append
        last_t = fifo[-1][0] if fifo else _NEG_INF  # fifo timestamps never decrease
        expiry = meta.get("expiry")  # out-of-order records (None until the first one)
        held = meta.get("held")      # outer joins' held-back records
        st = st0 = meta.get("stream_time", _NEG_INF)
        seq = seq0 = meta.get("seq", 0)
        horizon = st - horizon_gap
        out: list[Record] = []
        append = out.append
        try:
            for port, rec in items:
                k = rec.key
                v = rec.value
                if k is None or v is None:
                    self.ctx.skipped()
                    continue
                t = rec.ts
                is_left = port == "left"
                if t > st:
                    st = t
                    horizon = st - horizon_gap
                elif t + (lim_l if is_left else lim_r) < st:
                    self.ctx.late()
                    if self.late_letters:
                        fail(rec, self._late(t, is_left, st))
                    continue
                mark = len(out)
                try:
                    if t == st and held and held[0][0] + lim < st:
                        # held-back records whose window has passed, before this record's results
                        if lim_l == lim_r:
                            while held and held[0][0] + lim < st:
                                ht, _, _, hseq = heappop(held)
                                item = unmatched.pop(hseq, None)
                                if item is None:
                                    continue  # matched meanwhile
                                hv = item[3]
                                append(Record(item[2], joiner(hv, None) if item[1] == "left"
                                              else joiner(None, hv), ht))
                        else:
                            _emit_due(held, unmatched, st, lim_l, lim_r, joiner, append)
                    if is_left:
                        mine, other = lbuf, rbuf
                    else:
                        mine, other = rbuf, lbuf
                    n = seq
                    seq = n + 1
                    entry = (t, n, port, k, v)
                    lst = mine.get(k)
                    if lst is None:
                        mine[k] = [entry]
                    else:
                        lst.append(entry)
                    if t >= last_t:
                        push_fifo(entry)
                        last_t = t
                    else:
                        if expiry is None:
                            expiry = meta["expiry"] = []
                        heappush(expiry, entry)
                    olst = other.get(k)
                    partners = ()
                    if olst:
                        if is_left:
                            lo = t - before
                            hi = t + after
                        else:
                            lo = t - after
                            hi = t + before
                        if len(olst) == 1:
                            if lo <= olst[0][0] <= hi:
                                partners = olst
                        else:
                            partners = [e for e in olst if lo <= e[0] <= hi]
                            if len(partners) > 1:
                                # lists are in seq order: a stable sort by ts is (ts, seq)
                                partners.sort(key=_ts_of)
                    if partners:
                        origin = rec.origin
                        for e in partners:
                            if unmatched:
                                unmatched.pop(e[1], None)  # no longer held back
                            et = e[0]
                            ov = e[4]
                            append(Record(k, joiner(v, ov) if is_left else joiner(ov, v),
                                          et if et > t else t, None, origin))
                    elif outer_left if is_left else outer_right:
                        if eager:
                            append(Record(k, joiner(v, None) if is_left else joiner(None, v), t,
                                          None, rec.origin))
                        else:
                            unmatched[n] = (t, port, k, v)
                            if held is None:
                                held = meta["held"] = []
                            heappush(held, (t, 1 if is_left else 0, key_order(k), n))
                    # free buffered records that can no longer match (in any order: the
                    # state after a cleanup is the same)
                    if fifo[0][0] < horizon:
                        while fifo and fifo[0][0] < horizon:
                            x = popleft()
                            s = x[1]
                            if unmatched and s in unmatched:
                                continue  # still held back; freed when emitted
                            kk = x[3]
                            buf = lbuf if x[2] == "left" else rbuf
                            lst = buf.get(kk)
                            if lst is None:
                                continue
                            if lst[0][1] == s:
                                del lst[0]
                            else:
                                lst[:] = [e for e in lst if e[1] != s]
                            if not lst:
                                del buf[kk]
                        if not fifo:
                            last_t = _NEG_INF
                    if expiry and expiry[0][0] < horizon:
                        while expiry and expiry[0][0] < horizon:
                            x = heappop(expiry)
                            s = x[1]
                            if unmatched and s in unmatched:
                                continue
                            kk = x[3]
                            buf = lbuf if x[2] == "left" else rbuf
                            lst = buf.get(kk)
                            if lst is None:
                                continue
                            lst[:] = [e for e in lst if e[1] != s]
                            if not lst:
                                del buf[kk]
                except Exception as exc:
                    del out[mark:]
                    fail(rec, exc)
        finally:
            if st != st0:
                meta["stream_time"] = st
            if seq != seq0:
                meta["seq"] = seq
        return out

    def restore(self, snap: dict) -> None:
        super().restore(snap)
        # a snapshot from before buffered records were tuples: [ts, seq, value, matched]
        for side in ("left", "right"):
            for k, lst in self.buffers[side].data.items():
                if lst and type(lst[0]) is list:
                    lst[:] = [(e[0], e[1], side, k, e[2]) for e in lst]

    def on_end(self) -> list[Record]:
        out: list[Record] = []
        meta = self.meta.data
        held = meta.get("held")
        unmatched = self.unmatched.data
        joiner = self.joiner
        while held:
            t, _, _, seq = heappop(held)
            item = unmatched.pop(seq, None)
            if item is None:
                continue  # matched meanwhile
            _, side, k, v = item
            out.append(Record(k, joiner(v, None) if side == "left" else joiner(None, v), t))
        self.buffers["left"].clear()
        self.buffers["right"].clear()
        meta["expiry"] = []
        fifo = meta.get("fifo")
        if fifo is not None:
            fifo.clear()
        return out


def _emit_due(held: list, unmatched: dict, st: int, lim_l: int, lim_r: int,
              joiner: Callable[[Any, Any], Any], append: Callable[[Record], None]) -> None:
    """Emit the held-back records whose window has closed, in (timestamp, side, key) order,
    when the two sides close at different times (an asymmetric join window): a side's records
    close in timestamp order, so the walk stops once both sides have reached an open one."""
    kept = []
    open_sides = set()
    while held and len(open_sides) < 2:
        entry = heappop(held)
        ht, side, _, hseq = entry
        if ht + (lim_l if side else lim_r) >= st:
            open_sides.add(side)
            kept.append(entry)
            continue
        item = unmatched.pop(hseq, None)
        if item is None:
            continue  # matched meanwhile
        hv = item[3]
        append(Record(item[2], joiner(hv, None) if item[1] == "left" else joiner(None, hv), ht))
    for entry in kept:
        heappush(held, entry)


class StreamTableJoinProcessor(Processor):
    """Stream records look up the table's current row; table updates only update the row.

    One loop (``_run``) serves ``process``, ``process_batch`` and ``process_mixed``. It builds
    its output records with ``object.__new__`` and the slots set directly (no
    ``Record.__init__`` call: about a fifth of this join's cost per record);
    tests/core/test_join_batches.py checks that every slot of ``Record`` gets set.
    """

    def __init__(self, node: StreamTableJoin, ctx: OpContext):
        super().__init__(node, ctx)
        self.joiner = make_joiner(node.joiner)
        self.left_join = node.how == "left"
        self.table = ctx.stores.kv("table")

    def _run(self, items: Iterable[tuple[str, Record]],
             fail: Callable[[Record, Exception], None]) -> list[Record]:
        table = self.table.data
        get = table.get
        joiner = self.joiner
        left_join = self.left_join
        ctx = self.ctx
        out: list[Record] = []
        append = out.append
        for port, rec in items:
            k = rec.key
            v = rec.value
            try:
                if port == "right":
                    if k is None:
                        ctx.skipped()
                    elif v is None:
                        table.pop(k, None)
                    else:
                        table[k] = v
                elif k is None or v is None:
                    ctx.skipped()
                else:
                    row = get(k)
                    if row is not None or left_join:
                        r = _new(Record)
                        r.key = k
                        r.value = joiner(v, row)
                        r.ts = rec.ts
                        r.window = None
                        r.origin = rec.origin
                        append(r)
            except Exception as e:  # the joiner, or an unhashable key
                fail(rec, e)
        return out


class TableTableJoinProcessor(Processor):
    """Table-table inner/left/outer join; both sides materialized as ``(value, ts)`` per key
    (per key and window for windowed tables)."""

    def __init__(self, node: TableTableJoin, ctx: OpContext):
        super().__init__(node, ctx)
        self.joiner = make_joiner(node.joiner)
        self.how = node.how
        self.sides = {"left": ctx.stores.kv("left"), "right": ctx.stores.kv("right")}

    def _run(self, items: Iterable[tuple[str, Record]],
             fail: Callable[[Record, Exception], None]) -> list[Record]:
        # A row exists for (left value, right value) when: inner: both present; left: the
        # left one; outer: either. An update emits the new row if it exists, else a tombstone
        # if the row existed before it, else nothing.
        how = self.how
        need_left = how != "outer"
        need_right = how == "inner"
        joiner = self.joiner
        lside = self.sides["left"].data
        rside = self.sides["right"].data
        out: list[Record] = []
        append = out.append
        for port, rec in items:
            k = rec.key
            if k is None:
                self.ctx.skipped()
                continue
            try:
                if port == "left":
                    mine, other = lside, rside
                else:
                    mine, other = rside, lside
                # a windowed table's row is (key, window): rows of one key in two windows differ
                sk = k if rec.window is None else (k, rec.window)
                old = mine.get(sk)
                value = rec.value
                ts = rec.ts
                if value is None:
                    mine.pop(sk, None)
                else:
                    mine[sk] = (value, ts)
                o = other.get(sk)
                if o is None:
                    ov = None
                else:
                    ov, ots = o
                    if ots > ts:
                        ts = ots
                oldv = None if old is None else old[0]
                if port == "left":
                    lv, rv, lv_old, rv_old = value, ov, oldv, ov
                else:
                    lv, rv, lv_old, rv_old = ov, value, ov, oldv
                if ((lv is not None or not need_left) and (rv is not None or not need_right)
                        and (lv is not None or rv is not None)):
                    append(Record(k, joiner(lv, rv), ts, rec.window, rec.origin))
                elif ((lv_old is not None or not need_left) and (rv_old is not None or not need_right)
                        and (lv_old is not None or rv_old is not None)):
                    append(Record(k, None, ts, rec.window, rec.origin))
            except Exception as e:
                fail(rec, e)
        return out


# The compiled copy of the stream-stream join loop (streamdsl/_speedups.pyx), when built and
# not disabled by STREAMDSL_PURE=1; ``_run_pure`` stays the reference it is tested against
# (tests/core/test_speedups.py).
StreamStreamJoinProcessor._run_pure = StreamStreamJoinProcessor._run
if _speedups is not None:
    StreamStreamJoinProcessor._run = _speedups.stream_stream_join_run  # type: ignore[method-assign]
