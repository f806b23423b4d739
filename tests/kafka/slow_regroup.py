"""The topology of the repartition tests: attempts keyed (in Kafka) by their terminal, counted
per card in 5-minute windows, every update emitted. ``group_by("card_number")`` changes the key,
so the counts are a second sub-topology reading a repartition topic, as in Kafka Streams (the
optimizer keeps this repartition: the Kafka key is not the card). A millisecond per record
before the repartition and half one after it, so that a run lasts long enough to be joined or
killed part-way, and a kill can land while the counting works on records the upstream tasks
wrote since their last commit. The grace (a day) keeps every record on time however the records of
several upstream tasks interleave in a repartition partition."""

import time

import streamdsl as sd

topology = sd.Topology("slow-regroup")
(topology.stream("attempts", timestamp="ts")
    .peek(lambda key, value: time.sleep(0.001))
    .group_by("card_number")
    .window(sd.tumbling(minutes=5, grace=sd.hours(24)))
    .count()
    .to_stream()
    .peek(lambda key, value: time.sleep(0.0005))
    .to("counts"))

WINDOW = 300_000


def records(n: int, cards: int = 40, terminals: int = 7) -> list[dict]:
    return [{"card_number": f"c{i % cards}", "terminal": f"t{i % terminals}", "ts": 1_000 * (i + 1)}
            for i in range(n)]


def expected(recs: list[dict]) -> list[tuple]:
    """Worked out from the rules: each record adds one to its card's window and the update
    carries the largest timestamp counted so far (records of a card come in time order)."""
    counts: dict[tuple, int] = {}
    out = []
    for r in sorted(recs, key=lambda r: r["ts"]):
        start = r["ts"] // WINDOW * WINDOW
        k = (r["card_number"], start)
        counts[k] = counts.get(k, 0) + 1
        out.append((r["card_number"], counts[k], r["ts"], (start, start + WINDOW)))
    return out
