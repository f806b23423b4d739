"""Invalid topologies are rejected with the library's error type and the user's file:line."""

from __future__ import annotations

import inspect

import pytest

import streamdsl as sd
from streamdsl.errors import StreamDSLError, TopologyError, ValidationError
from streamdsl.ir import Aggregate, Aggregator, Fn, KeyBy, Plan, Sink, Source
from streamdsl.ir.validate import validate


def here(offset: int = 2) -> str:
    """``this_file:line`` two lines below the call (past the ``with pytest.raises`` line)."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno + offset}"


def test_stateful_op_on_ungrouped_stream_points_at_the_call():
    topo = sd.Topology("t")
    s = topo.stream("in")
    site = here()
    with pytest.raises(TopologyError) as e:
        s.count()
    assert site in str(e.value)
    assert "group_by" in str(e.value)


def test_window_on_ungrouped_stream():
    topo = sd.Topology("t")
    s = topo.stream("in")
    site = here()
    with pytest.raises(TopologyError) as e:
        s.window(sd.tumbling(minutes=1))
    assert site in str(e.value)


def test_stream_stream_join_without_within():
    topo = sd.Topology("t")
    a, b = topo.stream("a"), topo.stream("b")
    site = here()
    with pytest.raises(TopologyError) as e:
        a.join(b)
    assert site in str(e.value)
    assert "within=" in str(e.value)


def test_stream_joined_to_windowed_table():
    topo = sd.Topology("t")
    counts = topo.stream("a").group_by_key().window(sd.tumbling(seconds=10)).count()
    s = topo.stream("b")
    site = here()
    with pytest.raises(TopologyError) as e:
        s.join(counts)
    assert site in str(e.value)
    assert "windowed" in str(e.value)


def test_duplicate_operator_names():
    topo = sd.Topology("t")
    s = topo.stream("in").filter(lambda v: True, name="keep")
    site = here()
    with pytest.raises(ValidationError) as e:
        s.map(lambda v: v, name="keep")
    assert site in str(e.value)
    assert "duplicate operator name 'keep'" in str(e.value)
    assert "name=" in str(e.value)  # the hint


def test_sink_name_reused():
    topo = sd.Topology("t")
    s = topo.stream("in")
    s.to("out")
    site = here()
    with pytest.raises(TopologyError) as e:
        s.map(lambda v: v).to("out")
    assert site in str(e.value)
    assert "sink 'out' is already written" in str(e.value)


def test_unknown_upstream_in_a_plan():
    plan = Plan("p")
    with pytest.raises(ValidationError) as e:
        plan.add(Sink(name="o", topic="out", site="app.py:7"), [("nowhere", "in")])
    assert "unknown upstream 'nowhere'" in str(e.value)
    assert "app.py:7" in str(e.value)


def test_streams_of_another_topology():
    a = sd.Topology("a").stream("x")
    b = sd.Topology("b").stream("y")
    site = here()
    with pytest.raises(TopologyError) as e:
        a.merge(b)
    assert site in str(e.value)


def test_cycle_is_rejected_with_site():
    plan = Plan("p")
    plan.add(Source(name="s", topic="in", site="app.py:1"))
    plan.add(KeyBy(name="k", fn=Fn(func=lambda v: v), site="app.py:2"), [("s", "in")])
    plan.graph.add_edge("k", "k", key="in2", port="in2", out=None)
    with pytest.raises(ValidationError) as e:
        validate(plan)
    assert "cycle" in str(e.value)
    assert "app.py:2" in str(e.value)


def test_ir_level_stateful_after_key_change_without_repartition():
    plan = Plan("p")
    plan.add(Source(name="s", topic="in", site="app.py:1"))
    plan.add(KeyBy(name="k", fn=Fn(func=lambda v: v), site="app.py:2"), [("s", "in")])
    plan.add(Aggregate(name="agg", aggregator=Aggregator("count"), site="app.py:3"), [("k", "in")])
    with pytest.raises(ValidationError) as e:
        validate(plan)
    assert "app.py:3" in str(e.value)
    assert "without a repartition" in str(e.value)


def test_reading_own_output_is_rejected():
    topo = sd.Topology("t")
    topo.stream("in").to("out")
    site = here()
    with pytest.raises(TopologyError) as e:
        topo.stream("out")
    assert site in str(e.value)


def test_session_aggregate_needs_merger():
    topo = sd.Topology("t")
    w = topo.stream("in").group_by_key().window(sd.session(sd.seconds(5)))
    site = here()
    with pytest.raises(TopologyError) as e:
        w.aggregate(0, lambda a, v: a + 1)
    assert site in str(e.value)
    assert "merge=" in str(e.value)


def test_bad_function_argument():
    topo = sd.Topology("t")
    s = topo.stream("in")
    site = here()
    with pytest.raises(TopologyError) as e:
        s.filter(42)
    assert site in str(e.value)


def test_all_errors_share_the_base_class():
    assert issubclass(ValidationError, TopologyError)
    assert issubclass(TopologyError, StreamDSLError)
