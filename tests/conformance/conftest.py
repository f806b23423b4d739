"""Shared fixtures and helpers for the streamdsl conformance suite.

The conformance suite checks the Kafka Streams semantics written down in DESIGN.md /
KAFKA_STREAMS_RULES.md on every backend.  Every expected record in the tests is worked
out by hand from those rules, never copied from an implementation.

* ``backend``: parametrised over ``BACKENDS`` (override with the environment variable
  ``STREAMDSL_BACKENDS=local,bytewax``).
* ``run(topo, backend, inputs, sink, flush=True)``: sends ``inputs`` (a list of
  ``(source, key, value, ts)``) in order through ``streamdsl.testing.TestDriver`` (each send
  processed at once, in send order) and returns the sink's records as
  ``(key, value, timestamp, window)`` tuples.
* ``run_inputs(topo, backend, inputs, sink)``: the same inputs as in-memory sources of
  ``Backend.run`` (what ``streamdsl run`` does): each source keeps its records' order, and the
  sources are taken in timestamp-synchronized order.
* ``assert_changes``: per-key sequence comparison (emit="changes", joins, tables).
* ``assert_final``: multiset comparison (emit="final").
* ``assert_exact``: exact sequence, only where the semantics fix the global order.

Test modules import the helpers with ``from conftest import ...``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import pytest

#: Backends every conformance test runs on, each at 1 partition and (``-p3``) at 3.
BASE_BACKENDS = ["local", "local-batched", "bytewax", "bytewax-2w", "bytewax-2p", "beam",
                 "beam-mp"]
BACKENDS = [b for base in BASE_BACKENDS for b in (base, f"{base}-p3")]


def selected_backends() -> list[str]:
    env = os.environ.get("STREAMDSL_BACKENDS", "").strip()
    if env:
        return [b.strip() for b in env.split(",") if b.strip()]
    return list(BACKENDS)


#: Extra parametrisations: id -> (backend name, options).  For these ids the fixture gives
#: a backend instance built with the options (TestDriver accepts a name or an instance).
VARIANTS = {
    # TestDriver sessions replayed through LocalBackend.run's batched path (feed_items:
    # batches, columnar ingest, fused tails), the path `streamdsl run` takes
    "local-batched": ("local", {"batched": True}),
    "bytewax-2w": ("bytewax", {"workers": 2}),      # 2 worker threads in one process
    "bytewax-2p": ("bytewax", {"processes": 2}),    # 2 processes (STREAMDSL_BACKENDS=bytewax-2p)
    # Beam's DirectRunner with 2 worker processes (pickled DoFns, no shared memory)
    "beam-mp": ("beam", {"direct_running_mode": "multi_processing", "direct_num_workers": 2}),
}

#: Variants too slow for every case (each Beam multi_processing run starts 2 worker processes,
#: ~3 s): by default they run only the tests named here; naming the variant in
#: STREAMDSL_BACKENDS runs every case on it.
VARIANT_CASES = {
    # a cluster of 2 forked processes (~0.1 s a run): windowed counts and a join of each kind
    "bytewax-2p": (
        "test_tumbling_count_emit_changes", "test_tumbling_count_emit_final",
        "test_stream_time_is_shared_across_keys",
        "test_emit_final_windows_closing_together_ordered_by_end_then_key",
        "test_ss_inner_join_matches_within_window",
        "test_ss_left_join_unmatched_left_waits_for_window_and_grace",
        "test_ss_outer_join_unmatched_both_sides_at_end_of_input",
        "test_ss_left_join_expired_records_emitted_in_timestamp_order_before_trigger_results",
        "test_st_inner_join_sees_table_at_processing_time",
        "test_st_join_uses_timestamp_synchronized_order",
        "test_st_left_join_table_tombstone_gives_none_partner",
        "test_tt_outer_join",
    ),
    "beam-mp": (
        "test_tumbling_count_emit_changes", "test_tumbling_count_emit_final",
        "test_ss_inner_join_matches_within_window",
        "test_ss_left_join_unmatched_left_emitted_at_end_of_input",
        "test_ss_outer_join_unmatched_both_sides_at_end_of_input",
        "test_st_join_uses_timestamp_synchronized_order",
        "test_st_left_join_table_tombstone_gives_none_partner",
        "test_tt_outer_join",
    ),
}


def pytest_collection_modifyitems(config, items):
    if os.environ.get("STREAMDSL_BACKENDS", "").strip():
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("backend") if callspec is not None else None
        if isinstance(variant, str) and variant.endswith("-p3"):
            variant = variant[:-3]
        cases = VARIANT_CASES.get(variant) if isinstance(variant, str) else None
        (drop if cases is not None and item.originalname not in cases else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def make_backend(param: str):
    """The backend a parametrisation id names: ``<name or variant>[-p<N>]``."""
    from streamdsl.backend import get_backend

    base, _, parts = param.rpartition("-p")
    if not base or not parts.isdigit():
        base, parts = param, ""
    name, options = VARIANTS.get(base, (base, {}))
    if parts:
        options = {**options, "partitions": int(parts)}
    if not options:
        return name
    return type(get_backend(name))(**options)


def partitions_of(backend) -> int:
    """The partitions a conformance backend runs with."""
    return getattr(backend, "partitions", None) or 1 if not isinstance(backend, str) else 1


@pytest.fixture(params=selected_backends())
def backend(request):
    return make_backend(request.param)


# --------------------------------------------------------------------------- records

Rec = tuple  # (key, value, timestamp, window)


def _norm_window(w: Any):
    if w is None:
        return None
    if isinstance(w, tuple):
        return w
    if hasattr(w, "start") and hasattr(w, "end"):
        return (w.start, w.end)
    return tuple(w)


def as_tuples(records: Iterable[Any]) -> list[Rec]:
    """OutputRecord objects -> (key, value, timestamp, window) tuples."""
    return [(r.key, r.value, r.timestamp, _norm_window(r.window)) for r in records]


def send_all(driver, inputs) -> None:
    """Send ``(source, key, value, ts)`` tuples in the given order."""
    for source, key, value, ts in inputs:
        driver.send(source, key=key, value=value, timestamp=ts)


def out(driver, sink: str, flush: bool = False) -> list[Rec]:
    """Records emitted so far on ``sink`` (flush=False keeps the input open)."""
    return as_tuples(driver.output(sink, flush=flush))


def run(topo, backend: str, inputs, sink: str, flush: bool = True) -> list[Rec]:
    """Run ``inputs`` through ``topo`` and return what ``sink`` received."""
    from streamdsl.testing import TestDriver

    with TestDriver(topo, backend=backend) as driver:
        send_all(driver, inputs)
        return as_tuples(driver.output(sink, flush=flush))


def run_inputs(topo, backend, inputs, sink: str) -> list[Rec]:
    """Run ``inputs`` (``(source, key, value, ts)``) as in-memory sources of ``Backend.run``:
    each source's records in the order listed, the sources merged by timestamp."""
    from streamdsl.backend import get_backend
    from streamdsl.optimize import optimize

    per_topic: dict[str, list] = {}
    for source, key, value, ts in inputs:
        per_topic.setdefault(source, []).append((key, value, ts))
    be = get_backend(backend)
    result = be.run(optimize(topo.plan()),
                    {t: {"type": "memory", "records": recs} for t, recs in per_topic.items()}, {})
    return as_tuples(result.outputs[sink])


