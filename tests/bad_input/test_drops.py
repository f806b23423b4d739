"""Nothing dropped without a trace (issue 16): records dropped because an expression reads a
field their value does not have (or a value that is not a mapping) are counted per operator,
field and kind, and a run warns once per operator and field with the user's file:line;
``validate`` warns about a key-needing operator on a keyless input and about fields no
declared schema has. Counts are worked out by hand from the rules of docs/semantics.md
("Dropped records")."""

from __future__ import annotations

import warnings

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.optimize import optimize
from streamdsl.runtime.drops import DroppedRecordsWarning
from streamdsl.testing import TestDriver

from .rules_helpers import BACKENDS, invoke, make_backend, read_jsonl, write_jsonl, \
    write_topology

#: values of the cases: ``amount`` present, present but null, missing; not a mapping; None
VALUES = [{"amount": 20}, {"amount": None}, {"other": 1}, 7, {"amount": 30}, {"other": 2}]


def _send(topo, backend, values, source="in", keys=None):
    with TestDriver(topo, backend=make_backend(backend)) as d:
        for i, v in enumerate(values):
            d.send(source, v, key=(keys[i] if keys else "k"), timestamp=i)
        outs = {s: [(r.key, r.value) for r in d.output(s)] for s in topo.sinks}
        return outs, d.metrics(), d.dead_letters()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_filter_on_a_missing_field_counts_what_it_drops(backend):
    """``amount > 10`` is null for the three records without ``amount`` (two lack it, one is
    not a mapping: counted) and for the present null (SQL's null: not counted); 20 and 30
    pass."""
    t = sd.Topology("drops")
    t.stream("in").filter(sd.col("amount") > 10, name="big").to("out")
    outs, m, dls = _send(t, backend, VALUES)
    assert outs["out"] == [("k", {"amount": 20}), ("k", {"amount": 30})]
    assert dict(m.missing_field_by_node) == {("big", "amount", "missing"): 2,
                                             ("big", "amount", "int"): 1}
    assert (m.missing_field, m.skipped, dls) == (3, 0, [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_group_by_on_a_missing_field_counts_skipped_and_missing(backend):
    """group_by(amount): the records without it and the null one have a null key: dropped
    and counted as skipped (the null key rule), the three without the field also as missing;
    count per amount: 20 -> 1, 30 -> 1."""
    t = sd.Topology("drops")
    t.stream("in").group_by(sd.col("amount"), name="by-amount").count().to_stream().to("out")
    outs, m, _ = _send(t, backend, VALUES)
    assert sorted(outs["out"]) == [(20, 1), (30, 1)]
    assert (m.skipped, dict(m.skipped_by_node)) == (4, {"by-amount": 4})
    assert dict(m.missing_field_by_node) == {("by-amount", "amount", "missing"): 2,
                                             ("by-amount", "amount", "int"): 1}


@pytest.mark.parametrize("backend", ["local", "local-batched", "bytewax", "beam", "local-p3"])
def test_branches_table_filters_and_fused_stages_count_alike(backend):
    """A branch without otherwise drops what no predicate takes (counted when a predicate
    was null for a missing field); a table filter turns such a row into a tombstone (counted);
    stages fused by the optimizer count under their own names."""
    t = sd.Topology("drops")
    s = t.stream("in")
    b = s.branch(big=sd.col("amount") > 25, small=sd.col("amount") < 25, name="split")
    b["big"].to("big")
    b["small"].map(lambda v: v).filter(sd.col("amount") > 0, name="positive").to("small")
    (t.table("rows").filter(sd.col("amount") > 10, name="rows-big").to("kept"))
    values = VALUES
    with TestDriver(t, backend=make_backend(backend)) as d:
        for i, v in enumerate(values):
            d.send("in", v, key="k", timestamp=i)
            d.send("rows", v, key=f"r{i}", timestamp=i)
        big, small, kept = (d.output(x) for x in ("big", "small", "kept"))
        m = d.metrics()
    assert [r.value for r in big] == [{"amount": 30}]
    assert [r.value for r in small] == [{"amount": 20}]
    assert sorted((r.key, r.value) for r in kept) == [
        ("r0", {"amount": 20}), ("r1", None), ("r2", None), ("r3", None), ("r4", {"amount": 30}),
        ("r5", None)]
    assert dict(m.missing_field_by_node) == {
        ("split", "amount", "missing"): 2, ("split", "amount", "int"): 1,
        ("rows-big", "amount", "missing"): 2, ("rows-big", "amount", "int"): 1}


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
def test_streamdsl_run_warns_once_per_operator_and_field(backend, tmp_path, monkeypatch):
    """The issue's ``sd.col("xx")``: every record dropped, exit code 0, and one line per
    operator and field, at the line of the declaration; -q silences it. The counts are in the
    summary."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", """\
        import streamdsl as sd

        topology = sd.Topology("drops")
        s = topology.stream("in", key="k", timestamp="ts")
        s.filter(sd.col("xx") > 1, name="typo").to("out")
        s.group_by(sd.col("yy"), name="by-yy").count().to_stream().to("counts")
        """)
    write_jsonl(tmp_path / "in.jsonl", [{"k": "a", "ts": i, "n": i} for i in range(5)])
    args = ["run", "t.py", "-b", backend, "-i", "in=in.jsonl", "-o", "out=out.jsonl",
            "-o", "counts=counts.jsonl", "--no-progress"]
    r = invoke(*args)
    assert r.exit_code == 0
    lines = r.stderr.splitlines()
    assert [x for x in lines if "dropped" in x] == [
        "t.py:5: warning: Filter 'typo' dropped 5 records whose value has no field 'xx' (its "
        "predicate is null); check the field name, or test it with sd.col('xx').is_null()",
        "t.py:6: warning: group_by 'by-yy' dropped 5 records whose value has no field 'yy' "
        "(its key is null); check the field name, or test it with sd.col('yy').is_null()"]
    assert "  skipped:       5 (by-yy 5)" in lines
    assert "  missing field: 10 (by-yy.yy 5, typo.xx 5)" in lines
    assert read_jsonl(tmp_path / "out.jsonl") == [] == read_jsonl(tmp_path / "counts.jsonl")
    r = invoke(*args, "-q")
    assert (r.exit_code, r.stderr) == (0, "")


def test_backend_run_warns_from_python():
    t = sd.Topology("drops")
    t.stream("in", key="k", timestamp="ts").filter(sd.col("xx") > 1, name="typo").to("out")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        res = get_backend("local").run(optimize(t.plan()), {
            "in": {"type": "memory", "records": [{"k": "a", "ts": 1}, {"k": "a", "ts": 2}]}}, {})
    assert res.metrics.missing_field == 2
    (w,) = [w for w in got if issubclass(w.category, DroppedRecordsWarning)]
    assert "Filter 'typo' dropped 2 records whose value has no field 'xx'" in str(w.message)


def test_validate_lints_keyless_sources_and_unknown_fields(tmp_path, monkeypatch):
    """group_by_key() on a JSON-lines source with no key= skips every record (null keys), and
    a field no declared schema has reads null: warnings at the user's lines; --strict makes
    them errors (exit 2); a key on the input (?key=) or in the stream silences the first."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", """\
        import streamdsl as sd

        topology = sd.Topology("lint")
        s = topology.stream("in", timestamp="ts", schema=["card", "amount", "ts"])
        s.filter(sd.col("amout") > 1).to("big")
        s.group_by_key().count().to_stream().to("counts")
        INPUTS = {"in": "in.jsonl"}
        """)
    write_jsonl(tmp_path / "in.jsonl", [{"card": "c", "amount": 5, "ts": 1}])
    r = invoke("validate", "t.py")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "t.py:5: warning: Filter filter-1 reads field 'amout', which no declared schema of its "
        "input has (fields here: amount, card, ts; declared by source 'in' (t.py:4): card, "
        "amount, ts): every record has null there; did you mean 'amount'? fix the name, or "
        "add it to schema= [unknown-field]",
        "t.py:6: warning: Aggregate aggregate-1 needs the record key, but source 'in' (t.py:4) "
        "declares no key= and its input in.jsonl is a jsonl file whose lines carry no key: "
        "every record has a null key and is skipped; declare stream('in', key=\"field\"), "
        "group by a field (group_by(\"field\")), or bind the input with ?key=field "
        "[keyless-source]",
        "lint: valid for backend local (2 warnings)"]
    assert invoke("validate", "t.py", "--strict").exit_code == 2
    r = invoke("validate", "t.py", "-i", "in=in.jsonl?key=card")
    assert [x.rsplit("[", 1)[-1] for x in r.stdout.splitlines()[:-1]] == ["unknown-field]"]
    # and the run shows what the lint foresaw: every record skipped for its null key
    r = invoke("run", "t.py", "-o", "big=big.jsonl", "-o", "counts=counts.jsonl", "--no-progress")
    assert r.exit_code == 0
    assert "  skipped:       1 (aggregate-1 1)" in r.stderr.splitlines()
    assert read_jsonl(tmp_path / "counts.jsonl") == []
