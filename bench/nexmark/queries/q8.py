"""Query 8, monitor new users: the persons who entered the system and opened an auction in the
same 10-second tumbling window.

Flink (``q8.sql``): persons grouped by (id, name, window) joined with auctions grouped by
(seller, window). Ours: the same as a join of two windowed tables, each emit final (grace
2 s): persons per id and window (their name), auctions per seller and window (a count), joined
row by row (key and window). Output: key person id, ``{"name"}``, the window, timestamp the
later of the two rows'; one record per person and window (compared as a multiset).

Not in SQL: ksqlDB cannot join two windowed tables.
"""

from __future__ import annotations

import streamdsl as sd

from ..generator import Config
from . import GRACE_MS, WINDOW_MS, Query
from .sources import auctions, persons


def build(topo: sd.Topology, cfg: Config) -> None:
    window = sd.tumbling(WINDOW_MS, grace=GRACE_MS)
    entered = (persons(topo).group_by("id").window(window, emit="final")
               .agg(person_name=sd.first("name")))
    selling = auctions(topo).group_by("seller").window(window, emit="final").count()
    entered.join(selling, lambda p, n: {"name": p["person_name"]}).to_stream().to("q8")


QUERY = Query("q8", "monitor new users", ("person", "auction"), build, emit="final",
              sql_missing="windowed tables cannot be joined in ksqlDB (nor in our SQL: their "
                          "key includes the window)")
