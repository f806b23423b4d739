"""enrich: a stream-table join: 1M clicks enriched with a 10k-row user table.

The table rows (timestamp T0) precede every click in the timestamp-synchronized merge, so
each click sees the full table. 1 click in 11 is for a user not in the table and is dropped
(inner join). Output: ``(user, click id, tier, country)`` per enriched click. The table has
n / 100 rows (10k at 1M clicks); events/s counts clicks and table rows.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import streamdsl as sd

NAME = "enrich"
CLICKS, USERS = "clicks", "users"
SINK = "enriched_clicks"
#: n counts the clicks; the table adds n / 100 rows.
SIZES = {"n": 1_000_000, "beam_n": 200_000}

T0 = 1_704_067_200_000
TIERS = ("free", "plus", "pro", "enterprise")
COUNTRIES = ("DE", "FR", "US", "GB", "JP", "BR")


def table_rows(n: int) -> int:
    return max(10, n // 100)


def generate(n: int) -> dict[str, list[dict]]:
    rng = random.Random(13)
    randrange = rng.randrange
    rows = table_rows(n)
    users = [{"id": f"u{i:06d}", "tier": TIERS[randrange(4)], "country": COUNTRIES[randrange(6)],
              "ts": T0} for i in range(rows)]
    known = rows + rows // 10  # ids past `rows` are unknown users
    clicks = []
    ts = T0
    for i in range(n):
        ts += randrange(11)
        clicks.append({"click_id": i, "user": f"u{randrange(known):06d}",
                       "url": f"/p/{randrange(500)}", "ts": ts})
    return {USERS: users, CLICKS: clicks}


def _enriched(c: dict, u: dict) -> tuple:
    return (c["click_id"], u["tier"], u["country"])


def topology() -> sd.Topology:
    topo = sd.Topology("enrich-clicks")
    users = topo.table(USERS, key="id", timestamp="ts")
    clicks = topo.stream(CLICKS, key="user", timestamp="ts")
    clicks.join(users, _enriched).to(SINK)
    return topo


def canonical(records: list) -> list[tuple]:
    return sorted((r.key, *r.value) for r in records)


def hand_loop(inputs: dict[str, list[dict]]) -> list[tuple]:
    """The table as a dict (upserts in order), then one lookup per click."""
    table: dict[str, dict] = {}
    for u in inputs[USERS]:
        table[u["id"]] = u
    out = []
    get = table.get
    for c in inputs[CLICKS]:
        key = c["user"]
        u = get(key)
        if u is not None:
            out.append((key, c["click_id"], u["tier"], u["country"]))
    return out


def _lookup(row: Any, item: tuple[int, dict]) -> tuple[Any, list]:
    side, v = item
    if side == 0:
        return v, []
    return row, ([] if row is None else [(v["user"], *_enriched(v, row))])


def bytewax_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    """The table rows and the clicks in one input (rows first: they are older), keyed by
    user; a ``stateful_flat_map`` keeps each user's row and enriches their clicks."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from ..engines import BATCH, run_bytewax

    def build(out: list) -> Any:
        items = itertools.chain(((0, u) for u in inputs[USERS]),
                                ((1, c) for c in inputs[CLICKS]))
        flow = Dataflow("enrich")
        s = op.input("in", flow, TestingSource(items, batch_size=BATCH))
        keyed = op.key_on("key", s, lambda it: it[1]["id"] if it[0] == 0 else it[1]["user"])
        joined = op.stateful_flat_map("join", keyed, _lookup)
        op.output("out", op.key_rm("unkey", joined), TestingSink(out))
        return flow
    return run_bytewax(build)


def beam_native(inputs: dict[str, list[dict]]) -> list[tuple]:
    """The table as a side input (``AsDict``), Beam's enrichment pattern."""
    import apache_beam as beam

    from ..engines import collect, read_memory, run_beam

    def enrich(c: dict, table: dict) -> list[tuple]:
        u = table.get(c["user"])
        return [] if u is None else [(c["user"], *_enriched(c, u))]

    def build(p: Any) -> None:
        table = (p | "ReadUsers" >> read_memory(inputs[USERS])
                 | "KeyUsers" >> beam.Map(lambda u: (u["id"], u)))
        (p | "ReadClicks" >> read_memory(inputs[CLICKS])
         | "Enrich" >> beam.FlatMap(enrich, table=beam.pvalue.AsDict(table))
         | "Collect" >> beam.Map(collect))
    return run_beam(build)
