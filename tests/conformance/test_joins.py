"""Joins: stream-stream (windowed), stream-table, table-table.

Rules (KAFKA_STREAMS_RULES.md "Joins", checked against Kafka's KStreamKStreamJoin,
KStreamKTableJoin, KTableKTable{Inner,Left,Outer}Join):

* stream-stream: match iff |t_left - t_right| <= within (inclusive); result ts =
  max(t_left, t_right); both inputs share one stream time; an unmatched left (left/outer)
  or right (outer) record is held back and emitted with a None partner, with its own
  timestamp, once t + within + grace < stream time (checked when a record advances stream
  time, before that record's own results, in timestamp order); at end of input all are
  flushed. A left join never emits a right record with a None partner.
* stream-table: the stream record sees the table as it is when the record is processed;
  result ts = the stream record's; table updates emit nothing.
* table-table: result ts = max of both sides' current timestamps; deleting one side of an
  existing result emits a tombstone.

Inputs with several sources are sent in timestamp-synchronized order (the smallest head
first), so the processing order is the send order on every backend.
"""
import streamdsl as sd
from streamdsl.testing import TestDriver

from conftest import assert_changes, assert_exact, out, run, run_full, run_inputs, send_all


def pair(left, right):
    return (left, right)


def _ss(kind, within=sd.seconds(5), grace=0, joiner=pair):
    topo = sd.Topology(f"ss-{kind}")
    left = topo.stream("left")
    right = topo.stream("right")
    method = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind]
    if joiner is None:
        method(right, within=within, grace=grace).to("out")
    else:
        method(right, joiner=joiner, within=within, grace=grace).to("out")
    return topo


# ----------------------------------------------------------------- stream-stream inner

def test_ss_join_test_driver_fed_out_of_timestamp_order_across_topics(backend):
    """TestDriver takes sends in send order across topics: left w@1.2s, left x@5s, then
    right y@1s. y arrives when stream time is 5s: 1s + within 1s + grace 0 < 5s, so it is
    late and dropped (counted), and nothing joins. A run over the same in-memory sources
    merges by timestamp: y@1s first, then w@1.2s joins it (|0.2s| <= 1s) at max(ts) = 1.2s;
    x@5s finds no partner within 1s."""
    topo = _ss("inner", within=sd.seconds(1), grace=0)
    inputs = [("left", "k", "w", 1_200), ("left", "k", "x", 5_000), ("right", "k", "y", 1_000)]
    result = run_full(topo, backend, inputs, "out")
    assert result.outputs["out"] == []
    assert result.metrics.late == 1
    assert_exact(run_inputs(topo, backend, inputs, "out"), [("k", ("w", "y"), 1_200, None)])


def test_ss_inner_join_matches_within_window(backend):
    """Inner stream-stream join: records of the same key within 5s match; ts = max(l, r)."""
    inputs = [("left", "k1", "a", 1_000), ("right", "k1", "x", 3_000),
              ("left", "k2", "b", 4_000), ("right", "k2", "y", 9_001)]   # 5.001s apart
    assert_changes(run(_ss("inner"), backend, inputs, "out"), [
        ("k1", ("a", "x"), 3_000, None),
    ])


def test_ss_inner_join_different_keys_never_match(backend):
    """Joins match on equal keys only."""
    inputs = [("left", "k1", "a", 1_000), ("right", "k2", "x", 1_500)]
    assert run(_ss("inner"), backend, inputs, "out") == []


def test_ss_inner_join_within_is_inclusive(backend):
    """|t_l - t_r| <= within matches, both before and after: L@10s matches R@5s and R@15s,
    not R@4.999s nor R@15.001s."""
    inputs = [("right", "k", "v", 4_999), ("right", "k", "w", 5_000),
              ("left", "k", "a", 10_000),
              ("right", "k", "x", 15_000), ("right", "k", "y", 15_001)]
    assert_changes(run(_ss("inner"), backend, inputs, "out"), [
        ("k", ("a", "w"), 10_000, None),
        ("k", ("a", "x"), 15_000, None),
    ])


