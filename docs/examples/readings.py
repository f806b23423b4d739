"""Sensor readings with a bad record in the input (docs/cli.md: dead letters)."""

import streamdsl as sd

INPUTS = {"readings": "data/readings.jsonl"}


def celsius(v):
    return {"sensor": v["sensor"], "celsius": round((float(v["fahrenheit"]) - 32) / 1.8, 1)}


topology = sd.Topology("readings")
(topology.stream("readings", key="sensor", timestamp="ts")
    .map(celsius, name="to_celsius")
    .filter(sd.col("celsius") > 20)
    .to("warm"))
