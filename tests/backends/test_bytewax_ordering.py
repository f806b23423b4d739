"""The bytewax backend's results never depend on delivery order, batching or worker count.

Two angles:

* ``simulate`` drives the backend's own pieces (stage runners, operator and output logics)
  with an adversarial scheduler: messages are delivered in random order across channels,
  reordered within a channel, in random batches, interleaved with random input batches. This
  is every order Bytewax could deliver in (and more), and the results must equal the local
  backend's exactly: same records in the same order per sink, same dead letters, same metrics.
* real Bytewax runs with one input event per batch and 2 or 3 workers, compared the same way.
"""

from __future__ import annotations

import functools
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.backends.bytewax import BytewaxBackend
from streamdsl.backends.bytewax.inbox import Inbox, OrderingError
from streamdsl.backends.bytewax.io import EventSource
from streamdsl.backends.bytewax.layout import Layout
from streamdsl.backends.bytewax.logic import OperatorLogic, OutputLogic, RunState
from streamdsl.backends.bytewax.stage import StageRunner
from streamdsl.optimize import optimize
from streamdsl.runtime.ordering import merge_inputs
from streamdsl.runtime.records import InputEvent


# ---- topologies covering every stateful kind, diamonds and failures ------------------------------

def _parse(v):
    if v["v"] == 4:
        raise ValueError("four")
    return v


def windows_and_sessions():
    t = sd.Topology("w", on_error="dead-letter")
    s = t.stream("a", key="k", timestamp="ts").map(_parse)
    g = s.group_by_key()
    g.window(sd.tumbling(seconds=10, grace=sd.seconds(3)), emit="final").count().to_stream().to("tumbling")
    g.window(sd.hopping(sd.seconds(10), sd.seconds(5))).agg(n=sd.count(), s=sd.sum("v")).to_stream().to("hopping")
    g.window(sd.session(sd.seconds(4), grace=sd.seconds(2))).count().to_stream().to("session")
    g.window(sd.sliding(sd.seconds(5), grace=sd.seconds(1))).count().to_stream().to("sliding")
    return t


def _pair_or_fail(lv, rv):
    if ((lv or {"v": 0})["v"] + (rv or {"v": 0})["v"]) % 3 == 0:
        raise ValueError("sum divisible by 3")
    return {"l": lv and lv["v"], "r": rv and rv["v"]}


def joins_and_tables():
    t = sd.Topology("j", on_error="dead-letter")
    a = t.stream("a", key="k", timestamp="ts")
    b = t.stream("b", key="k", timestamp="ts")
    tbl = t.table("c", key="k", timestamp="ts")
    a.outer_join(b, _pair_or_fail, within=sd.seconds(5), grace=sd.seconds(1)).to("joined")
    b.left_join(tbl).to("enriched")
    counts = a.group_by_key().count()
    counts.join(tbl.filter(sd.col("v") > 0), lambda n, c: {"n": n, "v": c["v"]}).to_stream().to("tt")
    tbl.group_by(lambda v: v["v"] % 2).count().to_stream().to("parity")
    return t


