"""The Kafka loop's columnar hand-over (``kafka_columns``) gives what its record path gives: the
merge of the partitions' buffers by one sort equals ``heapq.merge`` of their entries (as the
record path takes them), and ``Executor.feed_columns`` equals ``feed_ingested`` of the records
the loop would build. (The loop itself runs against a real broker in tests/kafka.)"""

from __future__ import annotations

import heapq
from itertools import chain, islice, takewhile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.backends.local.executor import Executor
from streamdsl.backends.local.kafka_columns import ColumnBuffer, Head, merge_keys, take_order
from streamdsl.optimize import optimize
from streamdsl.runtime.records import Record

channel = st.tuples(st.lists(st.integers(min_value=0, max_value=12), max_size=10), st.booleans())


def _heapq_merge(chans: list[tuple[list[int], bool]], ranks: list[int],
                 limit: int | None) -> list[tuple[int, int]]:
    """The record path's merge (``KafkaRun._drain_sub``): ``(event time, rank, entry)``
    buffers, one ending in a sentinel that sorts first where more may come; ``(channel,
    index)`` of what it takes."""
    runs = []
    for c, ((tss, more), rank) in enumerate(zip(chans, ranks)):
        if not tss and more:
            return []  # a partition that may still deliver earlier records holds it back
        buf = [(ts, rank, (c, i)) for i, ts in enumerate(tss)]
        if tss:
            runs.append(chain(buf, [(float("-inf"), rank, None)]) if more else buf)
    taken = takewhile(lambda e: e[2] is not None, heapq.merge(*runs))
    return [e[2] for e in (taken if limit is None else islice(taken, limit))]


@settings(max_examples=300)
@given(chans=st.lists(channel, min_size=1, max_size=4), data=st.data())
def test_take_order_is_the_heapq_merge_of_the_record_path(chans, data):
    width = data.draw(st.integers(min_value=len(chans), max_value=6))
    ranks = sorted(data.draw(st.sets(st.integers(0, width - 1), min_size=len(chans),
                                     max_size=len(chans))))
    limit = data.draw(st.none() | st.integers(min_value=0, max_value=30))
    lo = [data.draw(st.integers(0, 2)) for _ in chans]  # records before ``lo`` were fed
    heads = [Head([-1] * k + merge_keys(tss, r, width), k, more)
             for (tss, more), r, k in zip(chans, ranks, lo)]
    counts, order = take_order(heads, limit)
    flat = [(c, i) for c, k in enumerate(counts) for i in range(k)]
    got = [flat[j] for j in order]
    assert got == _heapq_merge(chans, ranks, limit)
    assert sorted(got) == flat  # each channel's first counts[c] records, each once


op = st.one_of(st.tuples(st.just("extend"), st.lists(st.integers(0, 9), min_size=1, max_size=5)),
               st.tuples(st.just("advance"), st.integers(0, 6)))


@given(ops=st.lists(op, max_size=12))
def test_a_column_buffer_keeps_its_merge_keys_while_in_order(ops):
    b = ColumnBuffer(1, 3)
    all_ts: list[int] = []
    for kind, arg in ops:
        if kind == "extend":
            b.extend([{"t": t} for t in arg], arg, list(range(len(all_ts), len(all_ts) + len(arg))))
            all_ts += arg
        else:
            k = min(arg, len(b))
            b.advance(k)
            all_ts = all_ts[k:]
        keys, lo = b.merge_keys()
        assert len(b) == len(all_ts) and b.tss[b.head:] == all_ts
        assert keys[lo:] == merge_keys(all_ts, 1, 3)
        assert [v["t"] for v in b.values[b.head:]] == all_ts


def _fraud():
    t = sd.Topology("f")
    (t.stream("a", key="k", timestamp="ts").group_by("k")
        .window(sd.tumbling(seconds=10, grace=sd.seconds(2)), emit="final").count()
        .filter(lambda n: n > 1).to_stream().to("out"))
    return t


def _changes():
    t = sd.Topology("c")
    (t.stream("a", key="k", timestamp="ts").filter(sd.col("v") > 0).group_by_key()
        .window(sd.tumbling(seconds=10, grace=sd.seconds(3)), late="dead-letter").count()
        .to_stream().to("out"))
    return t


