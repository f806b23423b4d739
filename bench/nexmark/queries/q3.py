"""Query 3, local item suggestion: who sells in category 10 from Oregon, Idaho or California,
and which auctions.

Flink (``q3.sql``) joins the auction and person streams without a window. We join the way
Kafka Streams does: the auctions (category 10), re-keyed by seller, look up a table of the
persons (state OR, ID or CA, the others forwarded as tombstones). The one difference: an
auction whose seller's person event arrives after it finds nobody (about 1 in 4 sellers is
drawn from the persons around the current one, up to 10 ahead); Flink's unbounded join would
emit it when the person arrives. Output: key seller, ``{name, city, state, id}`` (``id`` the
auction's), the auction's timestamp.

Auctions are declared first, as SQL's ``FROM auction A JOIN person P`` does: records of the two
topics with one timestamp are taken auction first.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import Query
from .sources import AUCTION_DDL, PERSON_TABLE_DDL, auctions, from_upper, persons_table

STATES = ("OR", "ID", "CA")


def suggestion(a: dict, p: dict) -> dict:
    return {"name": p["name"], "city": p["city"], "state": p["state"], "id": a["id"]}


def build(topo: sd.Topology, cfg: Config) -> None:
    sold = auctions(topo).filter(sd.col("category") == 10).key_by("seller")
    sellers = persons_table(topo).filter(sd.col("state").isin(STATES))
    sold.join(sellers, suggestion).to("q3")


def sql(cfg: Config) -> str:
    return AUCTION_DDL + PERSON_TABLE_DDL + """CREATE STREAM q3 AS
        SELECT A.seller, P.name, P.city, P.state, A.id AS id
        FROM auction A JOIN person P ON A.seller = P.id
        WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA');"""


QUERY = Query("q3", "local item suggestion", ("auction", "person"), build,
              table_topics=frozenset({"person"}), sql=sql,
              from_sql=from_upper("name", "city", "state", "id"))
