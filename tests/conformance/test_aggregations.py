"""Non-windowed aggregations on grouped streams (KGroupedStream count/reduce/aggregate).

Rules (KAFKA_STREAMS_RULES.md "Aggregations and emit modes"): every update is forwarded
(record caching off); the result timestamp is the largest input timestamp aggregated so
far; records with a null value are ignored; grouping re-keys and a null group key drops
the record.
"""
import streamdsl as sd

from conftest import assert_changes, run, run_full


def _topo():
    topo = sd.Topology("agg")
    return topo, topo.stream("in")


def test_count_per_key_emits_every_update(backend):
    """count() forwards the new count on every record of the key."""
    topo, s = _topo()
    s.group_by_key().count().to_stream().to("out")
    inputs = [("in", "a", "x", 1_000), ("in", "b", "y", 2_000),
              ("in", "a", "z", 3_000), ("in", "a", "w", 4_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("b", 1, 2_000, None),
        ("a", 2, 3_000, None),
        ("a", 3, 4_000, None),
    ])


def test_aggregate_timestamp_is_max_input_timestamp_so_far(backend):
    """The result timestamp is max(ts) over the aggregated records: an out-of-order record
    (a@2.5s after a@3s) yields ts 3s, not 2.5s."""
    topo, s = _topo()
    s.group_by_key().count().to_stream().to("out")
    inputs = [("in", "a", "x", 1_000), ("in", "a", "y", 3_000), ("in", "a", "z", 2_500)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("a", 2, 3_000, None),
        ("a", 3, 3_000, None),   # max(3_000, 2_500)
    ])


def test_table_to_sink_directly(backend):
    """A Table can be written with Table.to(name): its changelog (every update) reaches the sink."""
    topo, s = _topo()
    s.group_by_key().count().to("out")
    inputs = [("in", "a", "x", 1_000), ("in", "a", "y", 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("a", 2, 2_000, None),
    ])


def test_reduce(backend):
    """reduce(fn): the first value is the initial aggregate, then fn(agg, value)."""
    topo, s = _topo()
    s.group_by_key().reduce(lambda agg, v: agg + v).to_stream().to("out")
    inputs = [("in", "a", 5, 1_000), ("in", "b", 1, 1_500),
              ("in", "a", 7, 2_000), ("in", "a", 1, 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 5, 1_000, None),
        ("a", 12, 2_000, None),   # 5+7
        ("a", 13, 3_000, None),   # 12+1
        ("b", 1, 1_500, None),
    ])


def test_aggregate_with_callable_initializer(backend):
    """aggregate(init, add): agg starts at init() per key and becomes add(agg, value)."""
    topo, s = _topo()
    s.group_by_key().aggregate(lambda: [], lambda agg, v: agg + [v]).to_stream().to("out")
    inputs = [("in", "a", "x", 1_000), ("in", "b", "q", 1_500), ("in", "a", "y", 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", ["x"], 1_000, None),
        ("a", ["x", "y"], 2_000, None),
        ("b", ["q"], 1_500, None),
    ])


def test_aggregate_with_value_initializer(backend):
    """aggregate(init, add) accepts a plain initial value (here 100)."""
    topo, s = _topo()
    s.group_by_key().aggregate(100, lambda agg, v: agg - v).to_stream().to("out")
    inputs = [("in", "a", 1, 1_000), ("in", "b", 10, 1_500), ("in", "a", 2, 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 99, 1_000, None),    # 100-1
        ("a", 97, 2_000, None),    # 99-2
        ("b", 90, 1_500, None),    # 100-10
    ])


