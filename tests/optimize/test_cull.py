"""cull: operators whose records reach no sink (or peek) are removed, with a warning."""

import pytest

import streamdsl as sd
from streamdsl.optimize import OptimizerWarning, cull

from opt_helpers import assert_equivalent, literal, quiet


def _topo(seen):
    t = sd.Topology("t")
    s = t.stream("in")
    s.map(sd.col("x")).to("out")
    s.filter(sd.col("x") > 1).map(sd.col("y"))      # reaches nothing
    s.peek(lambda k, v: seen.append(k))              # a side effect: kept
    t.stream("unused")                               # a declared input: kept
    return t


def test_removes_dead_operators_keeps_sinks_peeks_and_sources():
    plan = _topo([]).plan()
    with pytest.warns(OptimizerWarning, match=r"Filter 'filter-1' \(.*test_cull.py:\d+\)"):
        after = cull(plan)
    assert literal(after) == [
        "source-in: Source(stream 'in')",
        "map-1: Map(x) <- source-in",
        "sink-out: Sink(to 'out') <- map-1",
        f"peek-1: Peek({after.node('peek-1').describe()}) <- source-in",
        "source-unused: Source(stream 'unused')",
    ]


def test_pure_and_idempotent():
    plan = _topo([]).plan()
    before = plan.signature()
    once = quiet(cull, plan)
    assert plan.signature() == before
    assert cull(once) is once  # nothing left to remove: no warning, same plan


def test_equivalence():
    seen_a, seen_b = [], []
    events = [("in", f"k{i}", {"x": i, "y": -i}, 1_000 + i) for i in range(6)]
    res = assert_equivalent(_topo(seen_a).plan(), quiet(cull, _topo(seen_b).plan()), events)
    assert res["outputs"]["out"] == [(f"k{i}", i, 1_000 + i, None) for i in range(6)]
    assert seen_a == seen_b == [f"k{i}" for i in range(6)]
