"""Error handling: Topology(on_error="dead-letter") versus on_error="fail" (the default).

DESIGN.md / api.md: with "dead-letter", a record whose user function raises is taken out
of the flow and recorded as a DeadLetter(source, position, operator, reason, key, value,
timestamp); the other records are processed normally. With "fail", the run fails with a
streamdsl.errors.StreamDSLError subclass.
"""
import pytest

import streamdsl as sd
from streamdsl.errors import StreamDSLError
from streamdsl.testing import TestDriver

from conftest import assert_changes, assert_exact, run_full, send_all


def parse(v):
    if v == "bad":
        raise ValueError(f"bad amount {v!r}")
    return int(v)


INPUTS = [("in", "a", "1", 1_000), ("in", "b", "bad", 2_000),
          ("in", "c", "3", 3_000), ("in", "d", "bad", 4_000)]


def test_dead_letter_keeps_good_records_and_records_bad_ones(backend):
    """Good records flow on; each failing record becomes a dead letter naming the operator
    and the exception, with its source, key, value and timestamp."""
    topo = sd.Topology("dl", on_error="dead-letter")
    topo.stream("in").map(parse, name="parse").to("out")
    res = run_full(topo, backend, INPUTS, "out")
    assert_exact(res.outputs["out"], [("a", 1, 1_000, None), ("c", 3, 3_000, None)])
    dls = res.dead_letters
    assert len(dls) == 2
    assert [(dl.key, dl.value, dl.timestamp) for dl in dls] == [
        ("b", "bad", 2_000),
        ("d", "bad", 4_000),
    ]
    for dl in dls:
        assert dl.source == "in"
        assert dl.operator == "parse"
        assert "bad amount" in dl.reason
    assert dls[0].position < dls[1].position
    assert res.metrics.dead_lettered == 2


def test_dead_letter_from_filter_predicate(backend):
    """A raising filter predicate dead-letters the record under the filter's name."""
    def check(v):
        if v < 0:
            raise RuntimeError("negative value")
        return v > 1

    topo = sd.Topology("dl", on_error="dead-letter")
    topo.stream("in").filter(check, name="check").to("out")
    inputs = [("in", "a", 2, 1_000), ("in", "b", -1, 2_000), ("in", "c", 1, 3_000)]
    res = run_full(topo, backend, inputs, "out")
    assert_exact(res.outputs["out"], [("a", 2, 1_000, None)])
    assert len(res.dead_letters) == 1
    dl = res.dead_letters[0]
    assert (dl.operator, dl.key, dl.value, dl.timestamp) == ("check", "b", -1, 2_000)
    assert "negative value" in dl.reason


def test_dead_lettered_records_do_not_reach_aggregations(backend):
    """A record dead-lettered upstream is not counted downstream."""
    topo = sd.Topology("dl", on_error="dead-letter")
    topo.stream("in").map(parse, name="parse").group_by_key().count().to_stream().to("out")
    inputs = [("in", "k", "1", 1_000), ("in", "k", "bad", 2_000), ("in", "k", "3", 3_000)]
    res = run_full(topo, backend, inputs, "out")
    assert_changes(res.outputs["out"], [("k", 1, 1_000, None), ("k", 2, 3_000, None)])
    assert len(res.dead_letters) == 1


def test_on_error_fail_raises_streamdsl_error(backend):
    """on_error="fail": a raising user function fails the run with a StreamDSLError subclass
    (raised by send or, at the latest, by output())."""
    topo = sd.Topology("fail", on_error="fail")
    topo.stream("in").map(parse, name="parse").to("out")
    with pytest.raises(StreamDSLError):
        with TestDriver(topo, backend=backend) as d:
            send_all(d, INPUTS)
            d.output("out")


def test_default_on_error_is_fail(backend):
    """Topology(name) defaults to on_error="fail"."""
    topo = sd.Topology("fail-default")
    topo.stream("in").map(parse, name="parse").to("out")
    with pytest.raises(StreamDSLError):
        with TestDriver(topo, backend=backend) as d:
            send_all(d, INPUTS)
            d.output("out")


