"""fuse_stateless: chains of stateless operators run as one compiled stage."""

import pytest

import streamdsl as sd
from streamdsl.errors import RecordError
from streamdsl.optimize import fuse_stateless
from streamdsl.testing import TestDriver

from opt_helpers import assert_equivalent, literal


def _topo(seen):
    t = sd.Topology("t", on_error="dead-letter")
    s = (t.stream("in")
         .filter(sd.col("n") > 0)
         .map(lambda v: {**v, "inv": 12 // v["n"] if v["n"] != 7 else 1 // 0})
         .key_by("user"))
    s.to("a")
    (s.peek(lambda k, v: seen.append(k))
      .flat_map(lambda v: [v, {**v, "copy": True}] if v["n"] % 2 else [v])
      .map(lambda v: v["inv"]).to("b"))
    return t


def test_chains_fuse_and_flat_maps_end_them():
    got = literal(fuse_stateless(_topo([]).plan()))
    assert got[1] == "fused-1: Fused(Filter(filter-1) -> Map(map-1) -> KeyBy(keyby-1)) <- source-in"
    assert got[2] == "sink-a: Sink(to 'a') <- fused-1"
    assert got[3] == "fused-2: Fused(Peek(peek-1) -> FlatMap(flatmap-1)) <- fused-1"
    assert got[4].startswith("map-2: Map(") and got[4].endswith("<- fused-2")


def test_pure_and_idempotent():
    plan = _topo([]).plan()
    before = plan.signature()
    once = fuse_stateless(plan)
    assert plan.signature() == before
    assert fuse_stateless(once) is once


def test_equivalence_with_failures_inside_the_chain():
    seen_a, seen_b = [], []
    events = [("in", None, {"user": f"u{i % 3}", "n": n}, 1_000 * i)
              for i, n in enumerate([3, 0, 7, 4, 5, 7, 2])]
    res = assert_equivalent(_topo(seen_a).plan(), fuse_stateless(_topo(seen_b).plan()), events)
    assert seen_a == seen_b
    assert len(res["dead_letters"]) == 2


def test_a_failing_stage_is_reported_under_its_own_name():
    t = sd.Topology("t", on_error="dead-letter")
    t.stream("in").filter(sd.col("n") > 0).map(lambda v: 10 // v["d"], name="divide") \
        .filter(sd.col("n") > 0, name="after").to("out")
    with TestDriver(t) as d:                       # optimized: one fused stage
        assert any(n.kind == "Fused" for n in d.plan.nodes())
        d.send("in", {"n": 1, "d": 0}, key="k", timestamp=5)
        assert d.output("out") == []
        (dl,) = d.dead_letters()
    assert (dl.operator, dl.key, dl.value, dl.timestamp) == ("divide", "k", {"n": 1, "d": 0}, 5)
    assert dl.reason.startswith("ZeroDivisionError")


def test_on_error_fail_names_the_stage_and_its_site():
    t = sd.Topology("t")
    t.stream("in").filter(sd.col("n") > 0).map(lambda v: 10 // v["d"], name="divide").to("out")
    with pytest.raises(RecordError, match=r"operator 'divide'.*test_fuse_stateless.py:\d+"):
        with TestDriver(t) as d:
            d.send("in", {"n": 1, "d": 0}, key="k", timestamp=5)
            d.output("out")


def test_every_stage_kind_fused_equals_unfused():
    seen = []
    t = sd.Topology("t", on_error="dead-letter")
    (t.stream("in")
        .key_by(sd.col("u"))
        .map_kv(lambda k, v: (f"{k}!", {**v, "k": k}))
        .filter(sd.key() != "x!")
        .peek(lambda k, v: seen.append((k, v["n"])))
        .map(sd.col("n") + 1)
        .flat_map_kv(lambda k, v: [(k, v)] * (v % 3) if v != 9 else [(k, v), "oops"])
        .to("out"))
    events = [("in", None, {"u": u, "n": n}, i) for i, (u, n) in
              enumerate([("a", 1), ("x", 2), ("b", 4), ("c", 8), ("a", 5)])]
    fused = fuse_stateless(t.plan())
    assert literal(fused)[1].startswith("fused-1: Fused(KeyBy(keyby-1) -> MapKV(mapkv-1) -> "
                                        "Filter(filter-1) -> Peek(peek-1) -> Map(map-1) -> "
                                        "FlatMapKV(flatmapkv-1))")
    res = assert_equivalent(t.plan(), fused, events)
    # a: 1+1=2, 2 copies; x: filtered; b: 4+1=5, 2 copies; c: 9 fails; a: 5+1=6, 0 copies
    assert [r[:2] for r in res["outputs"]["out"]] == [("a!", 2), ("a!", 2), ("b!", 5), ("b!", 5)]
    (dl,) = res["dead_letters"]                      # n=8 -> 9 -> a bad (key, value) pair
    assert dl[2:] == ("c!", 9)


def test_hand_built_chain_with_a_flat_map_inside():
    from streamdsl.ir.fn import Fn
    from streamdsl.ir.nodes import FlatMap, Fused, Map, Sink, Source
    from streamdsl.ir.plan import Plan
    p = Plan("p")
    p.add(Source(name="src", topic="in"))
    p.add(Fused(name="f", stages=(FlatMap(name="fm", fn=Fn(func=lambda v: [v, v + 1])),
                                  Map(name="m", fn=Fn(func=lambda v: 10 // v)))), [("src", "in")])
    p.add(Sink(name="out", topic="out"), [("f", "in")])
    with TestDriver(p, optimize=False, on_error="dead-letter") as d:
        for i, v in enumerate([1, 4, -1]):
            d.send("in", v, key="k", timestamp=i)
        assert [r.value for r in d.output("out")] == [10, 5, 2, 2]
        (dl,) = d.dead_letters()
    assert (dl.operator, dl.value) == ("m", 0)
