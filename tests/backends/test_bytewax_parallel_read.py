"""A JSON-lines input read in parallel by the Bytewax workers (``io.ShardedFileSource``): the
file is cut into chunks at line boundaries, each worker reads every n-th chunk, and the
results, dead letters (in input order) and metrics are those of one reader."""

from __future__ import annotations

import json
import os

import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.bytewax import BytewaxBackend
from streamdsl.backends.bytewax import io as bwio
from streamdsl.connectors.jsonl import read_jsonl
from streamdsl.errors import RecordError
from streamdsl.optimize import optimize


def _lines(n: int) -> list[bytes]:
    """Events with a few undecodable lines, blank lines, and records failing downstream."""
    out = []
    for i in range(n):
        if i % 97 == 13:
            out.append(b"not json")
        elif i % 89 == 7:
            out.append(b"")
        elif i % 83 == 5:
            out.append(b'{"n": 5, "ts": %d}' % (i * 10))  # no key field
        else:
            out.append(b'{"k": "k%d", "n": %d, "ts": %d}' % (i % 7, i % 5, i * 10))
    return out


@pytest.mark.parametrize("chunk", [1, 40, 1000])
def test_file_chunks_cut_the_file_at_line_boundaries(chunk, tmp_path):
    path = tmp_path / "in.jsonl"
    data = b"\n".join(_lines(300)) + b'\n{"k": "last", "n": 1, "ts": 1}'  # no final newline
    path.write_bytes(data)
    chunks = bwio.file_chunks(str(path), chunk)
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    line = 1
    for a, b in zip(chunks, chunks[1:] + [None]):
        assert b is None or a.end == b.start
        assert a.start == 0 or data[a.start - 1:a.start] == b"\n"
        assert a.first_line == line
        line += data.count(b"\n", a.start, a.end)
    shares = bwio.FileShares("in", {"type": "jsonl", "path": str(path)}, 3, chunk)
    events = [ev for c in range(len(chunks)) for ev in shares.events(c)]
    assert events == list(read_jsonl("in", str(path)))


def _topology() -> sd.Topology:
    t = sd.Topology("shares", on_error="dead-letter")
    s = t.stream("in", key="k", timestamp="ts")
    counts = (s.map(lambda v: {**v, "inv": 1 / v["n"]}).group_by_key()
              .window(sd.tumbling(500)).agg(n=sd.count(), total=sd.sum("n")))
    counts.to_stream().to("windows")
    s.group_by_key().count().to_stream().to("counts")
    return t


@pytest.mark.parametrize("options", [{"workers": 2}, {"workers": 3, "partitions": 3},
                                     {"processes": 2}])
def test_a_file_read_in_parallel_gives_one_readers_files(options, tmp_path, monkeypatch):
    monkeypatch.setattr(bwio, "CHUNK_BYTES", 700)  # about 25 chunks
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(_lines(800)) + b"\n")
    plan = optimize(_topology().plan())
    files = {}
    for name, backend, opts in [("local", get_backend("local"), {"partitions": 1}),
                                ("one reader", BytewaxBackend(), {"partitions": 1}),
                                ("shares", BytewaxBackend(batch_size=7), options)]:
        d = tmp_path / name.replace(" ", "_")
        d.mkdir()
        outs = {"windows": str(d / "windows.jsonl"), "counts": str(d / "counts.jsonl")}
        res = backend.run(plan, {"in": str(src)}, outs, dead_letter=str(d / "dl.jsonl"),
                          **{"partitions": 1, **opts})
        files[name] = {p: sorted(open(d / p, "rb").read().splitlines())
                       for p in ("windows.jsonl", "counts.jsonl")}
        files[name]["dl"] = open(d / "dl.jsonl", "rb").read()
        files[name]["metrics"] = res.metrics.to_dict()
    # dead letters in input order, with their line numbers: exactly one reader's file
    assert files["shares"] == files["one reader"]
    local = files["local"]
    assert {k: v for k, v in files["shares"].items() if k != "dl"} == \
        {k: v for k, v in local.items() if k != "dl"}
    assert sorted(files["shares"]["dl"].splitlines()) == sorted(local["dl"].splitlines())
    assert files["shares"]["metrics"]["dead_lettered"] > 20


def test_a_file_read_in_parallel_resumes_each_share_from_its_snapshot(tmp_path, monkeypatch):
    """on_error="fail" with recovery on 2 workers: the run fails at a bad record; the rerun
    (bug fixed) resumes each share from the last snapshot, not from the start, and writes
    exactly an uninterrupted run's file."""
    monkeypatch.setattr(bwio, "CHUNK_BYTES", 500)
    broken = [True]
    seen: list[list[int]] = [[], []]

    def parse(v):
        seen[0 if broken[0] else 1].append(v["i"])
        if broken[0] and v["i"] == 1500:
            raise ValueError("bad record")
        return v

    t = sd.Topology("fix")
    (t.stream("in", key="k", timestamp="ts").map(parse, name="parse").group_by_key()
        .window(sd.tumbling(100)).count().to_stream().to("out"))
    plan = optimize(t.plan())
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"k": "k{i % 3}", "i": {i}, "ts": {i * 10}}}\n'
                           for i in range(2000)))
    out, ref = str(tmp_path / "out.jsonl"), str(tmp_path / "ref.jsonl")
    opts = dict(recovery_dir=str(tmp_path / "rec"), snapshot_interval=0, batch_size=20,
                workers=2, partitions=2)
    with pytest.raises(RecordError, match="bad record"):
        get_backend("bytewax").run(plan, {"in": str(src)}, {"out": out}, **opts)
    layout = json.loads((tmp_path / "rec" / "streamdsl-bytewax.json").read_text())
    assert layout["input_shares"] == 2
    broken[0] = False
    get_backend("local").run(plan, {"in": str(src)}, {"out": ref}, partitions=2)
    seen[1].clear()
    get_backend("bytewax").run(plan, {"in": str(src)}, {"out": out}, **opts)
    assert open(out, "rb").read() == open(ref, "rb").read()
    assert os.path.getsize(out) > 0
    # the rerun read each share from its snapshot: not every event again, but every event
    # the first run had not got past
    assert 0 < len(seen[1]) < 2000
    assert set(seen[0]) | set(seen[1]) == set(range(2000))
