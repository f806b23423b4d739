"""Repartitions of a Kafka run are Kafka topics, as in Kafka Streams: a ``Repartition`` writes
``<group>-<operator>-repartition`` (as many partitions as the input topics, each record in its
new key's partition), and the sub-topology downstream reads it as a source. So instances of
one group share every sub-topology's tasks: the downstream tasks are the repartition topic's
partitions, assigned through the group like the input topic's."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

import slow_regroup
from eos_check import committed_records, committed_transactions
from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)
from test_fraud_kafka import fraud, producer
from test_shared_group import _read, _wait_for_outputs

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.connectors.kafka import decode_repartition
from streamdsl.errors import ConnectorError
from streamdsl.runtime.partitioning import partition_of

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("streamdsl"))
REGROUP = str(Path(slow_regroup.__file__))


def _partitions(kafka: Kafka, topic: str) -> int:
    md = AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10)
    return len(md.topics[topic].partitions) if topic in md.topics else 0


def _per_key(records) -> dict:
    """Each key's sequence of (value, timestamp, window)."""
    out: dict = defaultdict(list)
    for key, value, ts, window in records:
        out[key].append((value, ts, window))
    return dict(out)


# ---- (a) fraud detection through its repartition topic -----------------------------------------

def test_fraud_goes_through_its_repartition_topic_and_equals_the_file_run(kafka: Kafka):  # noqa: F811
    src, out, group = kafka.name("attempts"), kafka.name("possible-fraud"), kafka.name("fraud")
    assert producer.produce_fraud(kafka.bootstrap, src, partitions=4) == 611
    # as written (optimize=False): its group_by repartitions (optimized, the source's key is
    # the card already and the repartition goes)
    plan = fraud.topology.plan()
    res = get_backend("local").run(plan, {"authorization_attempts": kafka.uri(src, group)},
                                   {"possible_fraud": kafka.uri(out)}, until_idle=0.5,
                                   optimize=False)
    assert res.metrics.records_in == 611               # source records only
    file_run = get_backend("local").run(plan, fraud.INPUTS, {}, partitions=4, optimize=False)
    want = _per_key((r.key, r.value, r.timestamp, r.window)
                    for r in file_run.outputs["possible_fraud"])
    got = _per_key((m.key_json["key"], m.value, m.timestamp,
                    (m.key_json["window_start"], m.key_json["window_end"]))
                   for m in kafka.read(out))
    assert sum(1 for seq in want.values() for v, _, _ in seq if v is not None) >= 2  # the bursts
    assert got == want

    # The repartition topic: 4 partitions, every attempt once, each in its card's partition
    # (Kafka's partitioner over the key bytes), with its event time, in the order read.
    topic = f"{group}-repartition-1-repartition"
    assert _partitions(kafka, topic) == 4
    msgs = kafka.read(topic, json_values=False)
    records = [(m, decode_repartition(m.value)) for m in msgs]
    for m, r in records:
        assert r.key == r.value["card_number"] == m.key
        assert m.partition == partition_of(r.key, 0, 4)
        assert m.timestamp == r.ts == r.value["ts"]
        assert r.origin[0] == "authorization_attempts"
    # The input topic is keyed by card too (murmur2 over 4 partitions), so each repartition
    # partition holds the attempts of the input partition of the same number, in their order
    # there: what the upstream tasks read, in the order they read it.
    source = kafka.read(src)
    for p in range(4):
        assert [r.value for m, r in records if m.partition == p] == \
            [m.value for m in source if m.partition == p]
    assert len(records) == 611
    # the downstream tasks read it all, and committed that to the group
    sizes = Counter(m.partition for m, _ in records)
    assert kafka.committed(topic, group, 4) == {p: sizes[p] for p in range(4)}


def test_a_repartition_topic_with_other_partitions_is_refused(kafka: Kafka):  # noqa: F811
    src, group = kafka.topic("attempts", partitions=4), kafka.name("fraud")
    from confluent_kafka.admin import NewTopic
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    for f in admin.create_topics([NewTopic(f"{group}-repartition-1-repartition", 2, 1)]).values():
        f.result(10)
    with pytest.raises(ConnectorError, match=r"repartition topic '.*-repartition-1-repartition' "
                                             r"\(of 'repartition-1'\) has 2 partition\(s\), but "
                                             r"the run's input topics have 4"):
        get_backend("local").run(fraud.topology.plan(),
                                 {"authorization_attempts": kafka.uri(src, group)}, {},
                                 until_idle=0.1, optimize=False)


# ---- (b) two instances share the tasks of both sub-topologies ------------------------------------

N = 3_000