def test_ss_inner_join_out_of_order_inside_window(backend):
    """An out-of-order right record (r2@2s after r1@6s) inside the window still joins; the
    result ts is max(l, r) = 4s, i.e. the stored left record's timestamp."""
    inputs = [("left", "k", "a", 4_000), ("right", "k", "r1", 6_000), ("right", "k", "r2", 2_000)]
    assert_changes(run(_ss("inner"), backend, inputs, "out"), [
        ("k", ("a", "r1"), 6_000, None),
        ("k", ("a", "r2"), 4_000, None),   # max(2_000, 4_000)
    ])


def test_ss_inner_join_one_record_matches_several(backend):
    """A record joins every record of the other side inside the window, each result with
    ts = max of the pair."""
    inputs = [("left", "k", "a", 1_000), ("left", "k", "b", 2_000), ("right", "k", "x", 3_000)]
    assert_changes(run(_ss("inner"), backend, inputs, "out"), [
        ("k", ("a", "x"), 3_000, None),
        ("k", ("b", "x"), 3_000, None),
    ])


def test_ss_default_joiner(backend):
    """Default joiner: merged dict {**left, **right} for dict values; tuple otherwise."""
    topo = sd.Topology("ss-default")
    left = topo.stream("left")
    right = topo.stream("right")
    left.join(right, within=sd.seconds(5)).to("out")
    inputs = [("left", "d", {"a": 1, "c": 0}, 1_000), ("right", "d", {"b": 2, "c": 9}, 2_000),
              ("left", "t", "l", 3_000), ("right", "t", "r", 4_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("d", {"a": 1, "b": 2, "c": 9}, 2_000, None),
        ("t", ("l", "r"), 4_000, None),
    ])


# ----------------------------------------------------------------- stream-stream left/outer

def test_ss_left_join_unmatched_left_emitted_at_end_of_input(backend):
    """Left join: an unmatched left record comes out with a None partner (its own ts) when the
    input ends; a matched one gives only the joined result."""
    inputs = [("left", "k1", "a", 1_000), ("left", "k2", "b", 2_000), ("right", "k2", "y", 3_000)]
    assert_changes(run(_ss("left"), backend, inputs, "out"), [
        ("k1", ("a", None), 1_000, None),
        ("k2", ("b", "y"), 3_000, None),
    ])


def test_ss_left_join_unmatched_left_waits_for_window_and_grace(backend):
    """Left join, within 5s, grace 1s: L@1s is emitted with None only once
    1s + 5s + 1s < stream time, i.e. not at stream time 7s, yes at 7.001s. (k1, k8 and k9 share
    a task at 1 and 3 partitions.)"""
    topo = _ss("left", grace=sd.seconds(1))
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("left", "k1", "a", 1_000)])
        assert out(d, "out") == []
        send_all(d, [("left", "k8", "b", 7_000)])
        assert out(d, "out") == []           # 7s is not > 7s
        send_all(d, [("left", "k9", "c", 7_001)])
        assert_exact(out(d, "out"), [("k1", ("a", None), 1_000, None)])
        assert_changes(out(d, "out", flush=True), [
            ("k1", ("a", None), 1_000, None),
            ("k8", ("b", None), 7_000, None),
            ("k9", ("c", None), 7_001, None),
        ])


def test_ss_left_join_late_partner_inside_window_suppresses_null_result(backend):
    """A left record matched by a right record that arrives later (inside the window) is
    never emitted with a None partner."""
    topo = _ss("left")
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("left", "k", "a", 1_000), ("right", "k", "x", 6_000)])   # 5s apart
        assert_exact(out(d, "out"), [("k", ("a", "x"), 6_000, None)])
        send_all(d, [("left", "z", "q", 20_000)])   # window of L@1s long closed
        assert_changes(out(d, "out", flush=True), [
            ("k", ("a", "x"), 6_000, None),
            ("z", ("q", None), 20_000, None),
        ])


