"""Event times (issue 16): the valid range is ``0 <= t < MAX_TIMESTAMP`` (1970 to the end of
9999, UTC, in integer ms). A timestamp outside it, not finite, or with a fraction of a
millisecond is a bad record (dead-lettered with its reason, or the run fails) on every input
format and backend; a whole float is its int; an ISO-8601 string is the instant it names.
Expected records are worked out by hand from the window rules (docs/semantics.md)."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.timeutil import MAX_TIMESTAMP
from streamdsl.testing import TestDriver

from .rules_helpers import BACKENDS, invoke, make_backend, one_line, read_jsonl, write_topology

TOPOLOGY = """\
import streamdsl as sd

topology = sd.Topology("ts")
(topology.stream("in", key="k", timestamp="ts")
    .group_by_key().window(sd.tumbling(ms=5000), emit="final").count()
    .to_stream().to("out"))
"""

OUT_OF_RANGE = ("bad timestamp: timestamp {} is out of range: event times are ms from 0 "
                "(1970-01-01) up to 253402300800000 (10000-01-01T00:00:00Z, excluded)")
NOT_FINITE = "bad timestamp: timestamp {} is not a finite number"
FRACTION = ("bad timestamp: timestamp {} is not a whole number of milliseconds (convert it in "
            "timestamp=...: int(v * 1000) for seconds)")


def _window(start: int, n: int, last: int) -> dict:
    return {"key": "a", "value": n, "timestamp": last, "window": {"start": start,
                                                                  "end": start + 5000}}


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
def test_one_far_future_timestamp_loses_nothing(backend, tmp_path, monkeypatch):
    """The issue's run: ``"ts": 1e30`` among 20 records used to push stream time to the far
    future (every later record late, its own window never out). It is dead-lettered; the
    four windows of the other records come out whole: [0, 5000) holds ts 0..4000 (five
    records), and so on."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", TOPOLOGY)
    lines = [f'{{"k": "a", "ts": {i * 1000}}}' for i in range(20)]
    lines.insert(10, '{"k": "a", "ts": 1e30}')  # line 11 of the file
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    r = invoke("run", "t.py", "-b", backend, "-i", "in=in.jsonl", "-o", "out=out.jsonl",
               "--dead-letter", "dl.jsonl", "-q")
    assert (r.exit_code, r.stderr) == (0, "")
    assert read_jsonl(tmp_path / "out.jsonl") == [
        _window(0, 5, 4000), _window(5000, 5, 9000), _window(10000, 5, 14000),
        _window(15000, 5, 19000)]
    assert [(d["position"], d["reason"], d["value"]) for d in read_jsonl(tmp_path / "dl.jsonl")] \
        == [("in.jsonl:11", OUT_OF_RANGE.format("1e+30"), {"k": "a", "ts": 1e30})]


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bad_timestamps_are_dead_lettered_on_every_input_format(backend, fmt, tmp_path,
                                                                monkeypatch):
    """CSV ``inf`` used to raise OverflowError even with --dead-letter. Every one below is a
    dead letter with its reason; ``2000.0`` is 2000; an ISO string is the instant it names
    (``1970-01-01T00:00:03.5Z`` is 3500); the good records give window [0, 5000) counting
    ts 0, 2000, 3500 and window [5000, 10000) counting 6000."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", TOPOLOGY)
    rows = [("a", "0"), ("a", "inf"), ("a", "nan"), ("a", "-inf"), ("a", "1e30"),
            ("a", "1500.5"), ("a", "2000.0"), ("a", "-1"), ("a", str(MAX_TIMESTAMP)),
            ("a", "1970-01-01T00:00:03.5Z"), ("a", "6000")]
    if fmt == "csv":
        text = "k,ts\n" + "".join(f"{k},{t}\n" for k, t in rows)
        first = 2  # the header is line 1
    else:  # JSON has no inf/nan: those are strings there, read as text
        def js(t):
            return f'"{t}"' if not t.lstrip("-").replace(".", "").replace("e", "").isdigit() \
                else t
        text = "".join(f'{{"k": "{k}", "ts": {js(t)}}}\n' for k, t in rows)
        first = 1
    (tmp_path / f"in.{fmt}").write_text(text)
    r = invoke("run", "t.py", "-b", backend, "-i", f"in=in.{fmt}", "-o", "out=out.jsonl",
               "--dead-letter", "dl.jsonl", "-q")
    assert (r.exit_code, r.stderr) == (0, "")
    assert read_jsonl(tmp_path / "out.jsonl") == [_window(0, 3, 3500), _window(5000, 1, 6000)]
    unreadable = ("bad timestamp: cannot read a timestamp from {!r} (expected epoch "
                  "milliseconds or an ISO-8601 date-time)")
    if fmt == "csv":
        reasons = [NOT_FINITE.format("inf"), NOT_FINITE.format("nan"),
                   NOT_FINITE.format("-inf"), OUT_OF_RANGE.format("1e+30"),
                   FRACTION.format("1500.5"), OUT_OF_RANGE.format("-1"),
                   OUT_OF_RANGE.format(MAX_TIMESTAMP)]
    else:
        reasons = [unreadable.format("inf"), unreadable.format("nan"),
                   unreadable.format("-inf"), OUT_OF_RANGE.format("1e+30"),
                   FRACTION.format("1500.5"), OUT_OF_RANGE.format("-1"),
                   OUT_OF_RANGE.format(MAX_TIMESTAMP)]
    lines = [first + i for i in (1, 2, 3, 4, 5, 7, 8)]
    got = read_jsonl(tmp_path / "dl.jsonl")
    assert [(d["position"], d["operator"], d["reason"]) for d in got] == [
        (f"in.{fmt}:{n}", "source-in", why) for n, why in zip(lines, reasons)]


def test_a_bad_timestamp_fails_the_run_with_one_line_without_dead_letters(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", TOPOLOGY)
    (tmp_path / "in.csv").write_text("k,ts\na,1000\na,inf\na,3000\n")
    r = invoke("run", "t.py", "-i", "in=in.csv", "-o", "out=out.jsonl", "-q")
    assert r.exit_code == 1
    assert one_line(r.stderr) == (
        "error: in operator 'source-in', record in@in.csv:3: "
        + NOT_FINITE.format("inf") + "; pass on_error='dead-letter' to send bad records to "
        "the dead-letter output instead")


@pytest.mark.parametrize("backend", BACKENDS)
def test_timestamps_sent_in_memory_follow_the_same_rules(backend):
    """``TestDriver.send(timestamp=...)`` and a timestamp field of an in-memory value, on
    every backend: the same dead letters, and the good records' windows."""
    t = sd.Topology("ts", on_error="dead-letter")
    (t.stream("in", key="k", timestamp="ts").group_by_key()
     .window(sd.tumbling(ms=5000), emit="final").count().to_stream().to("out"))
    bad = [float("inf"), float("nan"), 1e30, -5, 2.5, MAX_TIMESTAMP]
    with TestDriver(t, backend=make_backend(backend)) as d:
        d.send("in", {"k": "a", "ts": 1000})
        for ts in bad:
            d.send("in", {"k": "a", "ts": ts})
        d.send("in", {"k": "a", "ts": 4000.0})
        d.send("in", {"k": "a", "ts": "1970-01-01T00:00:07Z"})
        out = [(r.key, r.value, r.timestamp, r.window) for r in d.output("out")]
        dls = d.dead_letters()
        metrics = d.metrics()
    assert out == [("a", 2, 4000, (0, 5000)), ("a", 1, 7000, (5000, 10000))]
    assert [(dl.position, dl.reason) for dl in dls] == [
        (1, NOT_FINITE.format("inf")), (2, NOT_FINITE.format("nan")),
        (3, OUT_OF_RANGE.format("1e+30")), (4, OUT_OF_RANGE.format("-5")),
        (5, FRACTION.format("2.5")), (6, OUT_OF_RANGE.format(MAX_TIMESTAMP))]
    assert (metrics.records_in, metrics.dead_lettered, metrics.late) == (9, 6, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_envelope_timestamp_follows_the_same_rules(backend):
    """A record's own timestamp (no timestamp= on the stream) is checked the same way."""
    t = sd.Topology("ts", on_error="dead-letter")
    t.stream("in").to("out")
    with TestDriver(t, backend=make_backend(backend)) as d:
        d.send("in", 1, key="a", timestamp=10.0)
        d.send("in", 2, key="a", timestamp=10.5)
        d.send("in", 3, key="a", timestamp="1970-01-01T00:00:00.020Z")
        out = [(r.key, r.value, r.timestamp) for r in d.output("out")]
        dls = [(dl.position, dl.value, dl.reason) for dl in d.dead_letters()]
    assert out == [("a", 1, 10), ("a", 3, 20)]
    assert dls == [(1, 2, FRACTION.format("10.5"))]