def test_agg_named_functions(backend):
    """agg(name=sd.count()|sum|min|max|avg|collect|first|last) gives a dict per update."""
    topo, s = _topo()
    (s.group_by_key()
        .agg(n=sd.count(), total=sd.sum("amount"), lo=sd.min("amount"), hi=sd.max("amount"),
             mean=sd.avg("amount"), items=sd.collect("amount"),
             first=sd.first("amount"), last=sd.last("amount"))
        .to_stream().to("out"))
    inputs = [("in", "a", {"amount": 10}, 1_000), ("in", "b", {"amount": 7}, 1_500),
              ("in", "a", {"amount": 15}, 2_000), ("in", "a", {"amount": 5}, 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", {"n": 1, "total": 10, "lo": 10, "hi": 10, "mean": 10.0,
               "items": [10], "first": 10, "last": 10}, 1_000, None),
        ("a", {"n": 2, "total": 25, "lo": 10, "hi": 15, "mean": 12.5,          # 25/2
               "items": [10, 15], "first": 10, "last": 15}, 2_000, None),
        ("a", {"n": 3, "total": 30, "lo": 5, "hi": 15, "mean": 10.0,           # 30/3
               "items": [10, 15, 5], "first": 10, "last": 5}, 3_000, None),
        ("b", {"n": 1, "total": 7, "lo": 7, "hi": 7, "mean": 7.0,
               "items": [7], "first": 7, "last": 7}, 1_500, None),
    ])


def test_agg_with_expression_and_callable_arguments(backend):
    """agg functions take a field name, an expression or a callable."""
    topo, s = _topo()
    (s.group_by_key()
        .agg(doubled=sd.sum(sd.col("amount") * 2), fee=sd.max(lambda v: v["amount"] + 1))
        .to_stream().to("out"))
    inputs = [("in", "a", {"amount": 3}, 1_000), ("in", "a", {"amount": 1}, 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", {"doubled": 6, "fee": 4}, 1_000, None),    # 3*2, 3+1
        ("a", {"doubled": 8, "fee": 4}, 2_000, None),    # 6+1*2, max(4, 2)
    ])


def test_count_ignores_null_values(backend):
    """Null values are ignored by aggregations: no update, and their timestamp does not count."""
    topo, s = _topo()
    s.group_by_key().count().to_stream().to("out")
    inputs = [("in", "a", "x", 1_000), ("in", "a", None, 5_000), ("in", "a", "y", 2_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("a", 2, 2_000, None),   # the null@5s was skipped, so max ts is 2s
    ])


def test_reduce_ignores_null_values(backend):
    """reduce never sees a null value (Kafka skips records with null value)."""
    topo, s = _topo()
    s.group_by_key().reduce(lambda agg, v: agg + v).to_stream().to("out")
    inputs = [("in", "a", 1, 1_000), ("in", "a", None, 2_000), ("in", "a", 2, 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", 1, 1_000, None),
        ("a", 3, 3_000, None),
    ])


def test_group_by_field_rekeys_then_counts(backend):
    """group_by("user") re-keys by the field, then counts per new key."""
    topo, s = _topo()
    s.group_by("user").count().to_stream().to("out")
    inputs = [("in", "k1", {"user": "u1"}, 1_000), ("in", "k2", {"user": "u2"}, 2_000),
              ("in", "k3", {"user": "u1"}, 3_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("u1", 1, 1_000, None),
        ("u1", 2, 3_000, None),
        ("u2", 1, 2_000, None),
    ])


def test_group_by_expression_and_callable(backend):
    """group_by accepts an expression or a callable on the value."""
    topo, s = _topo()
    s.group_by(sd.col("user")).count().to_stream().to("by_expr")
    s.group_by(lambda v: v["user"].upper()).count().to_stream().to("by_callable")
    inputs = [("in", "k1", {"user": "u1"}, 1_000), ("in", "k2", {"user": "u1"}, 2_000)]
    res = run_full(topo, backend, inputs, ["by_expr", "by_callable"])
    assert_changes(res.outputs["by_expr"], [("u1", 1, 1_000, None), ("u1", 2, 2_000, None)])
    assert_changes(res.outputs["by_callable"], [("U1", 1, 1_000, None), ("U1", 2, 2_000, None)])


