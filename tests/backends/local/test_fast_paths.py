"""Every fast path the local backend registers (``backends/local/fastpaths.py``) equals the
kernel rule it names, tested the same way for each: random batches (cut anywhere), random
interleavings of inputs, user functions that raise on some records, and, for stateful
operators, a snapshot/restore in the middle of the input. A fast path registered without a
case here fails ``test_every_registered_fast_path_has_a_property_test``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.backends.local import codegen, fastpaths, merge
from streamdsl.backends.local.fastpaths import FAST_PATHS, Rows
from streamdsl.ir.nodes import Fused
from streamdsl.optimize import optimize
from streamdsl.runtime.build import make_processor
from streamdsl.runtime.failures import LateRecord
from streamdsl.runtime.ingest import make_ingest_items
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.ordering import merge_by_timestamp
from streamdsl.runtime.records import Record
from streamdsl.runtime.stateless import StageError


class Boom(Exception):
    pass


def boom_on_7(x: Any) -> Any:
    if x == 7 or (isinstance(x, dict) and x.get("v") == 7):
        raise Boom(repr(x))
    return x


def _node(topo: sd.Topology, kind: str, optimized: bool = False):
    plan = optimize(topo.plan()) if optimized else topo.plan()
    return next(n for n in plan.topological() if n.kind == kind)


def _sig(recs) -> list[tuple]:
    """Every slot of a record (rows and OutputRecords: their four fields, origin None)."""
    out = []
    for r in recs:
        if isinstance(r, Record):
            out.append((r.key, repr(r.value), r.ts, r.window, r.origin))
        else:
            k, v, ts, w = r
            out.append((k, repr(v), ts, w, None))
    return out


def _chunks(items: list, cuts: list[int]) -> list[list]:
    bounds = sorted({0, len(items), *[c for c in cuts if c <= len(items)]})
    return [items[lo:hi] for lo, hi in zip(bounds, bounds[1:])]


def _failures() -> tuple[list, Callable]:
    failed: list = []

    def fail(rec: Record, exc: Exception) -> None:
        if isinstance(exc, LateRecord):  # late="dead-letter": its window and stream time
            failed.append(("late", rec.origin, exc.window, exc.stream_time, exc.reason))
            return
        err = exc.error if isinstance(exc, StageError) else exc
        assert isinstance(err, (Boom, TypeError, ZeroDivisionError, KeyError)), repr(err)
        name = exc.stage.name if isinstance(exc, StageError) else None
        failed.append((name, rec.origin, type(err).__name__))
    return failed, fail


cuts = st.lists(st.integers(min_value=0, max_value=30), max_size=4)
keys = st.sampled_from(["x", "x", "y", 3, None, ("t", 1)])
small = st.sampled_from([0, 1, 2, 7, 9, None])


def _counts(m: Metrics) -> tuple:
    """What the drop rules count (``runtime/drops.py``): a fast path must count the same."""
    return (m.skipped, dict(m.skipped_by_node), m.missing_field, dict(m.missing_field_by_node),
            m.late, dict(m.late_by_node))


def _group_key(s, key):
    """A ``group_by``'s re-key alone (a KeyBy dropping null keys), as a stateless stage."""
    from streamdsl.ir.fn import as_fn
    from streamdsl.ir.nodes import KeyBy
    return s._then(KeyBy, name=None, site=None, key_changing=True, fn=as_fn(key), drop_null=True)


# ---- stateless-batch ---------------------------------------------------------------------------

