"""What a Kafka run does before and around the records: a key the stream does not use is not
decoded, the run says it is joining its consumer group while it waits, its consumer joins with
a short session by default, and the bundled producer waits for room instead of failing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.local.kafka_run import SESSION_TIMEOUT_MS, _KafkaRun

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)
from test_fraud_kafka import producer

ROOT = Path(__file__).resolve().parents[2]
BAD_KEY = b"\xff\xfecard"   # not UTF-8


def _payments(kafka: Kafka) -> str:
    src = kafka.topic("payments")
    kafka.produce(src, [(BAD_KEY, {"card": "c1", "amount": 5}, 1_000, None),
                        (b"c2", {"card": "c2", "amount": 7}, 2_000, None)])
    return src


@pytest.mark.parametrize("backend", ["local", "bytewax"])
def test_an_unused_key_is_not_decoded(kafka: Kafka, backend: str):
    """The stream keys by a value field: a non-UTF-8 Kafka key cannot make its record bad."""
    src = _payments(kafka)
    topo = sd.Topology("by-card", on_error="dead-letter")
    topo.stream("payments", key="card").group_by_key().count().to_stream().to("counts")
    opts = {"until_idle": 0.5} if backend == "local" else {}
    res = get_backend(backend).run(topo.plan(), {"payments": kafka.uri(src, kafka.name("k"))}, {},
                                   **opts)
    assert res.metrics.dead_lettered == 0 and res.dead_letters == []
    assert sorted((r.key, r.value) for r in res.outputs["counts"]) == [("c1", 1), ("c2", 1)]


@pytest.mark.parametrize("backend", ["local", "bytewax"])
def test_a_used_key_that_does_not_decode_is_a_dead_letter(kafka: Kafka, backend: str):
    src = _payments(kafka)
    topo = sd.Topology("by-kafka-key", on_error="dead-letter")
    topo.stream("payments").group_by_key().count().to_stream().to("counts")
    opts = {"until_idle": 0.5} if backend == "local" else {}
    res = get_backend(backend).run(topo.plan(), {"payments": kafka.uri(src, kafka.name("k"))}, {},
                                   **opts)
    assert [(d.position, d.reason.split(":")[0]) for d in res.dead_letters] == \
        [((0, 0), "invalid UTF-8 key")]
    assert [(r.key, r.value) for r in res.outputs["counts"]] == [("c2", 1)]


def test_the_consumer_joins_with_a_short_session_by_default(monkeypatch):
    import confluent_kafka
    topo = sd.Topology("t")
    topo.stream("s").to("out")

    def consumer_conf(uri: str) -> dict:
        run = _KafkaRun(topo.plan(), {"s": uri}, {}, on_error=None, dead_letter=None,
                        progress=None, progress_every=1, guarantee="at_least_once",
                        until_idle=None, max_records=None, commit_interval=1,
                        assignment_timeout=1)
        conf: dict = {}
        monkeypatch.setattr(confluent_kafka, "Consumer", conf.update)
        run._consumer()
        return conf

    conf = consumer_conf("kafka://127.0.0.1:1/s")
    # librdkafka's default is 45 s: a new member then waits ~23 s to join on the test broker
    assert conf["session.timeout.ms"] == SESSION_TIMEOUT_MS == 6000
    assert conf["heartbeat.interval.ms"] < conf["session.timeout.ms"]
    assert consumer_conf("kafka://127.0.0.1:1/s?session.timeout.ms=20000")["session.timeout.ms"] \
        == "20000"                                                  # the user's option wins


def test_the_progress_line_says_it_is_joining_the_group(kafka: Kafka):
    src, out, group = kafka.name("attempts"), kafka.name("possible-fraud"), kafka.name("join")
    producer.produce_fraud(kafka.bootstrap, src, partitions=2)
    exe = str(Path(sys.executable).with_name("streamdsl"))
    r = subprocess.run([exe, "run", "topologies/fraud_detection.py", "--until-idle", "0.5",
                        "--input", f"authorization_attempts={kafka.uri(src, group)}",
                        "--output", f"possible_fraud={kafka.uri(out)}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    joining = [i for i, line in enumerate(lines) if line.startswith("progress: joining consumer group")]
    assert joining and f"'{group}'" in lines[joining[0]] and src in lines[joining[0]]
    assert any(line.startswith("done: fraud-detection") for line in lines[joining[0]:])


def test_the_bundled_producer_waits_for_room(kafka: Kafka, tmp_path):
    """A local queue far smaller than the file (librdkafka's default holds 100,000 records):
    the producer waits for deliveries instead of failing with BufferError half-way."""
    path = tmp_path / "attempts.jsonl"
    n = 3_000
    path.write_bytes(b"".join(orjson.dumps({"card_number": f"c{i % 50}", "ts": 1_000 + i}) + b"\n"
                              for i in range(n)))
    topic = kafka.name("attempts")
    assert producer.produce_fraud(kafka.bootstrap, topic, partitions=2, path=str(path),
                                  config={"queue.buffering.max.messages": 100}) == n
    got = kafka.read(topic)
    assert len(got) == n and sorted(m.value["ts"] for m in got) == list(range(1_000, 1_000 + n))
