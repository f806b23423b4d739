"""ksqlDB's table filter: a row that does not pass gives a tombstone only if it passed before.

Kafka Streams' ``KTable.filter`` forwards a tombstone for every failing row unless old values
are sent (ksqlDB materializes its tables, so they are): a ``HAVING`` or a table ``WHERE`` then
deletes only rows that existed. The DSL's ``Table.filter`` has no old values, so this adds the
state that knows them: the filtered table left-joined to a table that never has a row. A
table-table left join keeps the left rows (per key and window) and emits a tombstone only for a
row that existed, which is exactly the rule::

    table.filter(pred)  --left-->  TableTableJoin (left, keep the left row)
            '-- to_stream -> filter(FALSE) -> group_by_key -> count() --right--'

The right side is built from the filtered table itself, so it adds no source and no shuffle.
"""

from __future__ import annotations

from typing import Any

from ..dsl.table import Table
from ..expr import Expr, Lit
from .formats import KeepLeft

__all__ = ["only_changes"]


def only_changes(table: Table, pred: Expr, window: Any = None) -> Table:
    """``table`` filtered by ``pred`` with ksqlDB's tombstones (``window``: the table's window,
    for a windowed table)."""
    filtered = table.filter(pred)
    grouped = filtered.to_stream().filter(Lit(False)).group_by_key()
    if window is not None:
        grouped = grouped.window(window)
    nothing = grouped.count()
    return filtered.left_join(nothing, KeepLeft())
