"""The linter: each rule fires on the topology it describes (with the user's file:line) and
stays quiet on its fixed version."""

from __future__ import annotations

import streamdsl as sd
from streamdsl.backend import Backend
from streamdsl.ir.nodes import NODE_KINDS
from streamdsl.lint import lint

HERE = "test_lint.py:"


def codes(topo, **kw):
    return [f.code for f in lint(topo.plan(), **kw)]


def test_dead_operator_and_unused_source():
    t = sd.Topology("t")
    s = t.stream("in")
    s.to("out")
    s.filter(sd.col("x") > 1)
    t.stream("unused")
    found = lint(t.plan())
    assert [f.code for f in found] == ["dead-operator", "dead-operator"]
    assert found[0].node == "filter-1" and HERE in found[0].site
    assert "source 'unused' reaches no sink" in found[1].message


def test_grace_longer_than_retention():
    t = sd.Topology("t")
    t.stream("in").group_by("k").window(sd.tumbling(minutes=5, grace=sd.days(8))).count() \
        .to_stream().to("o")
    (f,) = lint(t.plan())
    assert f.code == "grace-exceeds-retention"
    assert "grace 192h of the window tumbling(size=5min, grace=192h)" in f.message
    assert "source 'in' (168h, Kafka's default retention.ms)" in f.message
    assert HERE in f.site

    t = sd.Topology("t")
    a = t.stream("a", connector={"type": "kafka", "topic": "a", "retention_ms": 3_600_000})
    a.join(t.stream("b"), within=sd.minutes(1), grace=sd.hours(2)).to("o")
    assert codes(t) == ["grace-exceeds-retention"]
    t = sd.Topology("t")
    t.stream("in").group_by("k").window(sd.tumbling(minutes=5, grace=sd.minutes(1))).count() \
        .to_stream().to("o")
    assert codes(t) == []


def test_window_that_never_closes():
    t = sd.Topology("t")
    t.stream("in").group_by(sd.lit("all")).window(sd.tumbling(minutes=1), emit="final").count() \
        .to_stream().to("o")
    (f,) = lint(t.plan())
    assert f.code == "window-never-closes" and "one constant key" in f.message

    def per_card():
        t = sd.Topology("t")
        t.stream("in").group_by("card").window(sd.tumbling(minutes=1), emit="final").count() \
            .to_stream().to("o")
        return t
    assert codes(per_card()) == []                                      # bounded input
    assert codes(per_card(), inputs={"in": "data.jsonl"}) == []
    (f,) = lint(per_card().plan(), inputs={"in": "kafka://127.0.0.1:9092/in"})
    assert f.code == "window-never-closes" and "source(s) in never end" in f.message

    t = sd.Topology("t")
    t.stream("a").left_join(t.stream("b"), within=1_000).to("o")
    # (the sides declare no key= and stdin and a JSON-lines file carry none: keyless too)
    assert sorted(codes(t, inputs={"a": "-", "b": "b.jsonl"})) == [
        "keyless-source", "keyless-source", "window-never-closes"]
    assert codes(t, inputs={"a": "kafka://127.0.0.1:9092/a", "b": "b.jsonl?key=k"}) == [
        "window-never-closes"]


def test_stream_stream_join_keyed_differently():
    t = sd.Topology("t")
    orders = t.stream("orders", key="order_id")
    payments = t.stream("payments", key="payment_id")
    orders.join(payments, within=sd.minutes(5)).to("o")
    (f,) = lint(t.plan())
    assert f.code == "join-keys-differ"
    assert "left side is keyed by order_id" in f.message and "right side by payment_id" in f.message

    t = sd.Topology("t")
    t.stream("orders", key="order_id").join(
        t.stream("payments").key_by("order_id"), within=sd.minutes(5)).to("o")
    assert codes(t) == []


def test_having_on_emit_changes():
    def build(emit):
        t = sd.Topology("t")
        (t.stream("in").group_by("card").window(sd.tumbling(minutes=5), emit=emit).count()
           .filter(lambda n: n > 3).to_stream().to("alerts"))
        return t
    (f,) = lint(build("changes").plan())
    assert f.code == "having-on-changes" and "'alerts' receives each intermediate value" in f.message
    assert f.node == "tablefilter-1" and HERE in f.site
    assert codes(build("final")) == []
    t = sd.Topology("t")                     # a table written as a changelog: fine
    t.stream("in").group_by("card").window(sd.tumbling(minutes=5)).count() \
        .filter(lambda n: n > 3).to("counts")
    assert codes(t) == []


def test_shuffle_after_rekey_only_where_it_costs():
    t = sd.Topology("t")
    t.stream("in").group_by("card").count().to("n")
    assert codes(t, backend="local") == []
    (f,) = lint(t.plan(), backend="bytewax")
    assert f.code == "shuffle-after-rekey"
    assert "Aggregate aggregate-1 runs after KeyBy keyby-1" in f.message
    assert "on backend 'bytewax' the repartition repartition-1" in f.message
    t = sd.Topology("t")                     # keyed at the source: the optimizer drops it
    t.stream("in", key="card").group_by("card").count().to("n")
    assert codes(t, backend="bytewax") == []


class _NoJoins(Backend):
    name = "nojoins"
    capabilities = frozenset(NODE_KINDS) - {"StreamStreamJoin", "Peek"}


def test_errors_for_what_the_backend_cannot_run():
    t = sd.Topology("t")
    t.stream("a").peek(print).join(t.stream("b"), within=10).to("o")
    found = lint(t.plan(), backend=_NoJoins())
    assert [(f.severity, f.node) for f in found] == [("error", "peek-1"),
                                                      ("error", "streamstreamjoin-1")]
    assert "StreamStreamJoin 'streamstreamjoin-1' cannot run on backend 'nojoins'" in found[1].message
    assert all(HERE in f.site for f in found)
    assert found[0].format().startswith("tests/cli/test_lint.py:") or HERE in found[0].format()
