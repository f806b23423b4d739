"""What the SQL compiler knows about streams and tables, and the columns a query can see.

A ``Relation`` is a declared or derived stream/table: its key columns (read from the record
key, as ksqlDB reads them from the Kafka key) and value columns (fields of the value, named
as ksqlDB names them: upper case unless back-quoted). A ``Frame`` is the record flow inside one
query: a DSL handle plus a ``Scope`` telling how each visible column is read from the current
record (``Col(name)`` for a value field, ``KeyRef()`` or a field of it for a key column).

Inside a topology every record of a relation is laid out the same way: the key is the key
column's value (a ``StructKey`` dict for several key columns, anything for none) and the value
a dict of the value columns; formats (DELIMITED, KAFKA, unwrapped single values) are applied
only where records enter and leave (``formats``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..expr import Col, Expr, Func, KeyRef, Lit

__all__ = ["Column", "Relation", "Frame", "Scope", "ScopeEntry", "same_expr", "key_expr"]


def same_expr(a: Expr | None, b: Expr | None) -> bool:
    """Structural equality of two expressions (``==`` on expressions builds a comparison)."""
    if a is None or b is None:
        return False
    return a.to_dict() == b.to_dict()


@dataclass(frozen=True)
class Column:
    """A column: its name as ksqlDB spells it, its type (parsed SQL type, None when computed)."""

    name: str
    type: tuple | None = None


def key_expr(keys: tuple[Column, ...], i: int) -> Expr:
    """How key column ``i`` of a relation with key columns ``keys`` is read from the record."""
    if len(keys) == 1:
        return KeyRef()
    from ..functions.conversions import format_type
    t = keys[i].type
    return Func("key_field", (KeyRef(), Lit(keys[i].name), Lit(i),
                              Lit(format_type(t) if t else None)))


@dataclass
class Relation:
    """A stream or table known to the compiler.

    ``formats``: ``(key_format, value_format)`` as ksqlDB names them (``KAFKA``, ``JSON``,
    ``DELIMITED``...); ``wrap``: False when a single value column is written bare
    (``WRAP_SINGLE_VALUE=false``, or the ``KAFKA`` format). ``windowed``: the window kind
    (``"tumbling"``, ``"hopping"``, ``"session"``) of a windowed table, else None.
    """

    name: str
    kind: str  # "stream" | "table"
    topic: str
    keys: tuple[Column, ...]
    values: tuple[Column, ...]
    line: int
    column: int
    formats: tuple[str, str] = ("KAFKA", "JSON")
    wrap: bool = True
    delimiter: str = ","  # VALUE_DELIMITER of a DELIMITED value
    windowed: str | None = None
    window: Any = None  # the windows.Window of a windowed aggregation
    declared: bool = False  # CREATE STREAM/TABLE with a column list: may become a source
    timestamp: str | None = None
    timestamp_format: str | None = None  # TIMESTAMP_FORMAT: a DateTimeFormatter pattern
    handle: Any = None  # the DSL handle readers use, once fixed
    writers: list[tuple[Any, str]] = field(default_factory=list)  # (Stream/Table, site)
    sink_site: str | None = None
    read_at: int | None = None  # line of the first query that read it
    connector: dict | None = None  # PATH: the source's (or sink's) default connector
    sql: str = ""  # the statement's text (DESCRIBE, SHOW QUERIES)

    def column_names(self) -> list[str]:
        return [c.name for c in self.keys + self.values]


@dataclass
class ScopeEntry:
    """One relation visible in a query under ``alias``: column name -> how to read it.

    ``keys``: the names of its key columns (also in ``columns``).
    """

    alias: str
    relation: Relation
    columns: dict[str, Expr]
    keys: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return list(self.columns)


class Scope:
    """The columns one query can reference (several relations after a join)."""

    def __init__(self, entries: list[ScopeEntry]):
        self.entries = entries

    @staticmethod
    def of(relation: Relation, alias: str) -> "Scope":
        cols: dict[str, Expr] = {}
        for i, c in enumerate(relation.keys):
            cols[c.name] = key_expr(relation.keys, i)
        for c in relation.values:
            cols.setdefault(c.name, Col(c.name))
        return Scope([ScopeEntry(alias, relation, cols, tuple(c.name for c in relation.keys))])

    def entry(self, alias: str) -> ScopeEntry | None:
        for e in self.entries:
            if e.alias == alias:
                return e
        for e in self.entries:
            if e.relation.name == alias:
                return e
        return None

    def candidates(self, name: str) -> list[tuple[ScopeEntry, Expr]]:
        return [(e, e.columns[name]) for e in self.entries if name in e.columns]

    def all_names(self) -> list[str]:
        return [n for e in self.entries for n in e.names()]


@dataclass
class Frame:
    """Records flowing through one query: the DSL handle and what its columns are.

    ``key_equal``: expressions known to equal the record key (the key itself, and the value
    fields that hold a copy of it), so that a join or grouping on one needs no re-key.
    ``join_keys``: after a join, the qualified columns that may name the result's key column
    (``(alias, column, expr)``), and ``synthetic``: whether the key is ksqlDB's ``ROWKEY``.
    """

    handle: Any
    kind: str  # "stream" | "table"
    scope: Scope
    key_equal: list[Expr] = field(default_factory=list)
    windowed: str | None = None
    window: Any = None
    joined: bool = False
    join_keys: list[tuple[str, str, Expr]] = field(default_factory=list)
    synthetic: bool = False

    def is_key(self, e: Expr) -> bool:
        return any(same_expr(e, k) for k in self.key_equal)
