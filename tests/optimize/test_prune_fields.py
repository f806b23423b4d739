"""prune_fields: shuffles and join buffers carry only the fields read downstream."""

import streamdsl as sd
from streamdsl.optimize import prune_fields

from opt_helpers import assert_equivalent, literal


def _agg():
    t = sd.Topology("t")
    t.stream("in").group_by("card").agg(total=sd.sum("amount"), n=sd.count()).to_stream().to("n")
    return t


def test_projects_before_the_shuffle():
    assert literal(prune_fields(_agg().plan()))[1:4] == [
        "keyby-1: KeyBy(card (null key drops)) <- source-in",
        "project-1: Map(project(amount)) <- keyby-1",
        "repartition-1: Repartition(by key) <- project-1",
    ]


def test_projects_join_inputs_once():
    t = sd.Topology("t")
    a = t.stream("a").key_by("id")
    a.join(t.stream("b", key="id"), within=1_000).map(sd.col("x") + sd.col("y")).to("o")
    assert literal(prune_fields(t.plan())) == [
        "source-a: Source(stream 'a')",
        "keyby-1: KeyBy(id) <- source-a",
        "source-b: Source(stream 'b', key=id)",
        "project-1: Map(project(x, y)) <- keyby-1",
        "repartition-1: Repartition(by key) <- project-1",
        "project-2: Map(project(x, y)) <- source-b",
        "streamstreamjoin-1: StreamStreamJoin(inner within 1s, grace 0ms) "
        "<- repartition-1.left, project-2.right",
        "map-1: Map(x + y) <- streamstreamjoin-1",
        "sink-o: Sink(to 'o') <- map-1",
    ]


def test_no_projection_when_anything_downstream_is_opaque_or_a_sink():
    t = sd.Topology("t")
    t.stream("in").group_by("card").reduce(lambda a, b: a).to("r")
    t.stream("x").key_by("id").join(t.stream("y", key="id"), within=1_000).to("whole")
    assert prune_fields(t.plan()).signature() == t.plan().signature()


def test_pure_and_idempotent():
    plan = _agg().plan()
    before = plan.signature()
    once = prune_fields(plan)
    assert plan.signature() == before
    assert prune_fields(once).signature() == once.signature()


def test_equivalence_count_still_counts_pruned_values():
    t = sd.Topology("t")
    s = t.stream("in")
    s.group_by("card").count().to_stream().to("n")           # project(): values become {}
    s.group_by("card").agg(total=sd.sum("amount"), n=sd.count()).to_stream().to("agg")
    events = [("in", None, {"card": f"c{i % 2}", "amount": i, "junk": "x" * 20}, 1_000 * i)
              for i in range(6)]
    events.append(("in", None, "not a dict", 7_000))          # non-dict values pass unchanged
    res = assert_equivalent(t.plan(), prune_fields(t.plan()), events)
    assert res["outputs"]["n"][-2:] == [("c0", 3, 4_000, None), ("c1", 3, 5_000, None)]
