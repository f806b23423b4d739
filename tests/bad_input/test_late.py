"""Late records to the dead-letter output (issue 16): ``late="dead-letter"`` on the topology
(the default of its windowed operations), on ``window(...)`` or on a stream-stream join writes
each (late record, window) it drops as a dead letter with its reason, its window and the
operator's stream time; by default late records are dropped and counted, as before. Expected
records are worked out by hand from the lateness rules of docs/semantics.md."""

from __future__ import annotations

import pytest

import streamdsl as sd
from streamdsl.testing import TestDriver

from .rules_helpers import BACKENDS, invoke, make_backend, read_jsonl, write_jsonl, \
    write_topology


def _run(topo, backend, sends, sink="out"):
    with TestDriver(topo, backend=make_backend(backend)) as d:
        for source, key, value, ts in sends:
            d.send(source, value, key=key, timestamp=ts)
        out = [(r.key, r.value, r.timestamp, r.window) for r in d.output(sink)]
        return out, d.dead_letters(), d.metrics()


def _letters(dls):
    return [(dl.source, dl.position, dl.operator, dl.key, dl.timestamp, dl.window,
             dl.stream_time, dl.reason) for dl in dls]


def _tumbling(late_topology="drop", late_window=None):
    t = sd.Topology("late", late=late_topology)
    (t.stream("in").group_by_key()
     .window(sd.tumbling(ms=1000, grace=500), emit="final", late=late_window)
     .count(name="counts").to_stream().to("out"))
    return t


