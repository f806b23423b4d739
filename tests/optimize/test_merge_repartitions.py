"""merge_repartitions: no repartition for the key the records already have, one per re-key."""

import streamdsl as sd
from streamdsl.optimize import merge_repartitions

from opt_helpers import assert_equivalent, literal


def test_group_by_the_declared_source_key_needs_no_repartition():
    t = sd.Topology("t")
    t.stream("in", key="card").group_by("card").count().to("n")
    assert literal(merge_repartitions(t.plan())) == [
        "source-in: Source(stream 'in', key=card)",
        "keyby-1: Filter(not_null(KEY)) <- source-in",   # group_by drops null keys
        "aggregate-1: Aggregate(count()) <- keyby-1",
        "sink-n: Sink(to 'n') <- aggregate-1",
    ]


def _siblings():
    t = sd.Topology("t")
    s = t.stream("in").key_by("user")
    s.group_by_key().count().to("n")
    s.group_by_key().agg(m=sd.max("x")).to("m")
    return t


def test_one_repartition_per_key_change():
    assert literal(merge_repartitions(_siblings().plan())) == [
        "source-in: Source(stream 'in')",
        "keyby-1: KeyBy(user) <- source-in",
        "repartition-1: Repartition(by key) <- keyby-1",
        "aggregate-1: Aggregate(count()) <- repartition-1",
        "sink-n: Sink(to 'n') <- aggregate-1",
        "aggregate-2: Aggregate(agg(m=max(x))) <- repartition-1",
        "sink-m: Sink(to 'm') <- aggregate-2",
    ]


def test_identical_group_bys_share_the_re_key_and_the_repartition():
    t = sd.Topology("t")
    s = t.stream("in")
    s.group_by("user").count().to("n")
    s.group_by("user").agg(m=sd.max("x")).to("m")
    assert literal(merge_repartitions(t.plan())) == [
        "source-in: Source(stream 'in')",
        "keyby-1: KeyBy(user (null key drops)) <- source-in",
        "repartition-1: Repartition(by key) <- keyby-1",
        "aggregate-1: Aggregate(count()) <- repartition-1",
        "sink-n: Sink(to 'n') <- aggregate-1",
        "aggregate-2: Aggregate(agg(m=max(x))) <- repartition-1",
        "sink-m: Sink(to 'm') <- aggregate-2",
    ]


def test_a_real_key_change_keeps_its_repartition():
    t = sd.Topology("t")
    t.stream("a").key_by("id").join(t.stream("b", key="id"), within=1_000).to("o")
    t.stream("c", key="card").map(lambda v: v).group_by("card").count().to("n")  # opaque map
    assert merge_repartitions(t.plan()).signature() == t.plan().signature()


def test_pure_and_idempotent():
    plan = _siblings().plan()
    before = plan.signature()
    once = merge_repartitions(plan)
    assert plan.signature() == before
    assert merge_repartitions(once).signature() == once.signature()


def test_equivalence():
    t = sd.Topology("t")
    src = t.stream("in", key="card")
    src.group_by("card").count().to_stream().to("per_card")
    s = src.key_by("user")
    s.group_by_key().count().to_stream().to("n")
    s.group_by_key().agg(m=sd.max("x")).to_stream().to("m")
    events = [("in", None, {"card": [None, "c1", "c2"][i % 3], "user": f"u{i % 2}", "x": i},
               1_000 * i) for i in range(9)]
    after = merge_repartitions(t.plan())
    assert sum(n.kind == "Repartition" for n in after.nodes()) == 1
    res = assert_equivalent(t.plan(), after, events)
    assert [r[:2] for r in res["outputs"]["per_card"]] == [
        ("c1", 1), ("c2", 1), ("c1", 2), ("c2", 2), ("c1", 3), ("c2", 3)]
