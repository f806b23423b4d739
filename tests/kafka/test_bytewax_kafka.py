"""Bytewax runs from Kafka: the input is streamed (a bounded number of records held, never the
whole topic), and a run with ``recovery_dir`` resumes from the Kafka offsets of its last
snapshot instead of reading the topic again."""

from __future__ import annotations

import os

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.connectors import kafka as kc
from streamdsl.errors import RecordError

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)
from test_fraud_kafka import fraud, producer


def test_the_reader_holds_a_bounded_number_of_records(kafka: Kafka, monkeypatch):
    """Partition 1's records all come after partition 0's in time, so the merge takes all of
    partition 0 first: partition 1 is paused instead of read into memory meanwhile."""
    monkeypatch.setattr(kc, "_PAUSE_AT", 100)
    monkeypatch.setattr(kc, "_RESUME_AT", 10)
    src = kafka.topic("skewed", partitions=2)
    n = 8_000
    kafka.produce(src, [("k", {"i": i}, 1_000 + i, 0) for i in range(n)]
                  + [("k", {"i": n + i}, 10_000_000 + i, 1) for i in range(n)])
    most = 0
    real_fetch = kc._Partitions._fetch

    def fetch(self, wanted):
        nonlocal most
        real_fetch(self, wanted)
        most = max(most, len(self.buf[1]) if wanted == 0 else len(self.buf[0]))
    monkeypatch.setattr(kc._Partitions, "_fetch", fetch)
    got = [ev.value["i"] for ev in kc.read_kafka("skewed", kafka.uri(src))]
    assert got == list(range(2 * n))                     # the merge order, everything once
    # the pause level, and what the consumer had fetched before the pause (two batches of
    # consume(1000)): far less than the partition
    assert 0 < most <= 100 + 2 * 1_000 < n


class Trap:
    """Raises at the ``at``-th record it sees, the first time only (a marker file)."""

    def __init__(self, at: int, marker: str):
        self.at, self.marker, self.seen = at, marker, 0

    def __call__(self, key, value) -> None:
        self.seen += 1
        if self.seen == self.at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("injected crash")


def test_a_resumed_run_reads_kafka_from_its_snapshot(kafka: Kafka, tmp_path, monkeypatch):
    src = kafka.name("attempts")
    assert producer.produce_fraud(kafka.bootstrap, src, partitions=2) == 611
    topo = sd.Topology("fraud-detection")
    (topo.stream("authorization_attempts", key="card_number", timestamp="ts")
        .peek(Trap(400, str(tmp_path / "crashed")))
        .group_by("card_number").window(sd.tumbling(minutes=5, grace=sd.minutes(1)), emit="final")
        .count().filter(lambda count: count > 3).to_stream().to("possible_fraud"))
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    get_backend("local").run(fraud.topology.plan(), fraud.INPUTS, {"possible_fraud": str(ref)})
    reads: list[tuple[dict | None, list]] = []
    real = kc.read_kafka

    def read_kafka(topic, spec, **kw):
        events: list = []
        reads.append((dict(kw.get("start") or {}), events))  # a copy: the run moves it on
        for ev in real(topic, spec, **kw):
            events.append(ev.position)
            yield ev
    monkeypatch.setattr(kc, "read_kafka", read_kafka)
    inputs = {"authorization_attempts": kafka.uri(src, kafka.name("bw"))}
    opts = dict(recovery_dir=str(tmp_path / "recovery"), snapshot_interval=0, batch_size=50)
    with pytest.raises(RecordError, match="injected crash"):
        get_backend("bytewax").run(topo.plan(), inputs, {"possible_fraud": str(out)}, **opts)
    get_backend("bytewax").run(topo.plan(), inputs, {"possible_fraud": str(out)}, **opts)
    assert out.read_bytes() == ref.read_bytes()           # as an uninterrupted run
    (first_start, first), (start, second) = reads
    assert first_start == {}
    # the second run starts at the snapshot's offsets: it reads what follows them, once
    assert start and 0 < sum(start.values()) < 611 and len(second) == 611 - sum(start.values())
    assert all(offset >= start.get(p, 0) for p, offset in second)
