"""Records dropped because of what they hold, counted where they are dropped (never silently).

Two rules, the same on every backend and every fast path (docs/semantics.md, "Dropped
records"):

* **Missing fields.** A filter (stream or table), a branch with no ``otherwise``, or a
  ``group_by`` drops a record whose expression is null (``None``: unknown) because a field it
  reads is absent from the value, or the value is not a mapping (``None``, a number, ...).
  Each such record is counted in ``Metrics.missing_field`` under the operator, the field and
  what the value was; the run warns once per operator and field (``drop_warnings``). A
  present field holding ``None`` is SQL's null, not a missing field: not counted. Opaque
  callables are not looked into.
* **Null keys.** ``group_by`` drops a record whose new key is ``None``; it is counted as
  ``skipped`` under the ``group_by``'s operator, as the aggregations count theirs (Kafka
  Streams' dropped-records sensor).

The checks run only on the drop path: a record that passes costs nothing more.

>>> missing_field(("amount",), {"amount": None}) is None   # present: SQL null
True
>>> missing_field(("amount", "cur"), {"amount": 1}), missing_field(("amount",), 5)
(('cur', 'missing'), ('amount', 'int'))
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..ir.fn import Fn
    from ..ir.plan import Plan
    from .metrics import Metrics
    from .processors import OpContext

__all__ = ["missing_field", "Drops", "drop_warnings", "DroppedRecordsWarning", "MISSING",
           "NULL_VALUE"]

#: ``Metrics.missing_field_by_node`` kind of a mapping without the field
MISSING = "missing"
#: kind of a ``None`` value (a tombstone reaching a stream operator)
NULL_VALUE = "null"


class DroppedRecordsWarning(UserWarning):
    """A run dropped records whose expressions read fields they do not have."""


def missing_field(fields: tuple[str, ...], value: Any) -> tuple[str, str] | None:
    """``(field, kind)`` of the first of ``fields`` that ``value`` lacks, or None: kind
    ``"missing"`` for a mapping without it, ``"null"`` for a ``None`` value, else the type
    name of a value that is not a mapping (and has no attribute of that name, which
    expressions also read)."""
    if isinstance(value, dict):
        for f in fields:
            if f not in value:
                return f, MISSING
        return None
    if fields and value is None:
        return fields[0], NULL_VALUE
    for f in fields:
        if not hasattr(value, f):
            return f, type(value).__name__
    return None


def fields_of(fn: "Fn | None") -> tuple[str, ...]:
    """The fields an expression reads, sorted (none for an opaque callable)."""
    if fn is None or fn.expr is None:
        return ()
    return tuple(sorted(fn.expr.fields()))


class Drops:
    """The drop counters of one stage (by its own name: a stage inside a fused chain is
    counted as itself), called only when the stage drops a record.

    ``ctx`` is read at each call: a backend may swap its metrics between batches."""

    __slots__ = ("ctx", "name", "fields")

    def __init__(self, name: str, fields: tuple[str, ...], ctx: "OpContext | None"):
        self.ctx = ctx
        self.name = name
        self.fields = fields

    @classmethod
    def of(cls, stage: Any, fns: "list[Fn | None]", ctx: "OpContext | None") -> "Drops":
        fields: set[str] = set()
        for fn in fns:
            fields.update(fields_of(fn))
        return cls(stage.name, tuple(sorted(fields)), ctx)

    def null(self, value: Any) -> None:
        """A record dropped by a null (unknown) result: counted if a field was missing."""
        if self.fields and self.ctx is not None:
            got = missing_field(self.fields, value)
            if got is not None:
                self.ctx.metrics.record_missing(self.name, got[0], got[1])

    def null_key(self, value: Any) -> None:
        """A record dropped by ``group_by`` for its null key: skipped, and missing if so."""
        if self.ctx is not None:
            self.ctx.metrics.record_skipped(self.name)
            if self.fields:
                got = missing_field(self.fields, value)
                if got is not None:
                    self.ctx.metrics.record_missing(self.name, got[0], got[1])

    def null_many(self, values: list) -> None:
        for v in values:
            self.null(v)

    def null_keys(self, values: list) -> None:
        for v in values:
            self.null_key(v)


def drop_warnings(plan: "Plan", metrics: "Metrics") -> list[str]:
    """One line per operator and field whose records were dropped for a missing field
    (``Metrics.missing_field_by_node``), naming the user's file:line, in file:line order.

    >>> import streamdsl as sd
    >>> from streamdsl.runtime.metrics import Metrics
    >>> t = sd.Topology("t"); t.stream("in").filter(sd.col("amount") > 1, name="big").to("out")
    >>> m = Metrics(); m.record_missing("big", "amount", "missing"); m.record_missing("big", "amount", "missing")
    >>> [line.split(": ", 1)[1] for line in drop_warnings(t.plan(), m)]
    ["warning: Filter 'big' dropped 2 records whose value has no field 'amount' (its predicate is null); check the field name, or test it with sd.col('amount').is_null()"]
    """
    out = []
    nodes = {}
    for n in plan.nodes():
        for st in getattr(n, "stages", (n,)):
            nodes[st.name] = st
    def by_site(item: tuple) -> tuple:
        (name, field, kind), _ = item
        site = getattr(nodes.get(name), "site", None) or ""
        path, _, line = site.rpartition(":")
        return (path, int(line) if line.isdigit() else 0, name, field, kind)
    for (name, field, kind), n in sorted(metrics.missing_field_by_node.items(), key=by_site):
        node = nodes.get(name)
        kind_name = node.kind if node is not None else "operator"
        if kind_name == "KeyBy" and getattr(node, "drop_null", False):
            kind_name = "group_by"
        what = f"{kind_name} {name!r}"
        site = _short(node.site) if node is not None and node.site else "<topology>"
        records = f"{n} record{'s' * (n != 1)}"
        if kind == MISSING:
            whose = f"whose value has no field {field!r}"
        elif kind == NULL_VALUE:
            whose = f"whose value is None (it reads field {field!r})"
        else:
            whose = f"whose value is a {kind}, not a mapping with field {field!r}"
        why = ("its key is null" if node is not None and node.kind == "KeyBy"
               else "its predicate is null")
        out.append(f"{site}: warning: {what} dropped {records} {whose} ({why}); check the "
                   f"field name, or test it with sd.col({field!r}).is_null()")
    return out


def _short(site: str) -> str:
    path, sep, line = site.rpartition(":")
    if not sep or not line.isdigit():
        return site
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return site
    return site if rel.startswith("..") else f"{rel}:{line}"


def warn_drops(plan: "Plan", metrics: "Metrics") -> None:
    """Issue ``drop_warnings`` as ``DroppedRecordsWarning`` s (what a finished run does)."""
    import warnings
    for line in drop_warnings(plan, metrics):
        warnings.warn(DroppedRecordsWarning(line), stacklevel=2)
