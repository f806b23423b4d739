"""Metrics that tell the truth (issue 16): a record ``group_by`` drops for its null key is
counted as skipped on every backend (docs/semantics.md promises it); dead letters are written
in input (position) order on every backend, the local backend's batches included."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.testing import TestDriver

from .rules_helpers import BACKENDS, invoke, make_backend, read_jsonl, write_jsonl, \
    write_topology


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_null_group_by_key_is_counted_as_skipped(backend):
    """A callable key returning None (no field is missing: only skipped) and records that
    reach the aggregation with a null key (the aggregation's own skip) are counted where
    they are dropped."""
    t = sd.Topology("skips")
    s = t.stream("in")
    s.group_by(lambda v: v.get("card"), name="by-card").count().to_stream().to("per_card")
    s.group_by_key().count(name="per-key").to_stream().to("per_key")
    with TestDriver(t, backend=make_backend(backend)) as d:
        d.send("in", {"card": "c1"}, key="a", timestamp=1)
        d.send("in", {"card": None}, key=None, timestamp=2)
        d.send("in", {}, key="a", timestamp=3)
        d.send("in", {"card": "c1"}, key=None, timestamp=4)
        per_card = sorted((r.key, r.value) for r in d.output("per_card"))
        per_key = [(r.key, r.value) for r in d.output("per_key")]
        m = d.metrics()
    assert per_card == [("c1", 1), ("c1", 2)]
    assert per_key == [("a", 1), ("a", 2)]
    assert (m.skipped, dict(m.skipped_by_node)) == (4, {"by-card": 2, "per-key": 2})
    assert m.missing_field == 0  # an opaque callable: no field to name


TOPOLOGY = """\
import streamdsl as sd

def parse(v):
    if v["n"] == "bad":
        raise ValueError("bad n")
    return v

topology = sd.Topology("order", on_error="dead-letter")
s = topology.stream("in", key="k", timestamp="ts")
s.map(parse, name="parse").filter(lambda v: 1 / (v["n"] - 5) > 0, name="check").to("out")
"""


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
def test_dead_letters_come_in_line_order(backend, tmp_path, monkeypatch):
    """An ingest failure (line 3), a map failure (line 2) and filter failures (lines 1 and 4)
    in one batch: the local backend wrote the ingest failures first; every backend writes
    them by line."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", TOPOLOGY)
    write_jsonl(tmp_path / "in.jsonl", [
        {"k": "a", "ts": 1, "n": 5}, {"k": "b", "ts": 2, "n": "bad"}, {"k": "c"},
        {"k": "d", "ts": 4, "n": 5}, {"k": "e", "ts": "x", "n": 1}, {"k": "f", "ts": 6, "n": 7}])
    r = invoke("run", "t.py", "-b", backend, "-i", "in=in.jsonl", "-o", "out=out.jsonl",
               "--dead-letter", "dl.jsonl", "-q")
    assert (r.exit_code, r.stderr) == (0, "")
    assert [x["key"] for x in read_jsonl(tmp_path / "out.jsonl")] == ["f"]
    assert [(d["position"], d["operator"], d["reason"].split(":")[0])
            for d in read_jsonl(tmp_path / "dl.jsonl")] == [
        ("in.jsonl:1", "check", "ZeroDivisionError"), ("in.jsonl:2", "parse", "ValueError"),
        ("in.jsonl:3", "source-in", "missing timestamp field 'ts'"),
        ("in.jsonl:4", "check", "ZeroDivisionError"), ("in.jsonl:5", "source-in", "bad timestamp")]


def parse(v):
    if v["v"] == "bad":
        raise ValueError("bad v")
    return v


@pytest.mark.parametrize("backend", BACKENDS)
def test_dead_letters_of_several_inputs_come_in_the_merged_order(backend):
    """In-memory inputs a and b merged by timestamp (an undecodable record goes first once it
    heads its input): a0 (10), a1 (no timestamp: dead-lettered at ingest), b0 (20: parse
    fails), b1 (5), a2 (30: parse fails). Dead letters: a1, b0, a2."""
    from streamdsl.backend import get_backend
    from streamdsl.optimize import optimize
    t = sd.Topology("order", on_error="dead-letter")
    t.stream("a", key="k", timestamp="ts").merge(t.stream("b", key="k", timestamp="ts")) \
        .map(parse, name="parse").to("out")
    a = [{"k": "x", "ts": 10, "v": 1}, {"k": "x"}, {"k": "x", "ts": 30, "v": "bad"}]
    b = [{"k": "y", "ts": 20, "v": "bad"}, {"k": "y", "ts": 5, "v": 2}]
    res = get_backend(make_backend(backend)).run(
        optimize(t.plan()), {"a": {"type": "memory", "records": a},
                             "b": {"type": "memory", "records": b}}, {})
    assert [(dl.source, dl.position, dl.operator) for dl in res.dead_letters] == [
        ("a", 1, "source-a"), ("b", 0, "parse"), ("a", 2, "parse")]
    assert sorted(r.value["v"] for r in res.outputs["out"]) == [1, 2]
    assert res.metrics.dead_lettered == 3