def test_group_by_none_key_drops_record(backend):
    """A grouping key of None drops the record (it is not aggregated)."""
    topo, s = _topo()
    s.group_by(lambda v: v.get("user")).count().to_stream().to("out")
    inputs = [("in", "k1", {"user": "u1"}, 1_000), ("in", "k2", {}, 2_000),
              ("in", "k3", {"user": None}, 3_000), ("in", "k4", {"user": "u1"}, 4_000)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("u1", 1, 1_000, None),
        ("u1", 2, 4_000, None),
    ])


def test_distinct_sets_histograms_top_k_and_by_offset_options(backend):
    """The ksqlDB aggregates (worked out by hand from ksqlDB's function reference):
    COUNT_DISTINCT and HISTOGRAM skip nulls, COLLECT_SET keeps first-seen order (a null is a
    value), TOPK / TOPKDISTINCT are largest first, LATEST/EARLIEST_BY_OFFSET with
    ignore_nulls skip nulls and with n keep that many values."""
    topo, s = _topo()
    s.group_by_key().agg(
        distinct=sd.count_distinct("v"), seen=sd.collect_set("v"), hist=sd.histogram("v"),
        top=sd.top_k("v", 2), top_distinct=sd.top_k("v", 2, distinct=True),
        latest=sd.last("v", ignore_nulls=True), latest2=sd.last("v", n=2, ignore_nulls=True),
        earliest=sd.first("v", ignore_nulls=True), earliest2=sd.first("v", n=2),
    ).to_stream().to("out")
    inputs = [("in", "a", {"v": None}, 1), ("in", "a", {"v": 3}, 2), ("in", "a", {"v": 3}, 3),
              ("in", "a", {"v": 1}, 4), ("in", "a", {"v": None}, 5)]

    def row(distinct, seen, hist, top, top_distinct, latest, latest2, earliest, earliest2):
        return dict(distinct=distinct, seen=seen, hist=hist, top=top, top_distinct=top_distinct,
                    latest=latest, latest2=latest2, earliest=earliest, earliest2=earliest2)
    assert_changes(run(topo, backend, inputs, "out"), [
        ("a", row(0, [None], {}, [], [], None, [], None, [None]), 1, None),
        ("a", row(1, [None, 3], {3: 1}, [3], [3], 3, [3], 3, [None, 3]), 2, None),
        ("a", row(1, [None, 3], {3: 2}, [3, 3], [3], 3, [3, 3], 3, [None, 3]), 3, None),
        ("a", row(2, [None, 3, 1], {3: 2, 1: 1}, [3, 3], [3, 1], 1, [3, 1], 3, [None, 3]), 4, None),
        ("a", row(2, [None, 3, 1], {3: 2, 1: 1}, [3, 3], [3, 1], 1, [3, 1], 3, [None, 3]), 5, None),
    ])


def test_table_collect_and_histogram_undo_a_row(backend):
    """Over a grouped table, COLLECT_LIST drops one occurrence of the old row's value and
    HISTOGRAM decrements it (a count of 0 leaves the map)."""
    topo = sd.Topology("tbl")
    topo.table("users").group_by(sd.col("region")).agg(
        names=sd.collect("name"), hist=sd.histogram("name")).to_stream().to("out")
    inputs = [("users", "u1", {"region": "eu", "name": "ann"}, 1),
              ("users", "u2", {"region": "eu", "name": "bob"}, 2),
              ("users", "u1", {"region": "us", "name": "ann"}, 3)]
    assert_changes(run(topo, backend, inputs, "out"), [
        ("eu", {"names": ["ann"], "hist": {"ann": 1}}, 1, None),
        ("eu", {"names": ["ann", "bob"], "hist": {"ann": 1, "bob": 1}}, 2, None),
        ("eu", {"names": ["bob"], "hist": {"bob": 1}}, 3, None),
        ("us", {"names": ["ann"], "hist": {"ann": 1}}, 3, None),
    ])
