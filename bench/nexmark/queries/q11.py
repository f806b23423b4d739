"""Query 11, user sessions: the number of bids of each bidder's session (gap 10 s).

Flink: ``q11.sql`` (``SESSION(dateTime, INTERVAL '10' SECOND)``). Ours: session windows, grace
2 s, emit final. Output: key bidder, the count, the session ``[first, last]``, timestamp the
session's end.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import GAP_MS, GRACE_MS, Query
from .sources import BID_DDL, bids


def build(topo: sd.Topology, cfg: Config) -> None:
    (bids(topo)
        .group_by("bidder")
        .window(sd.session(GAP_MS, grace=GRACE_MS), emit="final")
        .count()
        .to_stream()
        .to("q11"))


def sql(cfg: Config) -> str:
    return BID_DDL + f"""CREATE TABLE q11 AS SELECT bidder, COUNT(*) AS bid_count FROM bid
        WINDOW SESSION ({GAP_MS} MILLISECONDS, GRACE PERIOD {GRACE_MS} MILLISECONDS)
        GROUP BY bidder EMIT FINAL;"""


def from_sql(records: list) -> list:
    return [(r.key, r.value["BID_COUNT"], r.timestamp, tuple(r.window)) for r in records]


QUERY = Query("q11", "user sessions", ("bid",), build, emit="final", sql=sql, from_sql=from_sql)
