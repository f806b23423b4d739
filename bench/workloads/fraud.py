"""fraud: cards with more than 3 authorization attempts in a 5-minute tumbling window.

The topology of ``topologies/fraud_detection.py`` (emit final, grace 1 minute) over 1M
attempts on 10,000 cards, 15 ms apart on average: about 2 attempts per card per window, so
about 14% of the card-windows are suspects (smaller runs use fewer cards, at the same density). Timestamps never decrease, so no record is late in
any implementation. Output: ``(card, window start ms, count)`` for count > 3 (our topology also
writes a tombstone for each window that fails the HAVING filter; they are not part of the
comparison).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any, Iterator

import streamdsl as sd

NAME = "fraud"
SOURCE = "authorization_attempts"
SINK = "possible_fraud"
SIZES = {"n": 1_000_000, "beam_n": 200_000}

CARDS = 10_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, a window boundary
SIZE = 300_000          # 5 minutes
GRACE = 60_000          # 1 minute
THRESHOLD = 3


def cards_for(n: int) -> int:
    """10,000 cards at 1M attempts and above; fewer, 100 attempts each, in smaller runs."""
    return min(CARDS, max(20, n // 100))


def iter_events(n: int, cards: int = CARDS, seed: int = 8) -> Iterator[dict]:
    """``n`` attempts on ``cards`` cards, lazily (the memory workload streams 10M of them).

    Attempts are ``SIZE / (2 * cards)`` ms apart on average (15 ms for 10,000 cards): about 2
    per card per window whatever the number of cards.
    """
    rng = random.Random(seed)
    randrange = rng.randrange
    names = [f"c{i:05d}" for i in range(cards)]
    step = 2 * (SIZE // (2 * cards)) + 1
    ts = T0
    for _ in range(n):
        ts += randrange(step)
        yield {"card_number": names[randrange(cards)], "amount": randrange(100, 50_000) / 100,
               "ts": ts}


def generate(n: int) -> dict[str, list[dict]]:
    return {SOURCE: list(iter_events(n, cards_for(n)))}


def topology() -> sd.Topology:
    topo = sd.Topology("fraud-detection")
    (topo.stream(SOURCE, key="card_number", timestamp="ts")
        .group_by("card_number")
        .window(sd.tumbling(minutes=5, grace=sd.minutes(1)), emit="final")
        .count()
        .filter(lambda count: count > THRESHOLD)
        .to_stream()
        .to(SINK))
    return topo


def canonical(records: list) -> list[tuple]:
    return sorted((r.key, r.window[0], r.value) for r in records if r.value is not None)


def hand_loop(inputs: dict[str, list[dict]]) -> list[tuple]:
    """A dict of open windows (start -> {card: count}), closed as stream time passes
    ``end + grace``, as a careful programmer would write it without a framework."""
    open_windows: dict[int, dict[str, int]] = {}
    out: list[tuple] = []
    stream_time = -1
    next_close = 1 << 62
    late = 0
    span = SIZE + GRACE
    for e in inputs[SOURCE]:
        ts = e["ts"]
        if ts > stream_time:
            stream_time = ts
            if ts >= next_close:
                for start in sorted(open_windows):
                    if start + span > ts:
                        break
                    for card, c in sorted(open_windows.pop(start).items()):
                        if c > THRESHOLD:
                            out.append((card, start, c))
                next_close = min(open_windows, default=1 << 62) + span
        start = ts - ts % SIZE
        if start + span <= stream_time:
            late += 1
            continue
        w = open_windows.get(start)
        if w is None:
            w = open_windows[start] = {}
            if start + span < next_close:
                next_close = start + span
        card = e["card_number"]
        w[card] = w.get(card, 0) + 1
    for start in sorted(open_windows):
        for card, c in sorted(open_windows[start].items()):
            if c > THRESHOLD:
                out.append((card, start, c))
    return out


def _card(e: dict) -> str:
    return e["card_number"]


def bytewax_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from ..engines import BATCH, EPOCH, event_clock, ms_to_dt, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("fraud")
        s = op.input("in", flow, TestingSource(inputs[SOURCE], batch_size=BATCH))
        clock = event_clock(lambda e: ms_to_dt(e["ts"]), timedelta(milliseconds=GRACE))
        windower = win.TumblingWindower(length=timedelta(milliseconds=SIZE), align_to=EPOCH)
        counts = win.count_window("count", s, clock, windower, key=_card)
        suspects = op.filter("having", counts.down, lambda kv: kv[1][1] > THRESHOLD)
        rows = op.map("row", suspects, lambda kv: (kv[0], kv[1][0] * SIZE, kv[1][1]))
        op.output("out", rows, TestingSink(out))
        return flow
    return run_bytewax(build)


def beam_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    import apache_beam as beam
    from apache_beam.transforms.window import FixedWindows, TimestampedValue
    from apache_beam.utils.timestamp import Timestamp

    from ..engines import collect, read_memory, run_beam

    def build(p: Any) -> None:
        (p
         | "Read" >> read_memory(inputs[SOURCE])
         | "Stamp" >> beam.Map(lambda e: TimestampedValue((e["card_number"], 1),
                                                          Timestamp(micros=e["ts"] * 1000)))
         | "Window" >> beam.WindowInto(FixedWindows(SIZE // 1000))
         | "Count" >> beam.CombinePerKey(sum)
         | "Having" >> beam.Filter(lambda kv: kv[1] > THRESHOLD)
         | "Row" >> beam.Map(lambda kv, w=beam.DoFn.WindowParam:
                             (kv[0], w.start.micros // 1000, kv[1]))
         | "Collect" >> beam.Map(collect))
    return run_beam(build)
