"""Query 7, highest bid: the bids with the highest price of each 10-second tumbling window.

Flink (``q7.sql``): ``MAX(price)`` per window joined back with the bids of that window. Ours:
one group (key 0) over 10-second tumbling windows (grace 2 s, emit final) whose aggregate keeps
the highest price and every bid with it (ties kept in arrival order), flattened to those bids.
Output: key 0, the bid, the window, timestamp the window's largest bid timestamp.

Not in SQL: ksqlDB's ``MAX`` gives the price only (no argmax aggregate), and a stream cannot be
joined to a windowed table.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import GRACE_MS, WINDOW_MS, Query
from .sources import bids


def highest(agg: tuple, bid: dict) -> tuple:
    """(highest price, the bids with it)."""
    price = bid["price"]
    if price > agg[0]:
        return (price, (bid,))
    if price == agg[0]:
        return (price, agg[1] + (bid,))
    return agg


def build(topo: sd.Topology, cfg: Config) -> None:
    (bids(topo)
        .group_by(sd.lit(0))
        .window(sd.tumbling(WINDOW_MS, grace=GRACE_MS), emit="final")
        .aggregate((-1, ()), highest)
        .to_stream()
        .flat_map(lambda agg: list(agg[1]))
        .to("q7"))


QUERY = Query("q7", "highest bid", ("bid",), build,
              sql_missing="ksqlDB has no argmax aggregate (MAX gives the price, not the bid) "
                          "and cannot join a stream to a windowed table")
