"""Query 18, find last bid: each bidder's latest bid on each auction.

Flink (``q18.sql``): ``ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC)
= 1``, a deduplication that emits a row when it changes. Ours: a ``reduce`` per ``(bidder,
auction)`` keeping the bid with the latest ``dateTime`` (the later arrival on a tie); as a
Kafka Streams table with caching off, every bid forwards its key's row, changed or not (a bid
delayed behind a later one forwards the row unchanged). Output: the changelog per key.

Not in SQL: ``LATEST_BY_OFFSET`` keeps the last bid by arrival, not by ``dateTime``; ksqlDB
has no ``ROW_NUMBER``.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import bids


def bidder_auction(b: dict) -> tuple:
    return (b["bidder"], b["auction"])


def latest(kept: dict, bid: dict) -> dict:
    return bid if bid["dateTime"] >= kept["dateTime"] else kept


def build(topo: sd.Topology, cfg: Config) -> None:
    bids(topo).group_by(bidder_auction).reduce(latest).to_stream().to("q18")


QUERY = Query("q18", "find last bid", ("bid",), build,
              sql_missing="LATEST_BY_OFFSET keeps the last bid by arrival, not by dateTime; "
                          "ksqlDB has no ROW_NUMBER")