def test_failing_aggregator_leaves_the_session_it_would_extend(backend):
    """A record whose aggregator raises is dead-lettered and changes no state: the session it
    would have extended (and merged into its own) comes out as it was.

    Session gap 4 s, grace 1 s, emit final; the aggregate adds 10 // v. x@1s (10) and x@2s
    (+5) make [1s, 2s] = 15; x@3s has v = 0 and raises; x@11s and x@11.001s start a new
    session (9 s after 2 s) = 2 + 10 = 12. [1s, 2s] closes once stream time reaches
    2 s + 4 s + 1 s = 7 s (at the 11 s record), the other at end of input.
    """
    topo = sd.Topology("session-fail", on_error="dead-letter")
    (topo.stream("in").group_by_key()
        .window(sd.session(sd.seconds(4), grace=sd.seconds(1)), emit="final")
        .aggregate(0, lambda agg, v: agg + 10 // v, merge=lambda a, b: a + b, name="tenths")
        .to_stream().to("out"))
    inputs = [("in", "x", 1, 1_000), ("in", "x", 2, 2_000), ("in", "x", 0, 3_000),
              ("in", "x", 5, 11_000), ("in", "x", 1, 11_001)]
    res = run_full(topo, backend, inputs, "out")
    assert_exact(res.outputs["out"], [("x", 15, 2_000, (1_000, 2_000)),
                                      ("x", 12, 11_001, (11_000, 11_001))])
    assert [(dl.key, dl.value, dl.timestamp, dl.operator) for dl in res.dead_letters] == [
        ("x", 0, 3_000, "tenths")]


def test_failing_aggregator_leaves_the_sliding_windows_as_they_were(backend):
    """A record whose aggregator raises in a sliding window is dead-lettered and leaves no
    trace: it is not among the key's records when later windows are folded, and its right
    window is never created.

    Sliding windows of 5 s (both ends inclusive), emit final; the aggregate adds 10 // v.
    x@1s (10): left window [0, 5s] = 10. x@3s has v = 0 and raises. x@4s (+5): [0, 5s]
    becomes 15; it is the first record to fall into x@1s's right window [1.001s, 6.001s],
    created by folding the records in it: 5; its own left window is [0, 5s], already there;
    nothing later falls into its right window. Both close at end of input, by end.
    """
    topo = sd.Topology("sliding-fail", on_error="dead-letter")
    (topo.stream("in").group_by_key()
        .window(sd.sliding(sd.seconds(5)), emit="final")
        .aggregate(0, lambda agg, v: agg + 10 // v, name="tenths")
        .to_stream().to("out"))
    inputs = [("in", "x", 1, 1_000), ("in", "x", 0, 3_000), ("in", "x", 2, 4_000)]
    res = run_full(topo, backend, inputs, "out")
    assert_exact(res.outputs["out"], [("x", 15, 4_000, (0, 5_000)),
                                      ("x", 5, 4_000, (1_001, 6_001))])
    assert [(dl.key, dl.value, dl.timestamp, dl.operator) for dl in res.dead_letters] == [
        ("x", 0, 3_000, "tenths")]


def test_failing_aggregator_leaves_every_hopping_window_as_it_was(backend):
    """A record in two hopping windows whose aggregator raises on the second changes neither.

    Hopping windows of 10 s every 5 s, emit final; the aggregate adds 10 // (v - agg).
    x@1s (v=1) is in [0, 10s) only: 0 + 10 // 1 = 10. x@7s (v=0) is in [0, 10s), where
    10 + 10 // -10 = 9 would do, and in [5s, 15s), where 0 + 10 // 0 raises: dead-lettered,
    [0, 10s) stays 10. x@8s (v=2): [0, 10s) = 10 + 10 // -8 = 8, [5s, 15s) = 0 + 10 // 2 = 5.
    """
    topo = sd.Topology("hopping-fail", on_error="dead-letter")
    (topo.stream("in").group_by_key()
        .window(sd.hopping(sd.seconds(10), sd.seconds(5)), emit="final")
        .aggregate(0, lambda agg, v: agg + 10 // (v - agg), name="ratio")
        .to_stream().to("out"))
    inputs = [("in", "x", 1, 1_000), ("in", "x", 0, 7_000), ("in", "x", 2, 8_000)]
    res = run_full(topo, backend, inputs, "out")
    assert_exact(res.outputs["out"], [("x", 8, 8_000, (0, 10_000)),
                                      ("x", 5, 8_000, (5_000, 15_000))])
    assert [(dl.key, dl.value, dl.timestamp, dl.operator) for dl in res.dead_letters] == [
        ("x", 0, 7_000, "ratio")]
