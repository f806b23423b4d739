"""Query 17, auction statistics report: per auction and day, the number of bids (all, and in
three price ranks) and the min, max, average and sum of their prices.

Flink: ``q17.sql`` (``GROUP BY auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd')``, ``count(*)
FILTER (WHERE ...)``; its ``avg`` of a ``BIGINT`` truncates, ours is a float). Ours: a
non-windowed ``agg`` per ``(auction, day)`` key (the filtered counts are sums of ``CASE``
expressions). Output: the changelog, every bid updating its key's row.
"""

from __future__ import annotations

import time

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import BID_DDL, bids


def day(ms: int) -> str:
    """``yyyy-MM-dd`` of an epoch-ms time, in UTC."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def auction_day(b: dict) -> tuple:
    return (b["auction"], day(b["dateTime"]))


def build(topo: sd.Topology, cfg: Config) -> None:
    price = sd.col("price")
    (bids(topo)
        .group_by(auction_day)
        .agg(total_bids=sd.count(),
             rank1_bids=sd.sum(sd.when(price < 10_000, 1).otherwise(0)),
             rank2_bids=sd.sum(sd.when((price >= 10_000) & (price < 1_000_000), 1).otherwise(0)),
             rank3_bids=sd.sum(sd.when(price >= 1_000_000, 1).otherwise(0)),
             min_price=sd.min("price"), max_price=sd.max("price"), avg_price=sd.avg("price"),
             sum_price=sd.sum("price"))
        .to_stream()
        .to("q17"))


FIELDS = ("total_bids", "rank1_bids", "rank2_bids", "rank3_bids", "min_price", "max_price",
          "avg_price", "sum_price")


def sql(cfg: Config) -> str:
    day_sql = "FORMAT_TIMESTAMP(FROM_UNIXTIME(dateTime), 'yyyy-MM-dd', 'UTC')"
    return BID_DDL + f"""CREATE TABLE q17 AS SELECT auction, {day_sql} AS `day`,
        COUNT(*) AS total_bids,
        SUM(CASE WHEN price < 10000 THEN 1 ELSE 0 END) AS rank1_bids,
        SUM(CASE WHEN price >= 10000 AND price < 1000000 THEN 1 ELSE 0 END) AS rank2_bids,
        SUM(CASE WHEN price >= 1000000 THEN 1 ELSE 0 END) AS rank3_bids,
        MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price,
        SUM(price) AS sum_price
        FROM bid GROUP BY auction, {day_sql};"""


def from_sql(records: list) -> list:
    return [((r.key["AUCTION"], r.key["day"]), {f: r.value[f.upper()] for f in FIELDS},
             r.timestamp, None) for r in records]


QUERY = Query("q17", "auction statistics report", ("bid",), build, sql=sql, from_sql=from_sql)
