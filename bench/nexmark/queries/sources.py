"""The three Nexmark inputs, declared as the queries read them, in the DSL and in SQL.

Event time is each event's ``dateTime`` (epoch ms). Bids, auctions and persons carry no record
key (Flink's views have none); a query re-keys what it joins or groups.
"""

from __future__ import annotations

from typing import Any, Callable

import streamdsl as sd

__all__ = ["bids", "auctions", "persons", "persons_table", "BID_DDL", "AUCTION_DDL",
           "PERSON_DDL", "PERSON_TABLE_DDL", "from_upper"]


def bids(topo: sd.Topology) -> sd.Stream:
    return topo.stream("bid", timestamp="dateTime")


def auctions(topo: sd.Topology) -> sd.Stream:
    return topo.stream("auction", timestamp="dateTime")


def persons(topo: sd.Topology) -> sd.Stream:
    return topo.stream("person", timestamp="dateTime")


def persons_table(topo: sd.Topology) -> sd.Table:
    """Persons as a table keyed by id (each id is generated once)."""
    return topo.table("person", key="id", timestamp="dateTime")


BID_DDL = """CREATE STREAM bid (auction BIGINT, bidder BIGINT, price BIGINT, dateTime BIGINT,
    extra VARCHAR) WITH (KAFKA_TOPIC='bid', TIMESTAMP='dateTime');
"""
AUCTION_DDL = """CREATE STREAM auction (id BIGINT, itemName VARCHAR, description VARCHAR,
    initialBid BIGINT, reserve BIGINT, dateTime BIGINT, expires BIGINT, seller BIGINT,
    category BIGINT, extra VARCHAR) WITH (KAFKA_TOPIC='auction', TIMESTAMP='dateTime');
"""
_PERSON_COLUMNS = """name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR, city VARCHAR,
    state VARCHAR, dateTime BIGINT, extra VARCHAR"""
PERSON_DDL = f"""CREATE STREAM person (id BIGINT, {_PERSON_COLUMNS})
    WITH (KAFKA_TOPIC='person', TIMESTAMP='dateTime');
"""
#: A ksqlDB table's PRIMARY KEY is the record key: the SQL run reads persons keyed by id.
PERSON_TABLE_DDL = f"""CREATE TABLE person (id BIGINT PRIMARY KEY, {_PERSON_COLUMNS})
    WITH (KAFKA_TOPIC='person', TIMESTAMP='dateTime');
"""


def from_upper(*names: str, key: Callable[[Any], Any] | None = None) -> Callable[[list], list]:
    """Reshape SQL output (upper-case value columns) to the DSL's: the value ``{name:
    VALUE[NAME.upper()]}`` for ``names``; ``key`` turns the SQL key into the DSL's."""
    upper = [(n, n.upper()) for n in names]

    def convert(records: list) -> list:
        out = []
        for r in records:
            v = r.value
            value = None if v is None else {n: v[u] for n, u in upper}
            k = r.key if key is None else key(r.key)
            out.append((k, value, r.timestamp,
                        tuple(r.window) if r.window is not None else None))
        return out
    return convert
