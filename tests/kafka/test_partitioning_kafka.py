"""librdkafka's murmur2 partitioner (the Java client's default, what a Kafka topic written by
our sink with ``partitioner=murmur2`` holds) puts every key where ``partition_of`` says."""

from __future__ import annotations

from confluent_kafka import Producer
from kafka_helpers import Kafka, kafka  # noqa: F401

from streamdsl.runtime.partitioning import key_bytes, partition_of


def test_librdkafka_murmur2_agrees_with_partition_of(kafka: Kafka):  # noqa: F811
    n = 5
    topic = kafka.topic("parts", partitions=n)
    keys = [f"c{i:05d}" for i in range(60)] + ["", "é", "21", "a-little-bit-longer-string"]
    p = Producer({"bootstrap.servers": kafka.bootstrap, "partitioner": "murmur2",
                  "linger.ms": 1})
    for k in keys:
        p.produce(topic, key=key_bytes(k), value=b"1")
    assert p.flush(10) == 0
    got = {m.key: m.partition for m in kafka.read(topic, json_values=False)}
    assert got == {k: partition_of(k, 0, n) for k in keys}
    assert len(set(got.values())) == n  # the keys cover every partition