def test_ss_left_join_never_emits_right_with_null(backend):
    """In a left join an unmatched right record produces nothing."""
    inputs = [("right", "k9", "z", 1_000), ("left", "k1", "a", 2_000), ("right", "k1", "x", 3_000)]
    assert_changes(run(_ss("left"), backend, inputs, "out"), [
        ("k1", ("a", "x"), 3_000, None),
    ])


def test_ss_left_join_expired_records_emitted_in_timestamp_order_before_trigger_results(backend):
    """When a record advances stream time, the expired unmatched records are emitted first,
    in timestamp order (b@1s before a@2s although a arrived first), then the trigger's own
    join result. (k1, k8 and k9 share a task at 1 and 3 partitions.)"""
    topo = _ss("left")
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("left", "k1", "a", 2_000), ("left", "k8", "b", 1_000),
                     ("left", "k9", "c", 6_000)])
        assert out(d, "out") == []           # 1s + 5s = 6s is not < 6s
        send_all(d, [("right", "k9", "z", 7_001)])
        assert_exact(out(d, "out"), [
            ("k8", ("b", None), 1_000, None),
            ("k1", ("a", None), 2_000, None),
            ("k9", ("c", "z"), 7_001, None),
        ])


def test_ss_outer_join_unmatched_both_sides_at_end_of_input(backend):
    """Outer join: unmatched left -> (l, None), unmatched right -> (None, r), each with its
    own timestamp; matched pairs only give the joined result."""
    inputs = [("left", "k1", "a", 1_000), ("right", "k2", "x", 2_000),
              ("left", "k3", "c", 3_000), ("right", "k3", "z", 4_000)]
    assert_changes(run(_ss("outer"), backend, inputs, "out"), [
        ("k1", ("a", None), 1_000, None),
        ("k2", (None, "x"), 2_000, None),
        ("k3", ("c", "z"), 4_000, None),
    ])


def test_ss_outer_join_unmatched_right_waits_for_window(backend):
    """Outer join, within 5s, grace 0: R@1s is emitted as (None, r) once 1s + 5s < stream time.
    (k1, k8 and k9 share a task at 1 and 3 partitions.)"""
    topo = _ss("outer")
    with TestDriver(topo, backend=backend) as d:
        send_all(d, [("right", "k1", "x", 1_000), ("left", "k8", "b", 6_000)])
        assert out(d, "out") == []
        send_all(d, [("left", "k9", "c", 6_001)])
        assert_exact(out(d, "out"), [("k1", (None, "x"), 1_000, None)])
        assert_changes(out(d, "out", flush=True), [
            ("k1", (None, "x"), 1_000, None),
            ("k8", ("b", None), 6_000, None),
            ("k9", ("c", None), 6_001, None),
        ])


def test_ss_left_join_default_joiner_with_dict_and_none(backend):
    """Default joiner with a dict and a None partner gives the dict itself ({**left})."""
    topo = _ss("left", joiner=None)
    inputs = [("left", "k", {"a": 1}, 1_000)]
    assert_changes(run(topo, backend, inputs, "out"), [("k", {"a": 1}, 1_000, None)])


# ----------------------------------------------------------------- stream-table

def _st(kind, joiner=pair):
    topo = sd.Topology(f"st-{kind}")
    s = topo.stream("s")
    t = topo.table("t")
    method = {"inner": s.join, "left": s.left_join}[kind]
    if joiner is None:
        method(t).to("out")
    else:
        method(t, joiner=joiner).to("out")
    return topo


ST_INPUTS = [("s", "k", "s1", 1_000), ("t", "k", "t1", 2_000), ("s", "k", "s2", 3_000),
             ("t", "k", "t2", 4_000), ("s", "k", "s3", 5_000)]


