"""Acceptance: a table fed from a compacted-style topic with tombstones gives the same joins as
the in-memory run of the same records."""

from __future__ import annotations

import json

from confluent_kafka.admin import AdminClient, NewTopic

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.runtime.partitioning import partition_of

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)

# (key, value, timestamp, partition); None values are tombstones. Records are produced to the
# partition of their key (Kafka's default partitioner over the topics' 2 partitions), so the
# stream-table join is co-partitioned: each task joins its own keys, as in Kafka Streams.
def _by_key(rows):
    return [(k, v, ts, partition_of(k, 0, 2)) for k, v, ts in rows]


CUSTOMERS = _by_key([
    ("c1", {"name": "Ada"}, 1_000),
    ("c2", {"name": "Bob"}, 1_500),
    ("c1", {"name": "Ada L."}, 3_000),
    ("c2", None, 4_000),
    ("c3", {"name": "Cy"}, 4_500),
    ("c3", None, 6_000),
])
ORDERS = _by_key([
    ("c1", {"order": "o1", "customer": "c1", "amount": 5}, 2_000),
    ("c2", {"order": "o2", "customer": "c2", "amount": 6}, 2_500),
    ("c1", {"order": "o3", "customer": "c1", "amount": 7}, 3_500),
    ("c2", {"order": "o4", "customer": "c2", "amount": 8}, 5_000),
    ("c3", {"order": "o5", "customer": "c3", "amount": 9}, 5_500),
    ("c3", {"order": "o6", "customer": "c3", "amount": 1}, 6_500),
])


def enrichment() -> sd.Topology:
    topo = sd.Topology("order-enrichment")
    customers = topo.table("customers")                 # key: the Kafka key; time: record time
    orders = topo.stream("orders", key="customer")
    orders.join(customers, name="inner").to("enriched")
    orders.left_join(customers, name="left").to("enriched_all")
    return topo


def _compacted_topic(kafka: Kafka, prefix: str) -> str:
    name = kafka.name(prefix)
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    for fut in admin.create_topics([NewTopic(name, 2, 1,
                                             config={"cleanup.policy": "compact"})]).values():
        fut.result(10)
    return name


def test_table_with_tombstones_joins_like_in_memory(kafka: Kafka):
    customers, orders = _compacted_topic(kafka, "customers"), kafka.topic("orders", partitions=2)
    kafka.produce(customers, CUSTOMERS)
    kafka.produce(orders, ORDERS)
    enriched, enriched_all = kafka.name("enriched"), kafka.name("enriched-all")
    group = kafka.name("enrich")
    plan = enrichment().plan()
    get_backend("local").run(
        plan, {"customers": kafka.uri(customers, group), "orders": kafka.uri(orders, group)},
        {"enriched": kafka.uri(enriched), "enriched_all": kafka.uri(enriched_all)}, until_idle=0.5)

    memory = get_backend("local").run(
        plan, {"customers": {"type": "memory", "records": [r[:3] for r in CUSTOMERS]},
               "orders": {"type": "memory", "records": [r[:3] for r in ORDERS]}}, {})

    def rows(recs):
        return [(r.key, r.value, r.timestamp) for r in recs]

    for sink, topic in (("enriched", enriched), ("enriched_all", enriched_all)):
        got = [(m.key, m.value, m.timestamp) for m in kafka.read(topic)]
        assert got == rows(memory.outputs[sink]), sink          # same records, same order
    # and what those are, by hand: c2 deleted before o4, c3 deleted before o6
    assert [v["order"] for _, v, _ in rows(memory.outputs["enriched"])] == ["o1", "o2", "o3", "o5"]
    assert rows(memory.outputs["enriched_all"])[2][1]["name"] == "Ada L."
    lefts = {v["order"]: v.get("name") for _, v, _ in rows(memory.outputs["enriched_all"])}
    assert lefts == {"o1": "Ada", "o2": "Bob", "o3": "Ada L.", "o4": None, "o5": "Cy", "o6": None}


def test_kafka_stream_with_a_file_table_and_a_restart(kafka: Kafka, tmp_path):
    """A Kafka stream joined with a JSON-lines table: the file is read along with the topic (in
    the same timestamp order), and a run stopped after N records continues where it stopped."""
    path = tmp_path / "customers.jsonl"
    path.write_text("".join(
        '{"key": %s, "value": %s, "timestamp": %d}\n' % (
            json.dumps(k), json.dumps(v), ts) for k, v, ts, _ in CUSTOMERS))
    orders = kafka.topic("orders", partitions=2)
    kafka.produce(orders, ORDERS)
    enriched, enriched_all, group = kafka.name("enriched"), kafka.name("enriched-all"), kafka.name("mix")
    plan = enrichment().plan()
    inputs = {"customers": {"type": "jsonl", "path": str(path), "envelope": True},
              "orders": kafka.uri(orders, group)}
    outputs = {"enriched": kafka.uri(enriched), "enriched_all": kafka.uri(enriched_all)}
    first = get_backend("local").run(plan, inputs, outputs, max_records=5)
    assert first.metrics.records_in == 5
    get_backend("local").run(plan, inputs, outputs, until_idle=0.5)
    memory = get_backend("local").run(
        plan, {"customers": {"type": "memory", "records": [r[:3] for r in CUSTOMERS]},
               "orders": {"type": "memory", "records": [r[:3] for r in ORDERS]}}, {})
    for sink, topic in (("enriched", enriched), ("enriched_all", enriched_all)):
        got = [(m.key, m.value, m.timestamp) for m in kafka.read(topic)]
        assert got == [(r.key, r.value, r.timestamp) for r in memory.outputs[sink]], sink
