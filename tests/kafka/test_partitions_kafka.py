"""Kafka inputs run one task per partition, as Kafka Streams does: each partition's stream
time is its own, and a run over a Kafka topic of N partitions written by our sink gives what a
file run with ``partitions=N`` gives."""

from __future__ import annotations

import pytest
from kafka_helpers import Kafka, kafka  # noqa: F401

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.errors import ConnectorError
from streamdsl.runtime.partitioning import partition_of

S10 = sd.seconds(10)


def _count() -> sd.Topology:
    topo = sd.Topology("per-partition")
    (topo.stream("clicks", key="user", timestamp="ts").group_by_key()
     .window(sd.tumbling(S10), emit="final").count().to_stream().to("counts"))
    return topo


# a (partition 1 of 3) and b (partition 2): b@15s advances only partition 2's stream time, so
# a@5s is on time in its task (a's [0,10s) counts 2); with one stream time it is late.
CLICKS = [{"user": "a", "ts": 1_000}, {"user": "b", "ts": 15_000}, {"user": "a", "ts": 5_000}]


def _rows(records) -> list[tuple]:
    return sorted((r.key, r.value, r.timestamp, tuple(r.window)) for r in records)


def test_a_kafka_run_keeps_stream_time_per_partition_like_a_file_run(kafka: Kafka, tmp_path):  # noqa: F811
    assert [partition_of(u, 0, 3) for u in ("a", "b")] == [1, 2]
    topic = kafka.topic("clicks", partitions=3)
    write = sd.Topology("write")
    write.stream("in", key="user", timestamp="ts").to("out")
    get_backend("local").run(write.plan(), {"in": {"type": "memory", "records": CLICKS}},
                             {"out": kafka.uri(topic)})  # our sink: murmur2 of the key
    assert sorted((m.key, m.partition) for m in kafka.read(topic)) == \
        [("a", 1), ("a", 1), ("b", 2)]
    out = kafka.name("counts")
    res = get_backend("local").run(_count().plan(), {"clicks": kafka.uri(topic, kafka.name("g"))},
                                   {"counts": kafka.uri(out)}, until_idle=0.5)
    assert res.metrics.late == 0
    got = sorted((m.key, m.value, m.timestamp) for m in kafka.read(out))
    assert got == [("{\"key\":\"a\",\"window_start\":0,\"window_end\":10000}", 2, 5_000),
                   ("{\"key\":\"b\",\"window_start\":10000,\"window_end\":20000}", 1, 15_000)]
    path = tmp_path / "clicks.jsonl"
    path.write_text("".join('{"user": "%s", "ts": %d}\n' % (c["user"], c["ts"]) for c in CLICKS))
    files = {p: get_backend("local").run(_count().plan(), {"clicks": str(path)}, {},
                                         partitions=p) for p in (1, 3)}
    assert _rows(files[3].outputs["counts"]) == [("a", 2, 5_000, (0, 10_000)),
                                                 ("b", 1, 15_000, (10_000, 20_000))]
    assert _rows(files[1].outputs["counts"]) == [("a", 1, 1_000, (0, 10_000)),
                                                 ("b", 1, 15_000, (10_000, 20_000))]
    assert files[1].metrics.late == 1


def test_joined_topics_must_be_co_partitioned(kafka: Kafka):  # noqa: F811
    left, right = kafka.topic("left", partitions=2), kafka.topic("right", partitions=3)
    topo = sd.Topology("join")
    topo.stream("l").join(topo.stream("r"), within=S10).to("out")
    group = kafka.name("g")
    with pytest.raises(ConnectorError, match=r"'l' \(2 partitions\) and 'r' \(3 partitions\)"):
        get_backend("local").run(topo.plan(), {"l": kafka.uri(left, group),
                                               "r": kafka.uri(right, group)},
                                 {}, until_idle=0.1)
