"""The bytewax backend's source prefilter (``backends/bytewax/prefilter.py``): a leading filter
expression run on a single in-memory input's raw items drops only items the filter would
drop, and the run gives the local backend's records, dead letters and metrics."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.bytewax import BytewaxBackend
from streamdsl.backends.bytewax.prefilter import source_prefilter
from streamdsl.connectors.memory import read_memory
from streamdsl.optimize import optimize


def _items(n: int) -> list:
    """Dicts with key and timestamp fields; among them values the filter keeps, drops, finds
    null (a missing field), fails on (a string), items without a timestamp, envelopes,
    tuples and bare strings."""
    out: list = []
    for i in range(n):
        v = {"k": f"k{i % 5}", "ts": 40 * i, "n": i}
        if i % 7 == 3:
            del v["ts"]
        if i % 19 == 4:
            del v["n"]
        if i in (100, 2100):  # the filter raises: its chunk takes the ordinary path
            v["n"] = "x"
        if i % 11 == 5:
            v = (v["k"], v, 40 * i)
        elif i % 13 == 6:
            v = {"key": v["k"], "value": v, "timestamp": 40 * i}
        elif i % 17 == 8:
            v = f"raw {i}"
        out.append(v)
    return out


def _topology(keyed: bool, fused: bool) -> sd.Topology:
    t = sd.Topology("pre", on_error="dead-letter")
    s = t.stream("in", key="k" if keyed else None, timestamp="ts")
    kept = s.filter(sd.col("n") % 10 == 3)
    if fused:
        kept = kept.map(lambda v: {"n": v["n"], "k": v.get("k")})
    kept.to("kept")
    kept.group_by(lambda v: v["n"] % 3).count().to_stream().to("counts")
    return t


@pytest.mark.filterwarnings("ignore::streamdsl.runtime.drops.DroppedRecordsWarning")
@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_prefiltered_run_equals_local(keyed, fused):
    plan = optimize(_topology(keyed, fused).plan())
    (src,) = plan.sources()
    assert source_prefilter(plan, src) is not None  # the path under test is taken
    items = _items(4000)
    expected = get_backend("local").execute(plan, list(read_memory("in", items)))
    got = BytewaxBackend(batch_size=70).run(plan, {"in": {"type": "memory",
                                                          "records": items}}, {})
    assert got.outputs == expected.outputs and got.outputs["kept"]
    assert got.dead_letters == expected.dead_letters and len(got.dead_letters) > 300
    assert got.metrics.to_dict() == expected.metrics.to_dict()
    assert got.metrics.records_in == 4000 and got.metrics.missing_field > 0


def test_no_prefilter_for_opaque_or_shared_or_several_inputs():
    t = sd.Topology("t")
    t.stream("a", timestamp="ts").filter(lambda v: v["n"] > 1).to("x")
    plan = optimize(t.plan())
    assert source_prefilter(plan, plan.sources()[0]) is None  # a callable: opaque
    t = sd.Topology("t")
    s = t.stream("a", timestamp="ts")
    s.filter(sd.col("n") > 1).to("x")
    s.to("y")
    plan = optimize(t.plan())
    assert source_prefilter(plan, plan.sources()[0]) is None  # the source feeds two nodes
    t = sd.Topology("t")
    t.stream("a", timestamp="ts").filter(sd.col("n") > 1).to("x")
    t.stream("b", timestamp="ts").to("y")
    plan = optimize(t.plan())
    assert source_prefilter(plan, plan.sources()[0]) is None  # two inputs: merged by time
