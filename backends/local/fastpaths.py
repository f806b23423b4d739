"""The local backend's fast paths: second implementations of kernel rules, kept for speed,
each registered by node kind with the kernel definition it must equal.

The executor finds every fast path it uses here (``find``), so none runs unregistered, and
tests/backends/local/test_fast_paths.py generates a property test for each entry of
``FAST_PATHS`` (random batches and interleavings, raising user functions, snapshot/restore
mid-stream) comparing it with its reference. ``streamdsl explain`` names the ones a plan uses.

Entry points, by ``FastPath.entry``:

* ``batch``: ``fn(port, records, fail) -> records``, equal to the processor's
  ``process_batch``;
* ``columns``: ``fn(keys, values, timestamps, positions, source, fail, parts=None, part=0)
  -> records``, equal to ``process_batch`` over the ``Record`` s those columns make (window
  None, origin ``(source, position)``), with ``parts`` (a partition per row) over the rows of
  partition ``part`` only (one task's share of a run); ``rows`` variants return ``Rows``
  instead of records;
* ``columns-to-sink``: the same, returning the sink's ``OutputRecord`` s (the operator's only
  output is a sink);
* ``columns-tasks``: ``fn(keys, values, timestamps, positions, source, fail, parts) ->
  [outputs of each task]``, built from the processors of every task
  (``build(processors)``): the rows of every partition's task in one pass, equal to each
  task's processor over its own rows;
* ``ingest-columns``, ``tail``, ``merge``: generated ingest, fused tails and the in-memory
  merge (``codegen.py``, ``merge.py``), equal to the kernel's ingest, operators and input
  order;
* ``agg-ops``: ``build(aggregator) -> AggOps``, the operations an aggregation's processor
  calls (``processor.ops``), equal to the kernel's ``build_agg_ops(aggregator)``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import partial
from itertools import compress, count, repeat
from operator import length_hint
from typing import Any, Callable, Sequence

from streamdsl._accel import speedups as _speedups
from streamdsl.ir.nodes import Aggregate, Node, Source, StreamTableJoin
from streamdsl.runtime.aggregate import TimeWindowAggregate
from streamdsl.runtime.aggregation import build_agg_ops
from streamdsl.runtime.failures import late_window
from streamdsl.runtime.ingest import make_ingest_items
from streamdsl.runtime.joins import StreamTableJoinProcessor
from streamdsl.runtime.tables import TableFilterProcessor, TableSourceProcessor
from streamdsl.runtime.ordering import merge_inputs, sorted_keys
from streamdsl.runtime.processors import Fail, Processor, StatelessProcessor
from streamdsl.runtime.records import OutputRecord, Record
from streamdsl.runtime.stateless import IDENTITY_KINDS
from streamdsl.timeutil import MAX_TIMESTAMP
from streamdsl.windows import HoppingWindow, TumblingWindow

from . import codegen, merge, tablerows

__all__ = ["FastPath", "FAST_PATHS", "find", "Rows", "Closed", "CLOSED", "closed_rows", "BATCH",
           "COLUMNS", "COLUMNS_TO_SINK",
           "COLUMNS_TASKS",
           "INGEST_COLUMNS", "TAIL", "MERGE", "AGG_OPS"]

BATCH = "batch"
COLUMNS = "columns"
COLUMNS_TO_SINK = "columns-to-sink"
COLUMNS_TASKS = "columns-tasks"
INGEST_COLUMNS = "ingest-columns"
AGG_OPS = "agg-ops"
TAIL = "tail"
MERGE = "merge"


class Rows(list):
    """A batch of records as plain ``(key, value, timestamp, window)`` tuples (origin None):
    what an emit-final tumbling window hands a fused tail that reads rows (a count's result is
    its state: no ``Record`` is built per window and key)."""

    __slots__ = ()


#: ``rows=CLOSED``: an emit-final tumbling count hands over ``Closed`` windows
CLOSED = "closed"


class Closed(list):
    """The windows an emit-final tumbling count closed, as ``(window, keys, bucket)``
    triples (``bucket``: ``{key: (count, max timestamp)}``, ``keys`` sorted as closing emits
    them): what it hands a fused tail that reads them (``window-close-tail``), which makes
    the rows ``(key, count, max timestamp, window)`` itself, in that order: no tuple is built
    per window and key before the tail's own."""

    __slots__ = ()


