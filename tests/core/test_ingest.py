"""``make_ingest_items`` (the runs of in-memory items every batched run ingests) equals the
definition: ``make_ingest`` of each item's ``to_event``, for every kind of source declaration
and item (its call-free loops for a key field and for a keyless source included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import streamdsl as sd
from streamdsl.runtime.ingest import BadRecord, make_ingest, make_ingest_items, to_event

KEYS = {"field": "k", "none": None, "callable": lambda v: v["k"]}
TIMESTAMPS = {"field": "ts", "none": None}

items = st.one_of(
    st.builds(lambda k, ts, v: {"k": k, "ts": ts, "v": v},
              st.sampled_from(["x", "y", 3, None]), st.integers(0, 50), st.integers(0, 9)),
    st.builds(lambda ts: {"ts": ts, "v": 1}, st.integers(0, 9)),   # no key field
    st.just({"k": "x"}),                                          # no timestamp field
    st.just({"k": "y", "ts": -4}),                                # negative timestamp
    st.just({"k": "y", "ts": 2.5}),                               # float timestamp
    st.just({"k": "y", "ts": True}),                              # a bool is not a time
    st.just({"k": "x", "ts": "1970-01-01T00:00:00.009Z"}),        # ISO timestamp
    st.just({"key": "a", "value": {"k": "x", "ts": 7}, "timestamp": 7}),  # an envelope
    st.just({"value": {"k": "x", "ts": 7}, "ts": 3}),             # not an envelope
    st.just(("key", {"k": "z", "ts": 3}, 3)),                     # (key, value, timestamp)
    st.just(("key", None, 4)),                                    # a tombstone
    st.just(5),                                                   # not a dict
)


@given(key=st.sampled_from(sorted(KEYS)), ts=st.sampled_from(sorted(TIMESTAMPS)),
       table=st.booleans(), batch=st.lists(items, max_size=20), pos0=st.integers(0, 5))
def test_ingest_items_equals_ingest_of_each_event(key, ts, table, batch, pos0) -> None:
    topo = sd.Topology("t")
    declare = topo.table if table else topo.stream
    declare("in", key=KEYS[key], timestamp=TIMESTAMPS[ts])
    source = topo.plan().node("source-in")
    ingest = make_ingest(source)
    expected, expected_bad = [], []
    for i, item in enumerate(batch, pos0):
        ev = to_event("in", item, i)
        try:
            r = ingest(ev)
            expected.append((r.key, r.value, r.ts, r.window, r.origin))
        except BadRecord as e:
            expected_bad.append((i, str(e)))
    got_bad = []
    got = make_ingest_items(source)(batch, pos0, lambda ev, why: got_bad.append((ev.position, why)))
    assert [(r.key, r.value, r.ts, r.window, r.origin) for r in got] == expected
    assert got_bad == expected_bad