@dataclass
class RunResult:
    outputs: dict[str, list[Rec]] = field(default_factory=dict)
    metrics: Any = None
    dead_letters: list[Any] = field(default_factory=list)


def run_full(topo, backend: str, inputs, sinks, flush: bool = True) -> RunResult:
    """Like ``run`` but for several sinks, also capturing metrics and dead letters."""
    from streamdsl.testing import TestDriver

    if isinstance(sinks, str):
        sinks = [sinks]
    result = RunResult()
    with TestDriver(topo, backend=backend) as driver:
        send_all(driver, inputs)
        for sink in sinks:
            result.outputs[sink] = as_tuples(driver.output(sink, flush=flush))
        result.metrics = driver.metrics()
        result.dead_letters = list(driver.dead_letters())
    return result


# --------------------------------------------------------------------------- comparisons

def _hashable(k):
    try:
        hash(k)
        return k
    except TypeError:
        return ("<unhashable>", repr(k))


def by_key(records: Iterable[Rec]) -> dict:
    """Group records by key, keeping their order within each key."""
    grouped: dict = {}
    for r in records:
        grouped.setdefault(_hashable(r[0]), []).append(tuple(r))
    return grouped


def assert_changes(actual: list[Rec], expected: list[Rec]) -> None:
    """Same sequence of records per key (the emit="changes" contract)."""
    a, e = by_key(actual), by_key(expected)
    assert a == e, (
        "per-key sequences differ\n"
        f"  actual:   {a!r}\n"
        f"  expected: {e!r}"
    )


def assert_final(actual: list[Rec], expected: list[Rec]) -> None:
    """Same multiset of records (the emit="final" contract)."""
    remaining = [tuple(r) for r in actual]
    missing = []
    for rec in expected:
        rec = tuple(rec)
        for i, cand in enumerate(remaining):
            if cand == rec:
                del remaining[i]
                break
        else:
            missing.append(rec)
    assert not missing and not remaining, (
        "multisets differ\n"
        f"  missing (expected, not produced): {sorted(missing, key=repr)!r}\n"
        f"  unexpected (produced, not expected): {sorted(remaining, key=repr)!r}\n"
        f"  actual (sorted):   {sorted(map(tuple, actual), key=repr)!r}\n"
        f"  expected (sorted): {sorted(map(tuple, expected), key=repr)!r}"
    )


def assert_exact(actual: list[Rec], expected: list[Rec]) -> None:
    """Exactly this sequence (only where the semantics fix the global order)."""
    assert [tuple(r) for r in actual] == [tuple(r) for r in expected]