def closed_rows(closed: Closed) -> Rows:
    """The rows ``closed`` stands for (what ``Rows`` would hold)."""
    return Rows((k, *bucket[k], window) for window, keys, bucket in closed for k in keys)


def _out_list(rows: bool | str, final: bool) -> list:
    if rows == CLOSED:
        assert final
        return Closed()
    return Rows() if rows and final else []


@dataclass(frozen=True, slots=True)
class FastPath:
    """A second implementation of a kernel rule, kept for speed."""

    name: str
    #: the node kinds it serves
    kinds: tuple[str, ...]
    entry: str
    #: the kernel definition it must equal
    reference: Callable[..., Any]
    #: ``applies(node, port)``: whether it serves ``node`` fed on input ``port``
    applies: Callable[[Node, str], bool]
    #: ``build(processor_or_node, **options)``: the fast function (see the module docs)
    build: Callable[..., Callable]
    doc: str

    def describe(self) -> str:
        ref = self.reference
        return f"{self.name} (equals {ref.__module__}.{ref.__qualname__})"


# ---- stateless chains ----------------------------------------------------------------------------

_LINEAR_KINDS = ("Filter", "Map", "KeyBy", "MapKV", "Peek", "FlatMap", "FlatMapKV", "Fused",
                 *IDENTITY_KINDS)


def _stateless_batch(proc: StatelessProcessor, seqs: bool = False) -> Callable:
    """``(port, records, fail) -> outputs``; with ``seqs``, ``(port, records, fail, seqs) ->
    (outputs, the sequence number of each one's input)``."""
    fn = codegen.compile_batch(proc.node, proc.ctx, seqs=seqs)
    assert fn is not None
    if seqs:
        return lambda port, recs, fail, sq: fn(recs, fail, sq)
    return lambda port, recs, fail: fn(recs, fail)


# ---- tumbling windows ------------------------------------------------------------------------------

def _tumbling_applies(node: Node, port: str) -> bool:
    return isinstance(node, Aggregate) and isinstance(node.window, TumblingWindow)


def _close_tail_applies(node: Node, port: str) -> bool:
    return (_tumbling_applies(node, port) and node.emit == "final"
            and node.aggregator.kind == "count")


def _tumbling_batch(proc: TimeWindowAggregate, rows: bool | str = False,
                    seqs: bool = False) -> Callable:
    def batch(port: str, recs: list[Record], fail: Fail) -> list:
        return _tumbling(proc, [r.key for r in recs], [r.value for r in recs],
                         [r.ts for r in recs], recs.__getitem__, lambda j: recs[j].origin,
                         fail, rows)
    if seqs:
        assert proc.final
        return partial(_final_with_seqs, proc, batch)
    return batch


def _final_with_seqs(proc: TimeWindowAggregate, batch: Callable, port: str,
                     recs: list[Record], fail: Fail, seqs: list[int]) -> tuple[list, list]:
    """An emit-final tumbling window's ``batch`` carrying sequence numbers (upstream of a join):
    windows close only after a record that moves ``stream time - grace`` past a multiple of
    the size (every window ends on one), or, when the record that did failed before closing
    them, after the next record processed (a null key or value is skipped). The batch is cut
    after each such record, so what a piece emits is the closing of its last record, and
    gets that record's sequence number."""
    size, grace = proc.size, proc.grace
    meta = proc.meta_data
    out: list = []
    oseqs: list[int] = []
    lo, n = 0, len(recs)
    while lo < n:
        st = meta["stream_time"]
        starts = meta["starts"]
        due = bool(starts) and starts[0] + size <= st - grace
        mark = (st - grace) // size
        hi = lo
        while hi < n:
            r = recs[hi]
            hi += 1
            if r.key is None or r.value is None:
                continue
            if due:
                break
            if r.ts > st:
                st = r.ts
                if (st - grace) // size > mark:
                    break
        got = batch(port, recs[lo:hi], fail)
        if got:
            out += got
            oseqs += [seqs[hi - 1]] * len(got)
        lo = hi
    return out, oseqs


def _tumbling_columns(proc: TimeWindowAggregate, rows: bool | str = False) -> Callable:
    def columns(keys: list, values: list, timestamps: list, positions: Sequence[int],
                source: str, fail: Fail, parts: list | None = None, part: int = 0) -> list:
        def record(j: int) -> Record:
            return Record(keys[j], values[j], timestamps[j], None, (source, positions[j]))
        return _tumbling(proc, keys, values, timestamps, record,
                         lambda j: (source, positions[j]), fail, rows, parts, part)
    return columns


