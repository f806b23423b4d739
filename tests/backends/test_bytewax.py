"""The bytewax backend: compile, options, errors, run modes (workers, processes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from bytewax.dataflow import Dataflow

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.bytewax import BytewaxBackend
from streamdsl.errors import RecordError, UnsupportedNodeError
from streamdsl.ir.nodes import Node, Sink, Source
from streamdsl.ir.plan import Plan
from streamdsl.testing import TestDriver

def _counts():
    t = sd.Topology("counts")
    (t.stream("in").group_by_key().window(sd.tumbling(10_000), emit="final").count()
        .to_stream().to("out"))
    return t


def test_registered_under_its_name():
    b = get_backend("bytewax")
    assert isinstance(b, BytewaxBackend)
    assert b.version == "0.21.1"
    assert {"Aggregate", "StreamStreamJoin", "StreamTableJoin", "TableTableJoin",
            "TableAggregate", "Fused", "Branch"} <= b.capabilities
    assert {"workers", "processes", "recovery_dir"} <= set(b.options_help)


def test_compile_builds_a_bytewax_dataflow():
    flow = get_backend("bytewax").compile(_counts().plan())
    assert isinstance(flow, Dataflow)
    steps = {s.step_id for s in flow.substeps}
    assert {"counts.input", "counts.input_stage", "counts.outputs"} <= steps
    assert any(s.startswith("counts.op_aggregate") for s in steps)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Mystery(Node):
    kind: ClassVar[str] = "Mystery"


def test_unknown_node_kind_fails_at_compile_time_naming_the_node():
    p = Plan("m")
    p.add(Source(name="src", topic="in"))
    p.add(_Mystery(name="odd", site="topo.py:7"), [("src", "in")])
    p.add(Sink(name="out", topic="out"), [("odd", "in")])
    with pytest.raises(UnsupportedNodeError) as e:
        get_backend("bytewax").compile(p)
    assert e.value.backend == "bytewax" and e.value.node == "odd"
    assert "Mystery is not implemented on backend 'bytewax'" in str(e.value)
    assert "topo.py:7" in str(e.value)


def test_options_are_checked():
    from streamdsl.errors import OptionError
    with pytest.raises(TypeError, match="backend 'bytewax' has no option 'worker'; did you mean "
                                        "'workers'"):
        BytewaxBackend(worker=2)
    with pytest.raises(OptionError, match="workers must be >= 1"):
        BytewaxBackend(workers=0)
    with pytest.raises(TypeError, match="recovery_dir applies to run"):
        with TestDriver(_counts(), backend="bytewax", recovery_dir="x") as d:
            d.output("out")


def test_instance_defaults_and_per_run_options():
    be = BytewaxBackend(workers=2, batch_size=1)
    assert be.defaults == {"workers": 2, "batch_size": 1}
    events = [("a", 1, 1_000), ("b", 1, 2_000), ("a", 1, 12_000)]
    with TestDriver(_counts(), backend=be) as d:
        d.send_many("in", events)
        two = d.output("out")
    with TestDriver(_counts(), backend=be, workers=3) as d:
        d.send_many("in", events)
        assert d.output("out") == two
    assert sorted((r.key, r.value, r.window) for r in two) == [
        ("a", 1, (0, 10_000)), ("a", 1, (10_000, 20_000)), ("b", 1, (0, 10_000))]


# ---- errors: the first failure in the defined order, whatever the scheduling -------------------

def _two_failures(on_error: str):
    t = sd.Topology("fails", on_error=on_error)
    s = t.stream("in")
    s.map(lambda v: 10 // (v - 2), name="early").to("a")
    (s.group_by_key().count().to_stream()
        .map(lambda n: 10 // (n - 1), name="late").to("b"))
    return t


INPUT = [("k", 0, 1), ("k", 2, 2), ("j", 5, 3)]


@pytest.mark.parametrize("options", [{}, {"workers": 2}])
def test_fail_mode_raises_what_local_raises(options):
    """Record 0 fails in the sub-topology after the count, record 1 in the input one: the input
    stage meets record 1's failure first in wall-clock time, but the run fails with record 0's,
    as the local backend does."""
    errors = {}
    for name, backend in [("local", "local"), ("bytewax", BytewaxBackend(**options))]:
        with pytest.raises(RecordError) as e:
            with TestDriver(_two_failures("fail"), backend=backend) as d:
                d.send_many("in", INPUT)
                d.output("a")
        errors[name] = e.value
    assert errors["bytewax"].operator == errors["local"].operator == "late"
    assert str(errors["bytewax"]) == str(errors["local"])
    assert isinstance(errors["bytewax"].__cause__, ZeroDivisionError)


def test_dead_letters_and_metrics_equal_local():
    results = {}
    for name in ("local", "bytewax"):
        with TestDriver(_two_failures("dead-letter"), backend=name) as d:
            d.send_many("in", INPUT)
            results[name] = (d.output("a"), d.output("b"), d.dead_letters(), d.metrics().to_dict())
    assert results["bytewax"] == results["local"]
    dls = results["bytewax"][2]
    assert [(dl.operator, dl.key) for dl in dls] == [("late", "k"), ("early", "k"), ("late", "j")]


def test_two_processes_report_the_failing_record():
    with pytest.raises(RecordError) as e:
        with TestDriver(_two_failures("fail"), backend=BytewaxBackend(processes=2)) as d:
            d.send_many("in", INPUT)
            d.output("a")
    assert e.value.operator == "late" and e.value.key == "k"


def _failing_join(on_error: str):
    t = sd.Topology("jfail", on_error=on_error)
    t.stream("a").join(t.stream("b"), lambda lv, rv: {"q": 10 // (lv - rv)}, within=100,
                       name="pay").to("out")
    return t


def test_a_join_run_batch_by_batch_fails_and_dead_letters_as_local_does():
    """The join processes each batch in one call (its outputs only go to a sink); a failing
    record still fails the run, or is dead-lettered, at its own place in the defined order."""
    a = [("k", 3, 10), ("k", 5, 30), ("j", 1, 40)]
    b = [("k", 2, 20), ("k", 5, 35), ("j", 1, 50), ("k", 9, 60)]
    results = {}
    for name in ("local", "bytewax"):
        with TestDriver(_failing_join("dead-letter"), backend=name) as d:
            d.send_many("a", a)
            d.send_many("b", b)
            results[name] = (d.output("out"), d.dead_letters(), d.metrics().to_dict())
        with pytest.raises(RecordError) as e:
            with TestDriver(_failing_join("fail"), backend=name) as d:
                d.send_many("a", a)
                d.send_many("b", b)
                d.output("out")
        results[name] += (str(e.value),)
    assert results["bytewax"] == results["local"]
    assert [(dl.operator, dl.key) for dl in results["bytewax"][1]] == [("pay", "k"), ("pay", "j")]
