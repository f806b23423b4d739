"""What crosses between Bytewax processes: messages pickle in columns, once per item."""

from __future__ import annotations

import pickle

import pytest

from hypothesis import given, strategies as st

from streamdsl.backends.bytewax import messages
from streamdsl.backends.bytewax.messages import Message, OutputBatch
from streamdsl.runtime.records import OutputRecord, Record

keys = st.one_of(st.none(), st.text(max_size=4), st.integers())
values = st.one_of(st.none(), st.integers(), st.dictionaries(st.text(max_size=3), st.integers(),
                                                              max_size=2))
records = st.builds(Record, keys, values, st.integers(0, 10**6),
                    st.one_of(st.none(), st.tuples(st.integers(0, 9), st.integers(10, 19))),
                    st.one_of(st.none(), st.tuples(st.text(max_size=3), st.integers())))


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for (pa, xa), (pb, xb) in zip(a, b):
        assert pa == pb
        if type(xa) is tuple:
            assert xa[0] == xb[0]
            xa, xb = xa[1], xb[1]
        assert (xa.key, xa.value, xa.ts, xa.window, xa.origin) == \
            (xb.key, xb.value, xb.ts, xb.window, xb.origin)


@given(st.lists(records, max_size=20), st.booleans())
def test_a_message_round_trips_in_columns(recs: list, ported: bool) -> None:
    items = [((i, 0), (1, r) if ported else r) for i, r in enumerate(recs)]
    msg = Message("op:count", 2, (0, 1), 7, 99, items, None, None)
    back = pickle.loads(pickle.dumps(msg))
    assert back[:5] == msg[:5] and back.metrics is None and back.report is None
    _same(back.items, items)


def test_pickling_the_same_message_twice_packs_it_once(monkeypatch) -> None:
    # Bytewax pickles an item for its size, then again to write it: the second time reuses
    # the first's bytes
    calls = []
    real = messages._pack
    monkeypatch.setattr(messages, "_pack", lambda items: calls.append(1) or real(items))
    msg = Message("op:count", 0, (0, 0), 0, 5, [((0, 0), Record("k", {"a": 1}, 3))], None, None)
    first = pickle.dumps(msg)
    assert pickle.dumps(msg) == first
    assert len(calls) == 1
    other = Message("op:count", 0, (0, 0), 1, 6, [((1, 0), Record("k", {"a": 2}, 4))], None, None)
    pickle.dumps(other)
    assert len(calls) == 2
    _same(pickle.loads(first).items, msg.items)


def test_an_output_batch_round_trips() -> None:
    batch = OutputBatch([OutputRecord("a", 1, 5, (0, 10)), OutputRecord(None, None, 6)])
    once = pickle.dumps(batch)
    assert pickle.dumps(batch) == once
    back = pickle.loads(once)
    assert type(back) is OutputBatch and list(back) == list(batch)


@given(st.lists(records, max_size=12))
def test_encoded_lines_are_what_the_jsonl_writer_writes(recs: list) -> None:
    # (integers beyond 64 bits: both raise, and the stage leaves such a record to the writer)
    from streamdsl.connectors.jsonl import dumps_output, encode_records
    try:
        expected = b"".join(dumps_output(OutputRecord(r.key, r.value, r.ts, r.window)) + b"\n"
                            for r in recs)
    except TypeError:
        with pytest.raises(TypeError):
            encode_records(recs)
        return
    assert encode_records(recs) == expected


@given(records)
def test_one_encoded_record_is_its_line(rec: Record) -> None:
    from streamdsl.connectors.jsonl import encode_record, encode_records
    try:
        line = encode_records([rec])
    except TypeError:
        with pytest.raises(TypeError):
            encode_record(rec)
        return
    assert encode_record(rec) == line