def _tumbling(proc: TimeWindowAggregate, keys: list, values: list, timestamps: list, record: Callable,
              origin: Callable, fail: Fail, rows: bool | str, parts: list | None = None,
              part: int = 0) -> list:
    """The batch loop of a tumbling window; ``record(j)`` / ``origin(j)`` give input
    ``j``'s record (for a failure) and origin (for an emitted update). With ``rows`` an
    emit-final window returns ``Rows`` (it emits nothing else), with ``rows=CLOSED`` an
    emit-final count returns ``Closed`` windows. With ``parts`` (a partition
    per row) only the rows of partition ``part`` are processed: several tasks' rows in one
    run of columns, each task's in one pass (``itertools.compress``: no reordered copies)."""
    mask = None if parts is None else list(map(part.__eq__, parts))
    meta = proc.meta_data
    windows = proc.windows
    starts = meta["starts"]
    size, grace, final = proc.size, proc.grace, proc.final
    ops = proc.ops
    add, init, result = ops.add, ops.init, ops.result
    is_count = ops.spec.kind == "count"
    assert rows != CLOSED or is_count
    ctx = proc.ctx
    letters = proc.late_letters
    out: list = _out_list(rows, final)
    append = out.append
    st = meta["stream_time"]
    close = st - grace
    first_close = starts[0] + size if starts else 1 << 62
    if is_count and final and not letters and _speedups is not None and type(windows) is dict:
        # the loop below compiled (streamdsl/_speedups.pyx): None when a key or value is
        # None or a timestamp not an int in range (never, from the kernel's ingest)
        def failed(j: int, st: int, e: Exception) -> None:
            meta["stream_time"] = st
            fail(record(j), e)
        got = _speedups.tumbling_count_final(
            keys if type(keys) is list else list(keys),
            values if type(values) is list else list(values),
            timestamps if type(timestamps) is list else list(timestamps), mask, windows,
            starts, st, size, grace, MAX_TIMESTAMP, ctx.late,
            partial(_expire, proc, out=out), failed, bisect.insort)
        if got is not None:
            meta["stream_time"] = got
            return out
    if is_count and final and not letters and None not in keys and None not in values:
        # No user code runs, no update is emitted, no record is skipped; consecutive
        # records mostly fall in the same window (kept at hand). The one thing that can
        # fail is an unhashable key: the failing record is reported and the loop resumes
        # after it (its index is where the keys' iterator stands).
        last_start = None
        bucket = None
        key_it = iter(keys)
        it = zip(key_it, timestamps) if mask is None else compress(zip(key_it, timestamps), mask)
        while True:
            try:
                for k, ts in it:
                    if ts > st:
                        st = ts
                        close = st - grace
                    start = ts - ts % size
                    if start + size <= close:
                        ctx.late()
                    else:
                        if start != last_start:
                            bucket = windows.get(start)
                            if bucket is None:
                                bucket = windows[start] = {}
                                bisect.insort(starts, start)
                                first_close = starts[0] + size
                            last_start = start
                        cur = bucket.get(k)
                        if cur is None:
                            bucket[k] = (1, ts)
                        else:
                            bucket[k] = (cur[0] + 1, cur[1] if cur[1] > ts else ts)
                    if first_close <= close:
                        _expire(proc, close, out)
                        first_close = starts[0] + size if starts else 1 << 62
                        last_start = None
                break
            except TypeError as e:
                meta["stream_time"] = st
                fail(record(len(keys) - length_hint(key_it) - 1), e)
        meta["stream_time"] = st
        return out
    rows_in = zip(count(), keys, values, timestamps)
    for j, k, v, ts in (rows_in if mask is None else compress(rows_in, mask)):
        if k is None or v is None:
            ctx.skipped()
            continue
        if ts > st:
            st = meta["stream_time"] = ts
            close = st - grace
        start = ts - ts % size
        mark = len(out)
        try:
            if start + size <= close:
                ctx.late()
                if letters:  # late="dead-letter"
                    fail(record(j), late_window(start, start + size, st, grace))
            else:
                # as the kernel's loop: the aggregate first, then the state (a raising
                # aggregator creates no window)
                bucket = windows.get(start)
                cur = bucket.get(k) if bucket is not None else None
                if is_count:
                    if cur is None:
                        agg = 1
                        mts = ts
                    else:
                        agg = cur[0] + 1
                        mts = cur[1]
                        if ts > mts:
                            mts = ts
                elif cur is None:
                    agg, mts = add(init(), v), ts
                else:
                    agg, mts = add(cur[0], v), (cur[1] if cur[1] > ts else ts)
                if bucket is None:
                    bucket = windows[start] = {}
                    bisect.insort(starts, start)
                    first_close = starts[0] + size
                bucket[k] = (agg, mts)
                if not final:
                    append(Record(k, result(agg), mts, (start, start + size), origin(j)))
            if first_close <= close:
                _expire(proc, close, out)
                first_close = starts[0] + size if starts else 1 << 62
        except Exception as e:
            del out[mark:]
            fail(record(j), e)
    return out


