"""Word count, the classic: lines in, a running count per word out.

Each line is split into words (``flat_map``), the words are grouped by themselves (a re-key
and a repartition, so that every occurrence of a word meets the same counter) and counted.
The count is a table; ``to_stream()`` writes its changelog, so ``word_counts`` receives every
update (``the`` -> 1, 2, 3 ...), as Kafka Streams' WordCountDemo does with caching off.

Run it: ``streamdsl run topologies/word_count.py``.
"""

from __future__ import annotations

import os

import streamdsl as sd

HERE = os.path.dirname(os.path.abspath(__file__))

#: Bundled sample data, used by ``streamdsl run`` when no --input is given.
INPUTS = {"lines": os.path.join(HERE, "data", "lines.jsonl")}


def words(line: dict) -> list[str]:
    return line["text"].lower().split()


def word(w: str) -> str:
    return w


topology = sd.Topology("word-count")
(topology.stream("lines", timestamp="ts")
    .flat_map(words)
    .group_by(word)
    .count()
    .to_stream()
    .to("word_counts"))
