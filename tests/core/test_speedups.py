"""The compiled kernel (``streamdsl._speedups``, docs/performance.md "Compiled kernel") gives
exactly what its pure Python originals give on the same inputs: the stream-stream join loop
(through every entry point, with failures, late records and a snapshot/restore), the
in-memory ingest loops and Kafka's murmur2. ``make setup`` builds the extension: a checkout
where it is not built fails here (a set-up bug, not a skip). The rest of the suite runs on
whichever code is in use (``STREAMDSL_PURE=1`` for the pure one)."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl import _speedups as speedups  # the compiled module itself
from streamdsl.runtime import partitioning
from streamdsl.runtime.ingest import make_ingest_items
from streamdsl.runtime.joins import StreamStreamJoinProcessor

from test_ingest import KEYS, TIMESTAMPS, items
from test_join_batches import STREAM_STREAM, _drive, _records, cut_points, raw_items


def _both(fn):
    """``fn()`` with the join's compiled loop, then with its pure Python loop."""
    cls = StreamStreamJoinProcessor
    saved = cls._run
    try:
        cls._run = speedups.stream_stream_join_run
        fast = fn()
        cls._run = cls._run_pure
        slow = fn()
    finally:
        cls._run = saved
    return fast, slow


@settings(max_examples=60, deadline=None)
@given(raw=raw_items, which=st.integers(min_value=0, max_value=len(STREAM_STREAM) - 1),
       how=st.sampled_from(["process", "mixed", "batch"]), cuts=cut_points,
       snap_at=st.integers(min_value=0, max_value=40))
def test_compiled_stream_stream_join_equals_pure(raw, which, how, cuts, snap_at) -> None:
    items_ = _records(raw)
    node = STREAM_STREAM[which]
    snap_at = min(snap_at, len(items_))
    fast, slow = _both(lambda: _drive(node, items_, how, cuts, snap_at))
    assert fast == slow


@given(key=st.sampled_from(sorted(KEYS)), ts=st.sampled_from(sorted(TIMESTAMPS)),
       table=st.booleans(), batch=st.lists(items, max_size=20), pos0=st.integers(0, 5))
def test_compiled_ingest_equals_pure(key, ts, table, batch, pos0) -> None:
    topo = sd.Topology("t")
    (topo.table if table else topo.stream)("in", key=KEYS[key], timestamp=TIMESTAMPS[ts])
    source = topo.plan().node("source-in")

    def run(ingest):
        bad = []
        recs = ingest(batch, pos0, lambda ev, why: bad.append((ev.position, why)))
        return [(r.key, r.value, r.ts, r.window, r.origin) for r in recs], bad
    assert run(make_ingest_items(source)) == run(make_ingest_items(source, pure=True))


@given(data=st.binary(max_size=40))
def test_compiled_murmur2_equals_pure(data) -> None:
    assert speedups.murmur2(data) == partitioning._murmur2_pure(data)
    assert speedups.murmur2(bytearray(data)) == partitioning._murmur2_pure(data)


def _in_use(pure: str) -> list[str]:
    """What a fresh interpreter with ``STREAMDSL_PURE=pure`` runs: its status, whether the
    join loop and murmur2 are the pure Python ones."""
    code = ("from streamdsl import _accel; from streamdsl.runtime import joins, partitioning;"
            "print(_accel.status(), joins.StreamStreamJoinProcessor._run is "
            "joins.StreamStreamJoinProcessor._run_pure, partitioning.murmur2 is "
            "partitioning._murmur2_pure)")
    env = {**os.environ, "STREAMDSL_PURE": pure}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_compiled_kernel_is_in_use() -> None:
    assert _in_use("") == ["compiled", "False", "False"]


def test_streamdsl_pure_forces_the_pure_python_code() -> None:
    assert _in_use("1") == ["pure", "Python", "(STREAMDSL_PURE=1)", "True", "True"]
