"""The Nexmark queries, one module each: the query in the DSL, in SQL where the SQL front end
can express it, and how its output is compared.

Each module defines ``QUERY``, a ``Query``. The definitions follow Flink's Nexmark SQL
(``nexmark-flink/src/main/resources/queries/qN.sql`` in ``nexmark/nexmark``), written the
Kafka Streams way; each module's docstring says where ours differs. ``NOT_IMPLEMENTED`` lists
the Nexmark queries we do not run, with what they would need.

>>> [q.name for q in QUERIES.values()][:4]
['q0', 'q1', 'q2', 'q3']
>>> QUERIES["q5"].topics
('bid',)
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable

import streamdsl as sd

from ..generator import Config

__all__ = ["Query", "QUERIES", "NOT_IMPLEMENTED", "GRACE_MS", "WINDOW_MS", "HOP_MS",
           "GAP_MS", "freeze", "rows", "topology", "sql_topology", "combined"]

#: Grace of every window and join: below the generator's 3 s longest delay, so that some
#: records are late and every implementation must drop the same ones. (Flink's Nexmark holds
#: its watermark 4 s behind, so nothing there is late.)
GRACE_MS = 2_000
#: Flink's Nexmark window sizes (``windowSizeSec`` 10; query 5 hops every 2 s).
WINDOW_MS = 10_000
HOP_MS = 2_000
GAP_MS = 10_000

Record4 = tuple  # (key, value, timestamp, window)


@dataclass(frozen=True)
class Query:
    """One Nexmark query.

    * ``topics``: the inputs it reads, in the order it declares them; ``table_topics``: those it
      reads as tables (their records are keyed by ``id`` for SQL, whose tables take the record
      key as the ``PRIMARY KEY``).
    * ``build(topo, cfg)``: declares the query in ``topo``, writing the sink ``name``.
    * ``emit``: ``"changes"`` (outputs compared as the sequence per key, with timestamps) or
      ``"final"`` (one record per key and window: compared as a multiset).
    * ``sql(cfg)``: the statements (sources and query; the query writes ``name.upper()``) or
      None; ``from_sql(records)``: the SQL output reshaped to the DSL's ``(key, value,
      timestamp, window)``.
    * ``needs``: for a query we cannot express, what it lacks (``build`` is then None).
    """

    name: str
    title: str
    topics: tuple[str, ...]
    build: Callable[[sd.Topology, Config], None] | None
    emit: str = "changes"
    table_topics: frozenset[str] = frozenset()
    sql: Callable[[Config], str] | None = None
    from_sql: Callable[[list], list[Record4]] | None = None
    sql_missing: str | None = None

    @property
    def sink(self) -> str:
        return self.name

    @property
    def sql_sink(self) -> str:
        return self.name.upper()


def freeze(x: Any) -> Any:
    """A hashable, orderable stand-in: dicts become sorted item tuples, lists tuples."""
    if isinstance(x, dict):
        return tuple(sorted((k, freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(freeze(v) for v in x)
    return x


def rows(records: list[Record4], emit: str) -> list[tuple]:
    """The comparable form of a query's output, from ``(key, value, timestamp, window)``
    records in emission order: for ``"changes"``, ``(key, n, value, ts, window)`` with ``n``
    the record's place among its key's records (so the sequence per key is compared); for
    ``"final"``, ``(key, window, value, ts)``. Sorted (the keys of one query's output are of
    one type)."""
    out = []
    if emit == "changes":
        seq: dict[Any, int] = {}
        for k, v, ts, w in records:
            fk = freeze(k)
            n = seq.get(fk, 0)
            seq[fk] = n + 1
            out.append((fk, n, freeze(v), ts, w))
    else:
        out = [(freeze(k), w, freeze(v), ts) for k, v, ts, w in records]
    out.sort()  # (key, n) or (key, window) is unique: later fields are never compared
    return out


def records_of(output: list) -> list[Record4]:
    """Our backends' ``OutputRecord``s as ``(key, value, timestamp, window)``."""
    return [(r.key, r.value, r.timestamp, tuple(r.window) if r.window is not None else None)
            for r in output]


def topology(q: Query, cfg: Config) -> sd.Topology:
    """The query alone, in the DSL."""
    topo = sd.Topology(f"nexmark-{q.name}")
    q.build(topo, cfg)
    return topo


def sql_topology(q: Query, cfg: Config) -> sd.Topology:
    from streamdsl.sql import compile_sql
    return compile_sql(q.sql(cfg), name=f"nexmark-{q.name}-sql")


def combined(queries: list[Query], cfg: Config) -> list[tuple[sd.Topology, list[Query]]]:
    """The queries in as few topologies as can hold them (a topic is read either as a stream
    or as a table in one topology): one run of each serves all its queries."""
    groups: list[tuple[frozenset, list[Query]]] = []
    for q in queries:
        streams = frozenset(set(q.topics) - q.table_topics)
        for i, (tables, members) in enumerate(groups):
            member_streams = set().union(*(set(m.topics) - m.table_topics for m in members))
            if not (q.table_topics & member_streams) and not (streams & tables):
                members.append(q)
                groups[i] = (tables | q.table_topics, members)
                break
        else:
            groups.append((q.table_topics, [q]))
    out = []
    for _, members in groups:
        topo = sd.Topology("nexmark-" + "-".join(m.name for m in members))
        for m in members:
            m.build(topo, cfg)
        out.append((topo, members))
    return out


_MODULES = ("q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12", "q14", "q17", "q18")

#: Every query we run, by name, in Nexmark's order.
QUERIES: dict[str, Query] = {m: import_module(f"{__name__}.{m}").QUERY for m in _MODULES}

#: The other Nexmark queries (Flink's numbering), and what each would need here.
NOT_IMPLEMENTED: dict[str, str] = {
    "q6": "average selling price per seller over its last 10 closed auctions: a join of "
          "auctions with their bids closed at expiry, then a per-seller aggregate over the last "
          "10 rows (ROW_NUMBER OVER / a bounded 'last n' table aggregate): no windowed "
          "top-n or row-count window operator",
    "q9": "winning bid of each auction: an interval join per auction bounded by its own "
          "`expires`, then ROW_NUMBER per auction (a top-1 with retractions): expressible only "
          "with a fixed join window, like our q4, plus a per-auction argmax",
    "q10": "log to a file system partitioned by date and hour: a partitioned file sink",
    "q13": "bounded side input join (a static table read from a file, joined to bids by "
           "processing time): a bounded-table source and processing time",
    "q15": "bidding statistics per day with COUNT(DISTINCT) FILTER: expressible with "
           "count_distinct over CASE; not in this issue's list",
    "q16": "channel statistics: needs the `channel` and `url` bid fields of Flink's newer "
           "generator (Beam's model, which we follow, has neither)",
    "q19": "auction top-10 prices (ROW_NUMBER <= 10 per auction with retractions): a top-n "
           "table operator with retractions",
    "q20": "bids joined with auctions filtered on category (an unbounded stream-stream join, "
           "with expiry): expressible as q4's windowed join; not in this issue's list",
    "q21": "channel id from url (REGEXP_EXTRACT over `url`): needs the `url` bid field",
    "q22": "URL directory split (SPLIT_INDEX over `url`): needs the `url` bid field",
}