def _setup(kafka: Kafka, partitions: int = 4) -> tuple[str, str, str, list[dict]]:
    src = kafka.topic("attempts", partitions=partitions)
    recs = slow_regroup.records(N)
    kafka.produce(src, [(r["terminal"], r, None, None) for r in recs])  # keyed by terminal
    return src, kafka.topic("counts", partitions=2), kafka.name("regroup"), recs


def _instance(kafka: Kafka, src: str, out: str, group: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [EXE, "run", REGROUP, "--commit-interval", "0.1", *extra,
         "--input", f"attempts={kafka.uri(src, group)}", "--output", f"counts={kafka.uri(out)}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _counts(kafka: Kafka, out: str) -> tuple[set[tuple], dict[tuple, int]]:
    """Every (card, count, window) written, and each (card, window)'s last count."""
    msgs = kafka.read(out)
    last: dict[tuple, int] = {}
    for m in msgs:  # one output partition per card: its updates in the order written
        last[(m.key_json["key"], m.key_json["window_start"])] = m.value
    return ({(m.key_json["key"], m.value, m.key_json["window_start"]) for m in msgs}, last)


def _window_counts(pairs) -> Counter:
    """Records per (card, window start), of (card, timestamp) pairs."""
    return Counter((card, ts // slow_regroup.WINDOW * slow_regroup.WINDOW) for card, ts in pairs)


def _check_shared_run(kafka: Kafka, src: str, out: str, group: str, recs: list[dict]) -> Counter:
    """What holds after any run of instances sharing the group: every input record reached the
    repartition topic (some maybe twice: written again by the next owner of a task that
    stopped without committing), the downstream tasks counted each record once (the copy
    written again is passed over), whichever instance ran them, so every window's updates
    are those of one instance; everything is committed. Returns how many times each input
    record is in the topic."""
    topic = f"{group}-repartition-1-repartition"
    assert _partitions(kafka, topic) == 4
    msgs = kafka.read(topic, json_values=False)
    in_topic = [decode_repartition(m.value) for m in msgs]
    times = Counter(r.ts for r in in_topic)
    assert set(times) == {r["ts"] for r in recs}                  # nothing lost
    # count() reads no field: the optimizer's prune_fields empties values before the shuffle
    assert all(r.value == {} and m.partition == partition_of(r.key, 0, 4)
               for m, r in zip(msgs, in_topic))
    rows, last = _counts(kafka, out)
    want = _window_counts((r["card_number"], r["ts"]) for r in recs)
    assert last == dict(want)                                     # each record counted once
    assert rows == {(card, c, w) for (card, w), n in want.items() for c in range(1, n + 1)}
    assert sum(kafka.committed(src, group, 4).values()) == N
    assert kafka.committed(topic, group, 4) == dict(Counter(m.partition for m in msgs))
    return times


def test_two_instances_share_both_sub_topologies_and_give_one_instances_counts(kafka: Kafka):  # noqa: F811
    src, out, group, recs = _setup(kafka)
    a = _instance(kafka, src, out, group, "--until-idle", "3")
    _wait_for_outputs(kafka, out, N // 5)  # a owns every task and has begun:
    b = _instance(kafka, src, out, group, "--until-idle", "3")  # b takes some, with their state
    read_a, read_b = _read(a), _read(b)
    assert read_a > 0 and read_b > 0, (read_a, read_b)   # both read input records
    _check_shared_run(kafka, src, out, group, recs)


def test_an_instance_killed_part_way_leaves_its_tasks_to_the_other(kafka: Kafka):  # noqa: F811
    src, out, group, recs = _setup(kafka)
    a = _instance(kafka, src, out, group, "--until-idle", "3")
    time.sleep(1.0)
    b = _instance(kafka, src, out, group, "--until-idle", "3")
    _wait_for_outputs(kafka, out, N // 3)
    assert b.poll() is None, "b ended before it could be killed"
    b.send_signal(signal.SIGKILL)
    b.wait(10)
    _read(a)
    _check_shared_run(kafka, src, out, group, recs)


# ---- (c) exactly once through a repartition topic ------------------------------------------------

def test_killed_exactly_once_runs_with_a_repartition_count_each_record_once(kafka: Kafka):  # noqa: F811
    """SIGKILL at random moments, restart with the same group, until a run ends by itself;
    then the committed transactions (eos_check) hold each result once, and each record once
    in the repartition topic."""
    import random
    src, out, group, recs = _setup(kafka, partitions=2)
    topic = f"{group}-repartition-1-repartition"
    rng = random.Random(14)
    committed_now = kafka.committed_watch(src, group, 2)
    args = ("--quiet", "--processing-guarantee", "exactly_once")
    for fraction in (0.2, 0.5, 0.75):
        proc = _instance(kafka, src, out, group, *args)
        try:
            deadline = time.monotonic() + 60
            while committed_now() < fraction * N:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    committed_now.close()
    r = subprocess.run([EXE, "run", REGROUP, "--commit-interval", "0.1", *args, "--until-idle",
                        "0.5", "--input", f"attempts={kafka.uri(src, group)}",
                        "--output", f"counts={kafka.uri(out)}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sum(kafka.committed(src, group, 2).values()) == N
    txns = committed_transactions(kafka, group, src, 2)
    outputs = committed_records(kafka, out, txns)
    assert Counter((m.key_json["key"], m.value, m.timestamp,
                    (m.key_json["window_start"], m.key_json["window_end"])) for m in outputs) \
        == Counter(slow_regroup.expected(recs))          # every result, each exactly once
    repartitioned = committed_records(kafka, topic, txns, json_values=False)
    assert Counter(decode_repartition(m.value).ts for m in repartitioned) == \
        Counter(r["ts"] for r in recs)                   # every record once in the topic


# ---- a sub-topology reading a repartition topic and a table --------------------------------------

def test_a_repartition_joined_with_a_table_is_merged_in_timestamp_order(kafka: Kafka):  # noqa: F811
    """Orders keyed (in Kafka) by order id, re-keyed by customer and joined with the customers
    table: the join's tasks read the repartition topic and the table's topic, and take their
    records in timestamp order, waiting for repartitioned records still on their way (o1 at
    2 s must find Ada, not the update at 3 s that the table's topic holds already)."""
    import test_table_join as tj
    customers = tj._compacted_topic(kafka, "customers")
    orders = kafka.topic("orders", partitions=2)
    kafka.produce(customers, tj.CUSTOMERS)
    by_order = [(v["order"], v, ts, partition_of(v["order"], 0, 2)) for _, v, ts, _ in tj.ORDERS]
    kafka.produce(orders, by_order)
    topo = _rekeyed_enrichment()
    group, enriched_all = kafka.name("rekeyed"), kafka.name("enriched-all")
    get_backend("local").run(topo.plan(), {"customers": kafka.uri(customers, group),
                                           "orders": kafka.uri(orders, group)},
                             {"enriched_all": kafka.uri(enriched_all)}, until_idle=0.5)
    topic = f"{group}-repartition-1-repartition"
    assert len(kafka.read(topic, json_values=False)) == 6
    got = {m.value["order"]: m.value.get("name") for m in kafka.read(enriched_all)}
    assert got == {"o1": "Ada", "o2": "Bob", "o3": "Ada L.", "o4": None, "o5": "Cy", "o6": None}
    memory = get_backend("local").run(
        topo.plan(), {"customers": {"type": "memory", "records": [r[:3] for r in tj.CUSTOMERS]},
                      "orders": {"type": "memory", "records": [r[:3] for r in by_order]}},
        {}, partitions=2)
    assert sorted((m.key, m.value["order"], m.timestamp) for m in kafka.read(enriched_all)) == \
        sorted((r.key, r.value["order"], r.timestamp) for r in memory.outputs["enriched_all"])


def _rekeyed_enrichment() -> sd.Topology:
    topo = sd.Topology("rekeyed-enrichment")
    customers = topo.table("customers")
    topo.stream("orders").key_by("customer").left_join(customers).to("enriched_all")
    return topo


def test_a_shared_run_takes_its_tasks_from_a_checkpoint_of_the_whole_run(kafka: Kafka):  # noqa: F811
    """A run that does not share its group (exactly_once) checkpoints every task in one record;
    an at_least_once run of the same group, which shares it, takes each task's state and
    offsets from that record (the upstream tasks' input offsets, the downstream tasks'
    repartition offsets), so the two runs together give the file run's results."""
    from test_fraud_kafka import file_run, kafka_records
    src, out, group = kafka.name("attempts"), kafka.name("possible-fraud"), kafka.name("fraud")
    producer.produce_fraud(kafka.bootstrap, src, partitions=2)
    plan = fraud.topology.plan()
    inputs = {"authorization_attempts": kafka.uri(src, group)}
    first = get_backend("local").run(plan, inputs, {"possible_fraud": kafka.uri(out)},
                                     max_records=300, processing_guarantee="exactly_once")
    assert first.metrics.records_in == 300
    assert 0 < sum(kafka_records(kafka, out).values()) < sum(file_run().values())
    second = get_backend("local").run(plan, inputs, {"possible_fraud": kafka.uri(out)},
                                      until_idle=0.5)
    assert second.metrics.records_in == 611 - 300
    assert kafka_records(kafka, out) == file_run()      # open windows went on from the state
