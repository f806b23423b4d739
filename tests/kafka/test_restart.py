"""Acceptance: stopping and restarting a Kafka run loses nothing, and with exactly_once
duplicates nothing.

The topology is the fraud detection (state: open 5-minute windows) with a ``peek`` that can stop
the run part-way: by raising (a crash), or by sending the process SIGINT (Ctrl-C).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.errors import ConnectorError, RecordError

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)
from test_fraud_kafka import file_run, kafka_records, producer


class Trap:
    """Counts the records it sees; ``action`` fires at the ``at``-th one."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.action = "raise"
        self.seen = 0

    def arm(self, at: int, action: str) -> None:
        self.at, self.action, self.seen = at, action, 0

    def disarm(self) -> None:
        self.at = None

    def __call__(self, key, value) -> None:
        self.seen += 1
        if self.seen == self.at:
            if self.action == "raise":
                raise RuntimeError("injected crash")
            signal.raise_signal(signal.SIGINT)


def fraud_with_trap(trap: Trap) -> sd.Topology:
    topo = sd.Topology("fraud-detection")
    (topo.stream("authorization_attempts", key="card_number", timestamp="ts")
        .peek(trap)
        .group_by("card_number")
        .window(sd.tumbling(minutes=5, grace=sd.minutes(1)), emit="final")
        .count()
        .filter(lambda count: count > 3)
        .to_stream()
        .to("possible_fraud"))
    return topo


def fraud_with_counting_trap(trap: Trap) -> sd.Topology:
    """The same, with ``trap`` called for each attempt counted: in the sub-topology after the
    repartition, so that what it emitted before the trap fires has been written."""
    def add(count: int, value) -> int:
        trap(None, value)
        return count + 1
    topo = sd.Topology("fraud-detection")
    (topo.stream("authorization_attempts", key="card_number", timestamp="ts")
        .group_by("card_number")
        .window(sd.tumbling(minutes=5, grace=sd.minutes(1)), emit="final")
        .aggregate(0, add)
        .filter(lambda count: count > 3)
        .to_stream()
        .to("possible_fraud"))
    return topo


@pytest.fixture(scope="module")
def expected() -> Counter:
    return file_run()


def _setup(kafka: Kafka):
    src = kafka.name("attempts")
    producer.produce_fraud(kafka.bootstrap, src, partitions=2)
    return src, kafka.name("possible-fraud"), kafka.name("fraud")


def _run(kafka, topo, src, out, group, **opts):
    return get_backend("local").run(topo.plan(), {"authorization_attempts": kafka.uri(src, group)},
                                    {"possible_fraud": kafka.uri(out)}, **opts)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_stop_after_n_records_then_resume(kafka: Kafka, expected: Counter, guarantee: str):
    src, out, group = _setup(kafka)
    trap = Trap()
    topo = fraud_with_trap(trap)
    first = _run(kafka, topo, src, out, group, max_records=250, processing_guarantee=guarantee)
    assert first.metrics.records_in == 250
    part = kafka_records(kafka, out)
    assert 0 < sum(part.values()) < sum(expected.values())   # windows closed so far, no more
    assert part <= expected
    second = _run(kafka, topo, src, out, group, until_idle=0.5, processing_guarantee=guarantee)
    assert second.metrics.records_in == 611 - 250
    assert kafka_records(kafka, out) == expected          # none lost, none duplicated


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_crash_then_restart(kafka: Kafka, expected: Counter, guarantee: str):
    src, out, group = _setup(kafka)
    trap = Trap()
    topo = fraud_with_counting_trap(trap)
    _run(kafka, topo, src, out, group, max_records=200, processing_guarantee=guarantee)
    committed = kafka.committed(src, group, 2)
    assert sum(committed.values()) == 200
    trap.arm(300, "raise")                                  # crash 300 records into the run
    with pytest.raises(RecordError, match="injected crash"):
        _run(kafka, topo, src, out, group, until_idle=0.5, processing_guarantee=guarantee,
             commit_interval=3600)
    if guarantee == "at_least_once":
        assert kafka.committed(src, group, 2) == committed  # the crashed run committed nothing
    # (exactly_once writes the repartitioned records in a transaction before the counting
    # can read them: the crashed run committed the upstream work its counting waited for)
    trap.disarm()
    _run(kafka, topo, src, out, group, until_idle=0.5, processing_guarantee=guarantee)
    got = kafka_records(kafka, out)
    assert set(got) == set(expected)                        # none lost
    if guarantee == "exactly_once":
        assert got == expected                              # none duplicated
    else:
        # at-least-once: what the crashed run wrote after its last commit is written again
        assert got - expected and all(got[r] <= 2 for r in got)


def test_ctrl_c_commits_what_was_finished(kafka: Kafka, expected: Counter):
    src, out, group = _setup(kafka)
    trap = Trap()
    trap.arm(400, "sigint")
    topo = fraud_with_trap(trap)
    with pytest.raises(KeyboardInterrupt):
        _run(kafka, topo, src, out, group)                  # continuous: only Ctrl-C stops it
    # the chunk of records in flight (at most 256) was finished and committed, no more
    assert 400 <= sum(kafka.committed(src, group, 2).values()) < 611
    assert signal.getsignal(signal.SIGINT) is not None
    trap.disarm()
    _run(kafka, topo, src, out, group, until_idle=0.5)
    assert kafka_records(kafka, out) == expected


def test_a_checkpoint_of_another_topology_is_refused(kafka: Kafka):
    src, out, group = _setup(kafka)
    _run(kafka, fraud_with_trap(Trap()), src, out, group, max_records=10)
    other = sd.Topology("fraud-detection")
    (other.stream("authorization_attempts", key="card_number", timestamp="ts")
        .group_by("card_number").count().to_stream().to("possible_fraud"))
    with pytest.raises(ConnectorError, match="written by a different topology.*another group"):
        _run(kafka, other, src, out, group, until_idle=0.5)
