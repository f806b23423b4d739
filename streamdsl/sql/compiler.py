"""Compile parsed SQL statements into a ``Topology`` by calling the Python DSL.

Every DSL call runs under ``site_override`` so that nodes (and DSL errors) carry the SQL
``path:line:column`` of the clause they come from. ``Compiler`` keeps the catalog (the
relations declared and created so far) and compiles one statement at a time: a script is its
statements in order (``compile_text``); the ``streamdsl sql`` shell feeds them one by one.
"""

from __future__ import annotations

import difflib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from lark import Token, Tree

from ..callsite import site_override
from ..dsl.topology import Topology
from ..errors import SQLError, StreamDSLError, TopologyError
from ..expr import Func, Lit, Project
from ..functions.conversions import parse_type
from .catalog import Column, Relation
from .expressions import literal_value, name_of, type_text
from .formats import KeyWriter, SourceReader, TimestampReader, ValueWriter
from .parser import parse, position_of, sql_error
from .query import QueryCompiler, QueryResult, subtree, subtrees

__all__ = ["compile_text", "compile_script", "Compiler", "Script", "PushQuery", "SHELL_STATEMENTS"]

TYPES = {"VARCHAR", "STRING", "INT", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "BOOLEAN", "BYTES",
         "TIMESTAMP", "DATE", "TIME", "ARRAY", "MAP", "STRUCT"}
# PATH is streamdsl's own: the data a source reads (or a sink writes) when `streamdsl run` is
# given no --input/--output for it (a file path, relative to the .sql file, or any URI).
_SOURCE_PROPS = {"KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "TIMESTAMP",
                 "TIMESTAMP_FORMAT", "PARTITIONS", "REPLICAS", "PATH", "WRAP_SINGLE_VALUE",
                 "VALUE_DELIMITER"}
_DERIVED_PROPS = {"KAFKA_TOPIC", "VALUE_FORMAT", "KEY_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS",
                  "WRAP_SINGLE_VALUE", "PATH", "VALUE_DELIMITER"}
_FORMATS = {"JSON", "KAFKA", "DELIMITED", "NONE"}
#: statements of the ``streamdsl sql`` shell (a script file may not hold them)
SHELL_STATEMENTS = {"show_stmt": "SHOW", "describe_stmt": "DESCRIBE", "explain_stmt": "EXPLAIN",
                    "print_stmt": "PRINT", "run_script": "RUN SCRIPT", "terminate_stmt": "TERMINATE",
                    "set_stmt": "SET", "unset_stmt": "UNSET", "drop_stmt": "DROP"}


@dataclass
class PushQuery:
    """A transient ``SELECT ... EMIT CHANGES`` query: its sink and how many rows it prints."""

    sink: str
    limit: int | None
    keys: tuple[str, ...]
    values: tuple[str, ...]
    sql: str
    line: int


@dataclass
class Script:
    """A compiled SQL script: the topology, its relations and its push queries."""

    topology: Topology
    relations: dict[str, Relation]
    push_queries: list[PushQuery] = field(default_factory=list)


def compile_text(text: str, *, name: str | None = None, path: str | None = None) -> Topology:
    """Parse and compile ``text``; see ``streamdsl.sql.compile_sql``."""
    return compile_script(text, name=name, path=path).topology


def compile_script(text: str, *, name: str | None = None, path: str | None = None) -> Script:
    """Parse and compile ``text`` into a ``Script`` (statements in order)."""
    c = Compiler(text, name=name, path=path)
    tree = parse(text, path=path)
    statements = [s for s in tree.children if isinstance(s, Tree)]
    if not statements:
        raise SQLError("no SQL statements found (expected CREATE STREAM/TABLE, INSERT INTO or a "
                       "SELECT ... EMIT CHANGES)", path=path)
    for st in statements:
        if st.data in SHELL_STATEMENTS:
            raise c.error(f"{SHELL_STATEMENTS[st.data]} is a statement of the interactive shell "
                          "(streamdsl sql); a script holds CREATE, INSERT INTO and SELECT "
                          "statements", st.children[0])
        c.statement(st)
    c.finish(statements[-1])
    return c.script()


