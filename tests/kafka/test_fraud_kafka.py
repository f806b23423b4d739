"""Acceptance: the fraud topology reading the sample data from a 2-partition Kafka topic writes
the same records to Kafka as the file-based run."""

from __future__ import annotations

import importlib.util
import os
from collections import Counter

import pytest

from streamdsl.backend import get_backend

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "topologies", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fraud = _load("fraud_detection")
producer = _load("produce_fraud_to_kafka")


def file_run() -> Counter:
    res = get_backend("local").run(fraud.topology.plan(), fraud.INPUTS, {})
    return Counter((r.key, r.value, r.timestamp, r.window) for r in res.outputs["possible_fraud"])


def kafka_records(kafka: Kafka, topic: str) -> Counter:
    out = Counter()
    for m in kafka.read(topic):
        k = m.key_json
        out[(k["key"], m.value, m.timestamp, (k["window_start"], k["window_end"]))] += 1
    return out


# Backends that run from Kafka: the local backend through its committing run loop, Bytewax
# and Beam through the bounded Kafka reader (``open_source``) and the Kafka sink.
BACKENDS = {"local": ("local", {"until_idle": 0.5}),
            "bytewax": ("bytewax", {}),
            "bytewax-2w": ("bytewax", {"workers": 2}),
            "beam": ("beam", {})}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_fraud_from_kafka_equals_file_run(kafka: Kafka, backend: str):
    src = kafka.name("attempts")
    assert producer.produce_fraud(kafka.bootstrap, src, partitions=2) == 611
    out = kafka.name("possible-fraud")
    group = kafka.name("fraud")
    name, options = BACKENDS[backend]
    res = get_backend(name).run(fraud.topology.plan(),
                                {"authorization_attempts": kafka.uri(src, group)},
                                {"possible_fraud": kafka.uri(out)}, **options)
    assert res.metrics.records_in == 611
    expected = file_run()
    assert sum(1 for k in expected if k[1] is not None) >= 2   # the two bursts are found
    assert kafka_records(kafka, out) == expected
    if name == "local":   # the local run committed its offsets: everything was read
        sizes = Counter(m.partition for m in kafka.read(src))
        assert len(sizes) == 2 and kafka.committed(src, group, 2) == dict(sizes)
