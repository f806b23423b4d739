"""The topology of the fault and kill tests: per-card counts in 5-minute windows, every update
emitted (so each input record has its own output), a millisecond per record so that a run lasts
long enough to be cut off or killed part-way (``SLOW_COUNTS_MS`` in the environment: another
delay per record, for an instance that must still be running when a slower one joins)."""

import os
import time

import streamdsl as sd

topology = sd.Topology("slow-counts")
(topology.stream("attempts", key="card_number", timestamp="ts")
    .peek(lambda key, value, _delay=float(os.environ.get("SLOW_COUNTS_MS", "1")) / 1000:
          time.sleep(_delay))
    .group_by("card_number")
    .window(sd.tumbling(minutes=5))
    .count()
    .to_stream()
    .to("counts"))


def records(n: int, cards: int = 40) -> list[dict]:
    return [{"card_number": f"c{i % cards}", "ts": 1_000 * (i + 1)} for i in range(n)]
