"""The local Kafka run's columnar hand-over (``backends/local/kafka_columns.py``) writes what
its record path writes: the same records to every output partition, in the same order, and
the same dead letters, also when a message it cannot take in columns (bad JSON, a missing
field) turns the run back to the record path part-way."""

from __future__ import annotations

import random

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.local import kafka_run

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)


def _topology() -> sd.Topology:
    topo = sd.Topology("cols", on_error="dead-letter")
    (topo.stream("attempts", key="card", timestamp="ts").filter(sd.col("amount") > 1)
        .group_by_key().window(sd.tumbling(seconds=10, grace=sd.seconds(2)), emit="final")
        .count().to_stream().to("counts"))
    return topo


def _records(bad: str) -> list[tuple]:
    rng = random.Random(5)
    out = []
    ts = [0, 0, 0]
    for i in range(600):
        p = rng.randrange(3)
        ts[p] += rng.randrange(300) - 40  # each partition mostly in order, some late records
        value: object = {"card": f"c{rng.randrange(7)}", "amount": rng.randrange(5),
                         "ts": max(ts[p], 0)}
        if i == 300 and bad == "json":
            value = b"{not json"
        if i == 300 and bad == "field":
            value = {"card": "c1", "amount": 3}
        out.append((None, value, None, p))
    return out


def _run(kafka: Kafka, src: str, columnar: bool, monkeypatch) -> tuple[list, list, bool]:
    used = []
    real = kafka_run._KafkaRun._columnar_ok

    def columnar_ok(self):
        used.append(real(self) and columnar)
        return used[-1]
    monkeypatch.setattr(kafka_run._KafkaRun, "_columnar_ok", columnar_ok)
    out, dlq = kafka.name("counts"), kafka.name("dlq")
    get_backend("local").run(_topology().plan(), {"attempts": kafka.uri(src, kafka.name("g"))},
                             {"counts": kafka.uri(out)}, dead_letter=kafka.uri(dlq),
                             until_idle=0.5)
    got = sorted((m.partition, m.offset, m.key, m.value, m.timestamp) for m in kafka.read(out))
    dead = sorted((d.value["partition"], d.value["offset"], d.value["reason"])
                  for d in kafka.read(dlq))
    return [g[:1] + g[2:] for g in got], dead, used == [True]


@pytest.mark.parametrize("bad", ["none", "json", "field"])
def test_the_columnar_run_writes_what_the_record_path_writes(kafka: Kafka, bad: str, monkeypatch):
    src = kafka.topic("attempts", partitions=3)
    kafka.produce(src, _records(bad))
    got, dead, columnar = _run(kafka, src, True, monkeypatch)
    want, want_dead, _ = _run(kafka, src, False, monkeypatch)
    assert columnar
    assert got == want and dead == want_dead
    assert len(got) > 20
    assert len(dead) == (0 if bad == "none" else 1)
