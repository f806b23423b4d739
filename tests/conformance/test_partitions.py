"""Partitions: each task (sub-topology, partition) keeps its own state and stream time, as a
Kafka Streams task does (docs/semantics.md, "Partitions and tasks").

Every case runs with ``partitions=3`` on every backend; the partitions of the keys used here,
by Kafka's default partitioner over 3 partitions (``streamdsl.runtime.partitioning``):
``a``: 1, ``b``: 2, ``x``: 1, ``y``: 0, ``u1``: 1, ``u2``: 0, ``u3``: 1, and the new keys
``home``, ``eu``, ``us``: 1. Expected records are worked out by hand from those rules.
"""

import pytest

import streamdsl as sd
from streamdsl.runtime.partitioning import partition_of
from streamdsl.testing import TestDriver

from conftest import BASE_BACKENDS, assert_changes, assert_exact, assert_final, make_backend, out, \
    run_full, send_all

S10 = sd.seconds(10)


@pytest.fixture(params=BASE_BACKENDS)
def backend(request):
    """Every backend variant; the partitions are the test's own."""
    return make_backend(request.param)


def test_the_keys_land_where_the_docstring_says():
    assert [partition_of(k, 0, 3) for k in ("a", "b", "x", "y", "u1", "u2", "u3")] == \
        [1, 2, 1, 0, 1, 0, 1]
    assert {partition_of(k, 0, 3) for k in ("home", "eu", "us")} == {1}


def _count_final():
    topo = sd.Topology("per-task-time")
    (topo.stream("in").group_by_key().window(sd.tumbling(S10), emit="final").count()
     .to_stream().to("out"))
    return topo


def test_a_window_stays_open_while_only_another_partitions_stream_time_advances(backend):
    """a (partition 1) and b (partition 2) are different tasks: b@15s closes b's [0,10s) but
    not a's, whose task has only seen 1s. a@12s then closes a's own. With one partition the
    first b@15s closes both."""
    w1, w2 = (0, 10_000), (10_000, 20_000)
    with TestDriver(_count_final(), backend=backend, partitions=3) as d:
        send_all(d, [("in", "a", "x", 1_000), ("in", "b", "x", 2_000), ("in", "b", "x", 15_000)])
        assert_exact(out(d, "out"), [("b", 1, 2_000, w1)])
        send_all(d, [("in", "a", "x", 12_000)])
        # two tasks' records: only each key's sequence is part of the results
        assert_changes(out(d, "out"), [("b", 1, 2_000, w1), ("a", 1, 1_000, w1)])
        assert_final(out(d, "out", flush=True), [
            ("b", 1, 2_000, w1), ("a", 1, 1_000, w1),
            ("b", 1, 15_000, w2), ("a", 1, 12_000, w2),
        ])
    with TestDriver(_count_final(), backend=backend, partitions=1) as d:
        send_all(d, [("in", "a", "x", 1_000), ("in", "b", "x", 2_000), ("in", "b", "x", 15_000)])
        assert_exact(out(d, "out"), [("a", 1, 1_000, w1), ("b", 1, 2_000, w1)])


def test_ss_join_of_co_partitioned_topics_keeps_stream_time_per_task(backend):
    """Inner join within 5s, grace 0. Both topics are partitioned by key, so x's records of
    both sides meet in task x (partition 1) and y's in partition 0. y's right record @20s
    advances only partition 0's stream time: x's right record @4s is on time in its task
    (4s + 5s >= 1s) and joins lx@1s, at max(1s, 4s). With one partition it comes when stream
    time is 20s (4s + 5s < 20s): late, dropped, nothing joins."""
    topo = sd.Topology("co-partitioned")
    left, right = topo.stream("left"), topo.stream("right")
    left.join(right, lambda lv, rv: (lv, rv), within=sd.seconds(5)).to("out")
    inputs = [("left", "x", "lx", 1_000), ("left", "y", "ly", 2_000),
              ("right", "y", "ry", 20_000), ("right", "x", "rx", 4_000)]
    with TestDriver(topo, backend=backend, partitions=3) as d:
        send_all(d, inputs)
        assert_exact(out(d, "out", flush=True), [("x", ("lx", "rx"), 4_000, None)])
        assert d.metrics().late == 0
    one = run_full(topo, backend, inputs, "out")
    assert one.outputs["out"] == [] and one.metrics.late == 1


def test_group_by_repartition_merges_two_upstream_tasks_in_input_order(backend):
    """Records keyed a (partition 1) and b (partition 2) are re-keyed by page: both go to
    task home (partition 1 of the count's sub-topology), which takes them in input order
    (depth first), not by timestamp: a's home@15s first advances its stream time, so b's
    home@5s is late for [0,10s) (grace 0), dropped and counted."""
    topo = sd.Topology("regroup")
    (topo.stream("views").group_by(sd.col("page")).window(sd.tumbling(S10)).count()
     .to_stream().to("out"))
    inputs = [("views", "a", {"page": "home"}, 15_000), ("views", "b", {"page": "home"}, 5_000),
              ("views", "b", {"page": "home"}, 16_000)]
    with TestDriver(topo, backend=backend, partitions=3) as d:
        send_all(d, inputs)
        assert_exact(out(d, "out", flush=True), [("home", 1, 15_000, (10_000, 20_000)),
                                                 ("home", 2, 16_000, (10_000, 20_000))])
        assert d.metrics().late == 1


def test_table_regrouped_across_partitions(backend):
    """A table keyed u1 (partition 1), u2 (partition 0), u3 (partition 1) grouped by region:
    each update's subtraction and addition go to the region's task (eu and us: partition 1),
    which takes the changes of both upstream tasks in input order. u1 moving to us subtracts
    from eu (then 1, at max(2s, 4s)) and adds to us (2 @4s); deleting u2 takes eu to 0."""
    topo = sd.Topology("regions")
    topo.table("users").group_by(lambda v: v["region"]).count().to_stream().to("out")
    inputs = [("users", "u1", {"region": "eu"}, 1_000), ("users", "u2", {"region": "eu"}, 2_000),
              ("users", "u3", {"region": "us"}, 3_000), ("users", "u1", {"region": "us"}, 4_000),
              ("users", "u2", None, 5_000)]
    expected = [("eu", 1, 1_000, None), ("eu", 2, 2_000, None), ("eu", 1, 4_000, None),
                ("eu", 0, 5_000, None), ("us", 1, 3_000, None), ("us", 2, 4_000, None)]
    for partitions in (1, 3):
        with TestDriver(topo, backend=backend, partitions=partitions) as d:
            send_all(d, inputs)
            assert_changes(out(d, "out", flush=True), expected)
