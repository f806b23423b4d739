"""session: session windows (30-minute inactivity gap) counting page views per user.

200k views by 2,000 users, 0.6 s apart on average (about 20 minutes between two views of one
user), so sessions are a few views long. Emit final. Timestamps are even and the gap is 30
minutes + 1 ms (odd): no two views are exactly one gap apart, so the engines' different
boundary conventions (Beam merges sessions strictly closer than the gap; Kafka Streams and
Bytewax inclusively) never matter. Output: ``(user, first ts, last ts, views)``.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import streamdsl as sd

NAME = "session"
SOURCE = "page_views"
SINK = "sessions"
SIZES = {"n": 200_000, "beam_n": 200_000}

T0 = 1_704_067_200_000
USERS = 2_000
GAP = 30 * 60_000 + 1


def generate(n: int) -> dict[str, list[dict]]:
    """``min(2000, n / 100)`` users (at least 10), each viewing a page every 20 minutes on
    average."""
    rng = random.Random(19)
    randrange = rng.randrange
    count = min(USERS, max(10, n // 100))
    users = [f"u{i:04d}" for i in range(count)]
    mean_step = 1_200_000 // count  # ms between two views, on average; always even
    ts = T0
    out = []
    for _ in range(n):
        ts += 2 * randrange(mean_step + 1)
        out.append({"user": users[randrange(count)], "page": f"/p/{randrange(200)}", "ts": ts})
    return {SOURCE: out}


def topology() -> sd.Topology:
    topo = sd.Topology("sessions")
    (topo.stream(SOURCE, key="user", timestamp="ts")
        .group_by_key()
        .window(sd.session(GAP), emit="final")
        .count()
        .to_stream()
        .to(SINK))
    return topo


def canonical(records: list) -> list[tuple]:
    return sorted((r.key, r.window[0], r.window[1], r.value) for r in records
                  if r.value is not None)


def hand_loop(inputs: dict[str, list[dict]]) -> list[tuple]:
    """One open session per user (input in time order), closed by the user's next view
    after the gap or at the end."""
    open_: dict[str, list] = {}
    out = []
    for e in inputs[SOURCE]:
        user, ts = e["user"], e["ts"]
        s = open_.get(user)
        if s is not None and ts - s[1] <= GAP:
            s[1] = ts
            s[2] += 1
        else:
            if s is not None:
                out.append((user, s[0], s[1], s[2]))
            open_[user] = [ts, ts, 1]
    for user, s in open_.items():
        out.append((user, s[0], s[1], s[2]))
    return out


def _fold(acc: tuple, e: dict) -> tuple:
    n, first, last = acc
    ts = e["ts"]
    return (n + 1, ts if first is None or ts < first else first,
            ts if last is None or ts > last else last)


def _merge(a: tuple, b: tuple) -> tuple:
    return (a[0] + b[0], min(a[1], b[1]), max(a[2], b[2]))


def bytewax_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from ..engines import BATCH, event_clock, ms_to_dt, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("session")
        s = op.input("in", flow, TestingSource(inputs[SOURCE], batch_size=BATCH))
        keyed = op.key_on("user", s, lambda e: e["user"])
        clock = event_clock(lambda e: ms_to_dt(e["ts"]), timedelta(0))
        windower = win.SessionWindower(gap=timedelta(milliseconds=GAP))
        sessions = win.fold_window("views", keyed, clock, windower, lambda: (0, None, None),
                                   _fold, _merge)
        rows = op.map("row", sessions.down, lambda kv: (kv[0], kv[1][1][1], kv[1][1][2],
                                                        kv[1][1][0]))
        op.output("out", rows, TestingSink(out))
        return flow
    return run_bytewax(build)


def beam_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    import apache_beam as beam
    from apache_beam.transforms.window import Sessions, TimestampedValue
    from apache_beam.utils.timestamp import Duration, Timestamp

    from ..engines import collect, read_memory, run_beam

    def build(p: Any) -> None:
        (p | "Read" >> read_memory(inputs[SOURCE])
         | "Stamp" >> beam.Map(lambda e: TimestampedValue((e["user"], 1),
                                                          Timestamp(micros=e["ts"] * 1000)))
         | "Window" >> beam.WindowInto(Sessions(Duration(micros=GAP * 1000)))
         | "Count" >> beam.CombinePerKey(sum)
         | "Row" >> beam.Map(lambda kv, w=beam.DoFn.WindowParam:
                             (kv[0], w.start.micros // 1000, w.end.micros // 1000 - GAP, kv[1]))
         | "Collect" >> beam.Map(collect))
    return run_beam(build)
