"""Query 0, pass through: every bid, unchanged.

Flink: ``SELECT auction, bidder, price, dateTime, extra FROM bid`` (``q0.sql``), the cost of the
framework alone. Output: key None, the bid, its timestamp.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import BID_DDL, bids, from_upper


def build(topo: sd.Topology, cfg: Config) -> None:
    bids(topo).to("q0")


def sql(cfg: Config) -> str:
    return BID_DDL + "CREATE STREAM q0 AS SELECT auction, bidder, price, dateTime, extra FROM bid;"


QUERY = Query("q0", "pass through", ("bid",), build, sql=sql,
              from_sql=from_upper("auction", "bidder", "price", "dateTime", "extra"))
