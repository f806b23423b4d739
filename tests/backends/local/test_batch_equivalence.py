"""The local executor's batched entry points (``feed_many``, ``feed_items``: batches, the ordered-run
merge, columnar runs, fused tails) give exactly what record-at-a-time processing gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.backends.local.executor import Executor
from streamdsl.runtime.records import InputEvent


def _windowed_count():
    t = sd.Topology("w")
    (t.stream("a", key="k", timestamp="ts").filter(sd.col("v") > 0).group_by_key()
        .window(sd.tumbling(seconds=10, grace=sd.seconds(3)), emit="final").count()
        .to_stream().to("out"))
    return t


def _join_and_table():
    t = sd.Topology("j")
    a = t.stream("a", key="k", timestamp="ts")
    b = t.stream("b", key="k", timestamp="ts")
    tbl = t.table("c", key="k", timestamp="ts")
    a.outer_join(b, within=sd.seconds(5)).to("joined")
    b.left_join(tbl).to("enriched")
    return t


def _diamond():
    t = sd.Topology("d")
    s = t.stream("a", key="k", timestamp="ts")
    parts = s.branch(pos=sd.col("v") > 0, otherwise="rest")
    parts["pos"].merge(parts["rest"].map(lambda v: {**v, "v": -v["v"]})).group_by_key().agg(
        n=sd.count(), total=sd.sum("v")).to_stream().to("out")
    return t


def _session():
    t = sd.Topology("s")
    (t.stream("a", key="k", timestamp="ts").group_by_key()
        .window(sd.session(sd.seconds(4), grace=sd.seconds(2))).count().to_stream().to("out"))
    return t


def _enrich():
    t = sd.Topology("e")
    tbl = t.table("c", key="k", timestamp="ts")
    t.stream("a", key="k", timestamp="ts").left_join(tbl, lambda v, row: (v["v"], row)).to("out")
    t.stream("b", key="k", timestamp="ts").join(tbl, lambda v, row: 10 // v["v"]).to("out2")
    return t


def _enrich_one_stream():
    """A stream-table join whose stream is the last input left (the columnar path), with a
    map before it that gives null values for v == 2."""
    t = sd.Topology("e1")
    tbl = t.table("c", key="k", timestamp="ts")
    (t.stream("b", key="k", timestamp="ts").map(lambda v: None if v["v"] == 2 else v)
        .join(tbl, lambda v, row: (10 // v["v"], row)).to("out"))
    return t


def _session_final():
    t = sd.Topology("sf")
    (t.stream("a", key="k", timestamp="ts").group_by_key()
        .window(sd.session(sd.seconds(4), grace=sd.seconds(1)), emit="final")
        .aggregate(0, lambda agg, v: agg + 10 // v["v"], merge=lambda a, b: a + b)  # raises on v == 0
        .to_stream().to("out"))
    return t


def _selection():
    """Nexmark q2's shape: an int filter over columns, a user map (raising on v == 0) into a
    sink: the columnar path to the sink."""
    t = sd.Topology("sel")
    (t.stream("a", timestamp="ts").filter(sd.col("v") % 2 == 1)
        .map(lambda v: {"k": v["k"], "w": 10 // (v["v"] + 1)}).to("out"))
    return t


def _suggestion():
    """Nexmark q3's shape: a filtered stream re-keyed and joined to a filtered table (a
    table source and filter carrying sequence numbers to the join), topics out of order."""
    t = sd.Topology("sug")
    tbl = t.table("c", key="k", timestamp="ts").filter(sd.col("v").isin((1, 2, 3)))
    (t.stream("a", timestamp="ts").filter(sd.col("v") >= 0).key_by("k")
        .join(tbl, lambda v, row: (v["v"], row["v"])).to("out"))
    return t


def _monitor():
    """Nexmark q8's shape: two emit-final tumbling windows joined row by row (the windows'
    batch loops carrying sequence numbers to the join)."""
    t = sd.Topology("mon")
    w = sd.tumbling(seconds=10, grace=sd.seconds(2))
    left = (t.stream("a", timestamp="ts").group_by("k").window(w, emit="final")
            .agg(v=sd.first("v")))
    right = t.stream("b", timestamp="ts").group_by("k").window(w, emit="final").count()
    left.join(right, lambda p, n: (p["v"], n)).to_stream().to("out")
    return t


def _keyed_agg():
    """A non-windowed aggregation on the source's key (no repartition): its tasks share one
    processor, so at several partitions its source is not split by partition."""
    t = sd.Topology("ka")
    (t.stream("a", key="k", timestamp="ts").filter(sd.col("v") != 1).group_by_key()
        .agg(n=sd.count(), total=sd.sum("v")).to_stream().to("out"))
    return t


TOPOLOGIES = {"selection": _selection, "suggestion": _suggestion, "monitor": _monitor,
              "windowed": _windowed_count, "joins": _join_and_table, "diamond": _diamond,
              "session": _session, "enrich": _enrich, "session-final": _session_final,
              "enrich-one-stream": _enrich_one_stream, "keyed-agg": _keyed_agg}

#: partitions the equivalence tests run at: at several, each task's records are batched apart
#: (or, for a source whose operators all keep state by key only, not split at all)
PARTITIONS = [1, 3]

event = st.tuples(st.sampled_from("abc"), st.sampled_from(["x", "y", 3]),
                  st.integers(min_value=0, max_value=40_000), st.integers(min_value=-2, max_value=5))


def _as_documented(outputs: dict, partitions: int) -> dict:
    """``outputs`` as docs/semantics.md ("Partitions and tasks", At sinks) defines them: with
    several partitions, each key's sequence of records (records of different tasks' keys
    interleave in an order that is not part of the results); with one, the exact order."""
    if partitions == 1:
        return outputs
    by_key: dict = {}
    for t, recs in outputs.items():
        for r in recs:
            by_key.setdefault((t, repr(r[0])), []).append(r)
    return by_key


def _run(topo, events, batched: bool, partitions: int = 1):
    plan = topo.plan().with_partitions(partitions)
    ex = Executor(plan, on_error="dead-letter")
    ex.BATCH = 3
    evs = [InputEvent(src, None, {"k": k, "ts": ts, "v": v}, None, i)
           for i, (src, k, ts, v) in enumerate(events) if src in plan.source_topics()]
    if batched:
        ex.feed_many(evs)
    else:
        for ev in evs:
            ex.feed(ev)
    ex.end()
    return (_as_documented({t: [r.as_tuple() for r in recs] for t, recs in ex.outputs.items()},
                           partitions), ex.metrics.to_dict(),
            [(d.source, d.position, d.reason) for d in ex.dead_letters])


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@settings(max_examples=40)
@given(events=st.lists(event, max_size=30))
def test_batched_equals_record_at_a_time(name, partitions, events):
    topo = TOPOLOGIES[name]()
    assert _run(topo, events, True, partitions) == _run(topo, events, False, partitions)


def test_a_source_feeding_only_operators_keyed_by_key_is_not_split_by_partition():
    """At several partitions the batches of a source whose operators all share one step
    between tasks (a stream-table join, an aggregation by key without windows) stay whole
    (explain says so); a windowed operator (stream time per task) needs its tasks' records
    apart, and so does a join of two streams, and so every source feeding the same
    operators."""
    def unsplit(topo):
        return {s.split("-", 1)[1] for s in Executor(topo.plan().with_partitions(3)).unsplit}
    assert unsplit(_enrich()) == {"a", "b", "c"}
    assert unsplit(_keyed_agg()) == {"a"}
    assert unsplit(_windowed_count()) == set()
    # the table feeds only a stream-table join, but that join's stream is split (it also
    # feeds a join of two streams): the table's records go by partition too, or a stream
    # record would meet table rows of later input records
    assert unsplit(_join_and_table()) == set()
    assert Executor(_enrich().plan()).unsplit == set()
    notes = Executor(_enrich().plan().with_partitions(3)).execution_notes()
    assert any(n.startswith("not split by partition: a, b, c") for n in notes), notes


def test_diamond_plans_are_not_batched():
    assert not Executor(_diamond().plan()).batchable
    assert Executor(_windowed_count().plan()).batchable
    assert Executor(_join_and_table().plan()).batchable


item = st.one_of(
    st.tuples(st.sampled_from(["x", "y", 3]),
              st.integers(min_value=0, max_value=40_000) | st.sampled_from([1_000, 2_000]),
              st.integers(min_value=-2, max_value=5)).map(
        lambda t: {"k": t[0], "ts": t[1], "v": t[2]}),
    st.just({"k": "x"}),                                    # no timestamp: dead letter
    st.just({"ts": 5, "v": 1}),                             # no key field: dead letter
    st.just({"k": "y", "ts": -4, "v": 1}),                  # negative timestamp
    st.sampled_from([{"k": "y", "ts": t, "v": 1} for t in   # not finite, out of range, not
                     (float("inf"), float("nan"), 1e30, 10**20, 2.5)]),  # whole: dead letters
    st.just({"k": "y", "ts": 6.0, "v": 1}),                 # a whole float: 6
    st.just({"key": "x", "value": {"k": "x", "ts": 7, "v": 2}, "timestamp": 7}),  # envelope
    st.just({"k": "x", "ts": "9", "v": 1}),                 # string timestamp: slow path
    st.just({"k": None, "ts": 11, "v": 1}),                 # null key
    st.just({"k": ["x"], "ts": 12, "v": 1}),                # unhashable key
)


def _run_items(topo, per_topic: dict, how: str, partitions: int = 1):
    from streamdsl.connectors.memory import read_memory
    from streamdsl.runtime.ordering import merge_inputs
    plan = topo.plan().with_partitions(partitions)
    ex = Executor(plan, on_error="dead-letter")
    ex.BATCH = 3
    per_topic = {t: v for t, v in per_topic.items() if t in plan.source_topics()}
    if how == "items":
        assert ex.can_feed_items(per_topic)
        ex.feed_items(per_topic)
    else:
        for ev in merge_inputs(plan, {t: read_memory(t, v) for t, v in per_topic.items()}):
            ex.feed(ev)
    ex.end()
    return (_as_documented({t: [r.as_tuple() for r in recs] for t, recs in ex.outputs.items()},
                           partitions),
            ex.metrics.to_dict(),
            [(d.source, d.position, d.reason) for d in ex.dead_letters])


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("name", ["windowed", "joins", "session", "session-final", "enrich",
                                  "enrich-one-stream", "keyed-agg", "selection", "suggestion",
                                  "monitor"])
@settings(max_examples=40)
@given(a=st.lists(item, max_size=12), b=st.lists(item, max_size=12), c=st.lists(item, max_size=8))
def test_feed_items_equals_record_at_a_time(name, partitions, a, b, c):
    """The in-memory fast path (no InputEvents, each topic ingested once, merged by record
    timestamp) gives what record-at-a-time processing of merge_inputs' order gives."""
    topo = TOPOLOGIES[name]()
    inputs = {"a": a, "b": b, "c": c}
    assert _run_items(topo, inputs, "items", partitions) == \
        _run_items(topo, inputs, "events", partitions)


