"""Query 5, hot items: per 10-second window sliding every 2 s, the auctions with the most bids.

Flink (``q5.sql``): bid counts per auction over ``HOP(2 s, 10 s)``, joined with each window's
maximum count. Ours: the final count per auction and hopping window (grace 2 s; the window
start kept in the value with ``window_columns``), re-grouped by window start into the highest
count and the auctions that have it, in the order the windows close (auction id order within a
window). Output: the changelog per window start: ``(max count, auction ids)``, the last one
per window being Flink's answer; timestamp the largest bid timestamp of the rows so far.

Not in SQL: ksqlDB cannot re-group a windowed table (nor can our SQL read a windowed topic
back as a stream), and has no aggregate giving the keys that reach the maximum.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import GRACE_MS, HOP_MS, WINDOW_MS, Query
from .sources import bids


def hottest(agg: tuple, row: dict) -> tuple:
    """(highest count, auctions with it), adding one auction's final count."""
    most, which = agg
    n = row["num"]
    if n > most:
        return (n, (row["auction"],))
    if n == most:
        return (most, which + (row["auction"],))
    return agg


def build(topo: sd.Topology, cfg: Config) -> None:
    counts = (bids(topo)
              .group_by("auction")
              .window(sd.hopping(WINDOW_MS, HOP_MS, grace=GRACE_MS), emit="final")
              .agg(num=sd.count(), auction=sd.first("auction"))
              .map(lambda v: {"auction": v["auction"], "num": v["num"], "start": v["start"]},
                   window_columns=("start", "end")))
    (counts.to_stream()
        .group_by("start")
        .aggregate((0, ()), hottest)
        .to_stream()
        .to("q5"))


QUERY = Query("q5", "hot items", ("bid",), build,
              sql_missing="ksqlDB cannot re-group a windowed table, and has no aggregate "
                          "giving the rows that reach a maximum")
