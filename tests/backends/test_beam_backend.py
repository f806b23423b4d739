"""The Beam backend: pipeline structure, ordering, files, failures, runners, metrics.

The semantics are checked by the conformance suite (ids ``beam`` and ``beam-mp``); these tests
cover what is Beam's own: transform labels, the merge-order keys, file connectors read and
written by the pipeline, ``on_error="fail"``, runner pass-through and Beam metrics.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.beam import BeamBackend
from streamdsl.backends.beam.ordering import NEG_INF, merge_keys
from streamdsl.errors import RecordError, UnsupportedNodeError
from streamdsl.ir.nodes import Node
from streamdsl.optimize import optimize
from streamdsl.runtime.ordering import merge_by_timestamp
from streamdsl.runtime.records import InputEvent

LOCAL = get_backend("local")
BEAM = get_backend("beam")


def shop() -> sd.Topology:
    """Every kind of step: stateless chain, branch, merge, re-key, window, joins, tables."""
    topo = sd.Topology("shop", on_error="dead-letter")
    orders = topo.stream("orders", key="order_id", timestamp="ts")
    payments = topo.stream("payments", key="order_id", timestamp="ts")
    customers = topo.table("customers", key="id", timestamp="ts")
    big = orders.filter(sd.col("amount") > 0, name="positive").map(
        lambda v: {**v, "cents": int(v["amount"] * 100)}, name="cents")
    parts = big.branch({"large": sd.col("amount") >= 50}, otherwise="small", name="size")
    both = parts["large"].merge(parts["small"], name="sizes")
    both.join(payments, within=sd.seconds(10), name="paid").to("paid")
    (both.key_by("customer", name="by-customer")
        .join(customers, name="with-customer").to("enriched"))
    (both.group_by("customer", name="per-customer")
        .window(sd.tumbling(seconds=10), emit="final").count(name="orders-10s")
        .to_stream(name="counts").to("counts"))
    return topo


ORDERS = [  # out of timestamp order on purpose (merge order, lateness)
    {"order_id": "o1", "customer": "c1", "amount": 10.0, "ts": 1_000},
    {"order_id": "o2", "customer": "c2", "amount": 80.0, "ts": 4_000},
    {"order_id": "o3", "customer": "c1", "amount": 55.5, "ts": 2_500},
    {"order_id": "o4", "customer": "c2", "amount": -1.0, "ts": 12_000},
    {"order_id": "o5", "customer": "c1", "amount": 20.0, "ts": 25_000},
    {"order_id": "o6", "customer": "c3", "amount": 5.0, "ts": 3_000},
]
PAYMENTS = [
    {"order_id": "o2", "ts": 6_000}, {"order_id": "o1", "ts": 3_000},
    {"order_id": "o5", "ts": 40_000}, {"order_id": "o3", "ts": 2_000},
]
CUSTOMERS = [{"id": "c1", "name": "Ada", "ts": 0}, {"id": "c2", "name": "Bo", "ts": 3_500},
             {"id": "c1", "name": "Ada L.", "ts": 2_600}]


def _write_jsonl(path, rows, bad_line=None):
    import orjson
    lines = [orjson.dumps(r).decode() for r in rows]
    if bad_line is not None:
        lines.insert(bad_line, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _write_csv(path, rows):
    fields = list(rows[0])
    path.write_text("\n".join([",".join(fields)] + [",".join(str(r[f]) for f in fields)
                                                    for r in rows]) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("beam-in")
    return {"orders": _write_jsonl(d / "orders.jsonl", ORDERS, bad_line=3),
            "payments": _write_csv(d / "payments.csv", PAYMENTS),
            "customers": _write_jsonl(d / "customers.jsonl", CUSTOMERS)}


# ---- structure ---------------------------------------------------------------------------------

def test_transform_labels_are_the_plan_node_names():
    """Each node is one top-level transform labelled with its name (findable in Beam's UI)."""
    plan = optimize(shop().plan())
    job = BEAM.compile(plan)
    try:
        assert job.labels() == [n.name for n in plan.topological()]
        assert {"size", "sizes", "paid", "orders-10s", "with-customer"} <= set(job.labels())
    finally:
        job.discard()


def test_file_outputs_add_one_writer_transform_per_sink(tmp_path, inputs):
    plan = optimize(shop().plan())
    outs = {"paid": str(tmp_path / "paid.jsonl")}
    job = BEAM.compile_run(plan, inputs, outs)
    try:
        names = [n.name for n in plan.topological()]
        assert job.labels() == names + ["streamdsl-write-paid"]
    finally:
        job.discard()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Mystery(Node):
    kind: ClassVar[str] = "Mystery"


def _mystery_plan():
    plan = sd.Topology("m").plan()
    from streamdsl.ir.nodes import Sink, Source
    plan.add(Source(name="src", topic="in"))
    plan.add(Mystery(name="odd", site="topo.py:7"), [("src", "in")])
    plan.add(Sink(name="out", topic="out"), [("odd", "in")])
    return plan


def test_unknown_node_kind_is_rejected_at_compile_time():
    with pytest.raises(UnsupportedNodeError) as e:
        BEAM.compile(_mystery_plan())
    assert e.value.node == "odd" and e.value.backend == "beam" and "Mystery" in str(e.value)


def test_a_kind_without_visit_method_is_rejected_by_the_compiler():
    """Even a backend claiming the kind fails in dispatch, never silently."""
    class Claims(BeamBackend):
        capabilities = BeamBackend.capabilities | {"Mystery"}
    with pytest.raises(UnsupportedNodeError, match="Mystery is not implemented on backend 'beam'"):
        Claims().compile(_mystery_plan())


# ---- order -------------------------------------------------------------------------------------

@given(st.lists(st.lists(st.one_of(st.none(), st.integers(0, 20)), max_size=8), min_size=1,
                max_size=4))
def test_merge_keys_sort_like_the_timestamp_synchronized_merge(sources):
    """Per-source keys (running max timestamp, source, position) give merge_inputs' order.

    ``None`` stands for an undecodable record (timestamp NEG_INF, as merge_inputs reads it).
    """
    evs = [[InputEvent(f"s{i}", None, None, ts, (i, p)) for p, ts in enumerate(src)]
           for i, src in enumerate(sources)]

    def ts_of(ev):
        return NEG_INF if ev.timestamp is None else ev.timestamp
    expected = [ev.position for ev in merge_by_timestamp(evs, ts_of)]
    keyed = [kv for i, src in enumerate(evs) for kv in merge_keys(src, i, ts_of)]
    assert [ev.position for _, ev in sorted(keyed, key=lambda kv: kv[0])] == expected


def test_equal_keys_meet_in_the_same_key_group():
    """Per-key operators are split by key: keys a dict store treats as one must not part."""
    from decimal import Decimal

    from streamdsl.backends.beam.ordering import KEY_GROUPS, KeyGroupRoute, PartitionRoute
    route = KeyGroupRoute(KEY_GROUPS)
    for same in ([2, 2.0, True + 1, Decimal(2)], ["k", "k"], [("a", 1), ("a", 1.0)], [None]):
        assert len({route(k) for k in same}) == 1, same
    assert len({route(f"user-{i}") for i in range(100)}) > 1
    # other stateful operators: a key's partition, as every backend computes it
    from streamdsl.runtime.partitioning import partition_of
    assert [PartitionRoute(3)(k) for k in ("a", "b", 7)] == [partition_of(k, 0, 3)
                                                             for k in ("a", "b", 7)]
    assert PartitionRoute(3)(None) == 0


# ---- files, dead letters, failures -------------------------------------------------------------

def _run_both(plan, inputs, tmp_path, **beam_options):
    out = {}
    for name in ("local", "beam"):
        d = tmp_path / name
        d.mkdir()
        outs = {"paid": str(d / "paid.jsonl"), "enriched": str(d / "enriched.csv"),
                "counts": str(d / "counts.jsonl")}
        be = BEAM if name == "beam" else LOCAL
        res = be.run(plan, inputs, outs, dead_letter=str(d / "dead.jsonl"),
                     **(beam_options if name == "beam" else {}))
        files = {k: open(v).read() for k, v in {**outs, "dead": str(d / "dead.jsonl")}.items()}
        out[name] = (files, res)
    return out


def test_files_in_files_out_identical_to_local(tmp_path, inputs):
    """JSON lines and CSV read by the pipeline (line numbers kept), merged in timestamp order,
    written in the local backend's order and format; dead letters too; same metrics."""
    plan = optimize(shop().plan())
    got = _run_both(plan, inputs, tmp_path)
    (lf, lres), (bf, bres) = got["local"], got["beam"]
    assert bf == lf
    # o3's payment (ts 2s) is read after o5's (40s): late for the join, as o6 is for its window
    assert [lf[k].count("\n") for k in ("paid", "enriched", "counts")] == [2, 5, 3]
    assert '"position":"' + inputs["orders"] + ':4"' in lf["dead"]  # the bad line, numbered
    assert bres.metrics.to_dict() == lres.metrics.to_dict()
    assert (bres.metrics.dead_lettered, bres.metrics.records_in) == (1, 14)
    assert set(bres.metrics.late_by_node) == {"paid", "orders-10s"}


@pytest.mark.parametrize("options", [{}, {"pipeline_args": ["--runner=BundleBasedDirectRunner"]}],
                         ids=["in-process", "workers"])
def test_memory_inputs_identical_to_local(options):
    """In-memory inputs (read by the driver, placed in the merge order by the source DoFns,
    in this process or embedded in the pipeline): out of timestamp order, an undecodable
    record among them (it goes first in the merge), outputs, dead letters and metrics as on
    local."""
    plan = optimize(shop().plan())
    bad = InputEvent("orders", None, "{not json", None, 2, error="invalid JSON")
    orders = [*ORDERS[:2], bad, *ORDERS[2:]]
    inputs = {"orders": {"type": "memory", "records": orders},
              "payments": {"type": "memory", "records": PAYMENTS},
              "customers": {"type": "memory", "records": CUSTOMERS}}
    local = LOCAL.run(plan, inputs, {})
    beam = BEAM.run(plan, inputs, {}, **options)
    assert beam.outputs == local.outputs and beam.dead_letters == local.dead_letters
    assert all(beam.outputs[t] for t in ("paid", "enriched", "counts"))
    assert [d.reason for d in beam.dead_letters] == ["invalid JSON"]
    assert beam.metrics.to_dict() == local.metrics.to_dict()


def test_on_error_fail_raises_the_first_failure_like_local():
    topo = sd.Topology("fail")
    topo.stream("in").map(lambda v: 10 // v, name="divide").to("out")
    events = [InputEvent("in", k, v, t, p)
              for p, (k, v, t) in enumerate([("a", 1, 1), ("b", 0, 2), ("c", 0, 3)])]
    errors = []
    for be in (LOCAL, BEAM):
        with pytest.raises(RecordError) as e:
            be.execute(topo.plan(), events)
        errors.append(e.value)
    local, beam = errors
    assert str(beam) == str(local)
    assert (beam.operator, beam.position, beam.key) == ("divide", 1, "b")
    assert isinstance(beam.__cause__, ZeroDivisionError)


# ---- runners and options -----------------------------------------------------------------------

def test_runner_by_name_runs_workers_out_of_process(tmp_path, inputs):
    """A runner other than the direct one gets pickled DoFns and hands results back through
    the spool directory; Beam's bundle-based direct runner stands in for a cluster here."""
    plan = optimize(shop().plan())
    got = _run_both(plan, inputs, tmp_path,
                    pipeline_args=["--runner=BundleBasedDirectRunner"])
    assert got["beam"][0] == got["local"][0]


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading"])
def test_in_process_modes_equal_local(mode):
    """Both in-process DirectRunner modes; the events as TestDriver hands them over."""
    plan = optimize(shop().plan())
    events = [InputEvent(t, None, v, None, p) for t, rows in
              (("orders", ORDERS), ("payments", PAYMENTS), ("customers", CUSTOMERS))
              for p, v in enumerate(rows)]
    events.sort(key=lambda ev: ev.value["ts"])
    local = LOCAL.execute(plan, events)
    beam = BeamBackend(direct_running_mode=mode, direct_num_workers=2).execute(plan, events)
    assert beam.outputs == local.outputs and beam.dead_letters == local.dead_letters
    assert beam.metrics.to_dict() == local.metrics.to_dict()


def test_cluster_runner_and_its_options_reach_beam(inputs):
    """``runner=`` and the flags after ``--`` on the command line become Beam's own (built,
    not run: a Flink cluster is not available here)."""
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions
    job = BEAM.compile_run(optimize(shop().plan()), inputs, {}, runner="FlinkRunner",
                           pipeline_args=["--flink_master=flink:8081", "--environment_type=LOOPBACK"])
    try:
        assert type(job.pipeline.runner).__name__ == "FlinkRunner"
        assert job.pipeline.options.view_as(FlinkRunnerOptions).flink_master == "flink:8081"
        assert job.pipeline.options.view_as(PortableOptions).environment_type == "LOOPBACK"
        assert not job.in_process  # workers get pickled nodes and spool their results
    finally:
        job.discard()


def test_multi_processing_files_identical_to_local(tmp_path, inputs):
    """Two worker processes: DoFns pickled with their nodes, records sorted back into order,
    files written by a worker, dead letters spooled back; the local backend's files."""
    plan = optimize(shop().plan())
    got = _run_both(plan, inputs, tmp_path, direct_running_mode="multi_processing",
                    direct_num_workers=2)
    assert got["beam"][0] == got["local"][0]
    assert got["beam"][1].metrics.to_dict() == got["local"][1].metrics.to_dict()


def test_unknown_pipeline_option_fails_before_running():
    with pytest.raises(TypeError, match="no_such_option"):
        BEAM.session(shop().plan(), no_such_option=1)


def test_metrics_are_beam_counters_per_step():
    """Late records are Beam counters of the step that dropped them."""
    from apache_beam.metrics.metric import MetricsFilter
    topo = sd.Topology("late")
    (topo.stream("in").group_by_key(name="keys").window(sd.tumbling(10)).count(name="tally")
        .to_stream().to("out"))
    events = [InputEvent("in", "k", 1, t, p) for p, t in enumerate([5, 25, 3])]
    job = BEAM.compile(topo.plan(), events)
    res = job.run()
    assert res.metrics.late == 1 and dict(res.metrics.late_by_node) == {"tally": 1}
    counters = job.result.metrics().query(MetricsFilter().with_name("late:tally"))["counters"]
    assert [(c.key.step.split("/")[0], c.committed) for c in counters] == [("tally", 1)]


# ---- a JSON-lines file read in shares by the workers -------------------------------------------

def test_line_shares_give_the_files_events_in_order(tmp_path):
    """Shares cut at line boundaries cover the file; their events are ``read_jsonl``'s, line
    numbers included (blank lines, a bad line, CRLF, a long line, no final newline)."""
    from streamdsl.backends.beam.shares import line_shares, share_events
    from streamdsl.connectors.jsonl import read_jsonl
    lines = [b'{"n": %d}' % i for i in range(40)]
    lines[3] = b""
    lines[7] = b"{not json"
    lines[11] = b'{"n": 11}\r'
    lines[20] = b'{"long": "' + b"x" * 500 + b'"}'
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines))
    want = list(read_jsonl("in", str(path)))
    spec = {"type": "jsonl", "path": str(path)}
    for n in (1, 2, 3, 7, 40, 100):
        shares = line_shares(str(path), n)
        assert [s.start for s in shares[1:]] == [s.end for s in shares[:-1]]
        assert shares[0].start == 0 and shares[-1].end == path.stat().st_size
        assert [ev for s in shares for ev in share_events("in", spec, s)] == want
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert [list(share_events("in", {"path": str(empty)}, s))
            for s in line_shares(str(empty), 4)] == [[]]