def _tumbling_tasks(procs: list[TimeWindowAggregate], rows: bool | str = False) -> Callable:
    """``tasks(keys, values, timestamps, positions, source, fail, parts) -> [outputs of
    task 0, of task 1, ...]``: the rows of several tasks of one tumbling window in one pass,
    ``parts`` giving each row's partition and ``procs[q]`` the task's processor. Each task
    keeps its own stream time, windows and expiry, exactly as ``_tumbling`` over its rows
    alone. The emit-final count over rows without null keys or values (no user code runs)
    keeps every task's state in lists indexed by partition; anything else runs ``_tumbling``
    once per task present."""
    proc0 = procs[0]
    call_free = proc0.final and proc0.ops.spec.kind == "count" and not proc0.late_letters
    n = len(procs)

    def tasks(keys: list, values: list, timestamps: list, positions: Sequence[int],
              source: str, fail: Fail, parts: list) -> list[list]:
        def record(j: int) -> Record:
            return Record(keys[j], values[j], timestamps[j], None, (source, positions[j]))
        if not call_free or None in keys or None in values:
            present = set(parts)
            return [_tumbling(procs[q], keys, values, timestamps, record,
                              lambda j: (source, positions[j]), fail, rows, parts, q)
                    if q in present else [] for q in range(n)]
        return _count_final_tasks(procs, keys, timestamps, parts, record, fail, rows)
    return tasks


def _count_final_tasks(procs: list[TimeWindowAggregate], keys: list, timestamps: list,
                       parts: list, record: Callable, fail: Fail, rows: bool | str) -> list[list]:
    """``_tumbling``'s call-free loop (an emit-final count, no null key or value) over several
    tasks' rows, each task's state in lists indexed by its partition: where its windows close
    (stream time minus grace) and when its first open window closes. The tasks' stream times
    advance together, so the window kept at hand is one start for all, with each task's
    bucket for it looked up once (``bks``)."""
    size, grace = procs[0].size, procs[0].grace
    n = len(procs)
    metas = [p.meta_data for p in procs]
    wins = [p.windows for p in procs]
    startss = [m["starts"] for m in metas]
    closes = [m["stream_time"] - grace for m in metas]
    firsts = [s[0] + size if s else 1 << 62 for s in startss]
    at_start = None
    bks: list = [None] * n
    outs: list[list] = [_out_list(rows, True) for _ in procs]
    key_it = iter(keys)
    it = zip(key_it, timestamps, parts)
    while True:
        try:
            for k, ts, q in it:
                close = closes[q]
                c = ts - grace
                if c > close:
                    closes[q] = close = c
                start = ts - ts % size
                if start + size <= close:
                    procs[q].ctx.late()
                else:
                    if start != at_start:
                        at_start = start
                        bks = [None] * n
                    bucket = bks[q]
                    if bucket is None:
                        windows = wins[q]
                        bucket = windows.get(start)
                        if bucket is None:
                            bucket = windows[start] = {}
                            starts = startss[q]
                            bisect.insort(starts, start)
                            firsts[q] = starts[0] + size
                        bks[q] = bucket
                    cur = bucket.get(k)
                    if cur is None:
                        bucket[k] = (1, ts)
                    else:
                        bucket[k] = (cur[0] + 1, cur[1] if cur[1] > ts else ts)
                if firsts[q] <= close:
                    _expire(procs[q], close, outs[q])
                    starts = startss[q]
                    firsts[q] = starts[0] + size if starts else 1 << 62
                    bks[q] = None
            break
        except TypeError as e:  # an unhashable key: reported, and the loop resumes after it
            j = len(keys) - length_hint(key_it) - 1
            metas[parts[j]]["stream_time"] = closes[parts[j]] + grace
            fail(record(j), e)
    for meta, close in zip(metas, closes):
        meta["stream_time"] = close + grace
    return outs


