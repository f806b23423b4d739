"""Acceptance: malformed messages go to the dead-letter topic with their partition, offset and
reason, and the run goes on."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_malformed_messages_go_to_the_dead_letter_topic(kafka: Kafka, guarantee: str):
    src = kafka.topic("payments", partitions=2)
    kafka.produce(src, [
        ("a", {"id": 1, "amount": 10, "ts": 1_000}, None, 0),   # p0 @0
        ("b", b"{not json", None, 0),                            # p0 @1: invalid JSON
        ("c", {"id": 3, "amount": 30, "ts": 3_000}, None, 0),   # p0 @2
        ("d", {"id": 4, "amount": 40}, None, 1),                 # p1 @0: no timestamp field
        ("e", {"id": 5, "amount": 50, "ts": 5_000}, None, 1),   # p1 @1
    ])
    topo = sd.Topology("payments", on_error="dead-letter")
    topo.stream("payments", timestamp="ts").filter(sd.col("amount") >= 20).to("big")
    out, dlq = kafka.name("big"), kafka.name("payments-dlq")
    res = get_backend("local").run(topo.plan(), {"payments": kafka.uri(src, kafka.name("pay"))},
                                   {"big": kafka.uri(out)}, dead_letter=kafka.uri(dlq),
                                   until_idle=0.5, processing_guarantee=guarantee)
    assert res.metrics.records_in == 5 and res.metrics.dead_lettered == 2
    assert sorted(m.value["id"] for m in kafka.read(out)) == [3, 5]   # the run went on
    dead = sorted(kafka.read(dlq), key=lambda m: (m.value["partition"], m.value["offset"]))
    assert [(d.value["topic"], d.value["partition"], d.value["offset"]) for d in dead] == \
        [(src, 0, 1), (src, 1, 0)]
    assert dead[0].value["reason"].startswith("invalid JSON value")
    assert dead[0].value["value"] == "{not json"                      # the raw text is kept
    assert dead[1].value["reason"] == "missing timestamp field 'ts'"
    assert dead[1].value["value"] == {"id": 4, "amount": 40}
    assert {d.value["source"] for d in dead} == {"payments"}
    assert all(d.value["position"] == [d.value["partition"], d.value["offset"]] for d in dead)