STAGES = {
    "filter-expr": lambda s: s.filter(sd.col("v") > 1),
    "filter-fn": lambda s: s.filter(lambda v: boom_on_7(v)["v"] != 2),
    "map-expr": lambda s: s.map(sd.col("v") * 2),
    "map-fn": lambda s: s.map(lambda v: {"v": boom_on_7(v)["v"]} if isinstance(v, dict) else {"v": v}),
    "key_by-expr": lambda s: s.key_by(sd.col("v")),
    "key_by-fn": lambda s: s.key_by(lambda v: None if v["v"] == 0 else v["v"] % 2),
    "map_kv": lambda s: s.map_kv(lambda k, v: (k, {"v": v["v"], "k": boom_on_7(v)["v"]})),
    "peek": lambda s: s.peek(lambda k, v: boom_on_7(v)),
    # over int fields: C-level maps over the columns when every value is an int
    "filter-int-mod": lambda s: s.filter(sd.col("v") % 3 == 0),
    "filter-int-arith": lambda s: s.filter((sd.col("v") * 2 - sd.col("w") >= 1)
                                           | (4 // sd.col("v") == 2)),
    # fields some values lack (and values that are not mappings): drops that are counted
    "filter-missing": lambda s: s.filter((sd.col("w") > 0) | (sd.col("v") == 9)),
    "filter-not-missing": lambda s: s.filter(~(sd.col("w") == 1)),
    "filter-is-null": lambda s: s.filter(sd.col("w").is_null()),
    "group_key-expr": lambda s: _group_key(s, sd.col("w")),
    "group_key-fn": lambda s: _group_key(s, lambda v: v.get("w") if isinstance(v, dict) else v),
}
LAST = {**STAGES,
        "flat_map": lambda s: s.flat_map(lambda v: [v] * (boom_on_7(v)["v"] % 3)),
        "flat_map_kv": lambda s: s.flat_map_kv(lambda k, v: [(k, v), (boom_on_7(v)["v"], v)])}


def _stateless_node(names: list[str]):
    t = sd.Topology("sl")
    s = t.stream("in")
    for n in names[:-1]:
        s = STAGES[n](s)
    LAST[names[-1]](s).to("out")
    plan = optimize(t.plan())
    (node,) = [n for n in plan.topological() if n.kind not in ("Source", "Sink")]
    return node


dict_vals = st.builds(lambda v: {"v": v}, small) | st.builds(lambda v, w: {"v": v, "w": w},
                                                              small, small) \
    | st.sampled_from([{}, 3, None, "text"])  # no field v, not a mapping, a tombstone
stage_names = st.lists(st.sampled_from(sorted(STAGES)), min_size=0, max_size=3)


def check_stateless_batch(data: st.DataObject) -> None:
    names = data.draw(stage_names) + [data.draw(st.sampled_from(sorted(LAST)))]
    node = _stateless_node(names)
    fp = fastpaths.find("stateless-batch", node)
    assert fp is not None, names
    recs = [Record(k, v, i, None, ("in", i)) for i, (k, v) in
            enumerate(data.draw(st.lists(st.tuples(keys, dict_vals), max_size=20)))]
    ref_metrics, got_metrics = Metrics(), Metrics()
    proc = make_processor(node, ref_metrics)
    fast = fp.build(make_processor(node, got_metrics))
    ref_failed, ref_fail = _failures()
    got_failed, got_fail = _failures()
    ref, got = [], []
    for chunk in _chunks(recs, data.draw(cuts)):
        ref += fp.reference(proc, "in", chunk, ref_fail)
        got += fast("in", chunk, got_fail)
    assert (_sig(got), got_failed, _counts(got_metrics)) == \
        (_sig(ref), ref_failed, _counts(ref_metrics)), names
    # carrying sequence numbers (upstream of an operator with several inputs): the same
    # outputs, each with its input's number (the reference: one input record at a time)
    seq_metrics = Metrics()
    with_seqs = fp.build(make_processor(node, seq_metrics), seqs=True)
    seqs = sorted(data.draw(st.lists(st.integers(0, 1_000), min_size=len(recs),
                                     max_size=len(recs), unique=True)))
    one = make_processor(node, Metrics())
    ref_seqs, got, got_seqs = [], [], []
    got_failed.clear()
    for rec, sq in zip(recs, seqs):
        ref_seqs += [sq] * len(fp.reference(one, "in", [rec], lambda r, e: None))
    for chunk in _chunks(list(range(len(recs))), data.draw(cuts)):
        outs, oseqs = with_seqs("in", [recs[i] for i in chunk], got_fail, [seqs[i] for i in chunk])
        got += outs
        got_seqs += oseqs
    assert (_sig(got), got_seqs, got_failed, _counts(seq_metrics)) == \
        (_sig(ref), ref_seqs, ref_failed, _counts(ref_metrics)), names


# ---- table sources and filters -----------------------------------------------------------------

TABLE_PREDICATES = {
    "expr": sd.col("v") > 1,
    "isin": sd.col("v").isin((0, 2, 9)),
    "missing": sd.col("w") == 1,                 # some rows lack w: counted when dropped
    "fn": lambda v: boom_on_7(v)["v"] != 2,
    "key-expr": sd.key() == "x",
}


def _table_node(kind: str, pred: str):
    t = sd.Topology("tb")
    tab = t.table("in")
    if kind == "TableFilter":
        tab = tab.filter(TABLE_PREDICATES[pred])
    tab.to_stream().to("out")
    return _node(t, kind)


def _check_row_batch(data: st.DataObject, name: str, node) -> None:
    """``name``'s fast path over ``node`` equals its processor's ``process_batch`` (random
    cuts), and with sequence numbers gives each output its input's number."""
    fp = fastpaths.find(name, node)
    assert fp is not None
    recs = [Record(k, v, i, None, ("in", i)) for i, (k, v) in
            enumerate(data.draw(st.lists(st.tuples(keys, dict_vals), max_size=20)))]
    ref_metrics, got_metrics, seq_metrics = Metrics(), Metrics(), Metrics()
    proc = make_processor(node, ref_metrics)
    fast = fp.build(make_processor(node, got_metrics))
    with_seqs = fp.build(make_processor(node, seq_metrics), seqs=True)
    ref_failed, ref_fail = _failures()
    got_failed, got_fail = _failures()
    seq_failed, seq_fail = _failures()
    seqs = sorted(data.draw(st.lists(st.integers(0, 1_000), min_size=len(recs),
                                     max_size=len(recs), unique=True)))
    one = make_processor(node, Metrics())
    ref_seqs = []
    for rec, sq in zip(recs, seqs):
        ref_seqs += [sq] * len(fp.reference(one, "in", [rec], lambda r, e: None))
    ref, got, sgot, sgot_seqs = [], [], [], []
    for chunk in _chunks(list(range(len(recs))), data.draw(cuts)):
        batch = [recs[i] for i in chunk]
        ref += fp.reference(proc, "in", batch, ref_fail)
        got += fast("in", batch, got_fail)
        outs, oseqs = with_seqs("in", batch, seq_fail, [seqs[i] for i in chunk])
        sgot += outs
        sgot_seqs += oseqs
    assert (_sig(got), got_failed, _counts(got_metrics)) == \
        (_sig(ref), ref_failed, _counts(ref_metrics))
    assert (_sig(sgot), sgot_seqs, seq_failed, _counts(seq_metrics)) == \
        (_sig(ref), ref_seqs, ref_failed, _counts(ref_metrics))


def check_table_source_batch(data: st.DataObject) -> None:
    _check_row_batch(data, "table-source-batch", _table_node("Source", ""))


def check_table_filter_batch(data: st.DataObject) -> None:
    pred = data.draw(st.sampled_from(sorted(TABLE_PREDICATES)))
    _check_row_batch(data, "table-filter-batch", _table_node("TableFilter", pred))


# ---- tumbling windows --------------------------------------------------------------------------

AGGREGATIONS = {
    "count": lambda w: w.count(),
    "aggregate": lambda w: w.aggregate(0, lambda agg, v: agg + 10 // v["v"]),  # raises on 0
    "reduce": lambda w: w.reduce(lambda a, b: {"v": boom_on_7(a)["v"] + b["v"]}),
    "agg": lambda w: w.agg(n=sd.count(), total=sd.sum("v")),
}


def _tumbling_node(agg: str, emit: str, grace: int, late: str = "drop"):
    t = sd.Topology("tw")
    AGGREGATIONS[agg](t.stream("in").group_by_key()
                      .window(sd.tumbling(seconds=10, grace=grace), emit=emit, late=late)
                      ).to_stream().to("out")
    return _node(t, "Aggregate")


tumbling_inputs = st.lists(st.tuples(keys | st.just(["unhashable"]),
                                     st.builds(lambda v: {"v": v}, small) | st.none(),
                                     st.integers(min_value=-3_000, max_value=8_000)
                                     | st.sampled_from([30_000, -12_000, -25_000])),  # late ones
                           max_size=30)


def _timestamps(raw) -> list[tuple]:
    """Steps -> timestamps: mostly increasing, some out of order (and some late)."""
    out, ts = [], 0
    for k, v, step in raw:
        ts = max(0, ts + step)
        out.append((k, v, ts))
    return out


def _drive_stateful(node, items: list, chunks: list[list], snap_at: int,
                    run: Callable[[Any, list, Callable], list]) -> tuple:
    """Feed ``chunks`` through ``run(proc, chunk, fail)``; at chunk ``snap_at`` the state moves
    into a fresh processor by snapshot/restore. Everything observable: outputs, failures,
    state, what closing emits, and the counts."""
    metrics = Metrics()
    proc = make_processor(node, metrics)
    failed, fail = _failures()
    out: list = []
    for i, chunk in enumerate(chunks):
        if i == snap_at:
            snap = proc.snapshot()
            proc = make_processor(node, metrics)
            proc.restore(copy.deepcopy(snap))
        out += run(proc, chunk, fail)
    state = proc.snapshot()
    try:
        end = _sig(proc.on_end())
    except Exception as e:  # a user function raising while windows close
        end = type(e).__name__
    return (_sig(out), failed, repr(state), end, metrics.late, metrics.skipped)


def _process_one_by_one(proc, chunk, fail):
    """``process`` record by record, as ``runtime.drive`` calls it (late records it met are
    handed over after each call)."""
    out = []
    for port, rec in chunk:
        try:
            out += proc.process(port, rec)
        except Exception as e:
            proc.ctx.drain(fail)
            fail(rec, e)
            continue
        proc.ctx.drain(fail)
    return out


def _tumbling_case(data: st.DataObject):
    agg = data.draw(st.sampled_from(sorted(AGGREGATIONS)))
    emit = data.draw(st.sampled_from(["changes", "final"]))
    node = _tumbling_node(agg, emit, data.draw(st.sampled_from([0, 2_000])),
                          data.draw(st.sampled_from(["drop", "dead-letter"])))
    items = [("in", Record(k, v, ts, None, ("in", i)))
             for i, (k, v, ts) in enumerate(_timestamps(data.draw(tumbling_inputs)))]
    chunks = _chunks(items, data.draw(cuts))
    snap_at = data.draw(st.integers(min_value=0, max_value=len(chunks)))
    rows = emit == "final" and data.draw(st.booleans())
    return node, items, chunks, snap_at, rows


def check_tumbling_batch(data: st.DataObject) -> None:
    node, items, chunks, snap_at, rows = _tumbling_case(data)
    fp = fastpaths.find("tumbling-batch", node)
    reference = _drive_stateful(node, items, [items], 1, _process_one_by_one)
    assert _drive_stateful(node, items, chunks, snap_at, lambda p, c, f: fp.reference(
        p, "in", [r for _, r in c], f)) == reference

    def fast(proc, chunk, fail):
        out = fp.build(proc, rows=rows)("in", [r for _, r in chunk], fail)
        assert not rows or not out or type(out) is Rows
        return out
    got = _drive_stateful(node, items, chunks, snap_at, fast)
    if rows:  # rows carry no origin; a window's results carry none either
        assert [s[4] for s in reference[0]] == [None] * len(reference[0])
    assert got == reference
    if node.emit == "final":
        # carrying sequence numbers (upstream of a join): each result gets the number of
        # the input record whose processing emitted it, as record at a time
        seqs = sorted(data.draw(st.lists(st.integers(0, 1_000), min_size=len(items),
                                         max_size=len(items), unique=True)))
        one = make_processor(node, Metrics())
        ref_seqs = []
        for (port, rec), sq in zip(items, seqs):
            ref_seqs += [sq] * len(_process_one_by_one(one, [(port, rec)], lambda r, e: None))
        got_seqs = []

        def with_seqs(proc, chunk, fail):
            sq = [seqs[r.origin[1]] for _, r in chunk]
            outs, oseqs = fp.build(proc, seqs=True)("in", [r for _, r in chunk], fail, sq)
            got_seqs.extend(oseqs)
            return outs
        assert _drive_stateful(node, items, chunks, snap_at, with_seqs) == reference
        assert got_seqs == ref_seqs


def check_window_close_tail(data: st.DataObject) -> None:
    """An emit-final tumbling count handing over the windows it closes (``Closed``) equals
    the kernel's records; the fused tail reading them is ``check_fused_tail``'s "closed"
    case. Through the batch, columns and tasks entries (``rows=CLOSED``)."""
    node = _tumbling_node("count", "final", data.draw(st.sampled_from([0, 2_000])),
                          data.draw(st.sampled_from(["drop", "dead-letter"])))
    fp = fastpaths.find("window-close-tail", node)
    assert fp is not None
    assert fastpaths.find("window-close-tail", _tumbling_node("agg", "final", 0)) is None
    assert fastpaths.find("window-close-tail", _tumbling_node("count", "changes", 0)) is None
    items = [("in", Record(k, v, ts, None, ("in", i)))
             for i, (k, v, ts) in enumerate(_timestamps(data.draw(tumbling_inputs)))]
    chunks = _chunks(items, data.draw(cuts))
    snap_at = data.draw(st.integers(min_value=0, max_value=len(chunks)))
    reference = _drive_stateful(node, items, [items], 1, _process_one_by_one)
    entry = data.draw(st.sampled_from(["batch", "columns", "tasks"]))

    def fast(proc, chunk, fail):
        recs = [r for _, r in chunk]
        if entry == "batch":
            out = fp.build(proc)("in", recs, fail)
        else:
            cols = ([r.key for r in recs], [r.value for r in recs], [r.ts for r in recs],
                    [r.origin[1] for r in recs], "in", fail)
            if entry == "columns":
                out = fastpaths.find("tumbling-columns", node).build(
                    proc, rows=fastpaths.CLOSED)(*cols)
            else:  # one task of one: every row in partition 0
                (out,) = fastpaths.find("tumbling-columns-tasks", node).build(
                    [proc], rows=fastpaths.CLOSED)(*cols, [0] * len(recs))
        assert not out or type(out) is fastpaths.Closed
        return fastpaths.closed_rows(out) if out else out
    assert _drive_stateful(node, items, chunks, snap_at, fast) == reference


def check_hopping_batch(data: st.DataObject) -> None:
    """Hopping windows (advance dividing the size or not; late records, dead-lettered per
    window or dropped; raising aggregators) against the kernel record by record."""
    agg = data.draw(st.sampled_from(sorted(AGGREGATIONS)))
    emit = data.draw(st.sampled_from(["changes", "final"]))
    size, adv = data.draw(st.sampled_from([(10, 5), (10, 3), (10, 10), (4, 1)]))
    t = sd.Topology("hw")
    AGGREGATIONS[agg](t.stream("in").group_by_key().window(
        sd.hopping(sd.seconds(size), advance=sd.seconds(adv),
                   grace=data.draw(st.sampled_from([0, 2_000]))),
        emit=emit, late=data.draw(st.sampled_from(["drop", "dead-letter"])))).to_stream().to("out")
    node = _node(t, "Aggregate")
    items = [("in", Record(k, v, ts, None, ("in", i)))
             for i, (k, v, ts) in enumerate(_timestamps(data.draw(tumbling_inputs)))]
    chunks = _chunks(items, data.draw(cuts))
    snap_at = data.draw(st.integers(min_value=0, max_value=len(chunks)))
    fp = fastpaths.find("hopping-batch", node)
    assert fp is not None and fastpaths.find("tumbling-batch", node) is None
    reference = _drive_stateful(node, items, [items], 1, _process_one_by_one)
    got = _drive_stateful(node, items, chunks, snap_at, lambda p, c, f: fp.build(p)(
        "in", [r for _, r in c], f))
    assert got == reference


def _partitions_of(data: st.DataObject, n_items: int) -> tuple[list[int], int]:
    """A partition per row (of 3) and the partition a task takes."""
    parts = data.draw(st.lists(st.integers(0, 2), min_size=n_items, max_size=n_items))
    return parts, data.draw(st.integers(0, 2))


def check_tumbling_columns(data: st.DataObject) -> None:
    """The columns entry, alone or as one task of several rows' partitions (``parts``: it
    takes the rows of its own partition only)."""
    node, items, chunks, snap_at, rows = _tumbling_case(data)
    fp = fastpaths.find("tumbling-columns", node)
    parts, part = _partitions_of(data, len(items)) if data.draw(st.booleans()) else (None, 0)
    mine = items if parts is None else [it for it, q in zip(items, parts) if q == part]
    reference = _drive_stateful(node, mine, [mine], 1, _process_one_by_one)
    where = {id(r): i for i, (_, r) in enumerate(items)}

    def fast(proc, chunk, fail):
        recs = [r for _, r in chunk]
        chunk_parts = None if parts is None else [parts[where[id(r)]] for r in recs]
        return fp.build(proc, rows=rows)([r.key for r in recs], [r.value for r in recs],
                                         [r.ts for r in recs], [r.origin[1] for r in recs],
                                         "in", fail, chunk_parts, part)
    assert _drive_stateful(node, items, chunks, snap_at, fast) == reference


def check_tumbling_columns_tasks(data: st.DataObject) -> None:
    """Three tasks' rows in one pass equal each task's processor over its own rows."""
    node, items, chunks, snap_at, rows = _tumbling_case(data)
    fp = fastpaths.find("tumbling-columns-tasks", node)
    parts, _ = _partitions_of(data, len(items))
    metrics = Metrics()
    refs = [make_processor(node, metrics) for _ in range(3)]
    ref_failed, ref_fail = _failures()
    ref_out: list = [[] for _ in range(3)]
    for (port, rec), q in zip(items, parts):
        ref_out[q] += _process_one_by_one(refs[q], [(port, rec)], ref_fail)
    fast_metrics = Metrics()
    procs = [make_processor(node, fast_metrics) for _ in range(3)]
    got_failed, got_fail = _failures()
    got_out: list = [[] for _ in range(3)]
    pos = 0
    for i, chunk in enumerate(chunks):
        if i == snap_at:
            snaps = [p.snapshot() for p in procs]
            procs = [make_processor(node, fast_metrics) for _ in range(3)]
            for p, snap in zip(procs, snaps):
                p.restore(copy.deepcopy(snap))
        recs = [r for _, r in chunk]
        outs = fp.build(procs, rows=rows)(
            [r.key for r in recs], [r.value for r in recs], [r.ts for r in recs],
            [r.origin[1] for r in recs], "in", got_fail, parts[pos:pos + len(recs)])
        for q in range(3):
            got_out[q] += outs[q]
        pos += len(recs)
    assert [_sig(o) for o in got_out] == [_sig(o) for o in ref_out]
    assert sorted(got_failed, key=repr) == sorted(ref_failed, key=repr)
    assert [repr(p.snapshot()) for p in procs] == [repr(p.snapshot()) for p in refs]
    assert [_sig(p.on_end()) for p in procs] == [_sig(p.on_end()) for p in refs]
    assert (fast_metrics.late, fast_metrics.skipped) == (metrics.late, metrics.skipped)


# ---- stream-table join, columns into a sink ------------------------------------------------------

def joiner(left, right):
    if left == 7 or right == 7:
        raise Boom(f"{left}/{right}")
    return (left, right)


def check_stream_table_join_to_sink(data: st.DataObject) -> None:
    how = data.draw(st.sampled_from(["join", "left_join"]))
    t = sd.Topology("st")
    getattr(t.stream("s"), how)(t.table("t"), joiner).to("out")
    node = _node(t, "StreamTableJoin")
    fp = fastpaths.find("stream-table-join-to-sink", node, "left")
    assert fastpaths.find("stream-table-join-to-sink", node, "right") is None
    raw = data.draw(st.lists(st.tuples(st.booleans(), keys | st.just(["unhashable"]), small),
                             max_size=30))
    items = [("left" if left else "right", Record(k, v, i, None, ("s" if left else "t", i)))
             for i, (left, k, v) in enumerate(raw)]
    chunks = _chunks(items, data.draw(cuts))
    snap_at = data.draw(st.integers(min_value=0, max_value=len(chunks)))
    reference = _drive_stateful(node, items, [items], 1, _process_one_by_one)
    # as one task of several partitions' rows: the stream rows of other partitions are
    # someone else's, so they give nothing here (``parts``)
    other = data.draw(st.booleans())

    def fast(proc, chunk, fail):
        """Runs of stream records as columns into the sink, table records by the kernel."""
        out, i = [], 0
        while i < len(chunk):
            j = i
            while j < len(chunk) and chunk[j][0] == chunk[i][0]:
                j += 1
            recs = [r for _, r in chunk[i:j]]
            if chunk[i][0] == "left":
                cols = ([r.key for r in recs], [r.value for r in recs], [r.ts for r in recs],
                        [r.origin[1] for r in recs], "s", fail)
                if other:  # each of this run's rows twice: as partition 1's (ours) and 0's
                    cols = tuple(c + c if isinstance(c, list) else c for c in cols)
                    outs = fp.build(proc)(*cols, [1] * len(recs) + [0] * len(recs), 1)
                else:
                    outs = fp.build(proc)(*cols)
                out += [Record(o.key, o.value, o.timestamp, o.window, None) for o in outs]
            else:
                out += proc.process_batch("right", recs, fail)
            i = j
        return out
    got = _drive_stateful(node, items, chunks, snap_at, fast)
    # the sink's OutputRecords carry no origin
    assert got[0] == [s[:4] + (None,) for s in reference[0]] and got[1:] == reference[1:]


# ---- columnar ingest ------------------------------------------------------------------------------

good_items = st.builds(lambda k, ts, v: {"k": k, "ts": ts, "v": v}, keys, st.integers(0, 50),
                       small) | st.builds(lambda k, ts, w: {"k": k, "ts": ts, "v": 1, "w": w},
                                          keys, st.integers(0, 50), small) \
    | st.builds(lambda k, ts, v, w: {"k": k, "ts": ts, "v": v, "w": w},  # ints only
                keys, st.integers(0, 50), st.integers(-3, 9), st.integers(-2, 9))
ingest_items = st.one_of(
    good_items,
    st.just({"k": "x"}),                                     # no timestamp field
    st.just({"ts": 5, "v": 1}),                              # no key field
    st.just({"k": "y", "ts": -4, "v": 1}),                   # negative timestamp
    st.just({"k": "y", "ts": 2.5, "v": 1}),                  # float timestamp, not whole
    st.just({"k": "y", "ts": 4.0, "v": 1}),                  # float timestamp, whole: 4
    st.sampled_from([{"k": "y", "ts": t, "v": 1} for t in    # not finite, or out of range
                     (float("inf"), float("nan"), 1e30, 253_402_300_800_000, 10**20)]),
    st.just({"key": "x", "value": {"k": "x", "ts": 7, "v": 2}, "timestamp": 7}),  # envelope
    st.just({"k": "x", "ts": "1970-01-01T00:00:00.009Z", "v": 1}),  # ISO timestamp
    st.just(("key", {"k": "z", "ts": 3, "v": 1}, 3)),         # (key, value, timestamp)
    st.just(5),                                              # not a dict
)


def check_columnar_ingest(data: st.DataObject) -> None:
    names = data.draw(st.lists(st.sampled_from(sorted(STAGES)), max_size=3))
    t = sd.Topology("ci")
    # a key field, or a keyless source (a plain item's key is None)
    s = t.stream("in", key=data.draw(st.sampled_from(["k", None])), timestamp="ts")
    for n in names:
        s = STAGES[n](s)
    s.group_by_key().count().to_stream().to("out")
    plan = t.plan()
    source = plan.node("source-in")
    stages = [n for n in plan.topological() if n.kind in
              ("Filter", "Map", "KeyBy", "MapKV", "Peek")]
    chain = [(n.name, n) for n in stages]
    fp = fastpaths.find("columnar-ingest", source)
    ref_metrics, got_metrics = Metrics(), Metrics()
    fast = fp.build(source, chain, {n.name: make_processor(n, got_metrics).ctx for n in stages})
    assert fast is not None
    # runs of plain dicts only take the columnar comprehensions, the others the loop
    items = data.draw(st.lists(good_items if data.draw(st.booleans()) else ingest_items,
                               max_size=25))
    ingest = fp.reference(source)
    procs = [make_processor(n, ref_metrics) for n in stages]
    ref_bad, got_bad = [], []
    ref_failed, ref_fail = _failures()
    got_failed, got_fail = _failures()
    ref_cols, got_cols = [], []
    pos = 0
    for chunk in _chunks(items, data.draw(cuts)):
        recs = ingest(chunk, pos, lambda ev, why: ref_bad.append((ev.position, why)))
        mark = len(ref_failed)
        for proc in procs:
            recs = proc.process_batch("in", recs, ref_fail)
        # The reference runs stage by stage over the chunk, so its letters come in stage
        # order; the fast path's contract is the same letters in input order (the order
        # docs/semantics.md documents and the executor writes: record at a time meets a
        # record's letters before the next record's). Sorted stably by position, several
        # letters of one record keep their stage order.
        ref_failed[mark:] = sorted(ref_failed[mark:], key=lambda f: f[1][1])
        ref_cols += [(r.key, repr(r.value), r.ts, r.origin) for r in recs]
        ks, vs, tss, ps = fast(chunk, pos, lambda ev, why: got_bad.append((ev.position, why)),
                               {n.name: got_fail for n in stages})
        got_cols += [(k, repr(v), ts, ("in", p)) for k, v, ts, p in zip(ks, vs, tss, ps)]
        pos += len(chunk)
    assert (got_cols, got_failed, got_bad, _counts(got_metrics)) == \
        (ref_cols, ref_failed, ref_bad, _counts(ref_metrics)), names


def check_sink_columns(data: st.DataObject) -> None:
    """The columns of a source's stateless stages made the sink's records: each row's
    ``OutputRecord(key, value, timestamp, None)``, what the sink makes of its ``Record``."""
    from streamdsl.runtime.records import OutputRecord
    t = sd.Topology("sc")
    t.stream("in").filter(sd.col("v") > 1).to("out")
    fp = fastpaths.find("sink-columns", _node(t, "Sink"))
    rows = data.draw(st.lists(st.tuples(keys, dict_vals, st.integers(0, 50)), max_size=20))
    ks, vs, tss = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    got = fp.build(_node(t, "Sink"))(ks, vs, tss, range(len(rows)), "in", None)
    ref = [fp.reference(r.key, r.value, r.ts, r.window) for r in
           (Record(k, v, ts, None, ("in", i)) for i, (k, v, ts) in enumerate(rows))]
    assert fp.reference is OutputRecord
    assert [(type(r), tuple(r)) for r in got] == [(type(r), tuple(r)) for r in ref]


# ---- fused tails ------------------------------------------------------------------------------------

TAIL_STAGES = {
    "table-filter-expr": lambda s: s.filter(sd.col("n") > 1),
    "table-filter-missing": lambda s: s.filter(sd.col("w") > 1),  # no row has w: counted
    "table-filter-fn": lambda s: s.filter(lambda v: boom_on_7(v["n"]) % 2 == 0),
}


def _closed_windows(chunks: list[list[Record]]) -> tuple[list, list[list[Record]]]:
    """Each chunk's records as closed windows of up to three records each (a key's last
    record in a window wins): ``(Closed of each chunk, the records they stand for in the
    order closing emits them)``."""
    from streamdsl.runtime.ordering import sorted_keys
    closed, flat = [], []
    for c, chunk in enumerate(chunks):
        got = fastpaths.Closed()
        recs = []
        for w0 in range(0, len(chunk), 3):
            bucket = {r.key: (r.value, r.ts) for r in chunk[w0:w0 + 3]}
            window = (c * 100 + w0, c * 100 + w0 + 10)
            ks = sorted_keys(bucket)
            got.append((window, ks, bucket))
            recs += [Record(k, *bucket[k], window, None) for k in ks]
        assert fastpaths.closed_rows(got) == [(r.key, r.value, r.ts, r.window) for r in recs]
        closed.append(got)
        flat.append(recs)
    return closed, flat


def check_fused_tail(data: st.DataObject) -> None:
    """A counted table, then table filters, to_stream and linear stream stages, to a sink."""
    # records, rows, or the windows a tumbling count closed (window-close-tail)
    use_rows = data.draw(st.sampled_from([False, True, fastpaths.CLOSED]))
    first = data.draw(st.lists(st.sampled_from(sorted(TAIL_STAGES)), max_size=2))
    after = data.draw(st.lists(st.sampled_from(sorted(STAGES)), max_size=2))
    if use_rows == fastpaths.CLOSED and data.draw(st.booleans()):
        first, after = first[:1] or ["table-filter-fn"], []  # compiled when the kernel is
    t = sd.Topology("tail")
    s = t.stream("in").group_by_key().agg(n=sd.count(), v=sd.max("v"))
    for n in first:
        s = TAIL_STAGES[n](s)
    s = s.to_stream()
    for n in after:
        s = STAGES[n](s)
    s.to("out")
    plan = t.plan()
    chain = [n for n in plan.topological() if n.kind not in ("Source", "Aggregate", "Repartition")]
    assert all(fastpaths.find("fused-tail", n) for n in chain)
    stages = [(n.name, st_) for n in chain
              for st_ in (n.stages if isinstance(n, Fused) else (n,))]
    ref_metrics, got_metrics = Metrics(), Metrics()
    fn = codegen.compile_tail(stages, rows=use_rows,
                              ctxs={n.name: make_processor(n, got_metrics).ctx for n in chain})
    raw = data.draw(st.lists(st.tuples(keys, st.none() | st.builds(
        lambda n, v: {"n": n, "v": v}, small, small)), max_size=20))
    recs = [Record(k, v, i, None, None if use_rows else ("in", i)) for i, (k, v) in enumerate(raw)]
    chunks = _chunks(recs, data.draw(cuts))
    if use_rows == fastpaths.CLOSED:
        closed, chunks = _closed_windows(chunks)
    procs = [make_processor(n, ref_metrics) for n in chain]
    ref_failed, ref_fail = _failures()
    got_failed, got_fail = _failures()
    ref, got = [], []
    for c, chunk in enumerate(chunks):
        for rec in chunk:  # depth first: each record through the chain before the next
            outs = [rec]
            for proc in procs[:-1]:  # the sink builds OutputRecords of what reaches it
                outs = proc.process_batch("in", outs, ref_fail)
            ref += [(r.key, r.value, r.ts, r.window) for r in outs]
        batch = (closed[c] if use_rows == fastpaths.CLOSED
                 else Rows((r.key, r.value, r.ts, r.window) for r in chunk) if use_rows
                 else chunk)
        got += fn(batch, {name: got_fail for name in {n.name for n in chain}})
    assert (_sig(got), got_failed, _counts(got_metrics)) == \
        (_sig(ref), ref_failed, _counts(ref_metrics)), (first, after)


# ---- the in-memory merge ----------------------------------------------------------------------------

def check_ordered_run_merge(data: st.DataObject) -> None:
    """Topics' records (some runs in timestamp order, some not, many ties) merged run by run
    equal ``merge_by_timestamp`` of the whole topics (ties to the topic declared first)."""
    n_topics = data.draw(st.integers(min_value=2, max_value=3))
    topics = []
    for j in range(n_topics):
        tss = data.draw(st.lists(st.integers(min_value=0, max_value=12), max_size=15))
        if data.draw(st.booleans()):
            tss.sort()
        topics.append([Record(j, None, ts, None, (f"t{j}", i)) for i, ts in enumerate(tss)])
    run_size = data.draw(st.integers(min_value=1, max_value=6))
    size = data.draw(st.integers(min_value=1, max_value=8))
    runs = [[recs[i:i + run_size] for i in range(0, len(recs), run_size)] for recs in topics]
    pending = [list(r) for r in runs]
    # the executor's keys: each topic's running maximum (``merge.running_max``), every run in
    # order; or the timestamps, a run out of order merged record by record
    keyed = data.draw(st.booleans())
    carry = [-(1 << 62)] * n_topics

    def next_run(j: int):
        if not pending[j]:
            return None
        recs = pending[j].pop(0)
        tss = [r.ts for r in recs]
        if keyed:
            tss = merge.running_max(tss, carry[j])
            carry[j] = tss[-1]
            return recs, tss
        return recs, (tss if tss == sorted(tss) else None)
    got: list = []

    def flush(parts) -> None:
        batch = sorted((s, r.origin) for recs, seqs in parts for r, s in zip(recs, seqs))
        assert [s for s, _ in batch] == list(range(len(batch))), "sequence numbers"
        got.extend(origin for _, origin in batch)
    fp = fastpaths.find("ordered-run-merge", _node(_two_sources(), "Source"))
    left = fp.build(n_topics, next_run, size, flush)
    if left is not None:
        j, rest = left
        got.extend(r.origin for r in rest)
        got.extend(r.origin for run in pending[j] for r in run)
    reference = [r.origin for r in merge_by_timestamp(topics, lambda r: r.ts)]
    assert got == reference
    assert fp.build is merge.merge_runs


def check_merge_prefilter(data: st.DataObject) -> None:
    """The pre-filter of a merged keyless topic: None unless every item ingests as a plain
    record (a dict, an int timestamp in range) and the filter's fields are ints; then the
    filter's result per item (what the kernel's filter keeps) and every item's timestamp."""
    pred = data.draw(st.sampled_from([sd.col("v") % 3 == 0, sd.col("v") >= 2,
                                      (sd.col("v") * 2 > sd.col("w")) | (sd.col("w") == 1)]))
    t = sd.Topology("pf")
    t.stream("in", timestamp="ts").filter(pred).to("out")
    plan = t.plan()
    source = plan.node("source-in")
    stage = _node(t, "Filter")
    fp = fastpaths.find("merge-prefilter", source)
    test = fp.build(source, stage)
    assert test is not None
    items = data.draw(st.lists(good_items if data.draw(st.booleans()) else ingest_items,
                               max_size=20))
    got = test(items)
    ingest = make_ingest_items(source)
    bad: list = []
    recs = ingest(items, 0, lambda ev, why: bad.append(ev))
    keep = make_processor(stage, Metrics()).process_batch("in", recs, lambda r, e: None)
    plain = not bad and all(type(r.value) is dict and type(r.value.get("ts")) is int and all(
        type(r.value.get(f)) is int for f in stage.pred.expr.fields()) for r in recs)
    if got is None:  # always allowed: the run is then ingested as records
        return
    assert plain and len(recs) == len(items)
    mask, tss = got
    assert tss == [r.ts for r in recs]
    assert [r.origin for r in compress_(recs, mask)] == [r.origin for r in keep]


def compress_(xs, mask):
    return [x for x, m in zip(xs, mask) if m]


def _two_sources() -> sd.Topology:
    t = sd.Topology("m")
    t.stream("a").merge(t.stream("b")).to("out")
    return t


# ---- agg(...) operations ------------------------------------------------------------------------

AGG_FIELDS = {
    "col": "v",
    "expr": sd.when(sd.col("v") < 3, 1).otherwise(sd.col("w")),
    "arith": sd.col("v") * 2 + sd.col("w"),
    "fn": lambda v: boom_on_7(v)["v"] if isinstance(v, dict) else None,
    "key-expr": sd.key(),   # no key inside an aggregation: None, as compile_value gives
}
agg_values = st.one_of(
    st.builds(lambda v, w: {"v": v, "w": w},
              small | st.sampled_from(["x", 2.5, float("nan"), 1.0, True]),  # 1 == 1.0 == True
              small),
    st.just({"w": 1}), st.just(3), st.just({"v": 7, "w": 0}))


def _agg_spec(data: st.DataObject):
    from streamdsl.ir.aggregators import Aggregator, agg_func
    fields = []
    for i in range(data.draw(st.integers(1, 5))):
        kind = data.draw(st.sampled_from(codegen.AGG_INLINE))
        f = None if kind == "count" and data.draw(st.booleans()) else \
            AGG_FIELDS[data.draw(st.sampled_from(sorted(AGG_FIELDS)))]
        opts = {"ignore_nulls": data.draw(st.booleans())} if kind in ("first", "last") else {}
        fields.append((f"f{i}", agg_func(kind, f, **opts)))
    return Aggregator("agg", fields=tuple(fields))


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as e:  # which exception, from which field, is part of the semantics
        return ("raises", type(e), str(e))


def check_agg_inline(data: st.DataObject) -> None:
    """The generated add, subtract and result against the kernel's, over a sequence of values
    (a raising call leaves the state as it was), and merged states (sessions) through both;
    three aggregations per example."""
    for _ in range(3):
        _check_agg_inline(data)


def _check_agg_inline(data: st.DataObject) -> None:
    spec = _agg_spec(data)
    fp = fastpaths.find("agg-inline", _agg_node(spec))
    got_ops, ref_ops = fp.build(spec), fp.reference(spec)
    states = []
    got, ref = got_ops.init(), ref_ops.init()
    for v in data.draw(st.lists(agg_values, max_size=12)):
        op = "subtract" if data.draw(st.booleans()) else "add"  # subtract: a table's old row
        g = _outcome(getattr(got_ops, op), got, v)
        r = _outcome(getattr(ref_ops, op), ref, v)
        assert repr(g) == repr(r), (spec.describe(), op, v)
        if r[0] == "ok":
            got, ref = g[1], r[1]
            states.append(ref)
        assert repr(_outcome(got_ops.result, got)) == repr(_outcome(ref_ops.result, ref))
    if len(states) >= 2:
        a, b = states[0], states[-1]
        m = _outcome(ref_ops.merge, a, b)
        if m[0] == "ok":
            assert repr(_outcome(got_ops.result, m[1])) == repr(_outcome(ref_ops.result, m[1]))


def _agg_node(spec):
    from streamdsl.ir.nodes import Aggregate
    return Aggregate(name="aggregate-1", site=None, aggregator=spec)


CASES: dict[str, Callable[[st.DataObject], None]] = {
    "agg-inline": check_agg_inline,
    "stateless-batch": check_stateless_batch,
    "table-source-batch": check_table_source_batch,
    "table-filter-batch": check_table_filter_batch,
    "tumbling-batch": check_tumbling_batch,
    "hopping-batch": check_hopping_batch,
    "tumbling-columns": check_tumbling_columns,
    "window-close-tail": check_window_close_tail,
    "tumbling-columns-tasks": check_tumbling_columns_tasks,
    "stream-table-join-to-sink": check_stream_table_join_to_sink,
    "columnar-ingest": check_columnar_ingest,
    "sink-columns": check_sink_columns,
    "fused-tail": check_fused_tail,
    "ordered-run-merge": check_ordered_run_merge,
    "merge-prefilter": check_merge_prefilter,
}


def test_every_registered_fast_path_has_a_property_test():
    assert sorted(CASES) == sorted(fp.name for fp in FAST_PATHS)


@pytest.mark.parametrize("name", [fp.name for fp in FAST_PATHS])
@settings(max_examples=120)
@given(data=st.data())
def test_fast_path_equals_its_kernel_reference(name, data):
    CASES[name](data)


def test_a_fast_path_is_found_only_for_what_it_serves():
    hopping = sd.Topology("h")
    (hopping.stream("in").group_by_key().window(sd.hopping(sd.seconds(10), advance=sd.seconds(5)))
     .count().to_stream().to("out"))
    assert fastpaths.find("tumbling-batch", _node(hopping, "Aggregate")) is None
    assert fastpaths.find("tumbling-batch", _tumbling_node("count", "final", 0)) is not None
    assert fastpaths.find("stateless-batch", _tumbling_node("count", "final", 0)) is None
    assert make_ingest_items is fastpaths.find("columnar-ingest",
                                               _node(_two_sources(), "Source")).reference


@pytest.mark.parametrize("names", [["group_key-expr"], ["filter-missing"],
                                   ["filter-not-missing", "group_key-expr"]])
def test_columnar_ingest_counts_what_its_comprehensions_drop(names):
    """Runs of plain dicts take the columnar comprehensions: the records they drop for a
    missing field or a null group_by key are counted as the kernel counts them (a run where
    a later stage fails goes back to the loop and is counted once)."""
    t = sd.Topology("ci")
    s = t.stream("in", key="k", timestamp="ts")
    for n in names:
        s = STAGES[n](s)
    s.group_by_key().count().to_stream().to("out")
    plan = t.plan()
    stages = [n for n in plan.topological() if n.kind in ("Filter", "KeyBy")]
    items = [{"k": "a", "ts": i, "v": i % 10, "w": (i % 3 or None)} if i % 2 else
             {"k": "a", "ts": i, "v": i % 10} for i in range(20)]
    failing = items + [{"k": "a", "ts": 20, "v": 1, "w": "text"}]  # "text" > 0 raises
    for run in (items, failing):
        ref_metrics, got_metrics = Metrics(), Metrics()
        procs = [make_processor(n, ref_metrics) for n in stages]
        recs = make_ingest_items(plan.node("source-in"))(run, 0, lambda ev, why: None)
        for proc in procs:
            recs = proc.process_batch("in", recs, lambda rec, e: None)
        fast = codegen.compile_columns(plan.node("source-in"), [(n.name, n) for n in stages],
                                       {n.name: make_processor(n, got_metrics).ctx
                                        for n in stages})
        ks, vs, tss, ps = fast(run, 0, lambda ev, why: None,
                               {n.name: (lambda rec, e: None) for n in stages})
        assert [(r.key, r.ts) for r in recs] == list(zip(ks, tss))
        assert _counts(got_metrics) == _counts(ref_metrics)
        assert ref_metrics.missing_field > 0


def test_agg_inline_keeps_the_kernels_choice_between_equal_values():
    """min and max keep the value they have unless the new one is strictly smaller (larger),
    as the builtins do: 1, 1.0 and True are equal and told apart only by their type."""
    from streamdsl.ir.aggregators import Aggregator, agg_func
    spec = Aggregator("agg", fields=tuple((k, agg_func(k, "v")) for k in ("min", "max")))
    fp = fastpaths.find("agg-inline", _agg_node(spec))
    for seq in ([1, 1.0, True], [True, 1.0, 1], [1.0, 2, 2.0, 0, False]):
        got, ref = fp.build(spec), fp.reference(spec)
        g, r = got.init(), ref.init()
        for v in seq:
            g, r = got.add(g, {"v": v}), ref.add(r, {"v": v})
            assert repr(got.result(g)) == repr(ref.result(r)), seq


#: the fast paths that run compiled loops when the compiled kernel is in use (an emit-final
#: count, ``streamdsl._speedups.tumbling_count_final``; a closed windows' table filter to a
#: sink, ``closed_filter_to_sink``; a stream-table join into a sink, ``stream_table_to_sink``):
#: the cases above run them
COMPILED_COUNT = ["tumbling-batch", "tumbling-columns", "tumbling-columns-tasks",
                  "window-close-tail", "fused-tail", "stream-table-join-to-sink"]


@pytest.mark.parametrize("name", COMPILED_COUNT)
@settings(max_examples=60)
@given(data=st.data())
def test_tumbling_fast_paths_equal_the_kernel_with_their_pure_python_loop(name, data):
    """The same cases with the compiled kernel's count loop out of the way: the pure Python
    loop it copies equals the kernel too (tests/core/test_speedups.py checks the compiled
    kernel is in use)."""
    saved = fastpaths._speedups
    fastpaths._speedups = codegen._speedups = None
    try:
        CASES[name](data)
    finally:
        fastpaths._speedups = codegen._speedups = saved


def test_the_count_loop_is_compiled_when_the_kernel_is():
    from streamdsl import _accel
    assert fastpaths._speedups is codegen._speedups is _accel.speedups


@settings(max_examples=200)
@given(xs=st.lists(st.sampled_from([0, 1, -1, 7, 2**62, 2**70, -2**70, True, 1.0, None, "1",
                                    {}, []]), max_size=6),
       top=st.sampled_from([1, 8, 2**62, 2**63 - 1]))
def test_the_columnar_ingests_column_checks_equal_their_pure_python_code(xs, top):
    """``_speedups.all_of_type`` / ``ints_below``, what the columnar ingest checks a run's
    columns with when the kernel is compiled, give what their pure Python code gives."""
    from streamdsl import _speedups
    for t in (int, dict, bool):
        assert _speedups.all_of_type(xs, t) == codegen._all_type_pure(xs, t)
        assert _speedups.all_of_type(tuple(xs), t) == codegen._all_type_pure(xs, t)
    if xs and codegen._all_type_pure(xs, int):
        assert _speedups.ints_below(xs, top) == codegen._ints_below_pure(xs, top)
    elif xs:
        assert _speedups.ints_below(xs, top) is False
    assert codegen._all_type is _speedups.all_of_type
