"""What the SQL compiler knows about streams and tables, and the columns a query can see.

A ``Relation`` is a declared or derived stream/table. A ``Frame`` is the record flow inside
one query (a DSL handle plus a ``Scope`` telling how each visible column is read: a value
field, ``Col(name)``, or the record key, ``KeyRef()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..expr import Col, Expr, KeyRef

__all__ = ["Relation", "Frame", "Scope", "ScopeEntry", "same_expr"]


def same_expr(a: Expr | None, b: Expr | None) -> bool:
    """Structural equality of two expressions (``==`` on expressions builds a comparison)."""
    if a is None or b is None:
        return False
    return a.to_dict() == b.to_dict()


@dataclass
class Relation:
    """A stream or table known to the compiler.

    ``columns`` are the value fields in order; ``key_column`` names the column holding the
    record key (``key_in_value``: it is also a value field, as for declared ``KEY`` columns,
    which streamdsl reads from the value). ``bare``: values are one unwrapped column
    (``WRAP_SINGLE_VALUE=false``).
    """

    name: str
    kind: str  # "stream" | "table"
    topic: str
    columns: tuple[str, ...]
    line: int
    column: int
    key_column: str | None = None
    key_in_value: bool = False
    windowed: bool = False
    bare: bool = False
    declared: bool = False  # CREATE STREAM/TABLE with a column list: may become a source
    timestamp: str | None = None
    handle: Any = None  # the DSL handle readers use, once fixed
    writers: list[tuple[Any, str]] = field(default_factory=list)  # (Stream/Table, site)
    sink_site: str | None = None
    read_at: int | None = None  # line of the first query that read it
    connector: dict | None = None  # PATH: the source's (or sink's) default connector


@dataclass
class ScopeEntry:
    """One relation visible in a query under ``alias``: column name -> how to read it."""

    alias: str
    relation: Relation
    columns: dict[str, tuple[str, Expr]]  # lower-case name -> (name as declared, expression)

    def names(self) -> list[str]:
        return [n for n, _ in self.columns.values()]


class Scope:
    """The columns one query can reference (several relations after a join)."""

    def __init__(self, entries: list[ScopeEntry], *, windowed: bool = False):
        self.entries = entries
        self.windowed = windowed

    @staticmethod
    def of(relation: Relation, alias: str) -> "Scope":
        cols: dict[str, tuple[str, Expr]] = {}
        if not relation.bare:
            for c in relation.columns:
                cols[c.lower()] = (c, Col(c))
        if relation.key_column is not None and not relation.key_in_value:
            cols.setdefault(relation.key_column.lower(), (relation.key_column, KeyRef()))
        return Scope([ScopeEntry(alias, relation, cols)], windowed=relation.windowed)

    def entry(self, alias: str) -> ScopeEntry | None:
        for e in self.entries:
            if e.alias.lower() == alias.lower() or e.relation.name.lower() == alias.lower():
                return e
        return None

    def candidates(self, name: str) -> list[tuple[ScopeEntry, str, Expr]]:
        out = []
        for e in self.entries:
            hit = e.columns.get(name.lower())
            if hit is not None:
                out.append((e, hit[0], hit[1]))
        return out

    def all_names(self) -> list[str]:
        return [n for e in self.entries for n in e.names()]

    def key_only_columns(self) -> list[str]:
        return [f"{e.alias}.{n}" for e in self.entries for n, x in e.columns.values()
                if isinstance(x, KeyRef)]


@dataclass
class Frame:
    """Records flowing through one query: the DSL handle and what its columns are.

    ``key``: the expression the record key equals (``Col("id")`` when keyed by a value field,
    ``KeyRef()`` when the key column lives only in the key), or None when unknown.
    """

    handle: Any
    kind: str  # "stream" | "table"
    scope: Scope
    key: Expr | None = None
    windowed: bool = False