def test_st_inner_join_sees_table_at_processing_time(backend):
    """Stream-table inner join: a stream record joins the table value current when it is
    processed (before any row: nothing); table updates emit nothing; ts = stream record's."""
    assert_changes(run(_st("inner"), backend, ST_INPUTS, "out"), [
        ("k", ("s2", "t1"), 3_000, None),
        ("k", ("s3", "t2"), 5_000, None),
    ])


def test_st_left_join_missing_row_gives_none(backend):
    """Stream-table left join: with no table row the stream record joins None."""
    assert_changes(run(_st("left"), backend, ST_INPUTS, "out"), [
        ("k", ("s1", None), 1_000, None),
        ("k", ("s2", "t1"), 3_000, None),
        ("k", ("s3", "t2"), 5_000, None),
    ])


TOMBSTONE_INPUTS = [("t", "k", "t1", 1_000), ("s", "k", "s1", 2_000),
                    ("t", "k", None, 3_000), ("s", "k", "s2", 4_000)]


def test_st_inner_join_table_tombstone_removes_row(backend):
    """A table tombstone deletes the row: later stream records find nothing (inner)."""
    assert_changes(run(_st("inner"), backend, TOMBSTONE_INPUTS, "out"), [
        ("k", ("s1", "t1"), 2_000, None),
    ])


def test_st_left_join_table_tombstone_gives_none_partner(backend):
    """A table tombstone deletes the row: a left join then gives a None partner."""
    assert_changes(run(_st("left"), backend, TOMBSTONE_INPUTS, "out"), [
        ("k", ("s1", "t1"), 2_000, None),
        ("k", ("s2", None), 4_000, None),
    ])


def test_st_result_timestamp_is_stream_record_timestamp(backend):
    """The result carries the stream record's ts (8s) even when the table row is newer (9s).
    Sync order: t@9s before s@9.5s; s@8s follows s@9.5s in its own input."""
    inputs = [("t", "k", "t1", 9_000), ("s", "k0", "x", 9_500), ("s", "k", "s1", 8_000)]
    assert_changes(run(_st("inner"), backend, inputs, "out"), [
        ("k", ("s1", "t1"), 8_000, None),
    ])


def test_st_join_uses_timestamp_synchronized_order(backend):
    """In a run over in-memory sources, stream and table are read in timestamp-synchronized
    order, not the order they are listed in: the table row @1s is applied before the stream
    record @5s even though it is listed after it."""
    inputs = [("s", "k", "s1", 5_000), ("t", "k", "t1", 1_000)]
    assert_changes(run_inputs(_st("inner"), backend, inputs, "out"), [
        ("k", ("s1", "t1"), 5_000, None),
    ])


def test_st_join_test_driver_table_update_between_stream_records(backend):
    """TestDriver processes each send at once, as TopologyTestDriver pipes it: a table update
    sent between two stream records is seen by the second only, whatever its timestamp
    (s1@5s finds no row; t1@1s is applied; s2@6s joins it). A run over the same in-memory
    sources takes t1 first (smallest timestamp): both stream records join."""
    inputs = [("s", "k", "s1", 5_000), ("t", "k", "t1", 1_000), ("s", "k", "s2", 6_000)]
    assert_exact(run(_st("inner"), backend, inputs, "out"), [
        ("k", ("s2", "t1"), 6_000, None),
    ])
    assert_exact(run_inputs(_st("inner"), backend, inputs, "out"), [
        ("k", ("s1", "t1"), 5_000, None),
        ("k", ("s2", "t1"), 6_000, None),
    ])


def test_st_left_join_drops_null_stream_value(backend):
    """Stream records with a None value are dropped by a stream-table join (left too)."""
    inputs = [("s", "k", None, 1_000), ("s", "k", "s", 2_000)]
    assert_changes(run(_st("left"), backend, inputs, "out"), [
        ("k", ("s", None), 2_000, None),
    ])


def test_st_default_joiner_merges_dicts(backend):
    """Default stream-table joiner: {**stream, **table}; with a missing row (left join)
    the stream dict alone."""
    topo = _st("left", joiner=None)
    inputs = [("s", "a", {"x": 1}, 1_000), ("t", "b", {"y": 2}, 2_000), ("s", "b", {"x": 3}, 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", {"x": 1}, 1_000, None),
        ("b", {"x": 3, "y": 2}, 3_000, None),
    ])


