"""A rebalance in the middle of a run (another member joins the group, then leaves): the run
waits for its partitions to come back and continues, losing and repeating nothing."""

from __future__ import annotations

import threading
import time

import streamdsl as sd
from confluent_kafka import Consumer
from streamdsl.backend import get_backend

from kafka_helpers import SESSION_MS, Kafka, kafka  # noqa: F401  (the broker fixture)


def test_run_survives_a_rebalance(kafka: Kafka):
    src, out, group = kafka.topic("ev", partitions=2), kafka.name("ev-out"), kafka.name("rb")
    first = [(f"k{i % 5}", {"n": i}, 1_000 + i, i % 2) for i in range(40)]
    second = [(f"k{i % 5}", {"n": i}, 1_000 + i, i % 2) for i in range(40, 100)]
    kafka.produce(src, first)
    topo = sd.Topology("rebalance")
    topo.stream("ev").map(lambda v: v["n"]).to("out")
    read_first = threading.Event()
    result: dict = {}

    def progress(metrics) -> None:
        if metrics.records_in >= len(first):
            read_first.set()

    def run() -> None:
        try:
            result["res"] = get_backend("local").run(
                topo.plan(), {"ev": kafka.uri(src, group)}, {"out": kafka.uri(out)},
                max_records=len(first) + len(second), progress=progress, progress_every=0.05)
        except BaseException as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert read_first.wait(30)
    intruder = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group,
                         "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": 100,
                         "enable.auto.commit": False})
    got: list = []
    intruder.subscribe([src], on_assign=lambda c, ps: got.extend(ps))
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        intruder.poll(0.05)
    assert got, "the second member never got a partition"
    kafka.produce(src, second)                       # arrives while the run owns one partition
    intruder.close()                                 # leaves: the run gets both partitions back
    t.join(60)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    values = [m.value for m in kafka.read(out)]
    assert sorted(values) == list(range(100))        # none lost, none repeated
