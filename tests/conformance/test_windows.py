"""Windowed aggregations: tumbling, hopping, sliding, session; grace, lateness, emit modes.

Rules (KAFKA_STREAMS_RULES.md): windows aligned to the epoch, end exclusive (tumbling,
hopping); stream time is the max timestamp seen by the operator across all keys; a record
is dropped from time window W iff W.end <= stream_time - grace (Kafka
KStreamWindowAggregate: `windowEnd > windowCloseTime` else skip); emit final forwards a
window once W.end + grace <= stream_time, several at once ordered by (window end, key).
The key of a windowed result is the plain group key; `.window` carries (start, end).
"""
import streamdsl as sd
from streamdsl.testing import TestDriver

from conftest import assert_changes, assert_exact, assert_final, out, run, run_full, send_all

S10 = sd.seconds(10)


def _count(window, emit="changes", name="win"):
    topo = sd.Topology(name)
    (topo.stream("in")
        .group_by_key()
        .window(window, emit=emit)
        .count()
        .to_stream()
        .to("out"))
    return topo


# ----------------------------------------------------------------- tumbling

TUMBLING_INPUTS = [("in", "a", "x", 1_000), ("in", "a", "x", 4_000),
                   ("in", "b", "x", 5_000), ("in", "a", "x", 12_000)]


def test_tumbling_count_emit_changes(backend):
    """Tumbling 10s, emit changes: every update, window (start, end) with end exclusive,
    key is the plain group key."""
    got = run(_count(sd.tumbling(S10)), backend, TUMBLING_INPUTS, "out")
    assert_changes(got, [
        ("a", 1, 1_000, (0, 10_000)),
        ("a", 2, 4_000, (0, 10_000)),
        ("a", 1, 12_000, (10_000, 20_000)),
        ("b", 1, 5_000, (0, 10_000)),
    ])


def test_tumbling_count_emit_final(backend):
    """Emit final: one result per window (its last value, ts = max input ts); at end of input
    all windows close."""
    got = run(_count(sd.tumbling(S10), emit="final"), backend, TUMBLING_INPUTS, "out")
    assert_final(got, [
        ("a", 2, 4_000, (0, 10_000)),
        ("b", 1, 5_000, (0, 10_000)),
        ("a", 1, 12_000, (10_000, 20_000)),
    ])


def test_tumbling_windows_aligned_to_epoch_end_exclusive(backend):
    """1-minute windows start at multiples of 60s; a record at exactly 120s opens the next
    window (end exclusive)."""
    topo = _count(sd.tumbling(minutes=1))
    inputs = [("in", "a", "x", 61_000), ("in", "a", "x", 119_999), ("in", "a", "x", 120_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 61_000, (60_000, 120_000)),
        ("a", 2, 119_999, (60_000, 120_000)),
        ("a", 1, 120_000, (120_000, 180_000)),
    ])


def test_windowed_agg_and_reduce(backend):
    """Windowed agg() gives dict values per window; windowed reduce likewise carries .window."""
    topo = sd.Topology("wagg")
    g = topo.stream("in").group_by_key().window(sd.tumbling(S10))
    g.agg(n=sd.count(), total=sd.sum("amount")).to_stream().to("agg")
    g.reduce(lambda a, v: {"amount": max(a["amount"], v["amount"])}).to_stream().to("red")
    inputs = [("in", "a", {"amount": 3}, 1_000), ("in", "a", {"amount": 9}, 2_000),
              ("in", "a", {"amount": 4}, 11_000)]
    res = run_full(topo, backend, inputs, ["agg", "red"])
    assert_changes(res.outputs["agg"], [
        ("a", {"n": 1, "total": 3}, 1_000, (0, 10_000)),
        ("a", {"n": 2, "total": 12}, 2_000, (0, 10_000)),
        ("a", {"n": 1, "total": 4}, 11_000, (10_000, 20_000)),
    ])
    assert_changes(res.outputs["red"], [
        ("a", {"amount": 3}, 1_000, (0, 10_000)),
        ("a", {"amount": 9}, 2_000, (0, 10_000)),
        ("a", {"amount": 4}, 11_000, (10_000, 20_000)),
    ])


# ----------------------------------------------------------------- hopping

def test_hopping_record_in_several_windows_no_negative_start(backend):
    """Hopping 10s/5s: a record belongs to every window [k*5s, k*5s+10s) containing it,
    updated in ascending start order; no window with a negative start (3s is only in [0,10s))."""
    topo = _count(sd.hopping(S10, sd.seconds(5)))
    inputs = [("in", "a", "x", 3_000), ("in", "a", "x", 7_000), ("in", "a", "x", 12_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 3_000, (0, 10_000)),
        ("a", 2, 7_000, (0, 10_000)),
        ("a", 1, 7_000, (5_000, 15_000)),
        ("a", 2, 12_000, (5_000, 15_000)),
        ("a", 1, 12_000, (10_000, 20_000)),
    ])


