"""One SELECT: FROM and joins, WHERE, PARTITION BY or GROUP BY, HAVING, and the projection
that decides the records' key and value, by ksqlDB's rules:

* the key columns of a query's result are chosen by its projection: a source key column (or
  join key, ``PARTITION BY`` expression, ``GROUP BY`` expression) selected as it is, under any
  alias, goes to the record key and is never repeated in the value; everything else selected
  is the value. A stream query that selects no key column writes a null key; a table query,
  a ``GROUP BY``, a ``PARTITION BY`` and a join must select their key (an error names it).
* ``PARTITION BY e`` makes ``e`` the key; the old key columns, if selected, move to the value.
* ``GROUP BY a, b`` keys the result by ``{"A": a, "B": b}`` (one column: the bare value).
* a ``HAVING`` (and a ``WHERE`` over a table) deletes only rows that existed
  (``changes.only_changes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lark import Token, Tree

from ..dsl.table import Table
from ..expr import BinOp, Case, Col, Expr, Func, IsTombstone, KeyRef, Lit, Not, Project
from ..ir.fn import Fn
from ..ir.nodes import TableMap
from ..windows import hopping, session, tumbling
from .catalog import Column, Frame, same_expr
from .building import duration, value_struct
from .changes import only_changes
from .expressions import (WINDOW_COLUMNS, AggRegistry, ExprCompiler, contains_aggregate, item_name,
                          is_aggregate_call, is_table_function_call, name_of)
from .functions import SUBTRACTABLE
from .joins import JoinCompiler

if TYPE_CHECKING:
    from .compiler import Compiler

__all__ = ["QueryResult", "QueryCompiler", "subtree", "subtrees"]

#: ksqlDB's window grace when a window does not give GRACE PERIOD
DEFAULT_GRACE_MS = 86_400_000


@dataclass
class QueryResult:
    """What a query produces: a DSL handle and the shape of its records."""

    handle: Any
    kind: str  # "stream" | "table"
    keys: tuple[Column, ...]
    values: tuple[Column, ...]
    windowed: str | None = None
    window: Any = None
    sources: tuple[str, ...] = ()  # the relations it reads, in FROM order


@dataclass
class _Item:
    """One SELECT item once named: ``expr`` reads it; ``key``: it is (the index of) a key column."""

    name: str
    expr: Expr
    node: Any
    key: int | None = None


def subtree(t: Tree, data: str) -> Tree | None:
    for c in t.children:
        if isinstance(c, Tree) and c.data == data:
            return c
    return None


def subtrees(t: Tree, data: str) -> list[Tree]:
    return [c for c in t.children if isinstance(c, Tree) and c.data == data]


def conjuncts(t: Tree) -> list[Tree]:
    """The top-level AND terms of a condition, in order."""
    if isinstance(t, Tree) and t.data == "and_expr":
        out: list[Tree] = []
        for c in t.children:
            if isinstance(c, Tree):
                out += conjuncts(c)
        return out
    return [t]


class QueryCompiler:
    """Compiles one ``query`` subtree for the statement compiler ``c``."""

    def __init__(self, c: "Compiler", q: Tree):
        self.c = c
        self.q = q
        self.items = [x for x in q.children if isinstance(x, Tree) and x.data.startswith("select_")]
        self.where_t = subtree(q, "where_clause")
        self.window_t = subtree(q, "window_clause")
        self.group_t = subtree(q, "group_by")
        self.partition_t = subtree(q, "partition_by")
        self.having_t = subtree(q, "having")
        self.emit_t = next((x for x in q.children if isinstance(x, Tree) and x.data.startswith("emit_")),
                           None)

    def error(self, msg: str, node: Any) -> Exception:
        return self.c.error(msg, node)

    def compiler(self, frame: Frame, clause: str, **kw: Any) -> ExprCompiler:
        return ExprCompiler(frame.scope, clause, self.c.error, self.c.text,
                            rowkey=KeyRef() if frame.synthetic else None, **kw)

    # ---- the query ----------------------------------------------------------------------------
    def run(self) -> QueryResult:
        result = self._run()
        result.sources = tuple(self.sources)
        return result

    def _run(self) -> QueryResult:
        conj = conjuncts(self.where_t.children[1]) if self.where_t is not None else []
        n_conj = len(conj)
        joins = JoinCompiler(self)
        frame = joins.from_clause(subtree(self.q, "from_clause"), conj)  # may apply some conjuncts
        self.sources = joins.sources
        if self.where_t is not None and conj:
            where = self.compiler(frame, "WHERE")
            cond_t = self.where_t.children[1] if len(conj) == n_conj else conj[0]
            cond = where.compile(cond_t)
            if len(conj) != n_conj:
                for x in conj[1:]:
                    cond = BinOp("and", cond, where.compile(x))
            with self.c.at(cond_t):
                if frame.kind == "table":
                    frame.handle = only_changes(frame.handle, cond, frame.window)
                else:
                    # a tombstone has no columns to test: ksqlDB's WHERE drops it
                    frame.handle = frame.handle.filter(BinOp("and", Not(IsTombstone()), cond))

        has_aggs = any(contains_aggregate(i) for i in self.items) or self.having_t is not None
        if self.group_t is not None or has_aggs:
            if self.group_t is None:
                node = self.having_t if self.having_t is not None else next(
                    i for i in self.items if contains_aggregate(i))
                raise self.error("aggregate functions need GROUP BY (streamdsl aggregates per key)",
                                 node)
            if self.partition_t is not None:
                raise self.error("PARTITION BY cannot be combined with GROUP BY (the GROUP BY "
                                 "columns are the key)", self.partition_t)
            return self._aggregate(frame)
        for clause, what in ((self.window_t, "WINDOW"), (self.having_t, "HAVING")):
            if clause is not None:
                raise self.error(f"{what} needs GROUP BY (a windowed or filtered aggregation)", clause)
        if self.emit_t is not None and self.emit_t.data == "emit_final":
            raise self.error("EMIT FINAL needs a windowed aggregation (WINDOW ... GROUP BY ...); "
                             "use EMIT CHANGES", self.emit_t)
        if self.partition_t is not None:
            return self._partition(frame)
        return self._project(frame)

    # ---- SELECT items -------------------------------------------------------------------------
    def _expand(self, frame: Frame) -> list[tuple[Any, Tree | None, Any]]:
        """The select items with ``*`` / ``alias.*`` expanded: ``(expr tree or Expr, alias
        tree, node)``; an expanded column is given as ``(name, Expr)`` already resolved."""
        out: list[tuple[Any, Tree | None, Any]] = []
        for it in self.items:
            if it.data in ("select_all", "select_all_of"):
                entries = frame.scope.entries
                if it.data == "select_all_of":
                    alias = name_of(it.children[0])
                    e = frame.scope.entry(alias)
                    if e is None:
                        raise self.error(f"unknown stream or alias {alias!r} in SELECT", it.children[0])
                    entries = [e]
                elif frame.synthetic:
                    out.append((("ROWKEY", KeyRef()), None, it))
                for e in entries:
                    for n, x in e.columns.items():
                        name = f"{e.alias}_{n}" if frame.joined else n
                        out.append(((name, x), None, it))
                continue
            expr_t = it.children[0]
            alias_t = next((x for x in it.children[1:] if isinstance(x, Tree) and x.data == "name"),
                           None)
            out.append((expr_t, alias_t, it))
        return out

    def _names(self, expanded: list, taken: set[str], frame: Frame) -> list[str]:
        """Each item's output name: its alias, its column's name, or KSQL_COL_n (n counting the
        unaliased expressions, skipping names the sources already use)."""
        names = []
        generated = 0
        for expr_t, alias_t, _ in expanded:
            if isinstance(expr_t, tuple):
                names.append(expr_t[0])
                continue
            if alias_t is not None:
                names.append(name_of(alias_t))
                continue
            n = item_name(expr_t, frame.scope if frame.joined else None)
            if n is None:
                while True:
                    n = f"KSQL_COL_{generated}"
                    generated += 1
                    if n not in taken:
                        break
            names.append(n)
        return names

    def _check_unique(self, items: list[_Item]) -> None:
        seen: dict[str, Any] = {}
        for it in items:
            if it.name in seen:
                raise self.error(f"column name {it.name!r} appears twice in the SELECT list; rename "
                                 "one with AS", it.node)
            seen[it.name] = it.node

    @staticmethod
    def _is_plain(expr_t: Any) -> bool:
        return isinstance(expr_t, tuple) or (isinstance(expr_t, Tree) and expr_t.data == "column_ref")

    # ---- a projection ---------------------------------------------------------------------------
    def _project(self, frame: Frame) -> QueryResult:
        """No aggregate, no PARTITION BY: the key stays; selected key columns name it."""
        self._frame = frame
        compiler = self.compiler(frame, "SELECT", window_ok=frame.kind == "table" and bool(frame.windowed))
        expanded = self._expand(frame)
        names = self._names(expanded, set(frame.scope.all_names()), frame)
        items: list[_Item] = []
        exploded: list[tuple[_Item, Expr]] = []
        keys = self._key_candidates(frame)
        for (expr_t, alias_t, node), name in zip(expanded, names):
            if isinstance(expr_t, tuple):
                expr = expr_t[1]
            elif is_table_function_call(expr_t):
                args = expr_t.children[1:]
                if len(args) != 1:
                    raise self.error(f"EXPLODE takes one argument (an array), got {len(args)}", expr_t)
                item = _Item(name, Lit(None), alias_t or node)
                exploded.append((item, compiler.compile(args[0])))
                items.append(item)
                continue
            else:
                expr = compiler.compile(expr_t)
            item = _Item(name, expr, alias_t if alias_t is not None else node)
            if self._is_plain(expr_t):
                item.key = self._key_index(frame, expr, keys)
            items.append(item)
        self._check_unique(items)
        key_items = self._one_per_key(items, keys)
        if frame.joined and not key_items and keys:
            raise self.error(self._missing_join_key(frame), self.items[0])
        if frame.kind == "table" and len(key_items) < len(keys):
            missing = [self._key_label(frame, i) for i in range(len(keys))
                       if all(it.key != i for it in key_items)]
            raise self.error(f"the query must select the table's key column {', '.join(missing)}: "
                             "a table's rows are keyed by it (SELECT "
                             f"{', '.join(missing)}, ...)", self.items[0])
        values = [it for it in items if it.key is None]
        key_cols = tuple(Column(it.name) for it in key_items)
        value_cols = tuple(Column(it.name) for it in values)
        pairs = [(it.name, it.expr) for it in values]
        key = self._key_of(key_items, keys)
        if exploded:
            return self._explode(frame, exploded, pairs, key_cols, value_cols, key)
        stream = frame.kind == "stream"
        fn = value_struct(pairs, stream)
        node = values[0].node if values else self.items[0]
        with self.c.at(node):
            if not stream:
                handle = self._table_map(frame.handle, fn, WINDOW_COLUMNS if compiler.uses_window else None)
            elif key is None:
                handle = frame.handle.map(fn)
            else:
                handle = frame.handle.map_kv(Func("kv", (key, fn)))
        return QueryResult(handle, frame.kind, key_cols, value_cols, frame.windowed, frame.window)

    @staticmethod
    def _key_index(frame: Frame, expr: Expr, keys: list[Expr]) -> int | None:
        """Which key column a selected column is (a join: its key, named by a join column)."""
        if frame.joined:
            if isinstance(expr, KeyRef) or any(same_expr(expr, e) for _, _, e in frame.join_keys):
                return 0
            return None
        return next((i for i, k in enumerate(keys) if same_expr(expr, k)), None)

    def _key_candidates(self, frame: Frame) -> list[Expr]:
        """How each key column of ``frame`` is read (a join: its key, once)."""
        if frame.joined:
            return [KeyRef()]
        return [e.columns[k] for e in frame.scope.entries[:1] for k in e.keys]

    def _key_label(self, frame: Frame, i: int) -> str:
        if frame.joined:
            return "ROWKEY" if frame.synthetic else " or ".join(f"{a}.{n}" for a, n, _ in frame.join_keys)
        return frame.scope.entries[0].keys[i]

    def _missing_join_key(self, frame: Frame) -> str:
        if frame.synthetic:
            return ("the query must select the join's key, ROWKEY (the join criteria compare no "
                    "source column, or it is a FULL OUTER join, so ksqlDB names the key ROWKEY): "
                    "add ROWKEY to the SELECT list (it may be aliased)")
        cols = " or ".join(f"{a}.{n}" for a, n, _ in frame.join_keys)
        return f"the query must select the join expression {cols} (the result's key)"

    def _one_per_key(self, items: list[_Item], keys: list[Expr]) -> list[_Item]:
        """The items that name the key columns; a key column selected twice is an error, a
        second join key candidate (both sides of an inner join) stays in the value."""
        chosen: dict[int, _Item] = {}
        if any(it.key is not None for it in items):
            first_choice = self._preferred_key(items)
            if first_choice is not None:
                chosen[first_choice.key] = first_choice  # type: ignore[index]
        for it in items:
            if it.key is None or chosen.get(it.key) is it:
                continue
            if it.key in chosen:
                first = chosen[it.key]
                if same_expr(first.expr, it.expr):
                    raise self.error(f"the projection contains a key column more than once: "
                                     f"{first.name} and {it.name}", it.node)
                it.key = None  # the other side's join column: a value like any other
                continue
            chosen[it.key] = it
        return [chosen[i] for i in sorted(chosen)]

    def _preferred_key(self, items: list[_Item]) -> _Item | None:
        """In a join, the left side's join column names the key when it is selected."""
        frame = getattr(self, "_frame", None)
        if frame is None or not frame.joined or not frame.join_keys:
            return None
        left = frame.join_keys[0][2]
        return next((it for it in items if it.key is not None and same_expr(it.expr, left)), None)

    def _key_of(self, key_items: list[_Item], keys: list[Expr]) -> Expr | None:
        """The expression the output key must be built from, or None when the record key is
        already right (every key column selected, under its own names)."""
        if not keys or not key_items:
            # no key column: the records keep theirs, which no later query can read, and the
            # sink writes a null key (Compiler._formatted)
            return None
        if len(keys) == 1:
            return None
        # several key columns: the key rebuilt as a struct of the selected ones, under their
        # names (a source's key object may spell them otherwise, and must become hashable)
        args: list[Expr] = []
        for it in key_items:
            args += [Lit(it.name), keys[it.key]]  # type: ignore[index]
        return Case(((Func("is_null", (KeyRef(),)), Lit(None)),), Func("make_key", tuple(args)))

    def _explode(self, frame: Frame, exploded: list, pairs: list, key_cols: tuple,
                 value_cols: tuple, key: Expr | None) -> QueryResult:
        (item, values), *more = exploded
        if more:
            raise self.error("only one EXPLODE per SELECT list is supported", more[0][0].node)
        if frame.kind != "stream":
            raise self.error("EXPLODE applies to streams (a table row cannot become several)",
                             item.node)
        # one output row per element: the projection with the element in the EXPLODE column
        fn = Func("explode", (values, Lit(item.name), value_struct(pairs, False)))
        with self.c.at(item.node):
            handle = frame.handle.flat_map(Case(((IsTombstone(), Lit(None)),), fn))
            if key is not None:
                handle = handle.map_kv(Func("kv", (key, Project(tuple(c.name for c in value_cols)))))
        return QueryResult(handle, "stream", key_cols, value_cols)

    def _table_map(self, table: Table, fn: Expr, window_columns: tuple[str, str] | None) -> Table:
        if window_columns is None:
            return table.map(fn)
        # Table.map has no window parameter: add the node the way Table._then does.
        from ..callsite import user_site
        node = self.c.topo._add(TableMap, [(table.node_name, "in", None)], name=None, site=user_site(),
                                fn=Fn(expr=fn), window_columns=window_columns)
        return Table(self.c.topo, node.name, windowed=table._windowed)

    # ---- PARTITION BY ----------------------------------------------------------------------------
    def _partition(self, frame: Frame) -> QueryResult:
        if frame.kind != "stream":
            raise self.error("PARTITION BY applies to streams; a table is keyed by its PRIMARY KEY",
                             self.partition_t)
        exprs = self.partition_t.children[2:]
        if len(exprs) > 1:
            return self._partition_many(frame, exprs)
        part_t = exprs[0]
        pc = self.compiler(frame, "PARTITION BY")
        new_key = pc.compile(part_t)
        null_key = isinstance(new_key, Lit) and new_key.value is None
        key_name = (item_name(part_t, frame.scope if frame.joined else None)
                    if part_t.data == "column_ref" else None)
        compiler = self.compiler(frame, "SELECT")
        expanded = []
        old_keys = set(frame.scope.entries[0].keys) if not frame.joined else set()
        for expr_t, alias_t, node in self._expand(frame):
            if isinstance(expr_t, tuple) and self.items[0].data == "select_all" and \
                    same_expr(expr_t[1], new_key) and not null_key:
                continue  # SELECT *: the new key is the key, not also a value column
            expanded.append((expr_t, alias_t, node))
        # SELECT *: the old key columns move to the end of the value, as ksqlDB orders them
        expanded.sort(key=lambda x: isinstance(x[0], tuple) and x[0][0] in old_keys)
        if self.items[0].data == "select_all" and len(self.items) == 1 and not null_key \
                and key_name is None:
            expanded.insert(0, (part_t, None, self.items[0]))  # SELECT *: the key column first
        names = self._names(expanded, set(frame.scope.all_names()), frame)
        items: list[_Item] = []
        for (expr_t, alias_t, node), name in zip(expanded, names):
            expr = expr_t[1] if isinstance(expr_t, tuple) else compiler.compile(expr_t)
            item = _Item(name, expr, alias_t if alias_t is not None else node)
            if not null_key and same_expr(expr, new_key) and (
                    not isinstance(expr_t, tuple) or key_name is None):
                item.key = 0
            items.append(item)
        if key_name is not None and self.items[0].data == "select_all" and not null_key:
            items.insert(0, _Item(key_name, new_key, self.items[0], 0))
        self._check_unique(items)
        key_items = [it for it in items if it.key == 0]
        if len(key_items) > 1:
            raise self.error(f"the projection contains the key column more than once: "
                             f"{key_items[0].name} and {key_items[1].name}", key_items[1].node)
        if not key_items and not null_key:
            raise self.error(f"the query must select the PARTITION BY expression "
                             f"{self.c.text_of(part_t)} (the new key); it may be aliased",
                             self.items[0])
        values = [it for it in items if it.key is None]
        fn = value_struct([(it.name, it.expr) for it in values], True)
        key = new_key
        if new_key.fields():
            # a tombstone's value columns are unknown, not NULL: ksqlDB gives it a null key
            key = Case(((IsTombstone(), Lit(None)),), new_key)
        with self.c.at(part_t):
            handle = frame.handle.map_kv(Func("kv", (key, fn)))
        keys = () if null_key else (Column(key_items[0].name),)
        return QueryResult(handle, "stream", keys, tuple(Column(it.name) for it in values))

    def _partition_many(self, frame: Frame, exprs: list) -> QueryResult:
        """``PARTITION BY a, b``: the key is the struct ``{A: a, B: b}`` of the selected items."""
        pc = self.compiler(frame, "PARTITION BY")
        parts = [pc.compile(t) for t in exprs]
        compiler = self.compiler(frame, "SELECT")
        expanded = self._expand(frame)
        old_keys = set(frame.scope.entries[0].keys) if not frame.joined else set()
        star = self.items[0].data == "select_all" and len(self.items) == 1
        if star:
            # SELECT *: the partitioning columns are the key, the rest (old keys last) the value
            expanded = [x for x in expanded if not any(same_expr(x[0][1], p) for p in parts)]
            expanded.sort(key=lambda x: isinstance(x[0], tuple) and x[0][0] in old_keys)
            expanded = [(t, None, self.items[0]) for t in exprs] + expanded
        names = self._names(expanded, set(frame.scope.all_names()), frame)
        items: list[_Item] = []
        for (expr_t, alias_t, node), name in zip(expanded, names):
            expr = expr_t[1] if isinstance(expr_t, tuple) else compiler.compile(expr_t)
            idx = next((i for i, p in enumerate(parts) if same_expr(expr, p)), None)
            items.append(_Item(name, expr, alias_t if alias_t is not None else node, idx))
        self._check_unique(items)
        chosen: dict[int, _Item] = {}
        for it in items:
            if it.key is not None:
                if it.key in chosen:
                    raise self.error(f"the projection contains a key column more than once: "
                                     f"{chosen[it.key].name} and {it.name}", it.node)
                chosen[it.key] = it
        missing = [self.c.text_of(exprs[i]) for i in range(len(parts)) if i not in chosen]
        if missing:
            raise self.error(f"the query must select the PARTITION BY expressions "
                             f"{', '.join(missing)} (the new key); they may be aliased", self.items[0])
        key_items = [it for it in items if it.key is not None]
        values = [it for it in items if it.key is None]
        args: list[Expr] = []
        for it in key_items:
            args += [Lit(it.name), it.expr]
        # on a tombstone the value columns read NULL and the key columns their key (ksqlDB)
        key = Func("make_key", tuple(args))
        fn = value_struct([(it.name, it.expr) for it in values], True)
        with self.c.at(exprs[0]):
            handle = frame.handle.map_kv(Func("kv", (key, fn)))
        return QueryResult(handle, "stream", tuple(Column(it.name) for it in key_items),
                           tuple(Column(it.name) for it in values))

    # ---- GROUP BY ----------------------------------------------------------------------------------
    def _aggregate(self, frame: Frame) -> QueryResult:
        items_t = self.group_t.children[2]
        group_ts = [x for x in items_t.children if isinstance(x, Tree) or isinstance(x, Token)]
        group_ts = [x for x in group_ts if isinstance(x, Tree)]
        row = self.compiler(frame, "GROUP BY")
        groups = [row.compile(g) for g in group_ts]
        for i, g in enumerate(groups):
            for j in range(i):
                if same_expr(g, groups[j]):
                    raise self.error(f"duplicate GROUP BY expression {self.c.text_of(group_ts[i])}",
                                     group_ts[i])
        emit = "final" if self.emit_t is not None and self.emit_t.data == "emit_final" else "changes"
        if emit == "final" and self.window_t is None:
            raise self.error("EMIT FINAL needs a WINDOW (a non-windowed aggregate never closes)",
                             self.emit_t)
        windowed = self.window_t is not None
        if frame.kind == "table" and windowed:
            raise self.error("WINDOW applies to streams; a table aggregation is not windowed",
                             self.window_t)

        if self._aggregates_read_key(frame):
            # aggregates see only the value, and the grouped record's key is the group's:
            # copy the source's key columns into the value first
            self._keys_into_value(frame)
            groups = [self.compiler(frame, "GROUP BY").compile(g) for g in group_ts]
        # the key columns: the select items that are GROUP BY expressions, named by them
        sel = self.compiler(frame, "SELECT")
        expanded = self._expand(frame)
        names = self._names(expanded, set(frame.scope.all_names()), frame)
        key_names: dict[int, str] = {}
        key_nodes: dict[int, Any] = {}
        is_key_item: list[int | None] = []
        for (expr_t, alias_t, node), name in zip(expanded, names):
            idx = None
            if isinstance(expr_t, tuple):
                e = expr_t[1]
                idx = next((i for i, g in enumerate(groups) if same_expr(e, g)), None)
                if idx is None:
                    raise self.error(f"SELECT * selects {expr_t[0]}, which is not part of GROUP BY",
                                     node)
            elif not contains_aggregate(expr_t) and not self._is_as_value(expr_t) \
                    and not self._uses_window(expr_t):
                try:
                    e = sel.compile(expr_t)
                except Exception:
                    e = None
                if e is not None:
                    idx = next((i for i, g in enumerate(groups) if same_expr(e, g)), None)
            if idx is not None and idx in key_names:
                raise self.error(f"the projection contains a key column more than once: "
                                 f"{key_names[idx]} and {name}", alias_t or node)
            if idx is not None:
                key_names[idx] = name
                key_nodes[idx] = alias_t or node
            is_key_item.append(idx)
        missing = [self.c.text_of(group_ts[i]) for i in range(len(groups)) if i not in key_names]
        if missing:
            raise self.error(f"the query must select the GROUP BY expression{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)} (the key of its rows); it may be aliased",
                             self.items[0])
        single = len(groups) == 1
        reads = [KeyRef() if single else Func("key_field", (KeyRef(), Lit(key_names[i])))
                 for i in range(len(groups))]

        registry = AggRegistry()
        agg = self.compiler(frame, "SELECT", aggs=registry, groups=list(zip(groups, reads)),
                            window_ok=windowed)
        values: list[_Item] = []
        for (expr_t, alias_t, node), name, idx in zip(expanded, names, is_key_item):
            if idx is not None:
                continue
            preferred = name if is_aggregate_call(expr_t) else None
            values.append(_Item(name, agg.compile(expr_t, preferred), alias_t if alias_t is not None else node))
        self._check_unique([_Item(key_names[i], KeyRef(), key_nodes[i]) for i in sorted(key_names)]
                           + values)
        having = None
        if self.having_t is not None:
            hc = self.compiler(frame, "HAVING", aggs=registry, groups=list(zip(groups, reads)),
                               window_ok=windowed)
            having = hc.compile(self.having_t.children[1])
        if not registry.fields:
            node = self.having_t if self.having_t is not None else self.group_t
            raise self.error("GROUP BY needs at least one aggregate in the SELECT list or HAVING "
                             "(COUNT(*), SUM(col), ...)", node)
        if not values:
            raise self.error("the projection contains no value columns: select an aggregate (or "
                             "AS_VALUE(key)) besides the GROUP BY columns", self.items[0])
        if frame.kind == "table":
            for n, a, sql in registry.fields:
                if a.kind not in SUBTRACTABLE:
                    raise self.error(f"{sql} cannot be computed over a table (rows are updated and "
                                     "deleted, so it must be subtractable); use "
                                     "COUNT, SUM, AVG, COLLECT_LIST or HISTOGRAM", self.group_t)

        # a key must hash (state is kept per key): an array or struct becomes a hashable one
        group_key = Func("as_key", (groups[0],)) if single else Func("struct_key", tuple(
            x for i, g in enumerate(groups) for x in (Lit(key_names[i]), g)))
        with self.c.at(group_ts[0]):
            grouped = frame.handle.group_by(group_key)
        win = None
        if windowed:
            win = self.window(self.window_t.children[1])
            with self.c.at(self.window_t):
                grouped = grouped.window(win, emit=emit)
        agg_node = next((it.node for it in values if is_aggregate_call(self._tree_of(it.node))),
                        self.items[0])
        with self.c.at(agg_node):
            table = grouped.agg(**{n: a for n, a, _ in registry.fields})
        if having is not None:
            with self.c.at(self.having_t.children[1]):
                table = only_changes(table, having, win)
        elide = [(it.name, it.expr.name if isinstance(it.expr, Col) else None) for it in values] \
            == [(n, n) for n, _, _ in registry.fields]
        if not elide:
            fn = value_struct([(it.name, it.expr) for it in values], False)
            with self.c.at(values[0].node):
                table = self._table_map(table, fn, WINDOW_COLUMNS if agg.uses_window else None)
        kind = self.window_kind(win) if windowed else None
        keys = tuple(Column(key_names[i]) for i in range(len(groups)))
        return QueryResult(table, "table", keys, tuple(Column(it.name) for it in values), kind, win)

    def _aggregates_read_key(self, frame: Frame) -> bool:
        trees = list(self.items) + ([self.having_t] if self.having_t is not None else [])
        row = self.compiler(frame, "SELECT")
        for t in trees:
            for call in t.iter_subtrees():
                if is_aggregate_call(call) and call.data == "call" and len(call.children) > 1 \
                        and not contains_aggregate(call.children[1]):  # nested: an error later
                    if row.compile(call.children[1]).uses_key():
                        return True
        return False

    def _keys_into_value(self, frame: Frame) -> None:
        (entry,) = frame.scope.entries
        pairs = list(entry.columns.items())
        with self.c.at(self.group_t):
            frame.handle = frame.handle.map(value_struct(pairs, frame.kind == "stream"))
        entry.columns = {n: Col(n) for n in entry.columns}
        frame.key_equal = []

    @staticmethod
    def _tree_of(node: Any) -> Any:
        if isinstance(node, Tree) and node.data == "select_expr":
            return node.children[0]
        return node

    @staticmethod
    def _is_as_value(t: Any) -> bool:
        return (isinstance(t, Tree) and t.data == "call"
                and name_of(t.children[0]) == "AS_VALUE")

    @staticmethod
    def _uses_window(t: Any) -> bool:
        return any(isinstance(x, Tree) and x.data == "column_ref" and len(x.children) == 1
                   and name_of(x.children[0]) in WINDOW_COLUMNS for x in t.iter_subtrees()) \
            if isinstance(t, Tree) else False

    # ---- windows ---------------------------------------------------------------------------------------
    @staticmethod
    def window_kind(win: Any) -> str:
        return type(win).__name__.replace("Window", "").lower() or "window"

    def window(self, spec: Tree) -> Any:
        durations = [c for c in spec.children if isinstance(c, Tree) and c.data == "duration"]
        options = subtree(spec, "window_options")
        grace = DEFAULT_GRACE_MS  # ksqlDB's grace when the window names none: 24 hours
        seen: set[str] = set()
        for opt in (options.children if options is not None else []):
            if opt.data in seen:
                raise self.error(f"{opt.data.upper()} is given twice", opt)
            seen.add(opt.data)
            if opt.data == "grace":
                grace = duration(opt.children[-1])
            # RETENTION: how long window state is queryable in ksqlDB; streamdsl frees a window's
            # state when it closes, so there is nothing to configure.
        with self.c.at(spec):
            try:
                if spec.data == "tumbling":
                    return tumbling(duration(durations[0]), grace=grace)
                if spec.data == "hopping":
                    size, advance = duration(durations[0]), duration(durations[1])
                    if advance > size:
                        raise self.error("ADVANCE BY must not be larger than SIZE", durations[1])
                    return hopping(size, advance, grace=grace)
                return session(duration(durations[0]), grace=grace)
            except (TypeError, ValueError) as e:
                raise self.error(str(e), spec) from None


__all__ += ["conjuncts"]
