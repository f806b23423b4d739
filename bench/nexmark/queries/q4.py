"""Query 4, average price for a category: the average of the winning (highest) bid of every
auction, per category.

Flink (``q4.sql``): the bids of each auction between its ``dateTime`` and ``expires`` (an
unbounded join of bids and auctions filtered on the auction's lifetime), ``MAX(price)`` per
auction, then ``AVG`` of those per category. Ours: a stream-stream join of each auction with
the bids up to the longest auction length after it (``within=(0, max length)``, grace 2 s),
filtered on ``expires``; the highest price per auction (a table); that table re-grouped by
category with ``avg`` (each auction's new maximum subtracts its old one: aggregates of
aggregates). Output: the changelog of the per-category table: key category, ``{"avg": ...}``,
timestamp the largest of its updates'.

A bid delayed more than the grace finds its auction's window closed (dropped, late); the
auctions are declared first, as SQL's ``FROM auction A JOIN bid B``.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config, max_auction_length_ms
from . import GRACE_MS, Query
from .sources import AUCTION_DDL, BID_DDL, auctions, bids, from_upper


def bid_in_auction(a: dict, b: dict) -> dict:
    return {"category": a["category"], "expires": a["expires"], "price": b["price"],
            "bidTime": b["dateTime"]}


def build(topo: sd.Topology, cfg: Config) -> None:
    longest = max_auction_length_ms(cfg)
    in_auction = (auctions(topo).key_by("id")
                  .join(bids(topo).key_by("auction"), bid_in_auction,
                        within=(0, longest), grace=GRACE_MS)
                  .filter(sd.col("bidTime") <= sd.col("expires")))
    winning = in_auction.group_by_key().agg(final=sd.max("price"),
                                            category=sd.first("category"))
    winning.group_by("category").agg(avg=sd.avg("final")).to_stream().to("q4")


def sql(cfg: Config) -> str:
    longest = max_auction_length_ms(cfg)
    return AUCTION_DDL + BID_DDL + f"""
    CREATE STREAM q4_bids AS
        SELECT A.id, A.category AS category, B.price AS price
        FROM auction A JOIN bid B WITHIN (0 MILLISECONDS, {longest} MILLISECONDS)
            GRACE PERIOD {GRACE_MS} MILLISECONDS ON A.id = B.auction
        WHERE B.dateTime <= A.expires;
    CREATE TABLE q4_winning AS
        SELECT id, category, MAX(price) AS final FROM q4_bids GROUP BY id, category;
    CREATE TABLE q4 AS SELECT category, AVG(final) AS avg FROM q4_winning GROUP BY category;"""


QUERY = Query("q4", "average price for a category", ("auction", "bid"), build, sql=sql,
              from_sql=from_upper("avg"))