def _sharded_topology() -> sd.Topology:
    topo = sd.Topology("sharded", on_error="dead-letter")
    (topo.stream("clicks", key="user", timestamp="ts")
        .map(lambda v: {**v, "inv": 100 // v["n"]}, name="inverse")   # n == 0 fails
        .group_by_key(name="users")
        .window(sd.tumbling(seconds=10), emit="final").count(name="per-user")
        .to_stream().to("counts"))
    return topo


def test_multi_processing_reads_a_jsonl_file_in_shares(tmp_path):
    """The run's only input, a JSON-lines file, is read in shares by the 2 workers (a Create of
    the shares first); outputs, dead letters (positions ``path:line``) and metrics are the
    local backend's (each key's records in order; at 3 partitions how different tasks' keys
    interleave in a file is not part of the results: docs/semantics.md, "At sinks")."""
    import orjson
    rows = [orjson.dumps({"user": f"u{i % 7}", "n": i % 5, "ts": i * 150}) for i in range(3000)]
    rows[100] = b"{not json"
    rows[1700] = b""
    src = tmp_path / "clicks.jsonl"
    src.write_bytes(b"\n".join(rows) + b"\n")
    plan = optimize(_sharded_topology().plan())
    opts = {"direct_running_mode": "multi_processing", "direct_num_workers": 2,
            "partitions": 3}
    job = BEAM.compile_run(plan, {"clicks": str(src)}, {"counts": str(tmp_path / "x.jsonl")},
                           **opts)
    try:
        source = job.pipeline.transforms_stack[0].parts[0]
        assert [p.full_label.split("/")[-1] for p in source.parts] == ["Shares", "Spread",
                                                                        "ParDo"]
    finally:
        job.discard()
    files = {}
    for name, be, kw in (("local", LOCAL, {"partitions": 3}), ("beam", BEAM, opts)):
        out, dead = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-dead.jsonl"
        res = be.run(plan, {"clicks": str(src)}, {"counts": str(out)}, dead_letter=str(dead),
                     **kw)
        per_key = sorted(out.read_bytes().splitlines(), key=lambda ln: orjson.loads(ln)["key"])
        files[name] = (per_key, dead.read_bytes(), res.metrics.to_dict())
    assert files["beam"] == files["local"]
    assert len(files["local"][0]) == 315
    assert f'"position":"{src}:101"'.encode() in files["local"][1]
    assert files["local"][1].count(b"\n") == 599  # the bad line; n == 0 (once on line 101)


def test_batches_for_a_group_by_key_are_compressed_when_they_cross_processes():
    """In worker processes a batch for a GroupByKey is compressed (it crosses the launching
    process); unpacked, the batches give the same items, sorted by lineage key, as the plain
    pickles of an in-process run."""
    from streamdsl.backends.beam import dofns
    batches = [[((0, i, j), "in", ("k", {"n": i}, i, None, ("t", f"/data/in.jsonl:{i}")))
                for i in range(j, 900, 3)] for j in range(3)]
    plain = [dofns._pack(b) for b in batches]
    packed = [dofns._pack_compressed(b) for b in batches]
    want = sorted((item for b in batches for item in b), key=lambda item: item[0])
    assert dofns._unpack(plain) == dofns._unpack(packed, compressed=True) == want
    assert sum(map(len, packed)) < sum(map(len, plain)) / 3
