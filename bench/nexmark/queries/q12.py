"""Query 12, bids per bidder in a window, without processing time: the number of bids of each
bidder per 10-second tumbling window of event time.

Flink's ``q12.sql`` windows by ``PROCTIME()``, whose results depend on how fast the engine
runs; ours windows by the bid's ``dateTime`` (grace 2 s, emit final), so every run and every
backend gives the same records. Output: key bidder, the count, the window, timestamp the
window's largest bid timestamp.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import GRACE_MS, WINDOW_MS, Query
from .sources import BID_DDL, bids


def build(topo: sd.Topology, cfg: Config) -> None:
    (bids(topo)
        .group_by("bidder")
        .window(sd.tumbling(WINDOW_MS, grace=GRACE_MS), emit="final")
        .count()
        .to_stream()
        .to("q12"))


def sql(cfg: Config) -> str:
    return BID_DDL + f"""CREATE TABLE q12 AS SELECT bidder, COUNT(*) AS bid_count FROM bid
        WINDOW TUMBLING (SIZE {WINDOW_MS} MILLISECONDS, GRACE PERIOD {GRACE_MS} MILLISECONDS)
        GROUP BY bidder EMIT FINAL;"""


def from_sql(records: list) -> list:
    return [(r.key, r.value["BID_COUNT"], r.timestamp, tuple(r.window)) for r in records]


QUERY = Query("q12", "bids per bidder per window (event time)", ("bid",), build, emit="final",
              sql=sql, from_sql=from_sql)
