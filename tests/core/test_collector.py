"""The garbage collector's settings during a run (streamdsl.runtime.collector)."""

from __future__ import annotations

import gc
import weakref

import pytest

from streamdsl.runtime import collector
from streamdsl.runtime.collector import collector_for_a_run


class Node:
    """An object with a __dict__, so two of them can make a reference cycle."""


@pytest.fixture(autouse=True)
def _clean_collector():
    gc.collect()
    before = (gc.get_threshold(), list(gc.callbacks), gc.get_freeze_count(), gc.isenabled())
    yield
    assert (gc.get_threshold(), list(gc.callbacks), gc.get_freeze_count(), gc.isenabled()) == before


def _policy():
    (cb,) = [cb for cb in gc.callbacks if isinstance(cb, collector._AfterCollection)]
    return cb


def test_settings_are_restored_and_what_the_run_left_alive_joins_the_oldest_generation():
    thresholds = gc.get_threshold()
    with collector_for_a_run(young_threshold=10_000_000):
        assert gc.get_threshold()[0] == 10_000_000
        kept = [[i] for i in range(20_000)]  # tracked, alive, never collected young
        # no young collection ran (it would have reset the count); a few other objects of
        # the process may have been freed meanwhile
        assert gc.get_count()[0] >= 19_000
    assert gc.get_threshold() == thresholds
    # Handed to the oldest generation: the first allocation after the run does not start a
    # young collection over them.
    assert gc.get_count()[0] < 100
    assert any(kept[0] is o for o in gc.get_objects(generation=2))


def test_young_cycles_are_collected_during_the_run():
    refs = []
    with collector_for_a_run(young_threshold=2_000):
        for i in range(30_000):
            a, b = Node(), Node()
            a.other, b.other = b, a
            if i % 1_000 == 0:
                refs.append(weakref.ref(a))
        del a, b
        for _ in range(5_000):  # allocations that trigger the next young collection
            [].append([])
        alive = sum(r() is not None for r in refs)
        assert _policy().collections > 0
        assert gc.get_threshold()[0] == 2_000  # collections that find garbage keep it low
    assert alive <= 1


def test_three_quiet_collections_raise_the_threshold_and_garbage_brings_it_back():
    with collector_for_a_run(young_threshold=2_000, max_young_threshold=1_000_000):
        policy = _policy()
        kept = []
        while policy.quiet < collector.QUIET_COLLECTIONS:
            kept.append([len(kept)])  # alive: nothing for the collector to find
            assert len(kept) < 100_000
        assert gc.get_threshold()[0] == 1_000_000
        n = policy.collections
        for _ in range(400_000):  # fewer than 1M allocations: no collection
            kept.append([])
        assert policy.collections == n
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        del a, b
        gc.collect(0)  # a collection that finds garbage
        assert ref() is None
        assert policy.quiet == 0 and gc.get_threshold()[0] == 2_000


def test_a_run_inside_a_run_keeps_the_outer_settings():
    with collector_for_a_run(young_threshold=3_000):
        outer = gc.get_threshold()
        with collector_for_a_run(young_threshold=9_000):
            assert gc.get_threshold() == outer
            assert len([cb for cb in gc.callbacks if isinstance(cb, collector._AfterCollection)]) == 1
        assert gc.get_threshold() == outer
        assert _policy() is not None


def test_the_local_backend_runs_under_the_policy(monkeypatch):
    import streamdsl as sd
    from streamdsl.backend import get_backend

    seen = []
    real = collector.collector_for_a_run

    def spy(*a, **k):
        seen.append(True)
        return real(*a, **k)
    monkeypatch.setattr("streamdsl.backends.local.collector_for_a_run", spy)
    topo = sd.Topology("t")
    topo.stream("in", key="k", timestamp="ts").to("out")
    res = get_backend("local").run(topo.plan(), {"in": {"type": "memory",
                                                        "records": [{"k": 1, "ts": 5}]}}, {})
    assert seen and [r.key for r in res.outputs["out"]] == [1]


def test_objects_the_caller_froze_stay_frozen():
    mine = [[i] for i in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_for_a_run(young_threshold=2_000):
            results = [[i] for i in range(5_000)]
        assert gc.get_freeze_count() >= frozen + len(results)  # nothing unfrozen
        assert not any(mine[0] is o for o in gc.get_objects())  # still out of reach
    finally:
        gc.unfreeze()


def test_collect_frozen_frees_cycles_that_a_collection_froze_while_they_were_alive():
    """A cycle alive at a collection is frozen with the survivors; once it is garbage only
    ``collect_frozen`` (what the Kafka loop calls every minute) can free it before the run
    ends."""
    with collector_for_a_run():
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        gc.collect()  # a collection while the cycle is alive: frozen
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()  # frozen objects are not scanned
        assert ref() is not None
        collector.collect_frozen()
        assert ref() is None
        assert _policy().collections > 0  # still the run's policy


def test_collect_frozen_does_nothing_outside_a_run():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        collector.collect_frozen()
        assert gc.get_freeze_count() == frozen  # a caller's frozen objects stay frozen
    finally:
        gc.unfreeze()