def diamonds():
    t = sd.Topology("d", on_error="dead-letter")
    s = t.stream("a", key="k", timestamp="ts")
    parts = s.branch(pos=sd.col("v") > 0, otherwise="rest")
    merged = parts["pos"].merge(parts["rest"].map(lambda v: {**v, "v": -v["v"]}))
    merged.group_by(lambda v: v["v"] % 3).window(sd.tumbling(seconds=5)).count().to_stream().to("out")
    s.join(s.map(lambda v: {**v, "w": v["v"] * 2}), within=sd.seconds(2)).to("self")
    (s.flat_map(lambda v: [v, {**v, "v": v["v"] + 1}]).map(lambda v: 1 // (v["v"] - 5) and v)
        .group_by(lambda v: v["v"]).window(sd.tumbling(seconds=5), emit="final").count()
        .to_stream().to("fanout"))
    return t


def failing_joins():
    """Joiners that fail, in a join that runs a batch in one call (``Layout.batch_positions``:
    its outputs go to two sinks) fed straight by its sources (``InBlock`` s), and in one that
    does not (the self-join: one record on both ports)."""
    t = sd.Topology("fj", on_error="dead-letter")
    a = t.stream("a", key="k", timestamp="ts")
    j = t.stream("b", key="k", timestamp="ts").outer_join(
        t.stream("c", key="k", timestamp="ts"), _pair_or_fail, within=sd.seconds(4),
        grace=sd.seconds(1))
    j.to("bc")
    j.to("bc2")
    a.join(a, _pair_or_fail, within=sd.seconds(3)).to("self")
    return t


TOPOLOGIES = {"windows": windows_and_sessions, "joins": joins_and_tables, "diamonds": diamonds,
              "failing_joins": failing_joins}


@functools.cache
def _plan(name: str):
    return optimize(TOPOLOGIES[name]().plan())


event = st.tuples(st.sampled_from("abc"), st.sampled_from(["x", "y", 3, None]),
                  st.integers(min_value=0, max_value=30_000), st.integers(min_value=-2, max_value=6))
events_st = st.lists(event, max_size=40)


def _events(plan, raw) -> list[InputEvent]:
    per: dict[str, list[InputEvent]] = {}
    for i, (src, k, ts, v) in enumerate(raw):
        if src in plan.source_topics():
            value = None if (src == "c" and v == 6) else {"k": k, "ts": ts, "v": v}
            per.setdefault(src, []).append(InputEvent(src, k, value, ts, i))
    return list(merge_inputs(plan, per))


def _summary(res):
    return ({t: [r.as_tuple() for r in recs] for t, recs in res.outputs.items()},
            [(d.source, d.position, d.operator, d.reason) for d in res.dead_letters],
            res.metrics.to_dict())


# ---- the adversarial scheduler ----------------------------------------------------------------------

def simulate(plan, events, *, flush: bool, seed: int, restore_at: int | None = None):
    """Run the backend's logics with a random scheduler; returns the ``_gather`` result.

    The number of key groups is random too. ``restore_at=k``: at the k-th moment nothing is in
    flight (where Bytewax closes an epoch and snapshots), every logic and the source are
    snapshotted, pickled, and rebuilt from the snapshots, as a resumed run does.
    """
    from streamdsl.backends.bytewax import _gather

    rng = random.Random(seed)
    layout = Layout(plan, key_groups=rng.choice([1, 2, 3, 5]))
    run = RunState(layout, plan.on_error, recovery=restore_at is not None)
    source = EventSource(lambda: iter(events), flush=flush, batch_size=rng.choice([1, 2, 3, 50]))
    part = source.build_part("s", "input", None)
    quiet = 0
    stages = {s.id: StageRunner(layout, s, run.on_error) for s in layout.subs}
    logics: dict[str, object] = {}  # Bytewax key (task) -> logic
    kinds: dict[str, str] = {}      # Bytewax key -> destination
    pending: list[tuple[str, tuple]] = []
    collected: list = []

    def build(task, snap=None):
        dest = kinds[task]
        return (OperatorLogic(run, dest[3:], snap) if dest.startswith("op:")
                else OutputLogic(run, snap))

    def send(msgs):
        for task, msg in msgs:
            kinds[task] = msg[0]
            pending.append((task, msg))

    def deliver(task, values):
        if task not in logics:
            logics[task] = build(task)
        outs, _discard = logics[task].on_batch(values)
        after(task, outs)

    def after(task, outs):
        dest = kinds[task]
        if dest.startswith("op:"):
            sub = layout.sub_of_head[dest[3:]].id
            for msg in outs:
                send(stages[sub].run_head(*msg))
        else:
            collected.extend((dest, o) for o in outs)

    done = False
    while not done or pending:
        if not pending:
            quiet += 1
            if quiet == restore_at:
                snaps = {t: pickle.loads(pickle.dumps(lg.snapshot())) for t, lg in logics.items()}
                logics = {t: build(t, snap) for t, snap in snaps.items()}
                part = source.build_part("s", "input", pickle.loads(pickle.dumps(part.snapshot())))
                stages = {s.id: StageRunner(layout, s, run.on_error) for s in layout.subs}
        if not done and (not pending or rng.random() < 0.3):
            try:
                for msg in part.next_batch():
                    send(stages[0].run_input(*msg))
            except StopIteration:
                done = True
            continue
        task = rng.choice(pending)[0]
        mine = [i for i, (t, _) in enumerate(pending) if t == task]
        take = rng.sample(mine, rng.randint(1, len(mine)))  # any subset, in any order
        values = [pending[i][1] for i in take]
        for i in sorted(take, reverse=True):
            del pending[i]
        deliver(task, values)
    # Bytewax's EOF reaches the steps in dataflow order.
    op_tasks = sorted((t for t in logics if kinds[t].startswith("op:")),
                      key=lambda t: layout.topo_index[kinds[t][3:]])
    for task in op_tasks:
        outs, _ = logics[task].on_eof()
        after(task, outs)
        while pending:
            t = pending[0][0]
            vals = [m for tt, m in pending if tt == t]
            pending[:] = [(tt, m) for tt, m in pending if tt != t]
            deliver(t, vals)
    for task, lg in list(logics.items()):
        if not kinds[task].startswith("op:"):
            outs, _ = lg.on_eof()
            collected.extend((kinds[task], o) for o in outs)
    result, fatal = _gather(plan, collected, collect_dead_letters=True)
    assert fatal is None
    return result


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@settings(max_examples=60)
@given(raw=events_st, seed=st.integers(0, 10**6), flush=st.booleans())
def test_any_delivery_order_gives_the_local_results(name, raw, seed, flush):
    plan = _plan(name)
    events = _events(plan, raw)
    expected = get_backend("local").execute(plan, events, flush=flush)
    got = simulate(plan, events, flush=flush, seed=seed)
    assert _summary(got) == _summary(expected)


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@settings(max_examples=40)
@given(raw=events_st, seed=st.integers(0, 10**6), restore_at=st.integers(1, 12))
def test_restoring_snapshots_at_an_epoch_boundary_changes_nothing(name, raw, seed, restore_at):
    """Snapshot/restore of every operator's state (windows, sessions, join buffers, tables),
    pickled as Bytewax's recovery store does, at any quiescent point."""
    plan = _plan(name)
    events = _events(plan, raw)
    expected = get_backend("local").execute(plan, events)
    got = simulate(plan, events, flush=True, seed=seed, restore_at=restore_at)
    assert _summary(got) == _summary(expected)


@pytest.mark.parametrize("restore_at", [1, 2, 3, 4])
def test_restored_join_keeps_numbering_its_buffered_records(restore_at):
    """The join numbers buffered records with a counter kept outside its stores; a restored
    join must go on from where it was, or a new unmatched record overwrites an old one."""
    t = sd.Topology("oj")
    t.stream("a").outer_join(t.stream("b"), within=100).to("out")
    plan = optimize(t.plan())
    events = [InputEvent("a", "k1", 1, 0, 0), InputEvent("a", "k2", 2, 1, 1),
              InputEvent("b", "k3", 3, 2, 0)]
    seed = next(s for s in range(1000) if random.Random(s).choice([1, 2, 3, 50]) == 1)
    got = simulate(plan, events, flush=True, seed=seed, restore_at=restore_at)
    assert [r.as_tuple() for r in got.outputs["out"]] == [
        ("k1", (1, None), 0, None), ("k2", (2, None), 1, None), ("k3", (None, 3), 2, None)]


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
@settings(max_examples=8)
@given(raw=events_st, workers=st.sampled_from([2, 3]), flush=st.booleans())
def test_bytewax_workers_give_the_local_results(name, raw, workers, flush):
    """One event per Bytewax batch, several workers: as many interleavings as Bytewax makes."""
    plan = _plan(name)
    events = _events(plan, raw)
    expected = get_backend("local").execute(plan, events, flush=flush)
    got = BytewaxBackend(workers=workers, batch_size=1).execute(plan, events, flush=flush)
    assert _summary(got) == _summary(expected)


# ---- the inbox -------------------------------------------------------------------------------------

def test_inbox_reassembles_channels_and_releases_in_position_order():
    box = Inbox([0, 1])
    box.add(0, 1, 7, [((6, 0), "f")])        # arrives before its predecessor: held
    box.add(1, 0, 2, [((1, 1), "b")])
    assert list(box.pop_ready()) == []       # channel 0 has said nothing yet
    box.add(0, 0, 3, [((1, 0), "a"), ((3, 0), "c")])
    assert [p for _, p in box.pop_ready()] == ["a", "b"]   # min frontier 2
    box.add(1, 1, 9, [((4, 0), "d")])
    assert [p for _, p in box.pop_ready()] == ["c", "d", "f"]  # channel 0 now at 7
    assert box.add(0, 0, 3, []) is False     # a duplicate is ignored
    assert box.pending == 0


def test_inbox_detects_a_broken_frontier():
    box = Inbox([0])
    box.add(0, 0, 5, [])
    with pytest.raises(OrderingError):
        box.add(0, 1, 6, [((5, 0), "late")])


@given(st.lists(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2)), unique=True,
                         max_size=6), min_size=1, max_size=4))
def test_the_inbox_releases_the_merge_of_its_channels(channels: list) -> None:
    # equal positions on two channels (an operator's end-of-input outputs on each of its
    # tasks) come out in channel order, as heapq.merge gives them
    import heapq
    from streamdsl.backends.bytewax.inbox import Inbox
    runs = [[(p, (c, i)) for i, p in enumerate(sorted(ps))] for c, ps in enumerate(channels)]
    box = Inbox(range(len(runs)))
    for c, run in enumerate(runs):
        box.add(c, 0, 100, run)
    assert box.pop_ready() == list(heapq.merge(*[r for r in runs if r], key=lambda x: x[0]))


def test_the_inbox_rejects_records_out_of_order() -> None:
    from streamdsl.backends.bytewax.inbox import Inbox, OrderingError
    box = Inbox([0])
    box.add(0, 0, 3, [((1, 0), "a"), ((2, 0), "b")])
    with pytest.raises(OrderingError, match=r"\(5, 0\).*out of order"):
        Inbox([0]).add(0, 0, 9, [((4, 0), "a"), ((6, 0), "b"), ((5, 0), "c")])
    with pytest.raises(OrderingError, match="out of order"):
        box.add(0, 1, 9, [((2, 0), "again")])
