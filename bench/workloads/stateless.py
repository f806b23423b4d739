"""stateless: a 5-step filter/map chain over 1M payments.

filter amount > 5 -> add gross = amount * 1.19 -> drop country XX -> project to
{id, user, gross rounded to cents} -> keep gross < 400. Filters are DSL expressions (what the
optimizer can see inside), maps plain lambdas. About half of the records pass.
Output: ``(id, user, gross)``.
"""

from __future__ import annotations

import random
from typing import Any

import streamdsl as sd

NAME = "stateless"
SOURCE = "payments"
SINK = "checked_payments"
SIZES = {"n": 1_000_000, "beam_n": 200_000}

T0 = 1_704_067_200_000
COUNTRIES = ("DE", "FR", "US", "GB", "XX")


def generate(n: int) -> dict[str, list[dict]]:
    rng = random.Random(17)
    randrange = rng.randrange
    ts = T0
    out = []
    for i in range(n):
        ts += randrange(11)
        out.append({"id": i, "user": f"u{randrange(50_000):05d}", "amount": randrange(0, 50_000) / 100,
                    "country": COUNTRIES[randrange(5)], "ts": ts})
    return {SOURCE: out}


def _gross(v: dict) -> dict:
    return {**v, "gross": v["amount"] * 1.19}


def _project(v: dict) -> dict:
    return {"id": v["id"], "user": v["user"], "gross": round(v["gross"], 2)}


def topology() -> sd.Topology:
    topo = sd.Topology("stateless-chain")
    (topo.stream(SOURCE, key="user", timestamp="ts")
        .filter(sd.col("amount") > 5)
        .map(_gross)
        .filter(sd.col("country") != "XX")
        .map(_project)
        .filter(sd.col("gross") < 400)
        .to(SINK))
    return topo


def _row(v: dict) -> tuple:
    return (v["id"], v["user"], v["gross"])


def canonical(records: list) -> list[tuple]:
    return sorted(_row(r.value) for r in records)


def hand_loop(inputs: dict[str, list[dict]]) -> list[tuple]:
    out = []
    for v in inputs[SOURCE]:
        if v["amount"] > 5:
            v = {**v, "gross": v["amount"] * 1.19}
            if v["country"] != "XX":
                v = {"id": v["id"], "user": v["user"], "gross": round(v["gross"], 2)}
                if v["gross"] < 400:
                    out.append((v["id"], v["user"], v["gross"]))
    return out


def bytewax_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from ..engines import BATCH, run_bytewax

    def build(out: list) -> Any:
        flow = Dataflow("stateless")
        s = op.input("in", flow, TestingSource(inputs[SOURCE], batch_size=BATCH))
        s = op.filter("f1", s, lambda v: v["amount"] > 5)
        s = op.map("m1", s, _gross)
        s = op.filter("f2", s, lambda v: v["country"] != "XX")
        s = op.map("m2", s, _project)
        s = op.filter("f3", s, lambda v: v["gross"] < 400)
        op.output("out", op.map("row", s, _row), TestingSink(out))
        return flow
    return run_bytewax(build)


def beam_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    import apache_beam as beam

    from ..engines import collect, read_memory, run_beam

    def build(p: Any) -> None:
        (p | "Read" >> read_memory(inputs[SOURCE])
         | "F1" >> beam.Filter(lambda v: v["amount"] > 5)
         | "M1" >> beam.Map(_gross)
         | "F2" >> beam.Filter(lambda v: v["country"] != "XX")
         | "M2" >> beam.Map(_project)
         | "F3" >> beam.Filter(lambda v: v["gross"] < 400)
         | "Row" >> beam.Map(_row)
         | "Collect" >> beam.Map(collect))
    return run_beam(build)
