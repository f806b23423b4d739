"""What the ``streamdsl sql`` shell does with each statement, apart from the terminal.

The session keeps the catalog (streams and tables declared or created so far) and the
persistent queries. Each statement is compiled on its own by the SQL front end, reading the
relations of earlier statements from their topics:

* ``CREATE STREAM/TABLE name (...)`` declares a relation; ``CREATE ... AS SELECT`` and
  ``INSERT INTO`` start a persistent query writing its topic. With files, the query runs over
  the topics' files as they are and ends; with Kafka it runs in a process of its own until
  ``TERMINATE``.
* ``SELECT ... EMIT CHANGES [LIMIT n]`` runs a push query in the foreground: its rows are
  printed as they come, until its LIMIT or Ctrl-C.
* ``SHOW STREAMS | TABLES | QUERIES``, ``DESCRIBE``, ``EXPLAIN``, ``PRINT``, ``RUN SCRIPT``,
  ``TERMINATE``, ``SET``/``UNSET``, ``DROP`` act on the catalog.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Any

import orjson
from lark import Tree
from rich.console import Console
from rich.table import Table

from streamdsl.backend import get_backend
from streamdsl.errors import SQLError, StreamDSLError
from streamdsl.functions.conversions import format_type
from streamdsl.optimize import optimize
from streamdsl.render import render_text
from streamdsl.sql.catalog import Relation
from streamdsl.sql.compiler import Compiler
from streamdsl.sql.expressions import literal_value, name_of
from streamdsl.sql.parser import parse

from .push import LimitReached, RowPrinter, streams_rows

__all__ = ["ShellSession", "Query", "KEYWORDS"]

#: words the shell completes (statements and clauses)
KEYWORDS = ("CREATE", "STREAM", "TABLE", "AS", "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING",
            "PARTITION", "WINDOW", "TUMBLING", "HOPPING", "SESSION", "SIZE", "ADVANCE", "GRACE",
            "PERIOD", "EMIT", "CHANGES", "FINAL", "LIMIT", "JOIN", "LEFT", "RIGHT", "FULL", "OUTER",
            "INNER", "WITHIN", "ON", "INSERT", "INTO", "WITH", "KEY", "PRIMARY", "SHOW", "STREAMS",
            "TABLES", "QUERIES", "DESCRIBE", "EXPLAIN", "PRINT", "BEGINNING", "RUN", "SCRIPT",
            "TERMINATE", "SET", "UNSET", "DROP", "EXIT", "KAFKA_TOPIC", "VALUE_FORMAT", "TIMESTAMP",
            "COUNT", "SUM", "AVG", "MIN", "MAX", "LATEST_BY_OFFSET", "EARLIEST_BY_OFFSET")


@dataclass
class Query:
    """A persistent query: its id, statement, sink and how it runs."""

    id: str
    sql: str
    sink: str
    kind: str  # "CREATE_AS" | "INSERT"
    plan_text: str
    process: Any = None  # the Kafka run's process
    status: str = "RUNNING"

    def refresh(self) -> str:
        if self.process is not None and self.status == "RUNNING" and not self.process.is_alive():
            self.status = "DONE" if self.process.exitcode == 0 else "ERROR"
        return self.status


@dataclass
class ShellSession:
    """The shell's state: the store of topics, the backend, the catalog and the queries."""

    store: Any
    backend: str = "local"
    console: Console = field(default_factory=Console)
    relations: dict[str, Relation] = field(default_factory=dict)
    queries: dict[str, Query] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    _counter: int = 0

    # ---- entry point -------------------------------------------------------------------------
    def execute(self, text: str, *, path: str | None = None, strict: bool = False) -> bool:
        """Run every statement of ``text``; an error ends the text's run.

        The error is printed (as the ksql CLI does) and False returned, or, with ``strict``
        (statements from a pipe or a file), raised.
        """
        try:
            tree = parse(text, path=path)
            for st in (s for s in tree.children if isinstance(s, Tree)):
                getattr(self, "_" + st.data)(st, text, path)
        except (SQLError, StreamDSLError) as e:
            if strict:
                raise
            self.console.print(f"[red]{_escape(str(e))}[/red]", highlight=False)
            return False
        return True

    def names(self) -> list[str]:
        """Relation and column names, for completion."""
        out = list(self.relations)
        for r in self.relations.values():
            out += r.column_names()
        return out + list(self.queries)

    # ---- compiling one statement ------------------------------------------------------------------
    def _compiler(self, text: str, path: str | None, query_id: str) -> Compiler:
        known = {}
        for name, rel in self.relations.items():
            known[name] = dataclasses.replace(rel, handle=None, writers=[], read_at=None,
                                              sink_site=None,
                                              connector=self.store.source(rel.topic, query_id))
        return Compiler(text, name=query_id.lower(), path=path, relations=known)

    def _statement_text(self, st: Tree, text: str) -> str:
        m = st.meta
        return text[m.start_pos:m.end_pos] if not getattr(m, "empty", True) else ""

    def _create_source(self, st: Tree, text: str, path: str | None) -> None:
        c = self._compiler(text, path, "declare")
        c.statement(st)
        rel = c.last
        if isinstance(rel, Relation):
            rel.connector = None
            self.relations[rel.name] = rel
            self.console.print(f"{rel.kind.capitalize()} created")

    def _create_as(self, st: Tree, text: str, path: str | None) -> None:
        self._persistent(st, text, path, "CREATE_AS")

    def _insert_into(self, st: Tree, text: str, path: str | None) -> None:
        self._persistent(st, text, path, "INSERT")

    def _persistent(self, st: Tree, text: str, path: str | None, kind: str) -> None:
        self._counter += 1
        sink_name = name_of(next(c for c in st.children if isinstance(c, Tree) and c.data == "name"))
        prefix = "CSAS" if kind == "CREATE_AS" else "INSERTQUERY"
        query_id = f"{prefix}_{sink_name}_{self._counter}"
        c = self._compiler(text, path, query_id)
        c.statement(st)
        rel = c.relations[sink_name]
        if kind == "CREATE_AS" and rel.kind == "table":
            query_id = query_id.replace("CSAS", "CTAS", 1)
        spec = self.store.sink(rel.topic)
        appended = None
        if kind == "INSERT" and self.store.kind == "files":
            appended = spec["path"]
            spec = {"type": "jsonl", "path": appended + f".{query_id}.part"}
        rel.connector = spec
        topo = c.finish(st)
        plan = optimize(topo.plan())
        query = Query(query_id, self._statement_text(st, text), rel.name, kind, render_text(plan))
        self._run_persistent(query, plan, appended)
        self.queries[query_id] = query
        if kind == "CREATE_AS":
            self.relations[rel.name] = dataclasses.replace(rel, writers=[], handle=None, connector=None)
        self.console.print(f"Created query with ID {query_id}")

    def _run_persistent(self, query: Query, plan: Any, appended: str | None) -> None:
        be = get_backend(self.backend)
        if self.store.kind == "files":
            # bounded input: the query runs over the topics' files now
            be.run(plan, {}, {})
            query.status = "DONE"
            if appended is not None:
                part = appended + f".{query.id}.part"
                with open(appended, "ab") as out, open(part, "rb") as f:
                    out.write(f.read())
                os.remove(part)
            return
        # Kafka: a process of its own (forked: it inherits the compiled plan), stopped by
        # TERMINATE with SIGINT, which the run answers with a clean, committed stop
        ctx = multiprocessing.get_context("fork")
        query.process = ctx.Process(target=_run_forever, args=(self.backend, plan), daemon=True)
        query.process.start()

    def _select_stmt(self, st: Tree, text: str, path: str | None) -> None:
        self._counter += 1
        c = self._compiler(text, path, f"transient_{self._counter}")
        c.statement(st)
        pq = c.push_queries[-1]
        topo = c.finish(st)
        plan = optimize(topo.plan())
        columns = list(pq.keys) + list(pq.values)
        self._print_header(columns)
        printer = RowPrinter(pq.limit, lambda rec: self._print_row(rec, pq))
        be = get_backend(self.backend)
        outputs = {pq.sink: {"type": "callback", "write": printer}} if streams_rows(be.name) else {}
        try:
            result = be.run(plan, {}, outputs)
            if not streams_rows(be.name):
                for rec in result.outputs.get(pq.sink, []):
                    printer(rec)
        except LimitReached:
            self.console.print("Limit Reached")
        except KeyboardInterrupt:
            self.console.print("Query terminated")
        self.console.print(f"{printer.count} row{'s' if printer.count != 1 else ''}")

    def _print_header(self, columns: list[str]) -> None:
        self._widths = [max(len(c), 12) for c in columns]
        line = "+" + "+".join("-" * (w + 2) for w in self._widths) + "+"
        self.console.print(line, highlight=False)
        self.console.print("|" + "|".join(f" {c:<{w}} " for c, w in zip(columns, self._widths)) + "|",
                           highlight=False)
        self.console.print(line, highlight=False)

    def _print_row(self, rec: Any, pq: Any) -> None:
        cells = []
        if len(pq.keys) == 1:
            cells.append(rec.key)
        else:
            cells += [rec.key.get(k) if isinstance(rec.key, dict) else None for k in pq.keys]
        value = rec.value if isinstance(rec.value, dict) else {}
        cells += [value.get(v) for v in pq.values]
        text = ["null" if x is None else x if isinstance(x, str) else orjson.dumps(x).decode()
                for x in cells]
        self.console.print("|" + "|".join(f" {x:<{w}} " for x, w in zip(text, self._widths)) + "|",
                           highlight=False, markup=False)

    # ---- catalog statements ------------------------------------------------------------------------
    def _show_stmt(self, st: Tree, text: str, path: str | None) -> None:
        what = str(st.children[1]).upper()
        if what in ("STREAMS", "TABLES"):
            kind = what[:-1].lower()
            t = Table(title=None)
            for col in (f"{kind.capitalize()} Name", "Kafka Topic", "Key Format", "Value Format",
                        "Windowed"):
                t.add_column(col)
            for r in self.relations.values():
                if r.kind == kind:
                    t.add_row(r.name, r.topic, r.formats[0], r.formats[1], str(bool(r.windowed)).lower())
            self.console.print(t)
        elif what == "QUERIES":
            t = Table()
            for col in ("Query ID", "Query Type", "Status", "Sink Name", "Query String"):
                t.add_column(col)
            for q in self.queries.values():
                t.add_row(q.id, "PERSISTENT", q.refresh(), q.sink, q.sql)
            self.console.print(t)
        elif what == "PROPERTIES":
            t = Table()
            t.add_column("Property")
            t.add_column("Value")
            for k, v in sorted(self.properties.items()):
                t.add_row(k, v)
            self.console.print(t)
        else:
            self.console.print(f"SHOW {what} is not supported (SHOW STREAMS, TABLES, QUERIES, PROPERTIES)")

    def _relation(self, st: Tree) -> Relation:
        name_t = next(c for c in st.children if isinstance(c, Tree) and c.data == "name")
        rel = self.relations.get(name_of(name_t))
        if rel is None:
            known = ", ".join(self.relations) or "none"
            raise SQLError(f"unknown stream or table {name_of(name_t)!r} (known: {known})")
        return rel

    def _describe_stmt(self, st: Tree, text: str, path: str | None) -> None:
        rel = self._relation(st)
        self.console.print(f"Name                 : {rel.name}", highlight=False)
        t = Table()
        t.add_column("Field")
        t.add_column("Type")
        marker = " (primary key)" if rel.kind == "table" else " (key)"
        for c in rel.keys:
            t.add_row(c.name, (format_type(c.type) if c.type else "?") + marker)
        for c in rel.values:
            t.add_row(c.name, format_type(c.type) if c.type else "?")
        self.console.print(t)
        writers = [q.id for q in self.queries.values() if q.sink == rel.name]
        if writers:
            self.console.print(f"Queries that write into this {rel.kind}: {', '.join(writers)}")

    def _explain_stmt(self, st: Tree, text: str, path: str | None) -> None:
        target = st.children[1]
        if isinstance(target, Tree) and target.data == "name":
            q = self.queries.get(name_of(target))
            if q is None:
                raise SQLError(f"unknown query {name_of(target)!r} (queries: "
                               f"{', '.join(self.queries) or 'none'})")
            self.console.print(q.sql, highlight=False, markup=False)
            self.console.print(q.plan_text, highlight=False, markup=False)
            return
        c = self._compiler(text, path, "explain")
        sub = Tree("select_stmt", [target], meta=st.meta)
        c.statement(sub)
        self.console.print(render_text(optimize(c.finish(st).plan())), highlight=False, markup=False)

    def _print_stmt(self, st: Tree, text: str, path: str | None) -> None:
        target = st.children[1]
        topic = literal_value(Tree("string_lit", [target]))[1] if not isinstance(target, Tree) \
            else name_of(target)
        if isinstance(target, Tree):
            rel = self.relations.get(topic)
            topic = rel.topic if rel is not None else str(target.children[0])
        limit_t = next((c for c in st.children if isinstance(c, Tree) and c.data == "limit_clause"), None)
        limit = int(limit_t.children[1]) if limit_t is not None else None
        every_t = next((c for c in st.children if isinstance(c, Tree) and c.data == "interval_clause"),
                       None)
        every = max(int(every_t.children[1]), 1) if every_t is not None else 1
        n = 0
        try:
            writers = {self.relations[q.sink].topic for q in self.queries.values()
                       if q.refresh() == "RUNNING" and q.sink in self.relations}
            for i, ev in enumerate(self.store.read(topic, wait=topic in writers)):
                if limit is not None and n >= limit:
                    break  # LIMIT 0
                if i % every:
                    continue  # INTERVAL n: every n-th record, as the ksql CLI prints
                when = dt.datetime.fromtimestamp((ev.timestamp or 0) / 1000, dt.timezone.utc)
                key = "null" if ev.key is None else orjson.dumps(ev.key).decode()
                value = "null" if ev.value is None else orjson.dumps(ev.value).decode()
                self.console.print(f"rowtime: {when:%Y/%m/%d %H:%M:%S}.{when.microsecond // 1000:03d}"
                                   f" Z, key: {key}, value: {value}", highlight=False, markup=False)
                n += 1
                if limit is not None and n >= limit:
                    break  # at once: a Kafka topic's read waits for the next record
        except KeyboardInterrupt:
            pass
        self.console.print(f"Topic printing ceased ({n} record{'s' if n != 1 else ''})")

    def _run_script(self, st: Tree, text: str, path: str | None) -> None:
        file = literal_value(Tree("string_lit", [st.children[2]]))[1]
        try:
            with open(file, encoding="utf-8") as f:
                script = f.read()
        except OSError as e:
            raise SQLError(f"cannot read {file}: {e.strerror or e}") from None
        self.execute(script, path=file)

    def _terminate_stmt(self, st: Tree, text: str, path: str | None) -> None:
        target = st.children[1]
        ids = list(self.queries) if not isinstance(target, Tree) else [name_of(target)]
        for qid in ids:
            q = self.queries.get(qid)
            if q is None:
                raise SQLError(f"unknown query {qid!r} (queries: {', '.join(self.queries) or 'none'})")
            self.terminate(q)
            del self.queries[qid]
            self.console.print(f"Query terminated: {qid}")

    def terminate(self, q: Query) -> None:
        if q.process is not None and q.process.is_alive():
            os.kill(q.process.pid, signal.SIGINT)
            q.process.join(15)
            if q.process.is_alive():
                q.process.terminate()
                q.process.join(5)

    def close(self) -> None:
        """Stop every query still running."""
        for q in self.queries.values():
            self.terminate(q)

    def _set_stmt(self, st: Tree, text: str, path: str | None) -> None:
        key = literal_value(Tree("string_lit", [st.children[1]]))[1]
        value = literal_value(Tree("string_lit", [st.children[2]]))[1]
        self.properties[key] = value
        self.console.print(f"Successfully changed local property '{key}' to '{value}'.")

    def _unset_stmt(self, st: Tree, text: str, path: str | None) -> None:
        key = literal_value(Tree("string_lit", [st.children[1]]))[1]
        self.properties.pop(key, None)
        self.console.print(f"Successfully unset local property '{key}'.")

    def _drop_stmt(self, st: Tree, text: str, path: str | None) -> None:
        try:
            rel = self._relation(st)
        except SQLError:
            if any(isinstance(c, Tree) and c.data == "if_exists" for c in st.children):
                return
            raise
        for q in list(self.queries.values()):
            if q.sink == rel.name:
                raise SQLError(f"cannot drop {rel.name}: query {q.id} writes it; TERMINATE it first")
        del self.relations[rel.name]
        if any(getattr(c, "type", None) == "DELETE_TOPIC" for c in st.children):
            self.store.delete(rel.topic)
        self.console.print(f"Source `{rel.name}` (topic: {rel.topic}) was dropped.")


def _run_forever(backend: str, plan: Any) -> None:
    """A Kafka query's process: run until SIGINT (TERMINATE)."""
    try:
        get_backend(backend).run(plan, {}, {})
    except KeyboardInterrupt:
        pass


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
