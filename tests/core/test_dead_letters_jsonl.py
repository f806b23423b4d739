"""A JSON-lines file with malformed lines: good records all processed, each bad one in the
dead-letter output with its line number and reason."""

from __future__ import annotations

import orjson
import pytest

import streamdsl as sd
from streamdsl.backend import get_backend
from streamdsl.errors import RecordError

LINES = [
    b'{"card": "a", "amount": 10, "ts": 1000}',
    b'{"card": "a", "amount": oops, "ts": 2000}',     # line 2: invalid JSON
    b'{"card": "b", "amount": 5}',                    # line 3: no timestamp field
    b'',                                              # line 4: blank, skipped
    b'{"amount": 7, "ts": 3000}',                     # line 5: no key field
    b'{"card": "b", "amount": 0, "ts": 4000}',        # line 6: map divides by zero
    b'{"card": "a", "amount": 20, "ts": 5000}',
    b'{"card": "b", "amount": 2, "ts": "not a time"}',  # line 8: bad timestamp
    b'{"card": "b", "amount": 1, "ts": 6000}',
]


def _topology(on_error: str) -> sd.Topology:
    topo = sd.Topology("dl", on_error=on_error)
    (topo.stream("payments", key="card", timestamp="ts")
        .map(lambda v: {**v, "inverse": 1 / v["amount"]}, name="invert")
        .group_by_key()
        .agg(n=sd.count(), total=sd.sum("amount"))
        .to_stream()
        .to("totals"))
    return topo


@pytest.fixture
def payments(tmp_path):
    p = tmp_path / "payments.jsonl"
    p.write_bytes(b"\n".join(LINES) + b"\n")
    return p


def test_bad_lines_go_to_dead_letters_with_line_and_reason(payments, tmp_path):
    out = tmp_path / "totals.jsonl"
    dlq = tmp_path / "dead.jsonl"
    res = get_backend("local").run(_topology("dead-letter").plan(), {"payments": str(payments)},
                                   {"totals": str(out)}, dead_letter=str(dlq))
    totals = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["key"], r["value"]) for r in totals] == [
        ("a", {"n": 1, "total": 10}),
        ("a", {"n": 2, "total": 30}),
        ("b", {"n": 1, "total": 1}),
    ]
    dead = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    by_line = {d["position"].rsplit(":", 1)[1]: d for d in dead}
    assert sorted(by_line, key=int) == ["2", "3", "5", "6", "8"]
    assert by_line["2"]["reason"].startswith("invalid JSON")
    assert by_line["3"]["reason"] == "missing timestamp field 'ts'"
    assert by_line["5"]["reason"] == "missing key field 'card'"
    assert by_line["6"]["operator"] == "invert"
    assert "ZeroDivisionError" in by_line["6"]["reason"]
    assert by_line["8"]["reason"].startswith("bad timestamp")
    assert all(d["position"].startswith(str(payments)) for d in dead)
    m = res.metrics
    assert (m.records_in, m.dead_lettered, m.records_out) == (8, 5, 3)


def test_fail_mode_stops_at_the_first_bad_record_naming_it(payments, tmp_path):
    with pytest.raises(RecordError) as e:
        get_backend("local").run(_topology("fail").plan(), {"payments": str(payments)},
                                 {"totals": str(tmp_path / "t.jsonl")})
    msg = str(e.value)
    assert f"{payments}:2" in msg and "invalid JSON" in msg
    assert "on_error='dead-letter'" in msg


def test_csv_rows_with_wrong_field_count_are_dead_lettered(tmp_path):
    p = tmp_path / "in.csv"
    p.write_text("card,amount,ts\na,1,1000\nb,2\nc,3,3000\n")
    topo = sd.Topology("csv", on_error="dead-letter")
    topo.stream("in", key="card", timestamp="ts").to("out")
    res = get_backend("local").run(topo.plan(), {"in": str(p)}, {})
    assert [(r.key, r.value["amount"], r.timestamp) for r in res.outputs["out"]] == [
        ("a", 1, 1000), ("c", 3, 3000)]
    [dl] = res.dead_letters
    assert dl.position == f"{p}:3" and dl.reason == "expected 3 fields, got 2"
