"""Stateless stream operators.

Kafka Streams processes the records of one source in order, and stateless operators
keep that order, the key (unless they re-key) and the record timestamp.
"""
from datetime import datetime, timezone

import streamdsl as sd

from conftest import assert_exact, run, run_full, run_inputs


def _topo():
    topo = sd.Topology("stateless")
    return topo, topo.stream("in")


def test_filter_keeps_matching_records_in_order(backend):
    """filter forwards the records whose predicate is true, unchanged and in input order."""
    topo, s = _topo()
    s.filter(lambda v: v % 2 == 0).to("out")
    inputs = [("in", "a", 1, 1_000), ("in", "b", 2, 2_000), ("in", "a", 4, 3_000),
              ("in", "c", 5, 4_000), ("in", "b", 6, 5_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("b", 2, 2_000, None),
        ("a", 4, 3_000, None),
        ("b", 6, 5_000, None),
    ])


def test_filter_with_expression(backend):
    """An expression (sd.col("amount") > 10) works as a filter predicate; 10 is not > 10."""
    topo, s = _topo()
    s.filter(sd.col("amount") > 10).to("out")
    inputs = [("in", "a", {"amount": 5}, 1_000), ("in", "b", {"amount": 15}, 2_000),
              ("in", "c", {"amount": 10}, 3_000), ("in", "d", {"amount": 11}, 4_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("b", {"amount": 15}, 2_000, None),
        ("d", {"amount": 11}, 4_000, None),
    ])


def test_filter_with_boolean_expression(backend):
    """Expressions combine with & | ~: keep (amount > 10 & country == "US") | ~(flag)."""
    topo, s = _topo()
    pred = ((sd.col("amount") > 10) & (sd.col("country") == "US")) | ~sd.col("ok")
    s.filter(pred).to("out")
    inputs = [
        ("in", "a", {"amount": 20, "country": "US", "ok": True}, 1_000),   # first clause
        ("in", "b", {"amount": 20, "country": "FR", "ok": True}, 2_000),   # neither
        ("in", "c", {"amount": 5, "country": "US", "ok": False}, 3_000),   # ~ok
        ("in", "d", {"amount": 5, "country": "US", "ok": True}, 4_000),    # neither
    ]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", {"amount": 20, "country": "US", "ok": True}, 1_000, None),
        ("c", {"amount": 5, "country": "US", "ok": False}, 3_000, None),
    ])


def test_filter_not(backend):
    """filter_not forwards the records whose predicate is false."""
    topo, s = _topo()
    s.filter_not(lambda v: v > 2).to("out")
    inputs = [("in", "a", 1, 1_000), ("in", "a", 3, 2_000), ("in", "b", 2, 3_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("b", 2, 3_000, None),
    ])


def test_stateless_operators_never_drop_late_records(backend):
    """Lateness only applies to windows: a record far behind stream time still passes filter/map."""
    topo, s = _topo()
    s.filter(lambda v: v > 0).map(lambda v: v + 1).to("out")
    inputs = [("in", "a", 1, 100_000), ("in", "a", 2, 1_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", 2, 100_000, None),
        ("a", 3, 1_000, None),
    ])


def test_map_transforms_value_keeps_key_and_timestamp(backend):
    """map(fn) replaces the value; key and timestamp are unchanged."""
    topo, s = _topo()
    s.map(lambda v: v * 10).to("out")
    inputs = [("in", "a", 1, 1_000), ("in", "b", 2, 2_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", 10, 1_000, None),
        ("b", 20, 2_000, None),
    ])


def test_map_with_expression(backend):
    """An arithmetic expression works as a map function: value -> amount * 2 + 1."""
    topo, s = _topo()
    s.map(sd.col("amount") * 2 + 1).to("out")
    inputs = [("in", "a", {"amount": 3}, 1_000), ("in", "b", {"amount": 10}, 2_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", 7, 1_000, None),     # 3*2+1
        ("b", 21, 2_000, None),    # 10*2+1
    ])


def test_map_values_is_alias_of_map(backend):
    """map_values(fn) behaves like map(fn)."""
    topo, s = _topo()
    s.map_values(lambda v: v.upper()).to("out")
    inputs = [("in", "a", "x", 1_000)]
    assert_exact(run(topo, backend, inputs, "out"), [("a", "X", 1_000, None)])


def test_map_kv_changes_key_and_value(backend):
    """map_kv((k, v)) -> (k2, v2) replaces both; the timestamp is kept."""
    topo, s = _topo()
    s.map_kv(lambda k, v: (v, k)).to("out")
    inputs = [("in", "a", "x", 1_000), ("in", "b", "y", 2_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("x", "a", 1_000, None),
        ("y", "b", 2_000, None),
    ])


