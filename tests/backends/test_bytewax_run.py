"""``BytewaxBackend.run``: connectors, the bundled topologies, recovery."""

from __future__ import annotations

import glob
import json
import importlib.util
import os

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.bytewax import BytewaxBackend
from streamdsl.connectors.jsonl import read_jsonl
from streamdsl.connectors.files import partial_path
from streamdsl.optimize import optimize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPOLOGIES = sorted(glob.glob(os.path.join(ROOT, "topologies", "*.py")))


def _load(path: str):
    spec = importlib.util.spec_from_file_location("bwtopo_" + os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _runnable(path: str) -> bool:
    """Topology files that define ``topology`` and bundled ``INPUTS`` (``streamdsl run FILE``
    runs those without arguments); helper scripts do not."""
    text = open(path).read()
    return "\nINPUTS = " in text and "\ntopology = " in text


def _cli_run(path: str, backend: str, sinks: list[str], out_dir, *extra: str) -> dict[str, list]:
    """``streamdsl run FILE --backend B -o SINK=FILE ... --dead-letter FILE``, in-process;
    returns each output file's lines, sorted."""
    from streamdsl.cli.main import cli

    out_dir.mkdir()
    args = ["run", path, "--backend", backend, "--quiet", "--dead-letter", str(out_dir / "dl.jsonl")]
    for t in sinks:
        args += ["-o", f"{t}={out_dir / (t + '.jsonl')}"]
    code = cli.main(args=[*args, *extra], prog_name="streamdsl", standalone_mode=False)
    assert code == 0, (path, backend, extra)
    return {name: sorted((out_dir / name).read_bytes().splitlines())
            for name in [t + ".jsonl" for t in sinks] + ["dl.jsonl"]}


@pytest.mark.parametrize("path", [p for p in TOPOLOGIES if _runnable(p)],
                         ids=lambda p: os.path.basename(p))
def test_topologies_give_byte_identical_sorted_output(path, tmp_path, capsys):
    """``streamdsl run FILE --backend local`` and ``--backend bytewax`` (1 worker, 2 workers;
    2 processes for the fraud topology) write the same files, sorted, byte for byte."""
    sinks = optimize(_load(path).topology.plan()).sink_topics()
    local = _cli_run(path, "local", sinks, tmp_path / "local")
    assert any(local.values())
    modes = [("one", ()), ("two", ("--workers", "2"))]
    if path.endswith("fraud_detection.py"):
        modes.append(("procs", ("--processes", "2")))
    for name, extra in modes:
        assert _cli_run(path, "bytewax", sinks, tmp_path / name, *extra) == local, (path, extra)


def test_sql_topology_gives_byte_identical_sorted_output(tmp_path):
    """The SQL twin of the fraud topology, through the SQL front end and the CLI."""
    from streamdsl.sql import load_file

    path = os.path.join(ROOT, "topologies", "fraud_detection.sql")
    sinks = load_file(path).plan().sink_topics()
    # the SQL twin's KEY column is the record key: ?key= reads it from each line
    data = ("-i", "authorization_attempts=" + os.path.join(ROOT, "topologies", "data",
                                                          "authorization_attempts.jsonl")
            + "?key=card_number")
    local = _cli_run(path, "local", sinks, tmp_path / "local", *data)
    assert _cli_run(path, "bytewax", sinks, tmp_path / "bw", *data, "--workers", "2") == local


def _messy():
    """CSV output with dict values, tombstones, windows; a dead letter from each kind of
    failure (undecodable line, missing field, user function)."""
    t = sd.Topology("messy", on_error="dead-letter")
    s = t.stream("in", key="k", timestamp="ts")
    counts = (s.map(lambda v: {**v, "inv": 1 / v["n"]}).group_by_key()
              .window(sd.tumbling(10_000)).agg(n=sd.count(), total=sd.sum("n")))
    counts.filter(lambda v: v["n"] < 3).to_stream().to("windows")
    s.group_by_key().count().to_stream().to("counts")
    return t


LINES = [b'{"k": "a", "n": 1, "ts": 1000}', b'not json', b'{"k": "b", "n": 0, "ts": 2000}',
         b'{"k": "a", "n": 2, "ts": 3000}', b'{"n": 5, "ts": 3500}', b'{"k": "a", "n": 4, "ts": 4000}',
         b'{"k": "a", "n": 3, "ts": 14000}', b'{"k": "c", "n": 1.5, "ts": 15000}']


@pytest.mark.parametrize("options", [{}, {"processes": 2}])
def test_csv_jsonl_and_dead_letter_files_equal_local_byte_for_byte(options, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(LINES) + b"\n")
    plan = optimize(_messy().plan())
    files = {}
    for name, backend in [("local", get_backend("local")), ("bytewax", BytewaxBackend(**options))]:
        d = tmp_path / name
        d.mkdir()
        outs = {"windows": str(d / "windows.csv"), "counts": str(d / "counts.jsonl")}
        res = backend.run(plan, {"in": str(src)}, outs, dead_letter=str(d / "dl.jsonl"))
        files[name] = {p: open(d / p, "rb").read() for p in ("windows.csv", "counts.jsonl")}
        # The order of dead letters from different operators is not defined (the local
        # backend's batched runs group them by operator): the same lines, sorted.
        files[name]["dl.jsonl"] = sorted(open(d / "dl.jsonl", "rb").read().splitlines())
        files[name]["metrics"] = res.metrics.to_dict()
    assert files["bytewax"] == files["local"]
    assert len(files["local"]["dl.jsonl"]) == 3
    assert b"a,4000,0,10000,,\r\n" in files["local"]["windows.csv"]  # a tombstone row


def test_sinks_without_a_spec_are_collected(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(LINES) + b"\n")
    plan = optimize(_messy().plan())
    outs = {"windows": str(tmp_path / "w.csv")}
    local = get_backend("local").run(plan, {"in": str(src)}, dict(outs))
    got = get_backend("bytewax").run(plan, {"in": str(src)}, dict(outs))
    assert got.outputs["counts"] == local.outputs["counts"] and got.outputs["counts"]
    assert got.outputs["windows"] == [] == local.outputs["windows"]
    assert sorted(got.dead_letters, key=repr) == sorted(local.dead_letters, key=repr)
    assert len(got.dead_letters) == 3


def _mem_topology():
    t = sd.Topology("mem", on_error="dead-letter")
    a = t.stream("a", key="k", timestamp="ts")
    b = t.stream("b", key="k", timestamp="ts")
    a.outer_join(b, within=sd.seconds(2)).to("ab")
    b.group_by_key().count().to_stream().to("n")
    return t


def _mem_items(topic: str, n: int) -> list:
    """Dicts with key and timestamp fields, every 7th without a timestamp, every 11th a
    ``(key, value, timestamp)`` tuple, every 13th an envelope dict, every 17th a bare string."""
    out: list = []
    for i in range(n):
        v = {"k": f"k{i % 5}", "ts": 40 * i + (7 if topic == "b" else 0), "i": i}
        if i % 7 == 3:
            del v["ts"]
        if i % 11 == 5:
            v = (v["k"], v, None)
        elif i % 13 == 6:
            v = {"key": v["k"], "value": v}
        elif i % 17 == 8:
            v = f"raw {i}"
        out.append(v)
    return out


def test_in_memory_inputs_run_in_the_merged_order_with_bad_items_in_place():
    """``run`` over in-memory lists (and a generator) ingests items without events, across
    several ingest runs, and gives what the merged events give: the same records, and the dead
    letters of items that cannot be ingested at their places."""
    from streamdsl.connectors.memory import read_memory
    from streamdsl.runtime.ordering import merge_inputs

    plan = optimize(_mem_topology().plan())
    a, b = _mem_items("a", 2500), _mem_items("b", 1200)
    events = list(merge_inputs(plan, {"a": read_memory("a", a), "b": read_memory("b", b)}))
    expected = get_backend("local").execute(plan, events)
    got = BytewaxBackend(batch_size=300).run(
        plan, {"a": {"type": "memory", "records": a},
               "b": {"type": "memory", "records": (x for x in b)}}, {})
    assert got.outputs == expected.outputs and got.outputs["ab"] and got.outputs["n"]
    assert got.dead_letters == expected.dead_letters and len(got.dead_letters) > 500
    assert got.metrics.to_dict() == expected.metrics.to_dict()


# ---- recovery ---------------------------------------------------------------------------------------

class SourceDied(Exception):
    pass


class FlakyFile:
    """A memory connector's records: the events of a JSON-lines file; the first time they are
    read, reading fails after ``fail_at`` events (the process reading them "dies"). The first
    time is marked by a file, so it holds across the processes of a cluster."""

    def __init__(self, topic: str, path: str, fail_at: int, marker):
        self.topic, self.path, self.fail_at, self.marker = topic, path, fail_at, marker

    def __iter__(self):
        first = not os.path.exists(self.marker)
        for i, ev in enumerate(read_jsonl(self.topic, self.path)):
            if first and i == self.fail_at:
                open(self.marker, "w").close()
                raise SourceDied(f"input lost at event {i}")
            yield ev


RECOVERY_CASES = [  # topology, input that dies, at which event, run options, on resume
    ("fraud_detection.py", "authorization_attempts", 300, {}, {}),
    ("fraud_detection.py", "authorization_attempts", 300, {"workers": 2}, {"workers": 2}),
    ("fraud_detection.py", "authorization_attempts", 300, {"processes": 2}, {"processes": 2}),
    # stream-stream and stream-table joins (2 key groups, kept when resuming on 1 worker)
    ("order_enrichment.py", "payments", 20, {"workers": 2}, {}),
]


@pytest.mark.parametrize("topology, flaky_input, fail_at, first, resume", RECOVERY_CASES)
def test_a_run_killed_part_way_resumes_from_its_snapshot(topology, flaky_input, fail_at,
                                                         first, resume, tmp_path):
    """The first run dies part-way (its input fails); the second run, same recovery
    directory, resumes from the last snapshot and ends with exactly the files an
    uninterrupted run writes: what the dead run wrote after its last snapshot is cut off and
    written again, once. A third run continues after the end: nothing new, nothing twice."""
    mod = _load(os.path.join(ROOT, "topologies", topology))
    plan = optimize(mod.topology.plan())
    sinks = plan.sink_topics()
    ref = {t: str(tmp_path / f"ref_{t}.jsonl") for t in sinks}
    out = {t: str(tmp_path / f"{t}.jsonl") for t in sinks}
    expected = get_backend("local").run(plan, mod.INPUTS, ref)
    flaky = FlakyFile(flaky_input, mod.INPUTS[flaky_input], fail_at, tmp_path / "died")
    inputs = {**mod.INPUTS, flaky_input: {"type": "memory", "records": flaky}}
    opts = dict(recovery_dir=str(tmp_path / "recovery"), snapshot_interval=0,
                batch_size=max(5, fail_at // 6), **first)  # a few snapshots before it dies
    be = get_backend("bytewax")

    def files(paths):
        return {t: open(p, "rb").read() for t, p in paths.items()}

    with pytest.raises(SourceDied):
        be.run(plan, inputs, out, **opts)
    # a failed run writes no output file; with recovery_dir its partial files stay beside
    # them for the run that resumes it
    assert not any(os.path.exists(p) for p in out.values())
    partial = {t: open(partial_path(p), "rb").read() if os.path.exists(partial_path(p)) else b""
               for t, p in out.items()}  # none where the sink had received nothing
    assert all(len(partial[t]) < len(b) for t, b in files(ref).items())
    opts = {**opts, "workers": 1, "processes": 1, **resume}
    resumed = be.run(plan, inputs, out, **opts)
    assert files(out) == files(ref)
    assert not any(os.path.exists(partial_path(p)) for p in out.values())
    assert resumed.metrics.to_dict() == expected.metrics.to_dict()
    again = be.run(plan, inputs, out, **opts)
    assert files(out) == files(ref)
    assert again.metrics.records_in == expected.metrics.records_in


def test_resume_processes_only_what_follows_the_snapshot(tmp_path):
    """The resumed run does not start over: a peek sees only events after the last snapshot
    (some of them again: Bytewax is at-least-once between the snapshot and the failure)."""
    seen: list[list[int]] = [[], []]
    attempt = [0]
    t = sd.Topology("resume", on_error="dead-letter")
    s = t.stream("in", key="k", timestamp="ts").peek(lambda k, v: seen[attempt[0]].append(v["i"]))
    s.group_by_key().window(sd.tumbling(50), emit="final").count().to_stream().to("counts")
    s.join(t.table("tbl", key="k", timestamp="ts"), lambda v, r: {**v, **r}).to("joined")
    plan = optimize(t.plan())
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"k": "k{i % 3}", "i": {i}, "ts": {i * 7}}}\n' for i in range(200)))
    tbl = tmp_path / "tbl.jsonl"
    tbl.write_text("".join(f'{{"k": "k{i}", "row": {i}, "ts": {i}}}\n' for i in range(3)))
    outs = {"counts": str(tmp_path / "counts.jsonl"), "joined": str(tmp_path / "joined.jsonl")}
    ref = {"counts": str(tmp_path / "ref_counts.jsonl"), "joined": str(tmp_path / "ref_joined.jsonl")}
    get_backend("local").run(plan, {"in": str(src), "tbl": str(tbl)}, ref)
    flaky = FlakyFile("in", str(src), 150, tmp_path / "died")
    inputs = {"in": {"type": "memory", "records": flaky}, "tbl": str(tbl)}
    opts = dict(recovery_dir=str(tmp_path / "rec"), snapshot_interval=0, batch_size=10)
    with pytest.raises(SourceDied):
        get_backend("bytewax").run(plan, inputs, outs, **opts)
    attempt[0] = 1
    get_backend("bytewax").run(plan, inputs, outs, **opts)
    for name in outs:
        assert open(outs[name], "rb").read() == open(ref[name], "rb").read()
    assert seen[0] and seen[1] and seen[1] == list(range(seen[1][0], 200))
    assert 0 < seen[1][0] <= max(seen[0]) + 1


def test_a_recovery_directory_keeps_its_key_groups(tmp_path):
    """State is kept per key group: a resumed run uses the groups the directory started with
    (any number of workers), and refuses an explicit different number."""
    from streamdsl.errors import ConnectorError

    mod = _load(os.path.join(ROOT, "topologies", "order_enrichment.py"))
    plan = optimize(mod.topology.plan())
    out = {t: str(tmp_path / f"{t}.jsonl") for t in plan.sink_topics()}
    rec = str(tmp_path / "rec")
    get_backend("bytewax").run(plan, mod.INPUTS, out, recovery_dir=rec, key_groups=3)
    assert json.loads((tmp_path / "rec" / "streamdsl-bytewax.json").read_text()) == {"key_groups": 3}
    get_backend("bytewax").run(plan, mod.INPUTS, out, recovery_dir=rec, workers=2)
    with pytest.raises(ConnectorError, match="key_groups=3"):
        get_backend("bytewax").run(plan, mod.INPUTS, out, recovery_dir=rec, key_groups=2)


def test_a_failed_recoverable_run_redoes_the_bad_record_once_fixed(tmp_path):
    """on_error="fail" with recovery: the run fails with the RecordError, takes no end-of-input
    snapshot, and the rerun (bug fixed) processes the bad record and everything after it."""
    from streamdsl.errors import RecordError

    broken = [True]

    def parse(v):
        if broken[0] and v["n"] == 0:
            raise ValueError("zero")
        return {**v, "n": v["n"] * 2}

    t = sd.Topology("fix")
    (t.stream("in", key="k", timestamp="ts").map(parse, name="parse").group_by_key()
        .window(sd.tumbling(100)).count().to_stream().to("out"))
    plan = optimize(t.plan())
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"k": "k{i % 2}", "n": {0 if i == 70 else 1}, "ts": {i * 10}}}\n'
                           for i in range(100)))
    out, ref = str(tmp_path / "out.jsonl"), str(tmp_path / "ref.jsonl")
    opts = dict(recovery_dir=str(tmp_path / "rec"), snapshot_interval=0, batch_size=10)
    with pytest.raises(RecordError) as e:
        get_backend("bytewax").run(plan, {"in": str(src)}, {"out": out}, **opts)
    assert e.value.operator == "parse" and "zero" in str(e.value)
    broken[0] = False
    get_backend("bytewax").run(plan, {"in": str(src)}, {"out": out}, **opts)
    get_backend("local").run(plan, {"in": str(src)}, {"out": ref})
    assert open(out, "rb").read() == open(ref, "rb").read()
