"""Compile parsed SQL statements into a ``Topology`` by calling the Python DSL.

Every DSL call runs under ``site_override`` so that nodes (and DSL errors) carry the SQL
``path:line:column`` of the clause they come from.
"""

from __future__ import annotations

import difflib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from lark import Token, Tree

from ..callsite import site_override
from ..dsl.table import Table
from ..dsl.topology import Topology
from ..errors import SQLError, StreamDSLError, TopologyError
from ..expr import BinOp, Col, Expr, Func, KeyRef, Lit
from ..ir.fn import Fn
from ..ir.nodes import TableMap
from ..windows import hopping, session, tumbling
from .catalog import Frame, Relation, Scope, ScopeEntry, same_expr
from .expressions import (WINDOW_COLUMNS, AggRegistry, ExprCompiler, contains_aggregate,
                          is_aggregate_call, is_table_function_call, literal_value, name_of)
from .functions import SUBTRACTABLE, BareValuePredicate, RenamingJoiner
from .parser import parse, position_of, sql_error

__all__ = ["compile_text"]

_UNITS = {"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}

TYPES = {"VARCHAR", "STRING", "INT", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "BOOLEAN", "BYTES",
         "TIMESTAMP", "DATE", "TIME", "ARRAY", "MAP", "STRUCT"}
# PATH is streamdsl's own: the data a source reads (or a sink writes) when `streamdsl run` is
# given no --input/--output for it (a file path, relative to the .sql file, or any URI).
_SOURCE_PROPS = {"KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "TIMESTAMP", "PARTITIONS",
                 "REPLICAS", "PATH"}
_DERIVED_PROPS = {"KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS",
                  "WRAP_SINGLE_VALUE", "PATH"}
_FORMATS = {"JSON", "KAFKA", "DELIMITED", "NONE"}


def compile_text(text: str, *, name: str | None = None, path: str | None = None) -> Topology:
    """Parse and compile ``text``; see ``streamdsl.sql.compile_sql``."""
    return _Compiler(text, name=name, path=path).run()


@dataclass
class _Result:
    """What a query produces (a DSL handle and the shape of its values)."""

    handle: Any
    kind: str
    columns: tuple[str, ...]
    key_column: str | None
    key_in_value: bool
    windowed: bool
    bare: bool = False


class _Compiler:
    def __init__(self, text: str, *, name: str | None, path: str | None):
        self.text = text
        self.path = path
        if name is None:
            name = os.path.splitext(os.path.basename(path))[0] if path else "sql"
        self.relations: dict[str, Relation] = {}
        with site_override(self._site_at(1, 1)):
            self.topo = Topology(name)
        self.sink_order: list[Relation] = []

    # ---- positions and errors ---------------------------------------------------------------------
    def _site_at(self, line: int | None, column: int | None) -> str:
        return f"{self.path or '<sql>'}:{line}:{column}"

    def site(self, node: Any) -> str:
        line, col, _ = position_of(node)
        return self._site_at(line, col)

    def error(self, message: str, node: Any) -> SQLError:
        line, col, length = position_of(node)
        return sql_error(message, self.text, line, col, path=self.path, length=length)

    @contextmanager
    def at(self, node: Any) -> Iterator[None]:
        """Run DSL calls with ``node``'s SQL position as their call site (so a DSL error, a
        ``TopologyError``, says ``file.sql:line:column``)."""
        line, col, _ = position_of(node)
        with site_override(self._site_at(line, col)):
            yield

    # ---- statements ----------------------------------------------------------------------------------
    def run(self) -> Topology:
        tree = parse(self.text, path=self.path)
        statements = [c for c in tree.children if isinstance(c, Tree)]
        if not statements:
            raise SQLError("no SQL statements found (expected CREATE STREAM/TABLE or INSERT INTO)",
                           path=self.path)
        for st in statements:
            getattr(self, "_" + st.data)(st)
        self._write_sinks()
        if not self.topo.sinks:
            raise self.error("the SQL declares no query: add CREATE STREAM/TABLE ... AS SELECT or "
                             "INSERT INTO ... SELECT (a topology needs at least one output)",
                             _subtree(statements[-1], "name") or statements[-1])
        return self.topo

    def _create_source(self, st: Tree) -> None:
        kind, name_t, if_not_exists = self._create_head(st)
        name = name_of(name_t)
        if self._exists(name, name_t, if_not_exists):
            return
        columns: list[str] = []
        key_cols: list[tuple[str, Tree]] = []
        for cd in _subtrees(st, "column_def"):
            cname_t, type_t = cd.children[0], cd.children[1]
            cname = name_of(cname_t)
            if cname.lower() in (c.lower() for c in columns):
                raise self.error(f"column {cname!r} is declared twice", cname_t)
            self._check_type(type_t)
            columns.append(cname)
            marker = cd.children[2] if len(cd.children) > 2 else None
            if marker is not None:
                if kind == "stream" and marker.data == "primary_key_column":
                    raise self.error("streams take KEY columns; PRIMARY KEY is for tables", marker)
                if kind == "table" and marker.data == "key_column":
                    raise self.error("tables take a PRIMARY KEY column; KEY is for streams", marker)
                key_cols.append((cname, marker))
        if len(key_cols) > 1:
            raise self.error("only one key column is supported (streamdsl keys are one value)",
                             key_cols[1][1])
        props = self._properties(st, _SOURCE_PROPS)
        ts = None
        if "TIMESTAMP" in props:
            ts_raw, ts_node = props["TIMESTAMP"]
            ts = self._column_named(str(ts_raw), columns, ts_node, "TIMESTAMP")
        topic = self._topic(props, name)
        line, col, _ = position_of(st)
        self._add_relation(Relation(
            name=name, kind=kind, topic=topic, columns=tuple(columns), line=line or 0, column=col or 0,
            key_column=key_cols[0][0] if key_cols else None, key_in_value=bool(key_cols),
            declared=True, timestamp=ts, connector=self._connector(props)))

    def _create_as(self, st: Tree) -> None:
        kind, name_t, if_not_exists = self._create_head(st)
        name = name_of(name_t)
        if self._exists(name, name_t, if_not_exists):
            return
        props = self._properties(st, _DERIVED_PROPS)
        wrap = self._wrap_single_value(props)
        query = _subtree(st, "query")
        result = self._query(query, wrap=wrap)
        handle = result.handle
        if kind == "stream" and result.kind == "table":
            # The talk's `CREATE STREAM x AS SELECT ... GROUP BY`: the table's changelog.
            with self.at(name_t):
                handle = handle.to_stream()
        elif kind == "table" and result.kind == "stream":
            raise self.error(
                "this query produces a STREAM (no GROUP BY over a stream); use CREATE STREAM ... AS "
                "SELECT, or add GROUP BY to build a table", name_t)
        line, col, _ = position_of(st)
        rel = Relation(name=name, kind=kind, topic=self._topic(props, name), columns=result.columns,
                       line=line or 0, column=col or 0, key_column=result.key_column,
                       key_in_value=result.key_in_value, windowed=result.windowed, bare=result.bare,
                       connector=self._connector(props))
        rel.writers.append((handle, self.site(name_t)))
        rel.sink_site = self.site(name_t)
        self._add_relation(rel)

    def _insert_into(self, st: Tree) -> None:
        name_t = _subtree(st, "name")
        target = self._lookup(name_of(name_t), name_t)
        if target.kind != "stream":
            raise self.error(f"INSERT INTO needs a stream; {target.name} is a table", name_t)
        if target.read_at is not None:
            raise self.error(
                f"INSERT INTO {target.name} after a query read it (line {target.read_at}): in one "
                f"topology every writer of {target.name} must come before its readers; move this "
                "statement up", name_t)
        self._properties(st, set())
        result = self._query(_subtree(st, "query"), wrap=not target.bare)
        if result.kind != "stream":
            raise self.error("INSERT INTO takes a query that produces a stream (no GROUP BY)", name_t)
        if not target.bare and not self._same_columns(result.columns, target.columns):
            raise self.error(
                f"the query's columns ({', '.join(result.columns)}) do not match {target.name}'s "
                f"({', '.join(target.columns)})", _subtree(st, "query"))
        if target.key_column is not None and (result.key_column or "").lower() != target.key_column.lower():
            raise self.error(
                f"the query's records are not keyed by {target.name}'s key column "
                f"{target.key_column}; select it from a stream keyed by it, or add PARTITION BY "
                f"{target.key_column}", _subtree(st, "query"))
        target.writers.append((result.handle, self.site(name_t)))
        if target.sink_site is None:
            target.sink_site = self.site(name_t)

    # ---- statement helpers --------------------------------------------------------------------------
    def _create_head(self, st: Tree) -> tuple[str, Tree, bool]:
        kind_t = _subtree(st, "relation_kind")
        kind = str(kind_t.children[0]).lower()
        return kind, _subtree(st, "name"), _subtree(st, "if_not_exists") is not None

    def _exists(self, name: str, name_t: Tree, if_not_exists: bool) -> bool:
        old = self.relations.get(name.lower())
        if old is None:
            return False
        if if_not_exists:
            return True
        raise self.error(f"{old.kind} {old.name} is already declared (line {old.line})", name_t)

    def _add_relation(self, rel: Relation) -> None:
        self.relations[rel.name.lower()] = rel
        if rel.writers:
            self.sink_order.append(rel)

    def _check_type(self, t: Tree) -> None:
        base_t = t.children[0]
        base = name_of(base_t).upper()
        if base not in TYPES:
            hint = difflib.get_close_matches(base, sorted(TYPES), n=1)
            raise self.error(f"unknown type {base}" + (f"; did you mean {hint[0]}?" if hint else "")
                             + f" (types: {', '.join(sorted(TYPES))})", base_t)
        want = {"array_type": "ARRAY", "map_type": "MAP", "struct_type": "STRUCT"}.get(t.data)
        if want is not None and base != want:
            raise self.error(f"{base} takes no <...> parameters", base_t)
        if t.data == "simple_type" and base in ("ARRAY", "MAP", "STRUCT"):
            raise self.error(f"{base} needs its element types, e.g. ARRAY<VARCHAR>", base_t)
        for c in t.children[1:]:
            if isinstance(c, Tree) and c.data.endswith("_type"):
                self._check_type(c)

    def _properties(self, st: Tree, allowed: set[str]) -> dict[str, tuple[Any, Tree]]:
        out: dict[str, tuple[Any, Tree]] = {}
        w = _subtree(st, "with_clause")
        if w is None:
            return out
        for p in _subtrees(w, "property"):
            key_t, val_t = p.children
            key = name_of(key_t).upper()
            if key not in allowed:
                raise self.error(f"unsupported property {key} here; supported: "
                                 f"{', '.join(sorted(allowed)) or 'none'}", key_t)
            if key in out:
                raise self.error(f"property {key} is given twice", key_t)
            _, value = literal_value(val_t)
            if key in ("VALUE_FORMAT", "KEY_FORMAT", "FORMAT"):
                if not isinstance(value, str) or value.upper() not in _FORMATS:
                    raise self.error(f"{key} {value!r} is not supported; use 'JSON' (the connector "
                                     "bound with --input/--output decides the file format)", val_t)
            if key in ("KAFKA_TOPIC", "TIMESTAMP", "PATH") and (not isinstance(value, str) or not value):
                raise self.error(f"{key} takes a non-empty string, e.g. {key}='name'", val_t)
            out[key] = (value, val_t)
        return out

    def _connector(self, props: dict) -> dict | None:
        if "PATH" not in props:
            return None
        value, node = props["PATH"]
        if "://" not in value and value != "-" and not os.path.isabs(value):
            base = os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()
            value = os.path.normpath(os.path.join(base, value))
        from ..connectors import parse_uri
        try:
            return parse_uri(value)
        except StreamDSLError as e:
            raise self.error(f"PATH {props['PATH'][0]!r}: {e}", node) from None

    def _topic(self, props: dict, name: str) -> str:
        return props["KAFKA_TOPIC"][0] if "KAFKA_TOPIC" in props else name

    def _wrap_single_value(self, props: dict) -> bool:
        if "WRAP_SINGLE_VALUE" not in props:
            return True
        value, node = props["WRAP_SINGLE_VALUE"]
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error("WRAP_SINGLE_VALUE takes true or false", node)
        return value

    def _column_named(self, raw: str, columns: list[str], node: Tree, what: str) -> str:
        for c in columns:
            if c.lower() == raw.lower():
                return c
        raise self.error(f"{what} names unknown column {raw!r} (columns: {', '.join(columns)})", node)

    @staticmethod
    def _same_columns(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
        return sorted(x.lower() for x in a) == sorted(x.lower() for x in b)

    def _lookup(self, name: str, node: Any) -> Relation:
        rel = self.relations.get(name.lower())
        if rel is None:
            known = [r.name for r in self.relations.values()]
            hint = difflib.get_close_matches(name, known, n=1)
            msg = f"unknown stream or table {name!r}"
            if hint:
                msg += f"; did you mean {hint[0]!r}?"
            msg += (f" (declared: {', '.join(known)})" if known else
                    " (declare it first with CREATE STREAM/TABLE name (columns...) WITH (...))")
            raise self.error(msg, node)
        return rel

    def _read(self, rel: Relation, node: Tree) -> Any:
        """The DSL handle reading ``rel``: its source (declared, never written) or its writers."""
        if rel.read_at is None:
            line, _, _ = position_of(node)
            rel.read_at = line
        if rel.handle is not None:
            return rel.handle
        if rel.writers:
            rel.handle = self._merged_writers(rel)
            return rel.handle
        decl = self._decl_node(rel)
        with self.at(decl):
            key = Col(rel.key_column) if rel.key_column is not None else None
            ts = Col(rel.timestamp) if rel.timestamp is not None else None
            if rel.kind == "stream":
                rel.handle = self.topo.stream(rel.topic, key=key, timestamp=ts, connector=rel.connector)
            else:
                rel.handle = self.topo.table(rel.topic, key=key, timestamp=ts, connector=rel.connector)
        return rel.handle

    def _decl_node(self, rel: Relation) -> Token:
        return Token("IDENTIFIER", rel.name, line=rel.line, column=rel.column)

    def _merged_writers(self, rel: Relation) -> Any:
        handles = [h for h, _ in rel.writers]
        if len(handles) == 1:
            return handles[0]
        with site_override(rel.writers[1][1]):
            return handles[0].merge(*handles[1:])

    def _write_sinks(self) -> None:
        for rel in self.relations.values():
            if rel.writers and rel not in self.sink_order:
                self.sink_order.append(rel)
        for rel in self.sink_order:
            handle = rel.handle if rel.handle is not None else self._merged_writers(rel)
            rel.handle = handle
            with site_override(rel.sink_site):
                try:
                    handle.to(rel.topic, connector=rel.connector)
                except TopologyError as e:
                    line, col = _split_site(rel.sink_site)
                    raise sql_error(e.reason, self.text, line, col, path=self.path) from None

    # ---- queries -------------------------------------------------------------------------------------
    def _query(self, q: Tree, *, wrap: bool) -> _Result:
        items = [c for c in q.children if isinstance(c, Tree) and c.data.startswith("select_")]
        where_t = _subtree(q, "where_clause")
        conjuncts = _conjuncts(where_t.children[1]) if where_t is not None else []
        n_conjuncts = len(conjuncts)
        frame = self._from(_subtree(q, "from_clause"), conjuncts)  # may apply some conjuncts
        window_t = _subtree(q, "window_clause")
        group_t = _subtree(q, "group_by")
        partition_t = _subtree(q, "partition_by")
        having_t = _subtree(q, "having")
        emit_t = next((c for c in q.children if isinstance(c, Tree) and c.data.startswith("emit_")), None)

        if where_t is not None and conjuncts:
            where = ExprCompiler(frame.scope, "WHERE", self.error, self.text)
            if len(conjuncts) == n_conjuncts:
                cond_t = where_t.children[1]
                cond = where.compile(cond_t)
            else:
                cond_t = conjuncts[0]
                cond = where.compile(conjuncts[0])
                for c in conjuncts[1:]:
                    cond = BinOp("and", cond, where.compile(c))
            with self.at(cond_t):
                frame.handle = frame.handle.filter(cond)

        has_aggs = any(contains_aggregate(i) for i in items) or having_t is not None
        if group_t is not None or has_aggs:
            if group_t is None:
                node = having_t if having_t is not None else next(i for i in items if contains_aggregate(i))
                raise self.error("aggregate functions need GROUP BY (streamdsl aggregates per key)", node)
            if partition_t is not None:
                raise self.error("PARTITION BY cannot be combined with GROUP BY (the GROUP BY "
                                 "columns are the key)", partition_t)
            return self._aggregate(frame, items, group_t, window_t, having_t, emit_t, wrap)
        for clause, what in ((window_t, "WINDOW"), (having_t, "HAVING")):
            if clause is not None:
                raise self.error(f"{what} needs GROUP BY (a windowed or filtered aggregation)", clause)
        if emit_t is not None and emit_t.data == "emit_final":
            raise self.error("EMIT FINAL needs a windowed aggregation (WINDOW ... GROUP BY ...); "
                             "use EMIT CHANGES", emit_t)
        if partition_t is not None:
            if frame.kind != "stream":
                raise self.error("PARTITION BY applies to streams; a table is keyed by its PRIMARY KEY",
                                 partition_t)
            exprs = partition_t.children[2:]
            if len(exprs) > 1:
                raise self.error("PARTITION BY takes one expression (streamdsl keys are one value)",
                                 exprs[1])
            key = ExprCompiler(frame.scope, "PARTITION BY", self.error, self.text).compile(exprs[0])
            with self.at(exprs[0]):
                frame.handle = frame.handle.key_by(key)
            frame.key = key
        return self._project(frame, items, wrap)

    def _project(self, frame: Frame, items: list[Tree], wrap: bool) -> _Result:
        """A query without aggregates: SELECT * keeps the value, anything else maps it."""
        if self._identity(frame, items):
            cols, key_col, key_in_value = self._frame_layout(frame)
            if not wrap:
                raise self.error("WRAP_SINGLE_VALUE=false needs exactly one selected column, not *",
                                 items[0])
            return _Result(frame.handle, frame.kind, cols, key_col, key_in_value, frame.windowed,
                           bare=self._frame_bare(frame))
        compiler = ExprCompiler(frame.scope, "SELECT", self.error, self.text,
                                window_ok=frame.kind == "table" and frame.windowed)
        exploded: list[tuple[str, Expr, Tree]] = []
        out = self._select_items(frame, items, compiler, exploded)
        cols = tuple(n for n, _, _ in out)
        key_col = next((n for n, e, _ in out if same_expr(e, frame.key)), None)
        fn = self._projection(out, wrap, items)
        cfg_window = WINDOW_COLUMNS if compiler.uses_window else None
        if exploded:
            (name, values, node), *more = exploded
            if more:
                raise self.error("only one EXPLODE per SELECT list is supported", more[0][2])
            if frame.kind != "stream":
                raise self.error("EXPLODE applies to streams (a table row cannot become several)", node)
            # One output row per element: the projection with the element in the EXPLODE column.
            fn = values if not wrap else Func("explode", (values, Lit(name), fn))
            with self.at(node):
                handle = frame.handle.flat_map(fn)
            return _Result(handle, frame.kind, cols, key_col, key_col is not None, frame.windowed,
                           bare=not wrap)
        with self.at(items[0]):
            if frame.kind == "stream":
                handle = frame.handle.map(fn)
            else:
                handle = self._table_map(frame.handle, fn, cfg_window)
        return _Result(handle, frame.kind, cols, key_col, key_col is not None, frame.windowed,
                       bare=not wrap)

    def _projection(self, out: list[tuple[str, Expr, Tree]], wrap: bool, items: list[Tree]) -> Expr:
        if not wrap:
            if len(out) != 1:
                raise self.error(f"WRAP_SINGLE_VALUE=false needs exactly one value column, got "
                                 f"{len(out)} ({', '.join(n for n, _, _ in out)})", items[0])
            return out[0][1]
        args: list[Expr] = []
        for n, e, _ in out:
            args += [Lit(n), e]
        return Func("struct", tuple(args))

    def _table_map(self, table: Table, fn: Expr, window_columns: tuple[str, str] | None) -> Table:
        if window_columns is None:
            return table.map(fn)
        # Table.map has no window parameter: add the node the way Table._then does.
        from ..callsite import user_site
        node = self.topo._add(TableMap, [(table.node_name, "in", None)], name=None, site=user_site(),
                              fn=Fn(expr=fn), window_columns=window_columns)
        return Table(self.topo, node.name, windowed=table._windowed)

    def _identity(self, frame: Frame, items: list[Tree]) -> bool:
        if len(items) != 1:
            return False
        it = items[0]
        if it.data == "select_all":
            return True
        if it.data == "select_all_of" and len(frame.scope.entries) == 1:
            alias = name_of(it.children[0])
            if frame.scope.entry(alias) is None:
                raise self.error(f"unknown stream or alias {alias!r} in SELECT", it.children[0])
            return True
        return False

    def _frame_layout(self, frame: Frame) -> tuple[tuple[str, ...], str | None, bool]:
        cols: list[str] = []
        key_col = None
        key_in_value = False
        for e in frame.scope.entries:
            for n, x in e.columns.values():
                if isinstance(x, Col) and x.name not in cols:
                    cols.append(x.name)
        for e in frame.scope.entries:
            for n, x in e.columns.values():
                if frame.key is not None and same_expr(x, frame.key):
                    key_col = x.name if isinstance(x, Col) else n
                    key_in_value = isinstance(x, Col)
                    break
            if key_col is not None:
                break
        return tuple(cols), key_col, key_in_value

    @staticmethod
    def _frame_bare(frame: Frame) -> bool:
        return len(frame.scope.entries) == 1 and frame.scope.entries[0].relation.bare

    def _select_items(self, frame: Frame, items: list[Tree], compiler: ExprCompiler,
                      exploded: list[tuple[str, Expr, Tree]] | None = None
                      ) -> list[tuple[str, Expr, Tree]]:
        out: list[tuple[str, Expr, Tree]] = []
        generated = 0
        for it in items:
            if it.data in ("select_all", "select_all_of"):
                if compiler.aggs is not None:
                    raise self.error("SELECT * cannot be used with GROUP BY; list the grouped "
                                     "columns and aggregates", it)
                entries = frame.scope.entries
                if it.data == "select_all_of":
                    alias = name_of(it.children[0])
                    e = frame.scope.entry(alias)
                    if e is None:
                        raise self.error(f"unknown stream or alias {alias!r} in SELECT", it.children[0])
                    entries = [e]
                for e in entries:
                    for n, x in e.columns.values():
                        out.append((n, x, it))
                continue
            expr_t = it.children[0]
            alias_t = next((c for c in it.children[1:] if isinstance(c, Tree) and c.data == "name"), None)
            if alias_t is not None:
                name = name_of(alias_t)
            elif isinstance(expr_t, Tree) and expr_t.data == "column_ref":
                name = compiler.declared_name(expr_t)
            else:
                name = f"KSQL_COL_{generated}"
                generated += 1
            preferred = name if is_aggregate_call(expr_t) else None
            if exploded is not None and is_table_function_call(expr_t):
                args = expr_t.children[1:]
                if len(args) != 1:
                    raise self.error(f"EXPLODE takes one argument (an array), got {len(args)}", expr_t)
                exploded.append((name, compiler.compile(args[0]), expr_t))
                expr: Expr = Lit(None)  # the element goes here, row by row
            elif compiler.aggs is not None:
                expr = compiler.compile(expr_t, preferred)
            else:
                expr = compiler.compile(expr_t)
            if isinstance(expr_t, Tree) and expr_t.data == "column_ref" and alias_t is None \
                    and name.upper() in WINDOW_COLUMNS:
                name = name.upper()
            out.append((name, expr, alias_t if alias_t is not None else it))
        seen: dict[str, Tree] = {}
        for n, _, node in out:
            if n.lower() in seen:
                raise self.error(f"column name {n!r} appears twice in the SELECT list; rename one "
                                 "with AS", node)
            seen[n.lower()] = node
        return out

    # ---- aggregation --------------------------------------------------------------------------------
    def _aggregate(self, frame: Frame, items: list[Tree], group_t: Tree, window_t: Tree | None,
                   having_t: Tree | None, emit_t: Tree | None, wrap: bool) -> _Result:
        exprs = group_t.children[2:]
        if len(exprs) > 1:
            raise self.error("GROUP BY takes one expression (streamdsl keys are one value); combine "
                             "columns with CONCAT(a, '|', b) if you need several", exprs[1])
        row = ExprCompiler(frame.scope, "GROUP BY", self.error, self.text)
        group = row.compile(exprs[0])
        group_col = next((n for e in frame.scope.entries for n, x in e.columns.values()
                          if same_expr(x, group)), None)
        emit = "final" if emit_t is not None and emit_t.data == "emit_final" else "changes"
        if emit == "final" and window_t is None:
            raise self.error("EMIT FINAL needs a WINDOW (a non-windowed aggregate never closes)", emit_t)

        registry = AggRegistry()
        windowed = window_t is not None
        compiler = ExprCompiler(frame.scope, "SELECT", self.error, self.text, aggs=registry,
                                group=group, window_ok=windowed)
        out = self._select_items(frame, items, compiler)
        key_items = [(n, node) for n, e, node in out if isinstance(e, KeyRef)]
        values = [(n, e, node) for n, e, node in out if not isinstance(e, KeyRef)]
        having = None
        if having_t is not None:
            hc = ExprCompiler(frame.scope, "HAVING", self.error, self.text, aggs=registry, group=group)
            having = hc.compile(having_t.children[1])
        if not registry.fields:
            node = having_t if having_t is not None else group_t
            raise self.error("GROUP BY needs at least one aggregate in the SELECT list (COUNT(*), "
                             "SUM(col), ...)", node)
        if not values and wrap:
            raise self.error("the SELECT list has no aggregate column (only the GROUP BY key)", items[0])

        if frame.kind == "table":
            if windowed:
                raise self.error("WINDOW applies to streams; a table aggregation is not windowed",
                                 window_t)
            for n, a, sql in registry.fields:
                if a.kind not in SUBTRACTABLE:
                    raise self.error(f"{sql} cannot be computed over a table (rows are updated and "
                                     "deleted, so it must be subtractable); use COUNT, SUM or AVG",
                                     group_t)

        bare_count = (not wrap and len(values) == 1 and len(registry.fields) == 1
                      and registry.fields[0][1].kind == "count" and registry.fields[0][1].fn is None
                      and isinstance(values[0][1], Col) and values[0][1].name == registry.fields[0][0])

        with self.at(exprs[0]):
            grouped = frame.handle.group_by(group)
        if windowed:
            win = self._window(window_t.children[1])
            with self.at(window_t):
                grouped = grouped.window(win, emit=emit)
        agg_node = next((node for _, e, node in values if isinstance(e, Col)), items[0])
        with self.at(agg_node):
            if bare_count:
                table = grouped.count()
            else:
                table = grouped.agg(**{n: a for n, a, _ in registry.fields})
        if having is not None:
            pred: Any = having
            if bare_count:
                pred = BareValuePredicate(having, registry.fields[0][0])
            with self.at(having_t.children[1]):
                table = table.filter(pred)
        names = tuple(n for n, _, _ in values)
        elide = bare_count or (
            wrap and [(n, e.name if isinstance(e, Col) else None) for n, e, _ in values]
            == [(n, n) for n, _, _ in registry.fields])
        if not elide:
            fn = self._projection(values, wrap, items)
            with self.at(values[0][2] if values else items[0]):
                table = self._table_map(table, fn, WINDOW_COLUMNS if compiler.uses_window else None)
        if key_items:
            key_col = key_items[0][0]
        else:
            key_col = group_col
        return _Result(table, "table", names, key_col, False, windowed, bare=not wrap)

    def _window(self, spec: Tree) -> Any:
        durations = [c for c in spec.children if isinstance(c, Tree) and c.data == "duration"]
        options = _subtree(spec, "window_options")
        grace = 0
        seen: set[str] = set()
        for opt in (options.children if options is not None else []):
            if opt.data in seen:
                raise self.error(f"{opt.data.upper()} is given twice", opt)
            seen.add(opt.data)
            if opt.data == "grace":
                grace = self._duration(opt.children[-1])
            # RETENTION: how long window state is queryable in ksqlDB; streamdsl frees a window's
            # state when it closes, so there is nothing to configure.
        with self.at(spec):
            try:
                if spec.data == "tumbling":
                    return tumbling(self._duration(durations[0]), grace=grace)
                if spec.data == "hopping":
                    size, advance = self._duration(durations[0]), self._duration(durations[1])
                    if advance > size:
                        raise self.error("ADVANCE BY must not be larger than SIZE", durations[1])
                    return hopping(size, advance, grace=grace)
                return session(self._duration(durations[0]), grace=grace)
            except (TypeError, ValueError) as e:
                raise self.error(str(e), spec) from None

    def _duration(self, d: Tree) -> int:
        n_tok, unit_tok = d.children
        unit = str(unit_tok).upper().rstrip("S")
        n = int(n_tok)
        return n * _UNITS[unit]

    # ---- FROM and joins -------------------------------------------------------------------------------
    def _from(self, f: Tree, conjuncts: list[Tree]) -> Frame:
        rels = f.children
        frame = self._frame_of(rels[0])
        for i, j in enumerate(rels[1:], 1):
            frame = self._join(frame, j, conjuncts, rels[i:])
        return frame

    def _push_where(self, left: Frame, conjuncts: list[Tree], later: list[Tree]) -> None:
        """Apply the WHERE conditions that read only ``left`` before a stream-table join.

        The lookup has no time semantics, so filtering the stream first gives the same rows,
        and the optimizer can then move the filter ahead of a re-key and its shuffle.
        """
        others: set[str] = set()
        for t in later:
            ar = _subtree(t, "aliased_relation") if t.data == "join" else t
            rel = self.relations.get(name_of(_subtree(ar, "name")).lower())
            if rel is not None:
                others |= {c.lower() for c in rel.columns}
                if rel.key_column:
                    others.add(rel.key_column.lower())
        pushed: list[Tree] = []
        for c in list(conjuncts):
            if contains_aggregate(c) or any(is_table_function_call(x) for x in c.iter_subtrees()):
                continue
            refs = list(c.find_data("column_ref"))
            ok = True
            for r in refs:
                names = [name_of(n) for n in r.children]
                if len(names) == 2:
                    e = left.scope.entry(names[0])
                    ok = e is not None and names[1].lower() in e.columns
                else:
                    ok = bool(left.scope.candidates(names[0])) and names[0].lower() not in others
                if not ok:
                    break
            if ok:
                pushed.append(c)
                conjuncts.remove(c)
        if pushed:
            where = ExprCompiler(left.scope, "WHERE", self.error, self.text)
            cond = where.compile(pushed[0])
            for c in pushed[1:]:
                cond = BinOp("and", cond, where.compile(c))
            with self.at(pushed[0]):
                left.handle = left.handle.filter(cond)

    def _frame_of(self, ar: Tree) -> Frame:
        names = [c for c in ar.children if isinstance(c, Tree) and c.data == "name"]
        rel = self._lookup(name_of(names[0]), names[0])
        alias = name_of(names[-1])
        handle = self._read(rel, names[0])
        scope = Scope.of(rel, alias)
        key: Expr | None = None
        if rel.key_column is not None:
            key = Col(rel.key_column) if rel.key_in_value else KeyRef()
        return Frame(handle, rel.kind, scope, key, rel.windowed)

    def _join(self, left: Frame, j: Tree, conjuncts: list[Tree], later: list[Tree]) -> Frame:
        how_t = next((c for c in j.children if isinstance(c, Tree) and c.data.endswith("_join")), None)
        how = {"inner_join": "inner", "left_join": "left", "full_join": "outer",
               "right_join": "right"}[how_t.data] if how_t is not None else "inner"
        join_kw = next(c for c in j.children if isinstance(c, Token) and c.type == "JOIN")
        if how == "right":
            raise self.error("RIGHT JOIN is not supported; swap the two sides and use LEFT JOIN", how_t)
        right = self._frame_of(_subtree(j, "aliased_relation"))
        within_t = next((c for c in j.children if isinstance(c, Tree)
                         and c.data in ("within", "within_before_after")), None)
        on_t = j.children[-1]
        for e in left.scope.entries:
            if e.alias.lower() == right.scope.entries[0].alias.lower():
                raise self.error(f"alias {e.alias!r} is used twice in FROM; give one side another "
                                 "alias (FROM a x JOIN a y ...)", _subtree(j, "aliased_relation"))
        lcol, rcol = self._join_columns(left, right, on_t)
        pair = f"{left.kind}-{right.kind}"
        if pair == "table-stream":
            raise self.error("a table cannot be joined to a stream; put the stream first "
                             "(FROM stream JOIN table)", join_kw)
        if (right.windowed and right.kind == "table") or (left.windowed and left.kind == "table"):
            raise self.error("windowed tables cannot be joined (their key includes the window)", join_kw)
        within = grace = None
        if within_t is not None:
            if within_t.data == "within_before_after":
                raise self.error("WITHIN (before, after) is not supported; streamdsl join windows "
                                 "are symmetric: use WITHIN n unit", within_t)
            if pair != "stream-stream":
                raise self.error("WITHIN applies to stream-stream joins only (a table is looked up "
                                 "by key)", within_t)
            within = self._duration(within_t.children[1])
            g = _subtree(within_t, "grace")
            grace = self._duration(g.children[-1]) if g is not None else 0
        elif pair == "stream-stream":
            raise self.error("a stream-stream join needs a join window: add WITHIN n unit before "
                             "ON, e.g. WITHIN 5 MINUTES", join_kw)
        if pair == "stream-table" and how == "outer":
            raise self.error("a stream-table join is INNER or LEFT; FULL OUTER JOIN needs two streams "
                             "or two tables", how_t)
        if right.kind == "table" and not same_expr(rcol, right.key):
            raise self.error(
                f"{right.scope.entries[0].relation.name} is a table: join on its PRIMARY KEY "
                f"({right.scope.entries[0].relation.key_column or 'none declared'}); foreign-key "
                "joins are not supported", on_t)
        if left.kind == "table" and not same_expr(lcol, left.key):
            raise self.error("a table-table join must be on both tables' PRIMARY KEY columns; "
                             "foreign-key joins are not supported", on_t)

        if pair == "stream-table" and conjuncts:
            self._push_where(left, conjuncts, later)
        left_handle = self._rekey(left, lcol, on_t)
        right_handle = self._rekey(right, rcol, on_t) if right.kind == "stream" else right.handle
        scope, joiner = self._joined_scope(left, right, lcol, rcol, how)
        method = {"inner": "join", "left": "left_join", "outer": "outer_join"}[how]
        kwargs: dict[str, Any] = {}
        if within is not None:
            kwargs = {"within": within, "grace": grace}
        with self.at(join_kw):
            handle = getattr(left_handle, method)(right_handle, joiner, **kwargs)
        key = self._joined_key(scope, left, lcol)
        kind = "table" if pair == "table-table" else "stream"
        return Frame(handle, kind, scope, key, left.windowed and kind == "stream")

    def _join_columns(self, left: Frame, right: Frame, on_t: Tree) -> tuple[Expr, Expr]:
        if not (isinstance(on_t, Tree) and on_t.data == "comparison"
                and "".join(map(str, on_t.children[1].children)) == "="
                and all(isinstance(c, Tree) and c.data == "column_ref"
                        for c in (on_t.children[0], on_t.children[2]))):
            raise self.error("ON takes one equality of two columns, e.g. ON o.id = p.order_id", on_t)
        a_t, b_t = on_t.children[0], on_t.children[2]
        sides = []
        for t in (a_t, b_t):
            in_left = self._resolves(left.scope, t)
            in_right = self._resolves(right.scope, t)
            if in_left and in_right:
                raise self.error("column in ON is ambiguous (both sides have it); qualify it, e.g. "
                                 "o.id", t)
            if not in_left and not in_right:
                both = Scope(left.scope.entries + right.scope.entries)
                ExprCompiler(both, "ON", self.error, self.text).compile(t)  # raises: unknown column
            sides.append("left" if in_left else "right")
        if sides[0] == sides[1]:
            raise self.error("ON must compare a column of each side of the join", on_t)
        lt, rt = (a_t, b_t) if sides[0] == "left" else (b_t, a_t)
        lcol = ExprCompiler(left.scope, "ON", self.error, self.text).compile(lt)
        rcol = ExprCompiler(right.scope, "ON", self.error, self.text).compile(rt)
        return lcol, rcol

    def _resolves(self, scope: Scope, t: Tree) -> bool:
        names = [name_of(n) for n in t.children]
        if len(names) == 2:
            e = scope.entry(names[0])
            return e is not None and names[1].lower() in e.columns
        return bool(scope.candidates(names[0]))

    def _rekey(self, frame: Frame, col: Expr, on_t: Tree) -> Any:
        if same_expr(col, frame.key) or isinstance(col, KeyRef):
            return frame.handle
        lost = frame.scope.key_only_columns()
        if lost:
            raise self.error(f"joining on {col.describe()} re-keys the stream, which would lose "
                             f"{', '.join(lost)} (held only in the record key); select it into the "
                             "value in an earlier query", on_t)
        with self.at(on_t):
            handle = frame.handle.key_by(col)
        frame.key = col
        return handle

    def _joined_scope(self, left: Frame, right: Frame, lcol: Expr, rcol: Expr,
                      how: str) -> tuple[Scope, RenamingJoiner | None]:
        def fields(frame: Frame) -> list[str]:
            return [x.name for e in frame.scope.entries for _, x in e.columns.values() if isinstance(x, Col)]

        lf, rf = fields(left), fields(right)
        shared = set(lf) & set(rf)
        # The join column under the same name on both sides holds the same value: keep it once.
        if isinstance(lcol, Col) and isinstance(rcol, Col) and lcol.name == rcol.name:
            shared.discard(lcol.name)
        if any(e.relation.bare for e in left.scope.entries + right.scope.entries):
            raise self.error("cannot join a relation created with WRAP_SINGLE_VALUE=false", None)
        lmap: dict[str, str] = {}
        rmap: dict[str, str] = {}
        if shared:
            lalias = left.scope.entries[0].alias if len(left.scope.entries) == 1 else None
            ralias = right.scope.entries[0].alias
            for f in sorted(shared):
                if lalias is not None:
                    lmap[f] = f"{lalias}_{f}"
                rmap[f] = f"{ralias}_{f}"
            taken = (set(lf) - set(lmap)) | (set(rf) - set(rmap))
            clash = [n for n in list(lmap.values()) + list(rmap.values()) if n in taken]
            if clash:
                raise self.error(f"cannot name the joined columns: {', '.join(clash)} already exist",
                                 None)

        def rebuild(frame: Frame, renames: dict[str, str]) -> list[ScopeEntry]:
            out = []
            for e in frame.scope.entries:
                cols = {}
                for k, (n, x) in e.columns.items():
                    if isinstance(x, Col) and x.name in renames:
                        x = Col(renames[x.name])
                    cols[k] = (n, x)
                out.append(ScopeEntry(e.alias, e.relation, cols))
            return out

        scope = Scope(rebuild(left, lmap) + rebuild(right, rmap))
        joiner = RenamingJoiner(lmap, rmap) if (lmap or rmap) else None
        return scope, joiner

    def _joined_key(self, scope: Scope, left: Frame, lcol: Expr) -> Expr | None:
        # The key after the join is the join column's value; find how the joined value reads it.
        for e in scope.entries[:len(left.scope.entries)]:
            for old_e in left.scope.entries:
                if old_e.alias != e.alias:
                    continue
                for k, (n, x) in old_e.columns.items():
                    if same_expr(x, lcol):
                        return e.columns[k][1]
        return lcol


def _conjuncts(t: Tree) -> list[Tree]:
    """The top-level AND terms of a condition, in order."""
    if isinstance(t, Tree) and t.data == "and_expr":
        out: list[Tree] = []
        for c in t.children:
            if isinstance(c, Tree):
                out += _conjuncts(c)
        return out
    return [t]


def _subtree(t: Tree, data: str) -> Tree | None:
    for c in t.children:
        if isinstance(c, Tree) and c.data == data:
            return c
    return None


def _subtrees(t: Tree, data: str) -> list[Tree]:
    return [c for c in t.children if isinstance(c, Tree) and c.data == data]


def _split_site(site: str | None) -> tuple[int | None, int | None]:
    if not site:
        return None, None
    parts = site.rsplit(":", 2)
    try:
        return int(parts[-2]), int(parts[-1])
    except (ValueError, IndexError):
        return None, None