# One key (one task, whatever the partitions: stream time is per task). 100 opens [0, 1000);
# 2000 moves stream time to 2000 (>= 1000 + 500: [0, 1000) closes, its count 1 comes out);
# 900 (the third record) is late for [0, 1000) (1000 <= 2000 - 500); 2100 joins [2000, 3000).
SENDS = [("in", "k", 1, 100), ("in", "k", 1, 2000), ("in", "k", 1, 900), ("in", "k", 1, 2100)]
RESULTS = [("k", 1, 100, (0, 1000)), ("k", 2, 2100, (2000, 3000))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_late_record_is_dead_lettered_with_its_window_and_the_stream_time(backend):
    out, dls, m = _run(_tumbling("dead-letter"), backend, SENDS)
    assert out == RESULTS
    assert _letters(dls) == [("in", 2, "counts", "k", 900, (0, 1000), 2000,
                              "late: window [0, 1000) closed at stream time 2000 (its end 1000 "
                              "+ grace 500 <= 2000)")]
    assert (m.late, m.dead_lettered, dict(m.late_by_node)) == (1, 1, {"counts": 1})


@pytest.mark.parametrize("backend", ["local", "local-batched", "bytewax", "beam"])
def test_by_default_late_records_are_dropped_and_counted(backend):
    out, dls, m = _run(_tumbling(), backend, SENDS)
    assert (out, dls, m.late, m.dead_lettered) == (RESULTS, [], 1, 0)
    # the window's own late= overrides the topology's
    out, dls, m = _run(_tumbling("dead-letter", late_window="drop"), backend, SENDS)
    assert (out, dls, m.late) == (RESULTS, [], 1)
    out, dls, m = _run(_tumbling("drop", late_window="dead-letter"), backend, SENDS)
    assert (out, [dl.window for dl in dls], m.late) == (RESULTS, [(0, 1000)], 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hopping_record_is_dead_lettered_for_each_window_it_is_too_late_for(backend):
    """Hopping windows of 1000 every 500, no grace, one key: 2000 moves stream time to 2000
    (windows [1500, 2500) and [2000, 3000)); 1400 falls in [500, 1500) (closed: 1500 <= 2000:
    a dead letter) and [1000, 2000) (closed: 2000 <= 2000: a second one), in no open window;
    1700 falls in [1000, 2000) (closed: a third) and [1500, 2500) (open: counted, its count 2
    emitted as a change)."""
    t = sd.Topology("late", late="dead-letter")
    (t.stream("in").group_by_key().window(sd.hopping(1000, 500)).count(name="counts")
     .to_stream().to("out"))
    sends = [("in", "k", "x", 2000), ("in", "k", "y", 1400), ("in", "k", "z", 1700)]
    out, dls, m = _run(t, backend, sends)
    assert out == [("k", 1, 2000, (1500, 2500)), ("k", 1, 2000, (2000, 3000)),
                   ("k", 2, 2000, (1500, 2500))]
    assert [(dl.position, dl.value, dl.window, dl.stream_time) for dl in dls] == [
        (1, "y", (500, 1500), 2000), (1, "y", (1000, 2000), 2000), (2, "z", (1000, 2000), 2000)]
    assert (m.late, m.dead_lettered) == (3, 3)


@pytest.mark.parametrize("backend", ["local", "local-batched", "bytewax", "beam", "local-p3",
                                     "bytewax-p3", "beam-p3"])
def test_late_session_sliding_and_join_records(backend):
    """Session (gap 100): k at 1000 then k at 2000 (stream time 2000); k at 500 would be a
    session [500, 500] ending before 2000 - 100 = 1900: late. Sliding (size 100): j at 2000,
    j at 800: even its right window [801, 901] ended before 2000: late. Stream-stream join
    (within 100): l at 2000 then l at 1000 on the left: 1000 + 100 < 2000: late."""
    t = sd.Topology("late", late="dead-letter")
    s = t.stream("s")
    s.group_by_key().window(sd.session(100)).count(name="sessions").to_stream().to("out")
    s.group_by_key().window(sd.sliding(100)).count(name="slides").to_stream().to("slid")
    t.stream("left").join(t.stream("right"), within=100, name="joins").to("joined")
    sends = [("s", "k", 1, 1000), ("s", "k", 1, 2000), ("s", "k", 1, 500),
             ("left", "l", 1, 2000), ("left", "l", 1, 1000)]
    with TestDriver(t, backend=make_backend(backend)) as d:
        for source, key, value, ts in sends:
            d.send(source, value, key=key, timestamp=ts)
        d.output("out")
        dls = sorted(_letters(d.dead_letters()), key=repr)
    assert dls == sorted([
        ("s", 2, "sessions", "k", 500, (500, 500), 2000,
         "late: session [500, 500] closed at stream time 2000 (its end 500 + gap 100 + grace "
         "0 < 2000)"),
        ("s", 2, "slides", "k", 500, (501, 601), 2000,
         "late: sliding window [501, 601] closed at stream time 2000 (its end 601 + grace 0 "
         "< 2000)"),
        ("left", 1, "joins", "l", 1000, (900, 1100), 2000,
         "late: join window [900, 1100] of this left record closed at stream time 2000 (its "
         "end 1100 + grace 0 < 2000)")], key=repr)


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
def test_streamdsl_run_writes_late_letters_to_the_dead_letter_output(backend, tmp_path,
                                                                    monkeypatch):
    """With --dead-letter FILE they go there; without, to stderr as JSON lines (the run has
    a dead-letter output even with on_error="fail"), exit code 0 either way."""
    monkeypatch.chdir(tmp_path)
    write_topology(tmp_path / "t.py", """\
        import streamdsl as sd

        topology = sd.Topology("late", late="dead-letter")
        (topology.stream("in", key="k", timestamp="ts").group_by_key()
            .window(sd.tumbling(ms=1000), emit="final").count(name="counts")
            .to_stream().to("out"))
        """)
    write_jsonl(tmp_path / "in.jsonl", [{"k": "a", "ts": 100}, {"k": "b", "ts": 2000},
                                        {"k": "c", "ts": 900}, {"k": "b", "ts": 2100}])
    letter = {"source": "in", "position": "in.jsonl:3", "operator": "counts",
              "reason": "late: window [0, 1000) closed at stream time 2000 (its end 1000 + "
                        "grace 0 <= 2000)",
              "key": "c", "value": {"k": "c", "ts": 900}, "timestamp": 900,
              "window": {"start": 0, "end": 1000}, "stream_time": 2000}
    expected_out = [{"key": "a", "value": 1, "timestamp": 100,
                     "window": {"start": 0, "end": 1000}},
                    {"key": "b", "value": 2, "timestamp": 2100,
                     "window": {"start": 2000, "end": 3000}}]
    r = invoke("run", "t.py", "-b", backend, "-i", "in=in.jsonl", "-o", "out=out.jsonl",
               "--dead-letter", "dl.jsonl", "-q")
    assert (r.exit_code, r.stderr) == (0, "")
    assert read_jsonl(tmp_path / "out.jsonl") == expected_out
    assert read_jsonl(tmp_path / "dl.jsonl") == [letter]
    r = invoke("run", "t.py", "-b", backend, "-i", "in=in.jsonl", "-o", "out=out.jsonl", "-q")
    assert r.exit_code == 0
    import json
    assert [json.loads(x) for x in r.stderr.splitlines()] == [letter]
