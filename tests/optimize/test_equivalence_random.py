"""Random inputs through each topology with and without the optimizer (every pass alone,
and the default pipeline) give the same sink records, in the same order, and the same dead
letters, on the local backend."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.optimize import DEFAULT_PASSES, optimize

from opt_helpers import assert_equivalent, quiet


def _opaque_inc(v):
    if v.get("n") == 13:
        raise ValueError("unlucky 13")
    return {**v, "m": (v.get("n") or 0) + 1}


def _odd_twice(v):
    n = v.get("n")
    return [v, {**v, "dup": True}] if isinstance(n, int) and n % 2 else [v]


def stateless() -> sd.Topology:
    t = sd.Topology("stateless", on_error="dead-letter")
    seen: list = []
    s = (t.stream("a")
         .filter(sd.col("n") > 1)
         .map(_opaque_inc)
         .key_by("user")
         .peek(lambda k, v: seen.append(k))
         .flat_map(_odd_twice)
         .filter(lambda v: v.get("tag") != "y" or v.get("dup") is None))
    s.to("s1")
    parts = s.branch(small=sd.col("n") < 6, otherwise="big")
    parts["small"].map(sd.col("n") * 10).to("small")
    parts["big"].filter(sd.col("m") > 8).to("big")
    return t


def grouped() -> sd.Topology:
    t = sd.Topology("grouped", on_error="dead-letter")
    a = t.stream("a", key="user", timestamp="ts")
    (a.group_by("user").window(sd.tumbling(ms=50, grace=20), emit="final").count()
       .to_stream().to("per_user"))
    r = a.key_by("tag").filter(sd.col("n") > 0)
    r.group_by_key().agg(total=sd.sum("n"), k=sd.count()).to_stream().to("by_tag")
    r.group_by_key().window(sd.hopping(60, 30), emit="changes").agg(hi=sd.max("n")) \
        .to_stream().to("hi")
    a.group_by("tag").count().to_stream().to("tag_count")
    return t


def joined() -> sd.Topology:
    t = sd.Topology("joined", on_error="dead-letter")
    a = t.stream("a", timestamp="ts").key_by("user")
    b = t.stream("b", key="user", timestamp="ts")
    a.left_join(b, within=40).map(sd.col("n") + sd.col("m")).to("sums")
    a.join(b, within=25).to("pairs")
    a.merge(b).filter(sd.col("n") >= 3).group_by_key().count().to_stream().to("merged")
    t.stream("a", timestamp="ts").filter(sd.col("tag") == "x").to("again")  # declared twice
    return t


TOPOLOGIES = {"stateless": stateless, "grouped": grouped, "joined": joined}

values = st.one_of(
    st.fixed_dictionaries({
        "user": st.sampled_from(["u1", "u2", "u3", None]),
        "n": st.one_of(st.none(), st.integers(-2, 15)),
        "tag": st.sampled_from(["x", "y"]),
        "m": st.integers(0, 9),
        "ts": st.integers(0, 300),
    }),
    st.none(),
)
events = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["k1", "k2", None]),
                            values, st.integers(0, 300)), max_size=25)


def _fit(topo: sd.Topology, evs: list) -> list:
    srcs = set(topo.sources)
    return [e for e in evs if e[0] in srcs]


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@pytest.mark.parametrize("pass_", [None] + [p.__name__ for p in DEFAULT_PASSES])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evs=events)
def test_optimized_equals_unoptimized(name, pass_, evs):
    topo = TOPOLOGIES[name]()
    plan = topo.plan()
    after = quiet(lambda p: optimize(p, None if pass_ is None else [pass_]), plan)
    assert_equivalent(plan, after, _fit(topo, evs))


def test_the_passes_change_these_plans():
    """The topologies above exercise every pass (else the test above proves little)."""
    changed = {p.__name__: [] for p in DEFAULT_PASSES}
    for name, build in TOPOLOGIES.items():
        plan = build().plan()
        for p in DEFAULT_PASSES:
            if quiet(p, plan).signature() != plan.signature():
                changed[p.__name__].append(name)
    missing = [p for p, names in changed.items() if not names and p != "cull"]
    assert not missing, changed