# ----------------------------------------------------------------- table-table

def _tt(kind):
    topo = sd.Topology(f"tt-{kind}")
    left = topo.table("L")
    right = topo.table("R")
    method = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind]
    method(right, joiner=pair).to_stream().to("out")
    return topo


def test_tt_inner_join(backend):
    """Table-table inner join: emits when both sides exist; an update with the other side
    missing emits nothing; deleting either side of an existing result emits a tombstone;
    ts = max of both sides' current ts."""
    inputs = [("L", "k", "l1", 1_000),    # right missing: nothing
              ("R", "k", "r1", 2_000),
              ("L", "k", "l2", 3_000),
              ("R", "k", "r2", 4_000),
              ("L", "k", None, 5_000),    # delete left -> tombstone
              ("R", "k", "r3", 6_000),    # left missing: nothing
              ("L", "k", "l3", 7_000),
              ("R", "k", None, 8_000)]    # delete right -> tombstone
    assert_changes(run(_tt("inner"), backend, inputs, "out"), [
        ("k", ("l1", "r1"), 2_000, None),
        ("k", ("l2", "r1"), 3_000, None),
        ("k", ("l2", "r2"), 4_000, None),
        ("k", None, 5_000, None),
        ("k", ("l3", "r3"), 7_000, None),
        ("k", None, 8_000, None),
    ])


def test_tt_left_join(backend):
    """Table-table left join: a left update with no right row gives (l, None); a right update
    with no left row gives nothing; deleting the right row gives (l, None); deleting the
    left row of an existing result gives a tombstone."""
    inputs = [("L", "k", "l1", 1_000),
              ("R", "k", "r1", 2_000),
              ("R", "k", None, 3_000),
              ("R", "k2", "x", 3_500),    # left missing: nothing
              ("R", "k", "r2", 4_000),
              ("L", "k", None, 5_000),
              ("L", "k2", "y", 6_000)]
    assert_changes(run(_tt("left"), backend, inputs, "out"), [
        ("k", ("l1", None), 1_000, None),
        ("k", ("l1", "r1"), 2_000, None),
        ("k", ("l1", None), 3_000, None),    # max(3_000, 1_000)
        ("k", ("l1", "r2"), 4_000, None),
        ("k", None, 5_000, None),
        ("k2", ("y", "x"), 6_000, None),
    ])


def test_tt_outer_join(backend):
    """Table-table outer join: either side alone gives (l, None) / (None, r); deleting one
    side of a pair gives the other side with None."""
    inputs = [("L", "k", "l1", 1_000),
              ("R", "k", "r1", 2_000),
              ("L", "k", None, 3_000),
              ("R", "k2", "x", 4_000),
              ("L", "k", "l2", 5_000),
              ("R", "k", None, 6_000)]
    assert_changes(run(_tt("outer"), backend, inputs, "out"), [
        ("k", ("l1", None), 1_000, None),
        ("k", ("l1", "r1"), 2_000, None),
        ("k", (None, "r1"), 3_000, None),
        ("k", ("l2", "r1"), 5_000, None),
        ("k", ("l2", None), 6_000, None),
        ("k2", (None, "x"), 4_000, None),
    ])


def test_tt_result_timestamp_is_max_of_both_sides(backend):
    """Table-table result ts = max(left ts, right ts), even when the triggering update is
    older: L k="a2"@5s (after L@9s in L's own order) with R@7s gives ts 7s."""
    inputs = [("R", "k", "b", 7_000), ("L", "k", "a", 9_000), ("L", "k", "a2", 5_000)]
    assert_changes(run(_tt("inner"), backend, inputs, "out"), [
        ("k", ("a", "b"), 9_000, None),
        ("k", ("a2", "b"), 7_000, None),
    ])