def test_hopping_lateness_is_decided_per_window(backend):
    """A hopping record can be too late for an old window and still count in a newer one:
    st=12s, grace 0, record@8s: [0,10s) has end 10s <= 12s -> dropped; [5s,15s) counts it."""
    topo = _count(sd.hopping(S10, sd.seconds(5)))
    inputs = [("in", "a", "x", 12_000), ("in", "a", "x", 8_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 12_000, (5_000, 15_000)),
        ("a", 1, 12_000, (10_000, 20_000)),
        ("a", 2, 12_000, (5_000, 15_000)),   # ts = max(12_000, 8_000)
    ])


# ----------------------------------------------------------------- sliding

SLIDING_INPUTS = [("in", "a", "x", 20_000), ("in", "a", "x", 25_000),
                  ("in", "a", "x", 28_000), ("in", "a", "x", 40_000)]


def test_sliding_windows_emit_changes(backend):
    """Kafka SlidingWindows (size 10s): record t creates its left window [t-10s, t]; the
    previous record p's right window [p+1, p+1+10s] is created (before t's left window, as
    KStreamSlidingWindowAggregate.createWindows does) once a later record falls in it;
    existing windows containing t are updated first. Both ends inclusive."""
    got = run(_count(sd.sliding(S10)), backend, SLIDING_INPUTS, "out")
    assert_changes(got, [
        # t=20s: left window only
        ("a", 1, 20_000, (10_000, 20_000)),
        # t=25s: right window of 20s (holds 25s), then left window {20s, 25s}
        ("a", 1, 25_000, (20_001, 30_001)),
        ("a", 2, 25_000, (15_000, 25_000)),
        # t=28s: update [20001,30001] {25s,28s}; right window of 25s {28s}; left {20,25,28}
        ("a", 2, 28_000, (20_001, 30_001)),
        ("a", 1, 28_000, (25_001, 35_001)),
        ("a", 3, 28_000, (18_000, 28_000)),
        # t=40s: 28s's right window [28001,38001] would not hold 40s -> not created;
        # left window [30s,40s] holds only 40s
        ("a", 1, 40_000, (30_000, 40_000)),
    ])


def test_sliding_windows_emit_final(backend):
    """Sliding windows with emit final: each distinct window once, with its last aggregate."""
    got = run(_count(sd.sliding(S10), emit="final"), backend, SLIDING_INPUTS, "out")
    assert_final(got, [
        ("a", 1, 20_000, (10_000, 20_000)),
        ("a", 2, 25_000, (15_000, 25_000)),
        ("a", 2, 28_000, (20_001, 30_001)),
        ("a", 1, 28_000, (25_001, 35_001)),
        ("a", 3, 28_000, (18_000, 28_000)),
        ("a", 1, 40_000, (30_000, 40_000)),
    ])


# ----------------------------------------------------------------- session

SESSION_INPUTS = [("in", "a", "x", 1_000), ("in", "a", "x", 3_000),
                  ("in", "a", "x", 10_000), ("in", "a", "x", 6_000)]
# gap 5s, grace 5s: [1s,3s] stays open (mergeable) until stream time passes
# 3s + 5s + 5s = 13s, so the bridging record@6s (stream time 10s) can still merge it.
# A closed session is never merged again (Kafka's session store expires sessions with
# end <= stream_time - gap - grace), which is why the grace is needed here.
SESSION = sd.session(sd.seconds(5), grace=sd.seconds(5))


def test_session_merge_emits_tombstones_before_merged_session(backend):
    """Session gap 5s: a merge removes the old sessions, each forwarded as a tombstone
    (value None, ts = that session's end) before the merged session; window = (first, last)."""
    got = run(_count(SESSION), backend, SESSION_INPUTS, "out")
    assert_changes(got, [
        ("a", 1, 1_000, (1_000, 1_000)),
        # 3s is within 5s of [1s,1s]: extending is a merge
        ("a", None, 1_000, (1_000, 1_000)),
        ("a", 2, 3_000, (1_000, 3_000)),
        # 10s is 7s after 3s: new session
        ("a", 1, 10_000, (10_000, 10_000)),
        # 6s bridges [1s,3s] (3s away) and [10s,10s] (4s away); tombstones in session order
        ("a", None, 3_000, (1_000, 3_000)),
        ("a", None, 10_000, (10_000, 10_000)),
        ("a", 4, 10_000, (1_000, 10_000)),    # 2 + 1 + 1
    ])


