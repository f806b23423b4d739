"""Query 14, calculation: bids priced between 1,000,000 and 50,000,000 euros, with calculated
fields.

Flink (``q14.sql``): the price in euros, ``bidTimeType`` from the hour of ``dateTime`` (UTC)
and ``c_counts``, a user function counting the ``c``s of ``extra``. Ours: the filter as an
expression, the fields in a Python function (the user function is ``str.count``); in SQL the
hour is ``(dateTime / 3600000) % 24`` and the count ``LEN(extra) - LEN(REPLACE(extra, 'c',
''))``.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import BID_DDL, bids, from_upper

HOUR_MS = 3_600_000


def bid_time_type(ms: int) -> str:
    hour = ms // HOUR_MS % 24
    if 8 <= hour <= 18:
        return "dayTime"
    if hour <= 6 or hour >= 20:
        return "nightTime"
    return "otherTime"


def calculated(b: dict) -> dict:
    return {"auction": b["auction"], "bidder": b["bidder"], "price": 0.908 * b["price"],
            "bidTimeType": bid_time_type(b["dateTime"]), "dateTime": b["dateTime"],
            "extra": b["extra"], "c_counts": b["extra"].count("c")}


def build(topo: sd.Topology, cfg: Config) -> None:
    euros = sd.col("price") * 0.908
    (bids(topo)
        .filter((euros > 1_000_000) & (euros < 50_000_000))
        .map(calculated)
        .to("q14"))


def sql(cfg: Config) -> str:
    hour = f"((dateTime / {HOUR_MS}) % 24)"
    return BID_DDL + f"""CREATE STREAM q14 AS SELECT auction, bidder, 0.908 * price AS price,
        CASE WHEN {hour} >= 8 AND {hour} <= 18 THEN 'dayTime'
             WHEN {hour} <= 6 OR {hour} >= 20 THEN 'nightTime'
             ELSE 'otherTime' END AS bidTimeType,
        dateTime, extra, LEN(extra) - LEN(REPLACE(extra, 'c', '')) AS c_counts
        FROM bid WHERE price * 0.908 > 1000000 AND price * 0.908 < 50000000;"""


QUERY = Query("q14", "calculation", ("bid",), build, sql=sql,
              from_sql=from_upper("auction", "bidder", "price", "bidTimeType", "dateTime",
                                  "extra", "c_counts"))