def _expire(proc: TimeWindowAggregate, close: int, out: list) -> None:
    """``TimeWindowAggregate._expire`` (the windows ``closing`` gives, keys sorted), building
    rows when ``out`` is ``Rows``."""
    closed = proc.closing(close)
    if not proc.final:
        return
    result = proc.ops.result
    size = proc.size
    rows = type(out) is Rows
    count = proc.ops.spec.kind == "count"
    for start, bucket in closed:
        if not bucket:
            continue
        window = (start, start + size)
        keys = sorted_keys(bucket)
        if type(out) is Closed:  # a count: its rows are made by the tail reading them
            out.append((window, keys, bucket))
            continue
        entries = map(bucket.__getitem__, keys)
        if rows and count:  # a count's result is its state
            out.extend([(k, agg, mts, window) for k, (agg, mts) in zip(keys, entries)])
        elif rows:
            out.extend([(k, result(agg), mts, window) for k, (agg, mts) in zip(keys, entries)])
        else:
            out.extend([Record(k, result(agg), mts, window) for k, (agg, mts)
                        in zip(keys, entries)])


# ---- hopping windows ------------------------------------------------------------------------------

def _hopping_applies(node: Node, port: str) -> bool:
    return isinstance(node, Aggregate) and isinstance(node.window, HoppingWindow)


def _hopping_batch(proc: TimeWindowAggregate, rows: bool = False) -> Callable:
    """``(port, records, fail) -> outputs`` of a hopping window: the kernel's loop
    (``TimeWindowAggregate._run``) with each record's windows computed in place (a ``range``
    of starts, no list of ``(start, end)`` tuples per record), stream time and the first
    closing window kept in locals, and a count added without a call."""
    def batch(port: str, recs: list[Record], fail: Fail) -> list:
        return _hopping(proc, recs, fail)
    return batch


def _hopping(proc: TimeWindowAggregate, recs: list[Record], fail: Fail) -> list:
    meta = proc.meta_data
    windows = proc.windows
    starts = meta["starts"]
    size, grace, final = proc.size, proc.grace, proc.final
    adv = proc.window.advance
    ops = proc.ops
    add, init, result = ops.add, ops.init, ops.result
    is_count = ops.spec.kind == "count"
    ctx = proc.ctx
    letters = proc.late_letters
    out: list = []
    append = out.append
    st = meta["stream_time"]
    close = st - grace
    for rec in recs:
        k, v, ts = rec.key, rec.value, rec.ts
        if k is None or v is None:
            ctx.skipped()
            continue
        if ts > st:
            st = meta["stream_time"] = ts
            close = st - grace
        mark = len(out)
        try:
            # as the kernel: every window's new aggregate first (ascending starts: the
            # multiples of advance in (ts - size, ts], never negative), then the state
            last = ts - ts % adv
            lo = ts - size
            late = 0
            late_windows = None
            updates = []
            for start in reversed(range(last, lo if lo > -1 else -1, -adv)):
                if start + size <= close:
                    late += 1
                    if letters:
                        if late_windows is None:
                            late_windows = []
                        late_windows.append(start)
                    continue
                bucket = windows.get(start)
                cur = bucket.get(k) if bucket is not None else None
                if is_count:
                    if cur is None:
                        updates.append((start, bucket, 1, ts))
                    else:
                        updates.append((start, bucket, cur[0] + 1, cur[1] if cur[1] > ts else ts))
                elif cur is None:
                    updates.append((start, bucket, add(init(), v), ts))
                else:
                    updates.append((start, bucket, add(cur[0], v),
                                    cur[1] if cur[1] > ts else ts))
            if late:
                ctx.late(late)
                if late_windows is not None:  # late="dead-letter"
                    for start in late_windows:
                        fail(rec, late_window(start, start + size, st, grace))
            for start, bucket, agg, mts in updates:
                if bucket is None:
                    bucket = windows.get(start)
                    if bucket is None:
                        bucket = windows[start] = {}
                        bisect.insort(starts, start)
                bucket[k] = (agg, mts)
                if not final:
                    append(Record(k, result(agg), mts, (start, start + size), rec.origin))
            if starts and starts[0] + size <= close:
                proc._expire(close, out)
        except Exception as e:
            del out[mark:]
            fail(rec, e)
    return out