class Compiler:
    """The catalog and the topology being built, one statement at a time.

    Args:
        text: the SQL text (positions and excerpts refer to it).
        name: the topology name (default: the file name without extension, or ``"sql"``).
        path: the file the text came from (messages say ``path:line:column``).
        relations: relations already known (the shell: from earlier statements); a query reading
            one of them reads its topic as a source.
    """

    def __init__(self, text: str, *, name: str | None = None, path: str | None = None,
                 relations: dict[str, Relation] | None = None):
        self.text = text
        self.path = path
        if name is None:
            name = os.path.splitext(os.path.basename(path))[0] if path else "sql"
        self.known = dict(relations or {})
        self.relations: dict[str, Relation] = dict(self.known)
        with site_override(self._site_at(1, 1)):
            # ksqlDB logs a record it cannot process and goes on: dead letters are that log
            self.topo = Topology(name, on_error="dead-letter")
        self.sink_order: list[Relation] = []
        self.push_queries: list[PushQuery] = []
        self.last: Relation | PushQuery | None = None

    # ---- positions and errors ---------------------------------------------------------------------
    def _site_at(self, line: int | None, column: int | None) -> str:
        return f"{self.path or '<sql>'}:{line}:{column}"

    def site(self, node: Any) -> str:
        line, col, _ = position_of(node)
        return self._site_at(line, col)

    def error(self, message: str, node: Any) -> SQLError:
        line, col, length = position_of(node)
        return sql_error(message, self.text, line, col, path=self.path, length=length)

    def text_of(self, t: Any) -> str:
        m = getattr(t, "meta", None)
        if m is None or getattr(m, "empty", True):
            return str(t)
        return self.text[m.start_pos:m.end_pos]

    @contextmanager
    def at(self, node: Any) -> Iterator[None]:
        """Run DSL calls with ``node``'s SQL position as their call site (so a DSL error, a
        ``TopologyError``, says ``file.sql:line:column``)."""
        line, col, _ = position_of(node)
        with site_override(self._site_at(line, col)):
            yield

    # ---- statements ----------------------------------------------------------------------------------
    def statement(self, st: Tree) -> None:
        """Compile one statement (CREATE, CREATE ... AS, INSERT INTO, SELECT ... EMIT CHANGES)."""
        getattr(self, "_" + st.data)(st)

    def finish(self, last: Tree | None = None) -> Topology:
        """Write every sink; the topology is complete."""
        self._write_sinks()
        if not self.topo.sinks:
            node = _first(last, "name") or last
            raise self.error("the SQL declares no query: add CREATE STREAM/TABLE ... AS SELECT, "
                             "INSERT INTO ... SELECT or SELECT ... EMIT CHANGES (a topology needs "
                             "at least one output)", node)
        return self.topo

    def script(self) -> Script:
        return Script(self.topo, self.relations, self.push_queries)

    def _create_source(self, st: Tree) -> None:
        kind, name_t, if_not_exists = self._create_head(st)
        name = name_of(name_t)
        if self._exists(name, name_t, if_not_exists, st):
            return
        keys: list[Column] = []
        values: list[Column] = []
        for cd in subtrees(st, "column_def"):
            cname_t, type_t = cd.children[0], cd.children[1]
            cname = name_of(cname_t)
            if cname in (c.name for c in keys + values):
                raise self.error(f"column {cname!r} is declared twice", cname_t)
            self._check_type(type_t)
            col = Column(cname, parse_type(type_text(type_t)))
            marker = cd.children[2] if len(cd.children) > 2 else None
            if marker is not None:
                if kind == "stream" and marker.data == "primary_key_column":
                    raise self.error("streams take KEY columns; PRIMARY KEY is for tables", marker)
                if kind == "table" and marker.data == "key_column":
                    raise self.error("tables take a PRIMARY KEY column; KEY is for streams", marker)
                keys.append(col)
            else:
                values.append(col)
        if kind == "table" and not keys:
            raise self.error("a table needs a PRIMARY KEY column (its rows are keyed by it): "
                             f"CREATE TABLE {name} (id INT PRIMARY KEY, ...)", name_t)
        props = self._properties(st, _SOURCE_PROPS)
        formats, wrap = self._formats(props, ("KAFKA", "JSON"))
        ts = ts_format = None
        if "TIMESTAMP" in props:
            ts_raw, ts_node = props["TIMESTAMP"]
            ts = self._column_named(str(ts_raw), values, keys, ts_node)
        if "TIMESTAMP_FORMAT" in props:
            if ts is None:
                raise self.error("TIMESTAMP_FORMAT needs TIMESTAMP='column'", props["TIMESTAMP_FORMAT"][1])
            ts_format = props["TIMESTAMP_FORMAT"][0]
        if not wrap and len(values) != 1:
            raise self.error("WRAP_SINGLE_VALUE=false needs exactly one value column",
                             props["WRAP_SINGLE_VALUE"][1])
        line, col, _ = position_of(st)
        rel = Relation(name=name, kind=kind, topic=self._topic(props, name), keys=tuple(keys),
                       values=tuple(values), line=line or 0, column=col or 0, formats=formats,
                       wrap=wrap, declared=True, timestamp=ts, timestamp_format=ts_format,
                       connector=self._connector(props), sql=self.text_of(st),
                       delimiter=props.get("VALUE_DELIMITER", (",",))[0])
        self._add_relation(rel)

    def _create_as(self, st: Tree) -> None:
        kind, name_t, if_not_exists = self._create_head(st)
        name = name_of(name_t)
        if self._exists(name, name_t, if_not_exists, st):
            return
        props = self._properties(st, _DERIVED_PROPS)
        query = subtree(st, "query")
        result = QueryCompiler(self, query).run()
        handle = result.handle
        if kind == "stream" and result.kind == "table":
            # The talk's `CREATE STREAM x AS SELECT ... GROUP BY`: the table's changelog.
            with self.at(name_t):
                handle = handle.to_stream()
        elif kind == "table" and result.kind == "stream":
            raise self.error(
                "this query produces a STREAM (no GROUP BY over a stream); use CREATE STREAM ... AS "
                "SELECT, or add GROUP BY to build a table", name_t)
        source = self.relations.get(result.sources[0]) if result.sources else None
        formats, wrap = self._formats(props, source.formats if source else ("KAFKA", "JSON"))
        if not wrap and len(result.values) != 1:
            raise self.error(f"WRAP_SINGLE_VALUE=false needs exactly one value column, got "
                             f"{len(result.values)} ({', '.join(c.name for c in result.values)})",
                             props["WRAP_SINGLE_VALUE"][1] if "WRAP_SINGLE_VALUE" in props else query)
        line, col, _ = position_of(st)
        rel = Relation(name=name, kind=kind, topic=self._topic(props, name), keys=result.keys,
                       values=result.values, line=line or 0, column=col or 0, formats=formats,
                       wrap=wrap, windowed=result.windowed if kind == "table" else None,
                       window=result.window, connector=self._connector(props), sql=self.text_of(st),
                       delimiter=props.get("VALUE_DELIMITER", (source.delimiter if source else ",",))[0])
        rel.writers.append((handle, self.site(name_t)))
        rel.sink_site = self.site(name_t)
        self._add_relation(rel)

    def _insert_into(self, st: Tree) -> None:
        name_t = subtree(st, "name")
        target = self.lookup(name_of(name_t), name_t)
        if target.kind != "stream":
            raise self.error(f"INSERT INTO needs a stream; {target.name} is a table", name_t)
        if target.read_at is not None:
            raise self.error(
                f"INSERT INTO {target.name} after a query read it (line {target.read_at}): in one "
                f"topology every writer of {target.name} must come before its readers; move this "
                "statement up", name_t)
        self._properties(st, set())
        query = subtree(st, "query")
        result = QueryCompiler(self, query).run()
        if result.kind != "stream":
            raise self.error("INSERT INTO takes a query that produces a stream (no GROUP BY)", name_t)
        got = sorted(c.name for c in result.values)
        want = sorted(c.name for c in target.values)
        if got != want:
            raise self.error(
                f"the query's value columns ({', '.join(got) or 'none'}) do not match "
                f"{target.name}'s ({', '.join(want) or 'none'})", query)
        if [c.name for c in result.keys] != [c.name for c in target.keys]:
            want_k = ", ".join(c.name for c in target.keys) or "none"
            raise self.error(
                f"the query's key columns ({', '.join(c.name for c in result.keys) or 'none'}) do "
                f"not match {target.name}'s ({want_k}); select the key column under that name, "
                f"or add PARTITION BY", query)
        target.writers.append((result.handle, self.site(name_t)))
        if target.sink_site is None:
            target.sink_site = self.site(name_t)
        if target not in self.sink_order:
            self.sink_order.append(target)
        self.last = target

    def _select_stmt(self, st: Tree) -> None:
        query = subtree(st, "query")
        emit = next((c for c in query.children if isinstance(c, Tree) and c.data.startswith("emit_")),
                    None)
        if emit is None:
            raise self.error("a SELECT without EMIT CHANGES is a pull query, which streamdsl does "
                             "not run; add EMIT CHANGES for a push query (its rows as they come)",
                             query.children[0])
        limit_t = subtree(st, "limit_clause")
        limit = int(limit_t.children[1]) if limit_t is not None else None
        if limit is not None and limit < 1:
            raise self.error("LIMIT takes a positive number of rows", limit_t)
        result = QueryCompiler(self, query).run()
        handle = result.handle
        if result.kind == "table":
            with self.at(query.children[0]):
                handle = handle.to_stream()
        n = len(self.push_queries) + 1
        sink = f"QUERY_{n}"
        while sink in self.relations or sink in self.topo.sources:
            n += 1
            sink = f"QUERY_{n}"
        line, col, _ = position_of(st)
        rel = Relation(name=sink, kind="stream", topic=sink, keys=result.keys, values=result.values,
                       line=line or 0, column=col or 0, sql=self.text_of(st))
        source = self.relations.get(result.sources[0]) if result.sources else None
        rel.formats = source.formats if source else rel.formats
        rel.writers.append((handle, self.site(query.children[0])))
        rel.sink_site = self.site(query.children[0])
        self.sink_order.append(rel)
        pq = PushQuery(sink, limit, tuple(c.name for c in result.keys),
                       tuple(c.name for c in result.values), self.text_of(st), line or 0)
        self.push_queries.append(pq)
        self.last = pq

    # ---- statement helpers --------------------------------------------------------------------------
    def _create_head(self, st: Tree) -> tuple[str, Tree, bool]:
        kind_t = subtree(st, "relation_kind")
        kind = str(kind_t.children[0]).lower()
        return kind, subtree(st, "name"), subtree(st, "if_not_exists") is not None

    def _exists(self, name: str, name_t: Tree, if_not_exists: bool, st: Tree) -> bool:
        old = self.relations.get(name)
        if old is None:
            return False
        if if_not_exists:
            return True
        if subtree(st, "or_replace") is not None and name in self.known:
            return False
        raise self.error(f"{old.kind} {old.name} is already declared (line {old.line})", name_t)

    def _add_relation(self, rel: Relation) -> None:
        self.relations[rel.name] = rel
        if rel.writers:
            self.sink_order.append(rel)
        self.last = rel

    def _check_type(self, t: Tree) -> None:
        base_t = t.children[0]
        base = name_of(base_t)
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
        w = subtree(st, "with_clause")
        if w is None:
            return out
        for p in subtrees(w, "property"):
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
                    raise self.error(f"{key} {value!r} is not supported; formats: "
                                     f"{', '.join(sorted(_FORMATS))} (Avro, Protobuf and JSON_SR "
                                     "need a schema registry)", val_t)
                value = value.upper()
            if key in ("KAFKA_TOPIC", "TIMESTAMP", "PATH", "TIMESTAMP_FORMAT") and (
                    not isinstance(value, str) or not value):
                raise self.error(f"{key} takes a non-empty string, e.g. {key}='name'", val_t)
            if key == "VALUE_DELIMITER":
                value = {"TAB": "\t", "SPACE": " "}.get(str(value).upper(), value)
                if not isinstance(value, str) or len(value) != 1:
                    raise self.error("VALUE_DELIMITER takes one character, or 'TAB' or 'SPACE'",
                                     val_t)
            out[key] = (value, val_t)
        return out

    def _formats(self, props: dict, inherited: tuple[str, str]) -> tuple[tuple[str, str], bool]:
        key_format, value_format = inherited
        if "FORMAT" in props:
            key_format = value_format = props["FORMAT"][0]
            for k in ("KEY_FORMAT", "VALUE_FORMAT"):
                if k in props:
                    raise self.error(f"FORMAT sets both formats; drop {k}", props[k][1])
        key_format = props.get("KEY_FORMAT", (key_format,))[0]
        value_format = props.get("VALUE_FORMAT", (value_format,))[0]
        wrap = value_format != "KAFKA"
        if "WRAP_SINGLE_VALUE" in props:
            value, node = props["WRAP_SINGLE_VALUE"]
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise self.error("WRAP_SINGLE_VALUE takes true or false", node)
            wrap = value
        return (key_format, value_format), wrap

    def _connector(self, props: dict) -> dict | None:
        if "PATH" not in props:
            return None
        value, node = props["PATH"]
        if "://" not in value and value != "-" and not os.path.isabs(value):
            base = os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()
            value = os.path.normpath(os.path.join(base, value.partition("?")[0])) + (
                "?" + value.partition("?")[2] if "?" in value else "")
        from ..connectors import parse_uri
        try:
            return parse_uri(value)
        except StreamDSLError as e:
            raise self.error(f"PATH {props['PATH'][0]!r}: {e}", node) from None

    def _topic(self, props: dict, name: str) -> str:
        return props["KAFKA_TOPIC"][0] if "KAFKA_TOPIC" in props else name

    def _column_named(self, raw: str, values: list[Column], keys: list[Column], node: Tree) -> str:
        want = raw[1:-1] if raw.startswith("`") else raw.upper()
        for c in values:
            if c.name == want:
                return c.name
        if any(c.name == want for c in keys):
            raise self.error(f"TIMESTAMP names key column {want}; event time is read from a value "
                             "column", node)
        raise self.error(f"TIMESTAMP names unknown column {raw!r} (columns: "
                         f"{', '.join(c.name for c in values)})", node)

    def lookup(self, name: str, node: Any) -> Relation:
        rel = self.relations.get(name)
        if rel is None:
            known = [r.name for r in self.relations.values() if not r.name.startswith("QUERY_")]
            hint = difflib.get_close_matches(name, known, n=1)
            msg = f"unknown stream or table {name!r}"
            if hint:
                msg += f"; did you mean {hint[0]!r}?"
            msg += (f" (declared: {', '.join(known)})" if known else
                    " (declare it first with CREATE STREAM/TABLE name (columns...) WITH (...))")
            raise self.error(msg, node)
        return rel

    # ---- reading relations ------------------------------------------------------------------------
    def read(self, rel: Relation, node: Any) -> Any:
        """The DSL handle reading ``rel``: its writers' merged stream in this topology, or its
        topic as a source (a declared relation, or one an earlier shell statement created)."""
        if rel.read_at is None:
            line, _, _ = position_of(node)
            rel.read_at = line
        if rel.handle is not None:
            return rel.handle
        if rel.writers and rel.name not in self.known:
            rel.handle = self._merged_writers(rel)
            return rel.handle
        if rel.windowed:
            raise self.error(f"{rel.name} is a windowed table written by another query: reading its "
                             "topic back is not supported (its keys carry the window)", node)
        # a column a query computed has no declared type: read back as it was written
        reader = SourceReader(tuple((c.name, c.type or ("ANY",)) for c in rel.values),
                              rel.formats[1], rel.wrap, rel.delimiter)
        ts = None
        if rel.timestamp is not None:
            ts = TimestampReader(reader, rel.timestamp, rel.timestamp_format)
        with self.at(Token("IDENTIFIER", rel.name, line=rel.line, column=rel.column)):
            make = self.topo.stream if rel.kind == "stream" else self.topo.table
            # a CSV file's cells of text columns are read as text (the reader types the rest)
            text = {c.name: ("str" if c.type and c.type[0] == "STRING" else None)
                    for c in rel.values}
            source = make(rel.topic, timestamp=ts, connector=rel.connector,
                          schema=text if any(text.values()) else None)
            rel.handle = source.map(reader)
        return rel.handle

    def _merged_writers(self, rel: Relation) -> Any:
        handles = [h for h, _ in rel.writers]
        if len(handles) == 1:
            return handles[0]
        with site_override(rel.writers[1][1]):
            return handles[0].merge(*handles[1:])

    # ---- writing sinks ---------------------------------------------------------------------------------
    def _write_sinks(self) -> None:
        for rel in self.sink_order:
            if rel.name in self.known and rel.handle is None and not rel.writers:
                continue
            handle = rel.handle if rel.handle is not None else self._merged_writers(rel)
            rel.handle = handle
            with site_override(rel.sink_site):
                try:
                    self._formatted(rel, handle).to(rel.topic, connector=rel.connector,
                                                    columns=self._sink_columns(rel))
                except TopologyError as e:
                    line, col = _split_site(rel.sink_site)
                    raise sql_error(e.reason, self.text, line, col, path=self.path) from None

    @staticmethod
    def _sink_columns(rel: Relation) -> list[str] | None:
        """The value columns of a sink written as JSON objects (a CSV output's columns)."""
        names = [c.name for c in rel.values]
        return names if names and rel.formats[1] == "JSON" and rel.wrap else None

    def _formatted(self, rel: Relation, handle: Any) -> Any:
        """``handle`` with its records as ``rel``'s formats write them (the relation's readers
        in this topology keep reading the logical records)."""
        key_format, value_format = rel.formats
        names = tuple(c.name for c in rel.values)
        if value_format != "JSON" or not rel.wrap:
            handle = handle.map(ValueWriter(names, value_format, rel.wrap, rel.delimiter))
        keyed = key_format == "DELIMITED" and len(rel.keys) > 1
        if not rel.keys or keyed:
            if rel.kind == "table":
                handle = handle.to_stream()
            if keyed:
                handle = handle.map_kv(KeyWriter(tuple(c.name for c in rel.keys)))
            else:
                # a stream without a key column writes a null key, as ksqlDB does (the
                # projection of every value column is the value itself)
                handle = handle.map_kv(Func("kv", (Lit(None), Project(names))))
        return handle


def _first(t: Tree | None, data: str) -> Tree | None:
    return subtree(t, data) if isinstance(t, Tree) else None


def _split_site(site: str | None) -> tuple[int | None, int | None]:
    if not site:
        return None, None
    parts = site.rsplit(":", 2)
    try:
        return int(parts[-2]), int(parts[-1])
    except (ValueError, IndexError):
        return None, None


__all__ += ["QueryResult"]
