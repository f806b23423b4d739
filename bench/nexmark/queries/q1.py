"""Query 1, currency conversion: every bid with its price in euros (``0.908 * price``).

Flink: ``q1.sql`` (its price is a ``DECIMAL(23, 3)``; ours a float, as our SQL's decimals are).
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import BID_DDL, bids, from_upper


def to_euro(b: dict) -> dict:
    return {"auction": b["auction"], "bidder": b["bidder"], "price": 0.908 * b["price"],
            "dateTime": b["dateTime"], "extra": b["extra"]}


def build(topo: sd.Topology, cfg: Config) -> None:
    bids(topo).map(to_euro).to("q1")


def sql(cfg: Config) -> str:
    return BID_DDL + """CREATE STREAM q1 AS SELECT auction, bidder, 0.908 * price AS price,
        dateTime, extra FROM bid;"""


QUERY = Query("q1", "currency conversion", ("bid",), build, sql=sql,
              from_sql=from_upper("auction", "bidder", "price", "dateTime", "extra"))
