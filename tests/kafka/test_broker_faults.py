"""Broker faults: the broker is cut off for a few seconds in the middle of a run (a TCP proxy
between every client and the broker), in both guarantees; the run goes on when it comes back,
loses nothing and ends. A broker that stays away ends the run with one line and exit 1. A
transaction that cannot commit is aborted and the run goes back to its last commit."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.connectors import kafka as kc

import slow_counts
from eos_check import committed_records, committed_transactions
from kafka_helpers import FaultyKafka, Kafka, faulty_kafka, kafka  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("streamdsl"))
TOPOLOGY = str(Path(slow_counts.__file__))
N = 1_500


def expected(n: int = N) -> Counter:
    res = get_backend("local").run(slow_counts.topology.plan(),
                                   {"attempts": {"type": "memory",
                                                 "records": slow_counts.records(n)}}, {})
    return Counter((r.key, r.value, r.timestamp, r.window) for r in res.outputs["counts"])


def as_counter(msgs) -> Counter:
    return Counter((m.key_json["key"], m.value, m.timestamp,
                    (m.key_json["window_start"], m.key_json["window_end"])) for m in msgs)


def _setup(kafka: Kafka, n: int = N) -> tuple[str, str, str]:
    src = kafka.topic("attempts", partitions=2)
    kafka.produce(src, [(r["card_number"], r, None, None) for r in slow_counts.records(n)])
    return src, kafka.name("counts"), kafka.name("faults")


def _cli(kafka: Kafka, src: str, out: str, group: str, guarantee: str, *extra: str) -> list[str]:
    return [EXE, "run", TOPOLOGY, "--quiet", "--processing-guarantee", guarantee,
            "--commit-interval", "0.1", "--input", f"attempts={kafka.uri(src, group)}",
            "--output", f"counts={kafka.uri(out)}", *extra]


def _committed(kafka: Kafka, src: str, group: str) -> int:
    return sum(max(v, 0) for v in kafka.committed(src, group, 2).values())


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_broker_cut_off_for_seconds_loses_nothing(faulty_kafka: FaultyKafka, guarantee: str):
    src, out, group = _setup(faulty_kafka)
    proc = subprocess.Popen(_cli(faulty_kafka, src, out, group, guarantee, "--until-idle", "1"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _committed(faulty_kafka, src, group) < N // 5:    # the run is well under way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        faulty_kafka.cut()
        time.sleep(4)
        faulty_kafka.restore()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert _committed(faulty_kafka, src, group) == N                  # it read everything
    want = expected()
    if guarantee == "exactly_once":
        txns = committed_transactions(faulty_kafka, group, src, 2)
        assert as_counter(committed_records(faulty_kafka, out, txns)) == want   # each once
    else:
        got = as_counter(faulty_kafka.read(out))
        assert set(got) == set(want)                                  # none lost


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_broker_that_stays_away_ends_the_run_with_one_line(faulty_kafka: FaultyKafka,
                                                            guarantee: str):
    src, out, group = _setup(faulty_kafka)
    proc = subprocess.Popen(_cli(faulty_kafka, src, out, group, guarantee, "--broker-timeout", "2"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _committed(faulty_kafka, src, group) == 0:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        faulty_kafka.cut()
        _, err = proc.communicate(timeout=120)
    finally:
        faulty_kafka.restore()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert any(what in errors[0] for what in
               ("accepted no commit for 2 s", "unreachable for 2 s", "within 2 s")), errors[0]
    assert faulty_kafka.bootstrap in errors[0] or f"group {group!r}" in errors[0]


class _FlakyCommits:
    """Wraps the run's transactional producer: the first ``fail`` commits raise a retriable
    error, before (``landed=False``) or after (``landed=True``) really committing."""

    def __init__(self, real, fail: int, landed: bool):
        self._real, self.fail, self.landed = real, fail, landed

    def __getattr__(self, name):
        return getattr(self._real, name)

    def commit_transaction(self, *args):
        if self.fail:
            self.fail -= 1
            if self.landed:
                self._real.commit_transaction(*args)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "injected", retriable=True))
        return self._real.commit_transaction(*args)


@pytest.mark.parametrize("landed", [False, True], ids=["aborted", "landed-anyway"])
def test_a_transaction_that_cannot_commit_goes_back_to_the_last_commit(kafka: Kafka, monkeypatch,
                                                                       landed: bool):
    src, out, group = _setup(kafka)
    real = kc.make_producer
    made = []

    def make_producer(spec, **extra):
        p = real(spec, **extra)
        if "transactional.id" in extra and not made:    # the first transactional producer
            p = _FlakyCommits(p, 1 if landed else 2, landed)
            made.append(p)
        return p
    monkeypatch.setattr(kc, "make_producer", make_producer)
    topo = sd.Topology("fraud-ish")
    (topo.stream("attempts", key="card_number", timestamp="ts").group_by("card_number")
        .window(sd.tumbling(minutes=5)).count().to_stream().to("counts"))
    res = get_backend("local").run(topo.plan(), {"attempts": kafka.uri(src, group)},
                                   {"counts": kafka.uri(out)}, until_idle=0.5,
                                   commit_interval=0.05, processing_guarantee="exactly_once")
    assert made and made[0].fail == 0                                 # the failures happened
    want = expected()
    assert res.metrics.records_in == N and res.metrics.records_out == sum(want.values())
    txns = committed_transactions(kafka, group, src, 2)
    assert as_counter(committed_records(kafka, out, txns)) == want
