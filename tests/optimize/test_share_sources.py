"""share_sources: a topic declared several times is read once."""

import streamdsl as sd
from streamdsl.optimize import share_sources

from opt_helpers import assert_equivalent, literal


def _topo():
    t = sd.Topology("t")
    t.stream("in", key="k").filter(sd.col("x") > 1).to("a")
    t.stream("in", key="k").map(sd.col("y")).to("b")
    t.stream("in", key="other").to("c")           # declared differently: stays separate
    return t


def test_folds_identical_declarations():
    assert literal(share_sources(_topo().plan())) == [
        "source-in: Source(stream 'in', key=k)",
        "filter-1: Filter(x > 1) <- source-in",
        "sink-a: Sink(to 'a') <- filter-1",
        "map-1: Map(y) <- source-in",
        "sink-b: Sink(to 'b') <- map-1",
        "source-in-2: Source(stream 'in', key=other)",
        "sink-c: Sink(to 'c') <- source-in-2",
    ]


def test_self_join_keeps_its_input_order():
    """Each record reached the left side, then the right; after sharing it still does."""
    t = sd.Topology("t")
    left = t.stream("in", key="k")
    right = t.stream("in", key="k")
    left.join(right, lambda lv, rv: (lv["n"], rv["n"]), within=1_000).to("pairs")
    after = share_sources(t.plan())
    assert [n.name for n in after.sources()] == ["source-in"]
    events = [("in", None, {"k": "a", "n": i}, 100 * i) for i in range(4)]
    res = assert_equivalent(t.plan(), after, events)
    # Record i first joins (as left) the right records before it, then (as right) every
    # left record up to itself.
    expected = []
    for i in range(4):
        expected += [(i, j) for j in range(i)] + [(j, i) for j in range(i + 1)]
    assert [v for _, v, _, _ in res["outputs"]["pairs"]] == expected


def test_pure_and_idempotent():
    plan = _topo().plan()
    before = plan.signature()
    once = share_sources(plan)
    assert plan.signature() == before
    assert share_sources(once).signature() == once.signature()


def test_equivalence():
    events = [("in", None, {"k": f"k{i % 3}", "other": i, "x": i, "y": str(i)}, 1_000 + i)
              for i in range(8)]
    assert_equivalent(_topo().plan(), share_sources(_topo().plan()), events)


def test_an_unreadable_record_is_dead_lettered_once():
    from streamdsl.testing import TestDriver
    t = sd.Topology("t", on_error="dead-letter")
    t.stream("in", timestamp="ts").to("a")
    t.stream("in", timestamp="ts").to("b")
    counts = []
    for optimize in (False, True):
        with TestDriver(t, optimize=optimize) as d:
            d.send("in", {"n": 1}, key="k")          # no "ts" field
            d.send("in", {"n": 2, "ts": 5}, key="k")
            assert [r.value for r in d.output("a")] == [{"n": 2, "ts": 5}]
            counts.append(len(d.dead_letters()))
    assert counts == [2, 1]
