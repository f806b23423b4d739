"""Table operators: source materialization, filter, map, re-grouping (group by, aggregate)."""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from ..ir.nodes import Source, TableAggregate, TableFilter, TableGroupBy, TableMap
from .aggregation import build_agg_ops
from .drops import Drops
from .processors import OpContext, Processor
from .records import Record

__all__ = ["TableSourceProcessor", "TableFilterProcessor", "TableMapProcessor", "Change",
           "TableGroupByProcessor", "TableAggregateProcessor"]


class TableSourceProcessor(Processor):
    """A table read from a changelog: every update (tombstones included) is forwarded;
    records with a null key are skipped. Upserts apply in processing order, so an older
    timestamp still overwrites (non-versioned table)."""

    def __init__(self, node: Source, ctx: OpContext):
        super().__init__(node, ctx)

    def process(self, port: str, rec: Record) -> list[Record]:
        if rec.key is None:
            self.ctx.skipped()
            return []
        return [rec]


class TableFilterProcessor(Processor):
    """A row failing the predicate is forwarded as a tombstone (Kafka's ``KTable.filter``);
    a tombstone passes. One loop (``_run``) serves every entry point."""

    def __init__(self, node: TableFilter, ctx: OpContext):
        super().__init__(node, ctx)
        fn = node.pred
        self._by_value = fn.expr is None and fn.arity == 1  # call the user's function directly
        self.pred = fn.func if self._by_value else fn.compile_kv()
        drops = Drops.of(node, [fn], ctx)
        #: counts a row deleted by a null predicate over a missing field
        self._null = drops.null if drops.fields else None

    def _run(self, items: Iterable[tuple[str, Record]], fail) -> list[Record]:
        by_value = self._by_value
        pred = self.pred
        null = self._null
        out: list[Record] = []
        append = out.append
        for _port, rec in items:
            v = rec.value
            if v is not None:
                try:
                    r = pred(v) if by_value else pred(rec.key, v)
                except Exception as e:
                    fail(rec, e)
                    continue
                if r is None or not r:
                    if r is None and null is not None:
                        null(v)
                    rec = Record(rec.key, None, rec.ts, rec.window, rec.origin)
            append(rec)
        return out


class TableMapProcessor(Processor):
    """Map a table's values; tombstones stay tombstones."""

    def __init__(self, node: TableMap, ctx: OpContext):
        super().__init__(node, ctx)
        self.fn = node.fn.compile_kv()
        self.window_columns = node.window_columns

    def process(self, port: str, rec: Record) -> list[Record]:
        if rec.value is None:
            return [rec]
        value = rec.value
        if self.window_columns is not None and rec.window is not None and isinstance(value, dict):
            value = {**value, self.window_columns[0]: rec.window[0],
                     self.window_columns[1]: rec.window[1]}
        return [Record(rec.key, self.fn(rec.key, value), rec.ts, rec.window, rec.origin)]


class Change(NamedTuple):
    """What a table re-grouping sends the new key's aggregate: ``op`` is ``"-"`` (subtract
    ``value``, the old row), ``"+"`` (add ``value``, the new row) or ``"-+"`` (``value`` is
    ``(old, new)``, both rows in this group: subtract and add, forwarded once)."""

    op: str
    value: Any


class TableGroupByProcessor(Processor):
    """``table.group_by(f)``: for each row update, the old row as a ``Change("-", old)`` keyed
    by its group, then the new row as a ``Change("+", new)`` keyed by its group (Kafka Streams'
    ``KTableRepartitionMap``). When the old and the new row are in the same group, one
    ``Change("-+", (old, new))`` is sent, so that the group is updated and forwarded once (Kafka
    Streams 3.5+, KIP-904). A tombstone sends only the subtraction; a row whose group key is
    None is skipped (counted)."""

    def __init__(self, node: TableGroupBy, ctx: OpContext):
        super().__init__(node, ctx)
        self.group = node.group_key.compile_kv()
        self.rows = ctx.stores.kv("rows")  # source key -> value

    def _run(self, items: Iterable[tuple[str, Record]], fail) -> list[Record]:
        rows = self.rows.data
        get = rows.get
        group = self.group
        skipped = self.ctx.skipped
        out: list[Record] = []
        append = out.append
        for _port, rec in items:
            k = rec.key
            if k is None:
                skipped()
                continue
            try:
                old = get(k)
                new = rec.value
                g_old = group(k, old) if old is not None else None
                g_new = group(k, new) if new is not None else None
                if g_old is not None and g_old == g_new:
                    append(Record(g_new, Change("-+", (old, new)), rec.ts, None, rec.origin))
                else:
                    if g_old is not None:
                        append(Record(g_old, Change("-", old), rec.ts, None, rec.origin))
                    if new is not None:
                        if g_new is None:
                            skipped()
                        else:
                            append(Record(g_new, Change("+", new), rec.ts, None, rec.origin))
                if new is None:
                    rows.pop(k, None)
                else:
                    rows[k] = new
            except Exception as e:
                fail(rec, e)
        return out


class TableAggregateProcessor(Processor):
    """``table.group_by(f).agg(...)``: applies the changes of a ``TableGroupBy`` to the
    aggregate of their key, forwarding each result, once for a ``"-+"`` update (a subtraction
    from a group with no aggregate changes nothing). A count that reaches 0 is a value, not a
    tombstone."""

    def __init__(self, node: TableAggregate, ctx: OpContext):
        super().__init__(node, ctx)
        self.ops = build_agg_ops(node.aggregator)
        self.aggs = ctx.stores.kv("aggregates")  # group key -> (agg, max_ts)

    def _run(self, items: Iterable[tuple[str, Record]], fail) -> list[Record]:
        data = self.aggs.data
        get = data.get
        init, add, sub, result = self.ops.init, self.ops.add, self.ops.subtract, self.ops.result
        out: list[Record] = []
        append = out.append
        for _port, rec in items:
            try:
                g = rec.key
                op, value = rec.value
                cur = get(g)
                ts = rec.ts
                if op == "-+":
                    old, new = value
                    agg = add(init(), new) if cur is None else add(sub(cur[0], old), new)
                elif op == "-":
                    if cur is None:
                        continue  # a subtraction from a group with no aggregate
                    agg = sub(cur[0], value)
                else:
                    agg = add(init(), value) if cur is None else add(cur[0], value)
                if cur is not None and cur[1] > ts:
                    ts = cur[1]
                data[g] = (agg, ts)
                append(Record(g, result(agg), ts, None, rec.origin))
            except Exception as e:
                fail(rec, e)
        return out