def test_flat_map_emits_each_element_with_same_key_and_timestamp(backend):
    """flat_map: one output per element, in iteration order; an empty iterable emits nothing."""
    topo, s = _topo()
    s.flat_map(lambda v: v.split()).to("out")
    inputs = [("in", "a", "x y", 1_000), ("in", "b", "", 2_000), ("in", "c", "z", 3_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", "x", 1_000, None),
        ("a", "y", 1_000, None),
        ("c", "z", 3_000, None),
    ])


def test_flat_map_kv(backend):
    """flat_map_kv: (k, v) -> iterable of (k2, v2); each output keeps the input timestamp."""
    topo, s = _topo()
    s.flat_map_kv(lambda k, v: [(f"{k}{i}", v * i) for i in range(1, v + 1)]).to("out")
    inputs = [("in", "a", 2, 1_000), ("in", "b", 1, 2_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a1", 2, 1_000, None),
        ("a2", 4, 1_000, None),
        ("b1", 1, 2_000, None),
    ])


def test_key_by_field(backend):
    """key_by("user") re-keys by the field; value and timestamp unchanged."""
    topo, s = _topo()
    s.key_by("user").to("out")
    inputs = [("in", "k1", {"user": "u1", "n": 1}, 1_000),
              ("in", "k2", {"user": "u2", "n": 2}, 2_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("u1", {"user": "u1", "n": 1}, 1_000, None),
        ("u2", {"user": "u2", "n": 2}, 2_000, None),
    ])


def test_key_by_callable_and_expression(backend):
    """key_by accepts a callable on the value or an expression."""
    topo, s = _topo()
    s.key_by(lambda v: v["n"] % 2).to("by_callable")
    s.key_by(sd.col("user")).to("by_expr")
    inputs = [("in", "k1", {"user": "u1", "n": 1}, 1_000),
              ("in", "k2", {"user": "u2", "n": 2}, 2_000)]
    res = run_full(topo, backend, inputs, ["by_callable", "by_expr"])
    assert_exact(res.outputs["by_callable"], [
        (1, {"user": "u1", "n": 1}, 1_000, None),
        (0, {"user": "u2", "n": 2}, 2_000, None),
    ])
    assert_exact(res.outputs["by_expr"], [
        ("u1", {"user": "u1", "n": 1}, 1_000, None),
        ("u2", {"user": "u2", "n": 2}, 2_000, None),
    ])


def test_peek_sees_every_record_and_passes_it_through(backend):
    """peek(fn) calls fn(key, value) for each record, in order; output unchanged."""
    seen = []
    topo, s = _topo()
    s.peek(lambda k, v: seen.append((k, v))).to("out")
    inputs = [("in", "a", 1, 1_000), ("in", "b", 2, 2_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("b", 2, 2_000, None),
    ])
    assert seen == [("a", 1), ("b", 2)]


def test_branch_first_match_wins(backend):
    """branch: each record goes to the first predicate (argument order) it matches, only."""
    topo, s = _topo()
    b = s.branch(big=lambda v: v >= 100, even=lambda v: v % 2 == 0)
    b["big"].to("big")
    b["even"].to("even")
    inputs = [("in", "a", 150, 1_000),   # big and even -> big only
              ("in", "b", 4, 2_000),     # even
              ("in", "c", 101, 3_000),   # big
              ("in", "d", 7, 4_000)]     # none -> dropped
    res = run_full(topo, backend, inputs, ["big", "even"])
    assert_exact(res.outputs["big"], [("a", 150, 1_000, None), ("c", 101, 3_000, None)])
    assert_exact(res.outputs["even"], [("b", 4, 2_000, None)])


def test_branch_otherwise_keeps_unmatched(backend):
    """branch(..., otherwise="rest"): records matching no predicate go to the "rest" branch."""
    topo, s = _topo()
    b = s.branch(big=lambda v: v >= 100, even=lambda v: v % 2 == 0, otherwise="rest")
    assert set(b) == {"big", "even", "rest"}
    b["big"].to("big")
    b["even"].to("even")
    b["rest"].to("rest")
    inputs = [("in", "a", 150, 1_000), ("in", "b", 4, 2_000),
              ("in", "c", 7, 3_000), ("in", "d", 9, 4_000)]
    res = run_full(topo, backend, inputs, ["big", "even", "rest"])
    assert_exact(res.outputs["big"], [("a", 150, 1_000, None)])
    assert_exact(res.outputs["even"], [("b", 4, 2_000, None)])
    assert_exact(res.outputs["rest"], [("c", 7, 3_000, None), ("d", 9, 4_000, None)])


