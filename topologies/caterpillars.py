"""Caterpillars become butterflies: the talk's ``map(coolTransformation).to("butterflies")``.

The smallest useful topology: one source, one stateless ``map``, one sink. Each record is
transformed on its own, keeps its key and timestamp, and nothing is buffered, so every
backend runs it the same way (and Bytewax or Beam can spread it over workers freely).

Run it: ``streamdsl run topologies/caterpillars.py``.
"""

from __future__ import annotations

import os

import streamdsl as sd

HERE = os.path.dirname(os.path.abspath(__file__))

#: Bundled sample data, used by ``streamdsl run`` when no --input is given.
INPUTS = {"caterpillars": os.path.join(HERE, "data", "caterpillars.jsonl")}

WINGS = {"green": "emerald", "yellow": "lemon", "black-and-white": "monarch-orange",
         "orange": "flame", "brown": "oak-leaf"}


def cool_transformation(caterpillar: dict) -> dict:
    """Metamorphosis: a caterpillar value in, a butterfly value out."""
    return {"name": caterpillar["name"], "wings": WINGS.get(caterpillar["color"], "plain"),
            "wingspan_mm": caterpillar["length_mm"] * 2, "legs": 6}


topology = sd.Topology("caterpillars")
(topology.stream("caterpillars", key="name", timestamp="born")
    .map(cool_transformation)
    .to("butterflies"))
