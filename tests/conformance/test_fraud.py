"""The fraud-detection example from DESIGN.md, end to end.

Windowed count (tumbling 5 min, grace 1 min, emit final) -> KTable.filter(count > 3) ->
to_stream(). As in Kafka Streams, a window whose final count fails the filter is forwarded
as a tombstone (value None) with that window and the aggregate's timestamp (max input ts).
The cards c1, c3 and c4 share one task at 1 and at 3 partitions (the same partition of 3),
so one card's attempts close another's windows, as in one Kafka Streams task.
"""
import streamdsl as sd
from streamdsl.testing import TestDriver

from conftest import assert_exact, assert_final, out, send_all

W1 = (0, 300_000)          # [0, 5 min)
W2 = (300_000, 600_000)    # [5 min, 10 min)


def fraud_topology():
    topo = sd.Topology("fraud-detection")
    attempts = topo.stream("authorization_attempts", key="card_number", timestamp="ts")
    (attempts
        .group_by("card_number")
        .window(sd.tumbling(minutes=5, grace=sd.minutes(1)), emit="final")
        .count()
        .filter(lambda count: count > 3)      # HAVING
        .to_stream()
        .to("possible_fraud"))
    return topo


def attempt(card, ts, amount=10):
    return ("authorization_attempts", card,
            {"card_number": card, "ts": ts, "amount": amount}, ts)


BEFORE_CLOSE = [
    attempt("c1", 10_000),
    attempt("c4", 30_000),
    attempt("c1", 60_000),
    attempt("c1", 120_000),
    attempt("c1", 200_000),      # c1: 4 attempts in W1
    attempt("c4", 250_000),
    attempt("c1", 310_000),      # W2; stream time 310s < 300s + 60s: W1 still open
    attempt("c4", 290_000),      # in grace (300s > 310s - 60s): c4 has 3 in W1
    attempt("c3", 320_000),
    attempt("c3", 330_000),
    attempt("c3", 340_000),
    attempt("c3", 350_000),      # c3: 4 attempts in W2
]
CLOSE_W1 = [attempt("c4", 400_000)]   # stream time 400s >= 360s: W1 closes
LATE = [attempt("c1", 100_000)]       # W1 end 300s <= 400s - 60s: dropped


def test_fraud_detection_final_results_with_tombstones(backend):
    """Cards with more than 3 attempts in a window are reported; every other window's final
    count is forwarded as a tombstone; the late attempt is dropped and counted."""
    with TestDriver(fraud_topology(), backend=backend) as d:
        send_all(d, BEFORE_CLOSE + CLOSE_W1 + LATE)
        got = out(d, "possible_fraud", flush=True)
        metrics = d.metrics()
    assert_final(got, [
        ("c1", 4, 200_000, W1),
        ("c4", None, 290_000, W1),      # count 3 fails `> 3`; ts max(30s, 250s, 290s)
        ("c1", None, 310_000, W2),      # count 1
        ("c4", None, 400_000, W2),      # count 1
        ("c3", 4, 350_000, W2),
    ])
    assert metrics.late == 1


def test_fraud_detection_window_results_appear_when_window_closes(backend):
    """Nothing is emitted before stream time reaches W1.end + grace (360s); then W1's results
    come out together, ordered by key; W2's only at end of input."""
    with TestDriver(fraud_topology(), backend=backend) as d:
        send_all(d, BEFORE_CLOSE)
        assert out(d, "possible_fraud") == []
        send_all(d, CLOSE_W1)
        assert_exact(out(d, "possible_fraud"), [
            ("c1", 4, 200_000, W1),
            ("c4", None, 290_000, W1),
        ])
        send_all(d, LATE)
        assert_exact(out(d, "possible_fraud"), [
            ("c1", 4, 200_000, W1),
            ("c4", None, 290_000, W1),
        ])