def test_merge_takes_records_in_timestamp_synchronized_order(backend):
    """merge, in a run over in-memory sources: records are taken in timestamp-synchronized
    order (smallest input head first), each input keeping its own order; here a1@1s, b1@2s,
    a2@3s, b2@4s, whatever order the sources are listed in."""
    topo = sd.Topology("merge")
    a = topo.stream("a")
    b = topo.stream("b")
    a.merge(b).to("out")
    inputs = [("a", "a1", 1, 1_000), ("a", "a2", 3, 3_000),
              ("b", "b1", 2, 2_000), ("b", "b2", 4, 4_000)]
    assert_exact(run_inputs(topo, backend, inputs, "out"), [
        ("a1", 1, 1_000, None),
        ("b1", 2, 2_000, None),
        ("a2", 3, 3_000, None),
        ("b2", 4, 4_000, None),
    ])


def test_merge_keeps_each_input_order(backend):
    """merge, in a run over in-memory sources: an input's own order is kept even when its
    timestamps go backwards (heads: a@5s vs b@2s -> b first; then a@5s, a@1s (a's order),
    b@6s)."""
    topo = sd.Topology("merge2")
    a = topo.stream("a")
    b = topo.stream("b")
    a.merge(b).to("out")
    inputs = [("a", "a1", 1, 5_000), ("a", "a2", 2, 1_000),
              ("b", "b1", 3, 2_000), ("b", "b2", 4, 6_000)]
    assert_exact(run_inputs(topo, backend, inputs, "out"), [
        ("b1", 3, 2_000, None),
        ("a1", 1, 5_000, None),
        ("a2", 2, 1_000, None),
        ("b2", 4, 6_000, None),
    ])


def test_test_driver_takes_sends_in_send_order(backend):
    """TestDriver processes each send at once, in send order across sources (as Kafka
    Streams' TopologyTestDriver does): merged, a2@3s (sent to a before b's records) comes out
    before b1@2s."""
    topo = sd.Topology("merge3")
    topo.stream("a").merge(topo.stream("b")).to("out")
    inputs = [("a", "a1", 1, 1_000), ("a", "a2", 3, 3_000),
              ("b", "b1", 2, 2_000), ("b", "b2", 4, 4_000)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a1", 1, 1_000, None),
        ("a2", 3, 3_000, None),
        ("b1", 2, 2_000, None),
        ("b2", 4, 4_000, None),
    ])


def test_non_finite_float_literals_in_expressions(backend):
    """A filter comparing with inf keeps every finite value; one testing equality with nan
    keeps nothing (nan equals nothing, itself included), its negation keeps everything; and
    -inf as a mapped value passes through (the inlined code must write these as values, not
    as the names inf and nan)."""
    topo = sd.Topology("inf")
    s = topo.stream("in")
    s.filter(sd.col("x") < float("inf")).to("lt_inf")
    s.filter(sd.col("x") == float("nan")).to("eq_nan")
    s.filter(sd.col("x") != float("nan")).map(sd.col("x") * float("-inf")).to("times_minus_inf")
    inputs = [("in", "a", {"x": 1}, 1_000), ("in", "b", {"x": -2.5}, 2_000)]
    result = run_full(topo, backend, inputs, ["lt_inf", "eq_nan", "times_minus_inf"])
    assert result.dead_letters == []
    assert_exact(result.outputs["lt_inf"], [("a", {"x": 1}, 1_000, None),
                                           ("b", {"x": -2.5}, 2_000, None)])
    assert result.outputs["eq_nan"] == []
    assert_exact(result.outputs["times_minus_inf"], [("a", float("-inf"), 1_000, None),
                                                     ("b", float("inf"), 2_000, None)])


def test_source_key_and_timestamp_fields(backend):
    """topo.stream(name, key="user", timestamp="ts") takes key and event time from the value."""
    topo = sd.Topology("fields")
    topo.stream("in", key="user", timestamp="ts").to("out")
    inputs = [("in", "ignored", {"user": "u1", "ts": 5_000}, 1),
              ("in", None, {"user": "u2", "ts": 7_000}, 2)]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("u1", {"user": "u1", "ts": 5_000}, 5_000, None),
        ("u2", {"user": "u2", "ts": 7_000}, 7_000, None),
    ])


def test_source_timestamp_callable(backend):
    """timestamp= may be a callable on the value (here seconds -> ms)."""
    topo = sd.Topology("tscallable")
    topo.stream("in", timestamp=lambda v: v["sec"] * 1000).to("out")
    inputs = [("in", "a", {"sec": 61}, 1)]
    assert_exact(run(topo, backend, inputs, "out"), [("a", {"sec": 61}, 61_000, None)])


def test_send_accepts_datetime_timestamps(backend):
    """datetime is accepted at the edges and converted to epoch ms (naive = UTC)."""
    topo, s = _topo()
    s.to("out")
    inputs = [("in", "a", 1, datetime(2024, 1, 1, tzinfo=timezone.utc)),
              ("in", "b", 2, datetime(2024, 1, 1, 0, 0, 1))]
    assert_exact(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_704_067_200_000, None),
        ("b", 2, 1_704_067_201_000, None),
    ])
