"""The Kafka connector: URIs, formats, positions, record timestamps, windowed keys, tombstones,
the partition merge order and the bounded reader."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.connectors import open_source, parse_uri
from streamdsl.connectors.kafka import encode_key, encode_value, kafka_spec
from streamdsl.errors import ConnectorError
from streamdsl.runtime.records import OutputRecord

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)


# ---- without a broker -------------------------------------------------------------------------

def test_uri_options():
    spec = kafka_spec(parse_uri("kafka://127.0.0.1:9092/t?group=g&value_format=string"
                                "&session.timeout.ms=2000"))
    assert (spec.topic, spec.group, spec.key_format, spec.value_format) == ("t", "g", "string", "string")
    assert spec.config == {"session.timeout.ms": "2000"}
    with pytest.raises(ConnectorError, match="unknown option.*grup"):
        kafka_spec("kafka://127.0.0.1:9092/t?grup=g")
    with pytest.raises(ConnectorError, match="value_format must be one of json, string, bytes"):
        kafka_spec("kafka://127.0.0.1:9092/t?value_format=avro")


def test_serialization():
    assert encode_key(OutputRecord("c1", 4, 10, (0, 300_000))) == \
        b'{"key":"c1","window_start":0,"window_end":300000}'
    assert encode_key(OutputRecord(("a", 1), 4, 10), "json") == b'["a",1]'
    assert encode_key(OutputRecord(None, 4, 10)) is None
    assert encode_value(None) is None                                     # tombstone
    assert encode_value({"n": 1}) == b'{"n":1}'
    assert encode_value("x", "string") == b"x" and encode_value(5, "string") == b"5"
    assert encode_value(b"\x00\x01", "bytes") == b"\x00\x01"
    with pytest.raises(ConnectorError, match="bytes format"):
        encode_value(5, "bytes")


# ---- against the broker -------------------------------------------------------------------------

def test_partitions_merge_in_timestamp_order_with_positions(kafka: Kafka):
    src = kafka.topic("events", partitions=2)
    kafka.produce(src, [("k", {"n": i}, ts, p) for i, (ts, p) in enumerate(
        [(10, 0), (40, 0), (50, 0), (20, 1), (30, 1), (40, 1), (60, 1)])])
    topo = sd.Topology("order")
    topo.stream("events").map_kv(lambda k, v: (k, v["n"])).to("out")   # time: the record's
    res = get_backend("local").run(topo.plan(), {"events": kafka.uri(src, kafka.name("o"))}, {},
                                   until_idle=0.5)
    got = [(r.value, r.timestamp) for r in res.outputs["out"]]
    # next = the partition head with the smallest timestamp, ties to the lower partition
    assert got == [(0, 10), (3, 20), (4, 30), (1, 40), (5, 40), (2, 50), (6, 60)]

    # the bounded reader (open_source) gives the same order, with (partition, offset) positions
    evs = list(open_source("events", kafka.uri(src)))
    assert [(e.position, e.timestamp, e.value["n"]) for e in evs] == [
        ((0, 0), 10, 0), ((1, 0), 20, 3), ((1, 1), 30, 4), ((0, 1), 40, 1), ((1, 2), 40, 5),
        ((0, 2), 50, 2), ((1, 3), 60, 6)]


def test_formats_windowed_keys_and_tombstones(kafka: Kafka):
    src = kafka.topic("words")
    kafka.produce(src, [("u1", b"apple", 1_000, None), ("u2", b"skip", 2_000, None),
                        ("u1", b"pear", 3_000, None), ("u3", b"apple", 61_000, None)])
    topo = sd.Topology("words")
    words = topo.stream("words")
    words.map(lambda w: None if w == "skip" else w.upper()).to("upper")
    (words.group_by(lambda w: w).window(sd.tumbling(minutes=1)).count().to_stream()
        .to("counts"))
    upper, counts = kafka.name("upper"), kafka.name("counts")
    get_backend("local").run(
        topo.plan(), {"words": kafka.uri(src, kafka.name("w"), value_format="string")},
        {"upper": kafka.uri(upper, value_format="string"), "counts": kafka.uri(counts)},
        until_idle=0.5)
    up = kafka.read(upper, json_values=False)
    assert [(m.key, m.value, m.timestamp) for m in up] == [
        ("u1", b"APPLE", 1_000), ("u2", None, 2_000), ("u1", b"PEAR", 3_000), ("u3", b"APPLE", 61_000)]
    cn = kafka.read(counts)
    assert [(m.key_json, m.value, m.timestamp) for m in cn] == [
        ({"key": "apple", "window_start": 0, "window_end": 60_000}, 1, 1_000),
        ({"key": "skip", "window_start": 0, "window_end": 60_000}, 1, 2_000),
        ({"key": "pear", "window_start": 0, "window_end": 60_000}, 1, 3_000),
        ({"key": "apple", "window_start": 60_000, "window_end": 120_000}, 1, 61_000)]


def test_missing_input_topic_is_a_clear_error(kafka: Kafka):
    topo = sd.Topology("t")
    topo.stream("s").to("out")
    missing = kafka.name("nope")
    with pytest.raises(ConnectorError, match=f"Kafka topic '{missing}' .*does not exist"):
        get_backend("local").run(topo.plan(), {"s": kafka.uri(missing)}, {}, until_idle=0.5)


def test_exactly_once_needs_kafka_outputs(kafka: Kafka, tmp_path):
    topo = sd.Topology("t")
    topo.stream("s").to("out")
    with pytest.raises(ConnectorError, match="exactly_once.*'out' is jsonl"):
        get_backend("local").run(topo.plan(), {"s": kafka.uri("whatever")},
                                 {"out": str(tmp_path / "o.jsonl")},
                                 processing_guarantee="exactly_once")


def test_file_inputs_to_kafka_output(kafka: Kafka, tmp_path):
    """No Kafka input: the finite path, with a Kafka sink (flushed on close)."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"k": "a", "n": 1, "ts": 5}\n{"k": "b", "n": 2, "ts": 6}\n')
    topo = sd.Topology("t")
    topo.stream("s", key="k", timestamp="ts").to("out")
    out = kafka.name("out")
    get_backend("local").run(topo.plan(), {"s": str(path)}, {"out": kafka.uri(out)})
    assert [(m.key, m.value["n"], m.timestamp) for m in kafka.read(out)] == [("a", 1, 5), ("b", 2, 6)]


def test_connectors_declared_in_the_topology(kafka: Kafka):
    src = kafka.topic("declared")
    kafka.produce(src, [(None, {"n": 1}, 10, None), (None, {"n": 2}, 20, None)])
    out = kafka.name("declared-out")
    topo = sd.Topology("declared")
    kin = {"type": "kafka", "bootstrap_servers": kafka.bootstrap, "topic": src,
           "group": kafka.name("d"), "session.timeout.ms": "1000"}
    kout = {"type": "kafka", "bootstrap_servers": kafka.bootstrap, "topic": out}
    topo.stream("numbers", connector=kin).to("doubled_numbers", connector=kout)
    res = get_backend("local").run(topo.plan(), {}, {}, until_idle=0.5)
    assert res.metrics.records_in == 2
    assert [m.value["n"] for m in kafka.read(out)] == [1, 2]