def test_session_gap_is_inclusive(backend):
    """A record exactly `gap` after a session joins it; gap+1 ms later starts a new one.
    (grace 2s keeps the session clear of the store-expiry boundary at stream time end+gap.)"""
    window = sd.session(sd.seconds(5), grace=sd.seconds(2))
    got = run(_count(window), backend,
              [("in", "a", "x", 1_000), ("in", "a", "x", 6_000), ("in", "a", "x", 11_001)], "out")
    assert_changes(got, [
        ("a", 1, 1_000, (1_000, 1_000)),
        ("a", None, 1_000, (1_000, 1_000)),
        ("a", 2, 6_000, (1_000, 6_000)),      # 6s - 1s = 5s <= gap
        ("a", 1, 11_001, (11_001, 11_001)),   # 11.001s - 6s > gap
    ])


def test_session_emit_final(backend):
    """Emit final on sessions: only the surviving merged session, no tombstones."""
    got = run(_count(SESSION, emit="final"), backend, SESSION_INPUTS, "out")
    assert_final(got, [("a", 4, 10_000, (1_000, 10_000))])


def test_closed_session_is_not_merged(backend):
    """Once stream time passes end + gap + grace a session is closed: a later record within
    `gap` of it starts a new session instead (grace 0: [1s,3s] closed at stream time 10s, so
    the record@6s only merges with [10s,10s])."""
    got = run(_count(sd.session(sd.seconds(5))), backend, SESSION_INPUTS, "out")
    assert_changes(got, [
        ("a", 1, 1_000, (1_000, 1_000)),
        ("a", None, 1_000, (1_000, 1_000)),
        ("a", 2, 3_000, (1_000, 3_000)),
        ("a", 1, 10_000, (10_000, 10_000)),
        ("a", None, 10_000, (10_000, 10_000)),
        ("a", 2, 10_000, (6_000, 10_000)),
    ])


def test_session_sessions_are_per_key(backend):
    """Records of different keys never share a session."""
    got = run(_count(sd.session(sd.seconds(5)), emit="final"), backend,
              [("in", "a", "x", 1_000), ("in", "b", "x", 2_000), ("in", "a", "x", 4_000)], "out")
    assert_final(got, [
        ("a", 2, 4_000, (1_000, 4_000)),
        ("b", 1, 2_000, (2_000, 2_000)),
    ])


def test_session_final_only_after_gap_and_grace(backend):
    """A session's final result comes out once stream time passes end + gap + grace:
    [1s,3s] with gap 5s: not at stream time 7s, yes at 9s. (a and c share a task at 1 and 3
    partitions.)"""
    topo = _count(sd.session(sd.seconds(5)), emit="final")
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "a", "x", 1_000), ("in", "a", "x", 3_000), ("in", "c", "x", 7_000)])
        assert out(d, "out") == []
        send_all(d, [("in", "c", "x", 9_000)])
        assert_exact(out(d, "out"), [("a", 2, 3_000, (1_000, 3_000))])
        assert_final(out(d, "out", flush=True), [
            ("a", 2, 3_000, (1_000, 3_000)),
            ("c", 2, 9_000, (7_000, 9_000)),
        ])


# ----------------------------------------------------------------- grace and lateness

def test_grace_counts_in_grace_record_and_drops_later_one(backend):
    """Tumbling 10s, grace 2s: at stream time 11s a record@9s still counts (10s > 11s-2s);
    at stream time 12.5s a record@5s is dropped (10s <= 10.5s) and counted as late."""
    topo = _count(sd.tumbling(S10, grace=sd.seconds(2)))
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "a", "x", 1_000), ("in", "a", "x", 11_000), ("in", "a", "x", 9_000),
                     ("in", "a", "x", 12_500), ("in", "a", "x", 5_000)])
        got = out(d, "out", flush=True)
        metrics = d.metrics()
    assert_changes(got, [
        ("a", 1, 1_000, (0, 10_000)),
        ("a", 1, 11_000, (10_000, 20_000)),
        ("a", 2, 9_000, (0, 10_000)),         # in grace; ts = max(1_000, 9_000)
        ("a", 2, 12_500, (10_000, 20_000)),
    ])
    assert metrics.late == 1


