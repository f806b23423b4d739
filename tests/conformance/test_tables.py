"""Tables (KTable): upserts, tombstones, filter, map, group_by.

Rules (KAFKA_STREAMS_RULES.md, DESIGN.md): a table is an upsert changelog applied in
processing order (a non-versioned table lets an older timestamp overwrite); a None value
is a tombstone (delete); KTable.filter forwards a failing row as a tombstone (Kafka
KTableFilter without old values); map leaves tombstones unchanged; grouping a table
subtracts the old value then adds the new one, and a count of 0 is a value.
"""
import streamdsl as sd

from conftest import assert_changes, run


def test_table_changelog_forwards_every_upsert(backend):
    """to_stream() of a source table forwards every update with its own timestamp."""
    topo = sd.Topology("tbl")
    topo.table("t").to_stream().to("out")
    inputs = [("t", "k1", "v1", 1_000), ("t", "k2", "w1", 2_000), ("t", "k1", "v2", 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("k1", "v1", 1_000, None),
        ("k1", "v2", 3_000, None),
        ("k2", "w1", 2_000, None),
    ])


def test_table_tombstone_is_forwarded(backend):
    """A None value deletes the row and is forwarded downstream as a tombstone."""
    topo = sd.Topology("tbl")
    topo.table("t").to_stream().to("out")
    inputs = [("t", "k1", "v1", 1_000), ("t", "k1", None, 2_000), ("t", "k1", "v3", 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("k1", "v1", 1_000, None),
        ("k1", None, 2_000, None),
        ("k1", "v3", 3_000, None),
    ])


def test_table_key_field(backend):
    """topo.table(name, key="id") keys the rows by the value's field."""
    topo = sd.Topology("tbl")
    topo.table("t", key="id").to_stream().to("out")
    inputs = [("t", None, {"id": "x", "n": 1}, 1_000), ("t", None, {"id": "x", "n": 2}, 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("x", {"id": "x", "n": 1}, 1_000, None),
        ("x", {"id": "x", "n": 2}, 2_000, None),
    ])


def test_table_upsert_with_older_timestamp_still_overwrites(backend):
    """Non-versioned table: updates apply in processing order, so k="old"@3s (sent after
    k="new"@5s) is the current value a later stream record sees."""
    topo = sd.Topology("tbl")
    t = topo.table("t")
    topo.stream("s").join(t, joiner=lambda s, v: (s, v)).to("out")
    # timestamp-synchronized order equals the send order: t@5s, t@3s (t's own order), s@6s
    inputs = [("t", "k", "new", 5_000), ("t", "k", "old", 3_000), ("s", "k", "q", 6_000)]
    assert_changes(run(topo, backend, inputs, "out"), [("k", ("q", "old"), 6_000, None)])


def test_table_filter_failing_row_becomes_tombstone(backend):
    """KTable.filter: a row that does not pass is forwarded as a tombstone (value None),
    with the update's timestamp; a passing row is forwarded unchanged."""
    topo = sd.Topology("tbl")
    topo.table("t").filter(lambda v: v > 3).to_stream().to("out")
    inputs = [("t", "k1", 5, 1_000),    # passes
              ("t", "k2", 1, 2_000),    # fails (never passed before: still a tombstone)
              ("t", "k1", 2, 3_000),    # fails -> deletes k1 downstream
              ("t", "k1", 7, 4_000)]    # passes again
    assert_changes(run(topo, backend, inputs, "out"), [
        ("k1", 5, 1_000, None),
        ("k1", None, 3_000, None),
        ("k1", 7, 4_000, None),
        ("k2", None, 2_000, None),
    ])


def test_table_filter_passes_source_tombstone(backend):
    """A source tombstone reaches the filtered table as a tombstone (predicate not applied to None)."""
    topo = sd.Topology("tbl")
    topo.table("t").filter(lambda v: v > 3).to_stream().to("out")
    inputs = [("t", "k1", 5, 1_000), ("t", "k1", None, 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("k1", 5, 1_000, None),
        ("k1", None, 2_000, None),
    ])


def test_table_filter_with_expression(backend):
    """Table.filter accepts an expression."""
    topo = sd.Topology("tbl")
    topo.table("t").filter(sd.col("n") >= 2).to_stream().to("out")
    inputs = [("t", "k", {"n": 2}, 1_000), ("t", "k", {"n": 1}, 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("k", {"n": 2}, 1_000, None),
        ("k", None, 2_000, None),
    ])


def test_table_map_values_and_tombstones_pass_through(backend):
    """Table.map transforms values; tombstones pass through unchanged (fn is not called on None)."""
    topo = sd.Topology("tbl")
    topo.table("t").map(lambda v: v["x"] * 10).to_stream().to("out")
    inputs = [("t", "k", {"x": 1}, 1_000), ("t", "k", None, 2_000), ("t", "k", {"x": 3}, 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("k", 10, 1_000, None),
        ("k", None, 2_000, None),
        ("k", 30, 3_000, None),
    ])


def test_table_group_by_count_subtracts_old_then_adds_new(backend):
    """Grouping a table: an update subtracts the old row from its group, then adds the new
    one (both forwarded, subtraction first); result ts = max(update ts, previous agg ts);
    a count may reach 0 and is forwarded as 0, not as a tombstone."""
    topo = sd.Topology("tbl")
    topo.table("users").group_by(lambda v: v["region"]).count().to_stream().to("out")
    inputs = [("users", "u1", {"region": "eu"}, 1_000),
              ("users", "u2", {"region": "eu"}, 2_000),
              ("users", "u1", {"region": "us"}, 3_000),   # eu -1, then us +1
              ("users", "u2", None, 4_000)]               # eu -1
    assert_changes(run(topo, backend, inputs, "out"), [
        ("eu", 1, 1_000, None),
        ("eu", 2, 2_000, None),
        ("eu", 1, 3_000, None),    # max(3_000, 2_000)
        ("eu", 0, 4_000, None),
        ("us", 1, 3_000, None),
    ])


def test_table_group_by_update_within_one_group_is_forwarded_once(backend):
    """KIP-904 (Kafka Streams 3.5+): an update whose old and new rows fall in the same group
    subtracts and adds in one step and forwards the group once."""
    topo = sd.Topology("tbl")
    topo.table("users").group_by(lambda v: v["region"]).agg(
        n=sd.count(), total=sd.sum("spend")).to_stream().to("out")
    inputs = [("users", "u1", {"region": "eu", "spend": 5}, 1_000),
              ("users", "u1", {"region": "eu", "spend": 7}, 2_000),   # eu: -5 +7, once
              ("users", "u1", {"region": "us", "spend": 7}, 3_000)]   # eu -7, then us +7
    assert_changes(run(topo, backend, inputs, "out"), [
        ("eu", {"n": 1, "total": 5}, 1_000, None),
        ("eu", {"n": 1, "total": 7}, 2_000, None),
        ("eu", {"n": 0, "total": 0}, 3_000, None),
        ("us", {"n": 1, "total": 7}, 3_000, None),
    ])
