"""push_filters: expression filters move ahead of re-keys, repartitions, merges and
field-preserving maps; opaque predicates and key-reading predicates over a re-key stay."""

import streamdsl as sd
from streamdsl.optimize import push_filters

from opt_helpers import assert_equivalent, literal


def _rekeyed():
    t = sd.Topology("t")
    (t.stream("in").key_by("user")
        .filter(sd.col("n") > 1)             # moves ahead of the re-key
        .filter(lambda v: v["n"] != 3)       # opaque: stays
        .to("out"))
    return t


def test_moves_ahead_of_key_by_but_not_opaque():
    assert literal(push_filters(_rekeyed().plan()))[1:3] == [
        "filter-1: Filter(n > 1) <- source-in",
        "keyby-1: KeyBy(user) <- filter-1",
    ]
    assert literal(push_filters(_rekeyed().plan()))[3].endswith("<- keyby-1")  # filter-2 stays


def test_copies_into_each_merge_input():
    t = sd.Topology("t")
    t.stream("a").merge(t.stream("b")).filter(sd.col("n") > 1).to("out")
    assert literal(push_filters(t.plan())) == [
        "source-a: Source(stream 'a')",
        "source-b: Source(stream 'b')",
        "filter-1@in0: Filter(n > 1) <- source-a",
        "filter-1@in1: Filter(n > 1) <- source-b",
        "merge-1: Merge <- filter-1@in0.in0, filter-1@in1.in1",
        "sink-out: Sink(to 'out') <- merge-1",
    ]


def test_key_reading_predicate_stays_after_the_re_key():
    t = sd.Topology("t")
    t.stream("a").key_by("u").filter(sd.key() == "x").to("o")
    assert push_filters(t.plan()).signature() == t.plan().signature()


def test_passes_struct_projection_only_for_copied_fields():
    t = sd.Topology("t")
    (t.stream("a").map(sd.func("struct", sd.lit("n"), sd.col("n"), sd.lit("m"), sd.col("x") * 2))
        .filter(sd.col("n") > 1).to("o"))           # n is copied: moves
    (t.stream("b").map(sd.func("struct", sd.lit("n"), sd.col("n")))
        .filter(sd.col("m") > 1).to("p"))           # m is not: stays
    got = literal(push_filters(t.plan()))
    assert got[1:3] == ["filter-1: Filter(n > 1) <- source-a",
                        "map-1: Map(struct('n', n, 'm', x * 2)) <- filter-1"]
    assert got[5:7] == ["map-2: Map(struct('n', n)) <- source-b",
                        "filter-2: Filter(m > 1) <- map-2"]


def test_never_across_peek_stateful_or_shared_producers():
    seen = []
    t = sd.Topology("t")
    s = t.stream("in").key_by("u")
    s.to("all")                                            # key_by feeds two consumers
    s.filter(sd.col("n") > 1).to("big")
    t.stream("p").peek(lambda k, v: seen.append(v)).filter(sd.col("n") > 1).to("q")
    (t.stream("c").group_by_key().count().to_stream()
        .filter(sd.col("n") > 1).to("counts"))
    assert push_filters(t.plan()).signature() == t.plan().signature()


def test_pure_and_idempotent():
    plan = _rekeyed().plan()
    before = plan.signature()
    once = push_filters(plan)
    assert plan.signature() == before
    assert push_filters(once).signature() == once.signature()


def test_equivalence():
    t = sd.Topology("t")
    merged = t.stream("a").key_by("user").merge(t.stream("b").key_by("user"))
    merged.filter(sd.col("n") > 1).group_by_key().agg(total=sd.sum("n")).to_stream().to("totals")
    events = []
    for i in range(12):
        events.append(("a" if i % 3 else "b", None, {"user": f"u{i % 4}", "n": i % 5}, 1_000 * i))
    res = assert_equivalent(t.plan(), push_filters(t.plan()), events)
    assert res["outputs"]["totals"]  # the run produced something to compare