def test_record_dropped_exactly_at_end_plus_grace(backend):
    """Dropped iff W.end <= stream_time - grace: W=[0,10s), grace 2s, stream time 12s,
    record@9.999s -> 10s <= 10s -> dropped."""
    topo = _count(sd.tumbling(S10, grace=sd.seconds(2)))
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "a", "x", 12_000), ("in", "a", "x", 9_999)])
        got = out(d, "out", flush=True)
        metrics = d.metrics()
    assert_changes(got, [("a", 1, 12_000, (10_000, 20_000))])
    assert metrics.late == 1


def test_record_accepted_one_ms_before_end_plus_grace(backend):
    """Not late while W.end > stream_time - grace: stream time 11.999s, grace 2s, W end 10s."""
    topo = _count(sd.tumbling(S10, grace=sd.seconds(2)))
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "a", "x", 11_999), ("in", "a", "x", 9_999)])
        got = out(d, "out", flush=True)
        metrics = d.metrics()
    assert_changes(got, [
        ("a", 1, 11_999, (10_000, 20_000)),
        ("a", 1, 9_999, (0, 10_000)),
    ])
    assert metrics.late == 0


def test_stream_time_is_shared_across_keys(backend):
    """Lateness is judged against the operator's stream time, not the key's own history:
    c@5s after a@15s is late for [0,10s) (grace 0) although c has never been seen. (a and c
    share a task at 1 and 3 partitions.)"""
    topo = _count(sd.tumbling(S10))
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "a", "x", 15_000), ("in", "c", "x", 5_000)])
        got = out(d, "out", flush=True)
        metrics = d.metrics()
    assert_changes(got, [("a", 1, 15_000, (10_000, 20_000))])
    assert metrics.late == 1


# ----------------------------------------------------------------- emit final timing

def test_emit_final_appears_only_when_stream_time_reaches_end_plus_grace(backend):
    """Emit final: W=[0,10s) with grace 2s is emitted when stream time >= 12s (checked as
    records arrive), not before; flush=False shows the progress. (a and c share a task at 1 and
    3 partitions.)"""
    topo = _count(sd.tumbling(S10, grace=sd.seconds(2)), emit="final")
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "a", "x", 1_000), ("in", "a", "x", 5_000)])
        assert out(d, "out") == []
        send_all(d, [("in", "a", "x", 11_000)])
        assert out(d, "out") == []           # 11s < 10s + 2s
        send_all(d, [("in", "c", "x", 11_999)])
        assert out(d, "out") == []
        send_all(d, [("in", "c", "x", 12_000)])
        assert_exact(out(d, "out"), [("a", 2, 5_000, (0, 10_000))])
        assert_final(out(d, "out", flush=True), [
            ("a", 2, 5_000, (0, 10_000)),
            ("a", 1, 11_000, (10_000, 20_000)),
            ("c", 2, 12_000, (10_000, 20_000)),
        ])


def test_emit_final_windows_closing_together_ordered_by_end_then_key(backend):
    """Several windows closing at once come out ordered by (window end, key):
    z's [0,10s) first, then [10s,20s) for b before d although d arrived first. (z, d, b and e
    share a task at 1 and 3 partitions.)"""
    topo = _count(sd.tumbling(S10, grace=sd.seconds(5)), emit="final")
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("in", "z", "x", 3_000), ("in", "d", "x", 12_000), ("in", "b", "x", 14_000)])
        assert out(d, "out") == []           # stream time 14s < 10s + 5s
        send_all(d, [("in", "e", "x", 26_000)])   # 26s - 5s = 21s closes both windows
        assert_exact(out(d, "out"), [
            ("z", 1, 3_000, (0, 10_000)),
            ("b", 1, 14_000, (10_000, 20_000)),
            ("d", 1, 12_000, (10_000, 20_000)),
        ])
        assert_final(out(d, "out", flush=True), [
            ("z", 1, 3_000, (0, 10_000)),
            ("b", 1, 14_000, (10_000, 20_000)),
            ("d", 1, 12_000, (10_000, 20_000)),
            ("e", 1, 26_000, (20_000, 30_000)),
        ])


def test_emit_changes_vs_final_on_same_input(backend):
    """emit="changes" forwards each update; emit="final" only the last value per window."""
    inputs = [("in", "a", "x", 1_000), ("in", "a", "x", 2_000), ("in", "a", "x", 3_000)]
    changes = run(_count(sd.tumbling(S10), emit="changes"), backend, inputs, "out")
    final = run(_count(sd.tumbling(S10), emit="final"), backend, inputs, "out")
    assert_changes(changes, [
        ("a", 1, 1_000, (0, 10_000)),
        ("a", 2, 2_000, (0, 10_000)),
        ("a", 3, 3_000, (0, 10_000)),
    ])
    assert_final(final, [("a", 3, 3_000, (0, 10_000))])