# ---- stream-table joins ---------------------------------------------------------------------------

def _stream_table_sink(proc: StreamTableJoinProcessor, keys: list, values: list,
                       timestamps: list, positions: Sequence[int], source: str,
                       fail: Fail, parts: list | None = None,
                       part: int = 0) -> list[OutputRecord]:
    """The stream side over columns when a sink is the join's only output: the outputs are
    built as plain tuples and made the sink's ``OutputRecord``s by one C-level map (cheaper
    than a ``tuple.__new__`` call per record from the loop); a failing record's position is
    found from where the keys' iterator stands. With ``parts`` (a partition per row), only
    the rows of partition ``part`` (this task's)."""
    get = proc.table.data.get
    joiner = proc.joiner
    left_join = proc.left_join
    ctx = proc.ctx
    new = tuple.__new__
    out: list = []
    append = out.append
    # An inner join looks the rows up by one C-level map (a null key finds no row); an
    # unhashable key makes map() raise before any joiner call, and the general loop
    # reports it. A record with a null key or value is counted as skipped, a record
    # without a row gives nothing.
    rows = None
    if not left_join and parts is None:
        try:
            rows = list(map(get, keys))
        except TypeError:
            pass
    if rows is not None and _speedups is not None:
        # the loop below compiled (streamdsl/_speedups.pyx), the sink's records allocated
        # directly
        def failed(i: int, e: Exception) -> None:
            fail(Record(keys[i], values[i], timestamps[i], None, (source, positions[i])), e)
        got = _speedups.stream_table_to_sink(
            keys if type(keys) is list else list(keys),
            values if type(values) is list else list(values),
            timestamps if type(timestamps) is list else list(timestamps), rows, joiner,
            failed, OutputRecord)
        if got is not None:
            if got[1]:
                ctx.skipped(got[1])
            return got[0]
    if rows is not None:
        skipped = 0
        key_it = iter(keys)
        for k, v, ts, row in zip(key_it, values, timestamps, rows):
            if row is not None:
                if v is None:
                    skipped += 1
                    continue
                try:
                    append((k, joiner(v, row), ts, None))
                except Exception as e:
                    p = positions[len(keys) - length_hint(key_it) - 1]
                    fail(Record(k, v, ts, None, (source, p)), e)
            elif k is None or v is None:
                skipped += 1
        if skipped:
            ctx.skipped(skipped)
    else:
        data = zip(keys, values, timestamps, positions)
        if parts is not None:
            data = compress(data, map(part.__eq__, parts))
        for k, v, ts, p in data:
            if k is None or v is None:
                ctx.skipped()
                continue
            try:
                row = get(k)
                if row is not None or left_join:
                    append((k, joiner(v, row), ts, None))
            except Exception as e:
                fail(Record(k, v, ts, None, (source, p)), e)
    return list(map(new, repeat(OutputRecord), out))


# ---- sinks -----------------------------------------------------------------------------------------

def _sink_columns(node: Node) -> Callable:
    """``(keys, values, timestamps, positions, source, fail) -> [OutputRecord]``: the sink's
    records of a run of columns (window None), by one C-level map."""
    new = tuple.__new__

    def to_sink(keys: list, values: list, timestamps: list, positions: Sequence[int],
                source: str, fail: Fail, parts: list | None = None,
                part: int = 0) -> list[OutputRecord]:
        return list(map(new, repeat(OutputRecord), zip(keys, values, timestamps, repeat(None))))
    return to_sink


# ---- the catalogue ---------------------------------------------------------------------------------