def _raising_map():
    """A user map before the window raises on v == 0: its failures are dead-lettered with
    the record's Kafka position."""
    t = sd.Topology("m")
    (t.stream("a", key="k", timestamp="ts").map(lambda v: {**v, "w": 10 // v["v"]})
        .group_by_key().window(sd.tumbling(seconds=10)).agg(total=sd.sum("w"))
        .to_stream().to("out"))
    return t


def _to_sink():
    t = sd.Topology("s")
    (t.stream("a", key="k", timestamp="ts").filter(sd.col("v") % 2 == 1)
        .map(lambda v: {"k": v["k"], "w": 10 // (v["v"] + 1)}).to("out"))
    return t


TOPOLOGIES = {"fraud": _fraud, "changes": _changes, "raising-map": _raising_map,
              "to-sink": _to_sink}

record = st.tuples(st.sampled_from(["x", "y", 3, None]), st.integers(0, 40_000),
                   st.integers(-2, 5), st.integers(0, 2))


def _run(topo, records, pieces: list[int], partitions: int, columns: bool):
    plan = optimize(topo.plan()).with_partitions(partitions)
    # (a plan with a repartition reads its topic back: the loop has no columnar run then)
    assert not any(n.kind == "Repartition" for n in plan.nodes())
    # as the Kafka loop builds it: a record's task is its Kafka partition's
    ex = Executor(plan, on_error="dead-letter", partition_of=lambda rec: rec.origin[1][0],
                  exact_tasks=True)
    ex.BATCH = 4
    (node,) = (s.name for s in plan.sources())
    assert ex.segments.segment("a") is not None  # the columnar run exists
    offsets = [0] * partitions
    values, positions = [], []
    for k, ts, v, p in records:
        p %= partitions
        values.append({"k": k, "ts": ts, "v": v})
        positions.append((p, offsets[p]))
        offsets[p] += 1
    i = 0
    for size in chain(pieces, [len(records)]):
        if i >= len(records):
            break
        vs, ps = values[i:i + size], positions[i:i + size]
        if columns:
            ex.feed_columns(node, vs, ps, [p for p, _ in ps])
        else:
            ex.feed_ingested(node, [Record(v["k"], v, v["ts"], None, ("a", pos))
                                    for v, pos in zip(vs, ps)])
        i += size
    ex.end()
    return ({t: [r.as_tuple() for r in recs] for t, recs in ex.outputs.items()},
            ex.metrics.to_dict(), [(d.source, d.position, d.reason) for d in ex.dead_letters])


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@settings(max_examples=40)
@given(records=st.lists(record, max_size=30),
       pieces=st.lists(st.integers(min_value=1, max_value=9), max_size=6))
def test_feed_columns_equals_feed_ingested(name, partitions, records, pieces):
    topo = TOPOLOGIES[name]()
    assert (_run(topo, records, pieces, partitions, True)
            == _run(topo, records, pieces, partitions, False))


class _Producer:
    """Records ``produce`` calls; the local queue is full at the calls listed in ``full``."""

    def __init__(self, full: set[int]):
        self.calls: list[tuple] = []
        self.polls = 0
        self.full = set(full)
        self.n = 0

    def produce(self, topic, **kw):
        self.n += 1
        if self.n in self.full:
            raise BufferError
        self.calls.append((topic, kw["key"], kw["value"], kw.get("timestamp"), kw.get("headers")))

    def poll(self, timeout):
        self.polls += 1


out_record = st.tuples(st.sampled_from(["a", 3, None, {"x": 1}]),
                       st.sampled_from([None, 1, "v", {"n": [1, 2]}]),
                       st.integers(0, 10), st.sampled_from([None, (0, 10), (10, 20)]))


@settings(max_examples=50)
@given(batches=st.lists(st.lists(out_record, max_size=8), max_size=5),
       full=st.sets(st.integers(1, 40), max_size=3), key_format=st.sampled_from(["string", "json"]))
def test_a_kafka_sink_writes_a_batch_as_it_writes_its_records_one_by_one(batches, full,
                                                                         key_format):
    from streamdsl.connectors.kafka import KafkaSink
    from streamdsl.runtime.records import OutputRecord

    def sink():
        p = _Producer(full)
        s = KafkaSink(f"kafka://127.0.0.1:9/t?key_format={key_format}", producer=p, create=False)
        s.POLL_EVERY = 3
        return s, p
    (one, p1), (many, p2) = sink(), sink()
    for batch in batches:
        recs = [OutputRecord(*r) for r in batch]
        for r in recs:
            one.write(r)
        many.many(recs)
    assert p1.calls == p2.calls and p1.polls == p2.polls and one.written == many.written
