"""Query 2, selection: the auction and price of the bids on every 123rd auction.

Flink: ``SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0`` (``q2.sql``).
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import BID_DDL, bids, from_upper


def build(topo: sd.Topology, cfg: Config) -> None:
    (bids(topo)
        .filter(sd.col("auction") % 123 == 0)
        .map(lambda b: {"auction": b["auction"], "price": b["price"]})
        .to("q2"))


def sql(cfg: Config) -> str:
    return BID_DDL + "CREATE STREAM q2 AS SELECT auction, price FROM bid WHERE auction % 123 = 0;"


QUERY = Query("q2", "selection", ("bid",), build, sql=sql,
              from_sql=from_upper("auction", "price"))