FAST_PATHS: tuple[FastPath, ...] = (
    FastPath("stateless-batch", _LINEAR_KINDS, BATCH, StatelessProcessor.process_batch,
             lambda node, port: codegen.compile_batch(node) is not None,
             _stateless_batch,
             "a chain of filter/map/key_by/map_kv/peek (a flat-map last) as one generated loop, "
             "simple expressions inlined"),
    FastPath("table-source-batch", ("Source",), BATCH, TableSourceProcessor.process_batch,
             lambda node, port: isinstance(node, Source) and node.table,
             tablerows.table_source_batch,
             "a table source's run in one pass (null keys skipped), carrying sequence numbers "
             "to a join"),
    FastPath("table-filter-batch", ("TableFilter",), BATCH, TableFilterProcessor.process_batch,
             lambda node, port: True, tablerows.compile_table_filter,
             "a table filter as one generated loop, its predicate inlined, carrying sequence "
             "numbers to a join"),
    FastPath("tumbling-batch", ("Aggregate",), BATCH, TimeWindowAggregate.process_batch,
             _tumbling_applies, _tumbling_batch,
             "a tumbling window's loop with the window computed in place, a count added "
             "without a call, and a call-free loop for emit-final counts"),
    FastPath("hopping-batch", ("Aggregate",), BATCH, TimeWindowAggregate.process_batch,
             _hopping_applies, _hopping_batch,
             "a hopping window's loop with each record's windows computed in place (a range "
             "of starts) and a count added without a call"),
    FastPath("window-close-tail", ("Aggregate",), BATCH, TimeWindowAggregate.process_batch,
             _close_tail_applies, partial(_tumbling_batch, rows=CLOSED),
             "an emit-final tumbling count feeding only a fused tail hands it the windows it "
             "closes (Closed): the tail makes each window's rows key by key, the close and "
             "the tail one loop"),
    FastPath("tumbling-columns", ("Aggregate",), COLUMNS, TimeWindowAggregate.process_batch,
             _tumbling_applies, _tumbling_columns,
             "the tumbling loop over the columns of the columnar ingest"),
    FastPath("tumbling-columns-tasks", ("Aggregate",), COLUMNS_TASKS,
             TimeWindowAggregate.process_batch, _tumbling_applies, _tumbling_tasks,
             "the tumbling loop over several tasks' rows of a run at once, each task's state "
             "and stream time kept apart (several partitions)"),
    FastPath("stream-table-join-to-sink", ("StreamTableJoin",), COLUMNS_TO_SINK,
             StreamTableJoinProcessor.process_batch,
             lambda node, port: isinstance(node, StreamTableJoin) and port == "left",
             lambda proc: partial(_stream_table_sink, proc),
             "stream records looked up by one map() and made the sink's OutputRecords by one "
             "map()"),
    FastPath("sink-columns", ("Sink",), COLUMNS_TO_SINK, OutputRecord,
             lambda node, port: True, _sink_columns,
             "the columns of a source's stateless stages made the sink's OutputRecords by one "
             "map() (no Record per input)"),
    FastPath("columnar-ingest", ("Source",), INGEST_COLUMNS, make_ingest_items,
             lambda node, port: isinstance(node, Source),
             codegen.compile_columns,
             "in-memory items ingested into columns, the stateless stages after the source "
             "applied to the columns"),
    FastPath("fused-tail", ("TableFilter", *_LINEAR_KINDS), TAIL, Processor.process_batch,
             lambda node, port: True, codegen.compile_tail,
             "row-local operators down to a sink as one loop building the sink's OutputRecords"),
    FastPath("agg-inline", ("Aggregate", "TableAggregate"), AGG_OPS, build_agg_ops,
             lambda node, port: codegen.compile_agg(node.aggregator) is not None,
             codegen.compile_agg,
             "an agg(...) of count/sum/min/max/avg/first/last: its add, subtract and result generated as "
             "one function each, the fields' expressions inlined"),
    FastPath("merge-prefilter", ("Source",), MERGE, merge_inputs,
             lambda node, port: isinstance(node, Source) and not node.table
             and node.key is None,
             codegen.compile_prefilter,
             "a merged keyless topic's runs filtered before records are built, when the "
             "filter after the source reads int fields only (evaluated by C-level maps)"),
    FastPath("ordered-run-merge", ("Source",), MERGE, merge_inputs,
             lambda node, port: isinstance(node, Source), merge.merge_runs,
             "in-memory inputs merged in runs: when every topic's run is in timestamp order, "
             "up to the end of the run that ends first in one stable sort"),
)

_BY_NAME = {fp.name: fp for fp in FAST_PATHS}


def find(name: str, node: Node, port: str = "in") -> FastPath | None:
    """The registered fast path ``name`` if it serves ``node`` on ``port``, else None."""
    fp = _BY_NAME[name]
    if node.kind not in fp.kinds or not fp.applies(node, port):
        return None
    return fp
