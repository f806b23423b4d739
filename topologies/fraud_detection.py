"""Fraud detection: cards with more than 3 authorization attempts in a 5-minute window.

The talk's ksqlDB query, as a streamdsl topology::

    CREATE TABLE possible_fraud AS
      SELECT card_number, count(*) FROM authorization_attempts
      WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3;

Run it: ``streamdsl run topologies/fraud_detection.py`` (bundled data), or
``python topologies/fraud_detection.py`` which prints the suspected cards.

As in Kafka Streams, ``filter`` on the windowed count table turns windows that do not pass
into tombstones (``value`` None) in ``possible_fraud``; the suspects are the records with a
value.
"""

from __future__ import annotations

import os

import streamdsl as sd

HERE = os.path.dirname(os.path.abspath(__file__))

#: Bundled sample data, used by ``streamdsl run`` when no --input is given.
INPUTS = {"authorization_attempts": os.path.join(HERE, "data", "authorization_attempts.jsonl")}

topology = sd.Topology("fraud-detection")
(topology.stream("authorization_attempts", key="card_number", timestamp="ts")
    .group_by("card_number")
    .window(sd.tumbling(minutes=5, grace=sd.minutes(1)), emit="final")
    .count()
    .filter(lambda count: count > 3)      # HAVING count(*) > 3
    .to_stream()
    .to("possible_fraud"))


def main() -> None:
    """Run on the local backend over the bundled data and print the suspected cards."""
    import datetime as dt

    from streamdsl.backend import get_backend

    result = get_backend("local").run(topology.plan(), INPUTS, {})
    suspects = [r for r in result.outputs["possible_fraud"] if r.value is not None]
    m = result.metrics
    print(f"fraud-detection: {m.records_in} authorization attempts read, "
          f"{len(suspects)} suspected card windows ({m.late} late, {m.dead_lettered} dead-lettered)")
    for r in sorted(suspects, key=lambda r: (r.window, r.key)):
        start = dt.datetime.fromtimestamp(r.window[0] / 1000, dt.timezone.utc).strftime("%H:%M")
        end = dt.datetime.fromtimestamp(r.window[1] / 1000, dt.timezone.utc).strftime("%H:%M")
        print(f"  card {r.key}: {r.value} attempts in window {start}-{end} UTC")


if __name__ == "__main__":
    main()