def _typed_filters():
    t = sd.Topology("f")
    (t.stream("a", key="k", timestamp="ts").filter(sd.col("v") > 0)
        .filter(~(sd.col("v") == 4)).group_by_key()
        .window(sd.tumbling(seconds=10), emit="final").count()
        .filter(lambda n: 10 // (n - 2) > -100)  # raises on a count of 2
        .to_stream().to("out"))
    return t


@settings(max_examples=60)
@given(a=st.lists(item | st.just({"k": "x", "ts": 3, "v": "text"}), max_size=20))
def test_columnar_ingest_equals_record_at_a_time(a):
    """Inlined expression stages on columns, including one that raises (str > int) on some
    items and falls back to the per-record loop, and a table filter after the window that
    raises on some counts (the fused tail reading rows), equal record-at-a-time processing."""
    topo = _typed_filters()
    assert _letters_as_documented(_run_items(topo, {"a": a}, "items")) == \
        _letters_as_documented(_run_items(topo, {"a": a}, "events"))


def _letters_as_documented(run: tuple) -> tuple:
    """docs/semantics.md, "Dead letters", Order: letters of input records in input order; a
    letter of a record derived from no single input record (a final window result failing in
    the filter after the window: no position) comes after those of its batch on the local
    backend, where record-at-a-time processing writes it where depth-first processing meets
    it. These inputs fit one batch: the positioned letters must agree in order, the others as
    a multiset. (A known difference: carrying the emitting input's place through the window
    fast paths would remove it.)"""
    outputs, metrics, letters = run
    placed = [d for d in letters if d[1] is not None]
    derived = sorted((d for d in letters if d[1] is None), key=repr)
    return outputs, metrics, placed, derived


@pytest.mark.parametrize("name", ["windowed", "enrich-one-stream"])
def test_an_unhashable_key_is_dead_lettered_and_the_batch_goes_on(name):
    """A list as key cannot be looked up in window state or a table: that record is
    dead-lettered and the records after it in the same batch are still processed, on the
    columnar fast paths as record at a time."""
    topo = TOPOLOGIES[name]()
    items = [{"k": "x", "ts": 1_000 * i, "v": 1} for i in range(8)]
    items.insert(4, {"k": ["x"], "ts": 4_500, "v": 1})  # in the second batch of 3
    inputs = {"a": items, "b": items, "c": [{"k": "x", "ts": 0, "v": 1}]}
    got = _run_items(topo, inputs, "items")
    assert got == _run_items(topo, inputs, "events")
    outputs, _, dead = got
    assert [(src, pos) for src, pos, _ in dead] == [("a" if name == "windowed" else "b", 4)]
    assert "unhashable" in dead[0][2]
    assert sum(len(v) for v in outputs.values()) > 0


ordered_ts = st.lists(st.integers(min_value=0, max_value=30) | st.sampled_from([10, 20]),
                      max_size=25).map(sorted)


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("name", ["joins", "enrich"])
@settings(max_examples=60)
@given(a=ordered_ts, b=ordered_ts, c=ordered_ts, unordered=st.booleans())
def test_merging_topics_in_timestamp_order_equals_record_at_a_time(name, partitions, a, b, c,
                                                                   unordered):
    """Runs whose timestamps are in order are merged by bisection, with many ties between
    topics (the topic declared first goes first) and runs cut by the batch size; a run out of
    order takes the per-record merge."""
    def items(tss, k):
        out = [{"k": "xy"[i % 2], "ts": t * 1_000, "v": k} for i, t in enumerate(tss)]
        if unordered and len(out) > 3:
            out[1], out[3] = out[3], out[1]
        return out
    topo = TOPOLOGIES[name]()
    inputs = {"a": items(a, 1), "b": items(b, 2), "c": items(c, 3)}
    assert _run_items(topo, inputs, "items", partitions) == \
        _run_items(topo, inputs, "events", partitions)
