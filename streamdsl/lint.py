"""The topology linter (``streamdsl validate``): legal topologies that are wrong in practice.

``lint(plan, backend)`` returns ``Finding`` objects, each with the user's file:line. Errors
are what the chosen backend cannot run (checked before anything runs); warnings are:

``dead-operator``
    An operator (or source) whose records reach no sink or peek; the optimizer removes it.
``grace-exceeds-retention``
    A window or join grace longer than the retention of a source feeding it. Retention is
    how long the input keeps a record for replay: the source's declared
    ``connector={"retention_ms": ...}``, else Kafka's default ``retention.ms`` of 7 days. A
    record that late is accepted while its window's earlier records are already gone from
    the topic, so reprocessing cannot reproduce the result, and the state is held for nothing.
``window-never-closes``
    A result that waits for stream time to pass the window's end + grace (``emit="final"``
    aggregations, and the unmatched records of left/outer stream-stream joins), where stream
    time can stall for an idle key. Stream time only moves when a record reaches the
    operator, so the last window of a key closes only when other keys keep sending. The rule
    fires when (a) the grouping key is a constant, so there are no other keys and the last
    window never closes before end of input, or (b) a source feeding it is unbounded (Kafka,
    stdin): if traffic stops, the last windows are never emitted.
``join-keys-differ``
    A stream-stream join whose sides are keyed by different fields (as far as expressions
    tell): records match only on equal keys.
``having-on-changes``
    A windowed aggregation with ``emit="changes"`` followed by a filter (a SQL ``HAVING``)
    and written as a stream: the sink receives every intermediate value that passes (4, 5,
    6 ... for ``count > 3``) and tombstones, not one final result per window.
``shuffle-after-rekey``
    A stateful operator after a key change, on a backend where the repartition is a shuffle
    across workers (any backend but ``local``, unless it declares ``shuffles = False``).
``keyless-source``
    An operator that needs the record key (an aggregation after ``group_by_key()``, a join, a
    table) fed, key unchanged, by a source that declares no ``key=`` and is bound to an
    input whose records carry none: a JSON-lines or CSV file without ``?key=FIELD`` (or
    ``?envelope=true``), or stdin. Every record has a null key, so the operator skips them
    all (counted as ``skipped``, nothing out).
``unknown-field``
    An expression (``sd.col("x")``) reading a field that no declared schema of its input has
    (``stream(..., schema=[...])``): every record has null there, and a filter or
    ``group_by`` on it drops them all. Fields are followed through operators that keep the
    value (filters, re-keys, branches, merges), projections (``struct``, SQL ``SELECT``),
    ``agg(...)`` results and dict-merging joins; anything opaque stops the check.

>>> import streamdsl as sd
>>> t = sd.Topology("t")
>>> t.stream("in").group_by("k").window(sd.tumbling(minutes=1), emit="changes") \\
...     .agg(n=sd.count()).filter(sd.col("n") > 3).to_stream().to("out")
>>> [f.code for f in lint(t.plan())]
['having-on-changes']
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .backend import Backend, get_backend
from .errors import TopologyError, UnsupportedNodeError
from .expr import Col, Func, Lit, Project
from .ir.fn import Fn
from .ir.nodes import (Aggregate, Branch, Filter, FlatMap, Fused, KeyBy, Map, Merge, Node, Peek,
                       Repartition, Sink, Source, StreamStreamJoin, StreamTableJoin, TableFilter,
                       TableMap, TableTableJoin, ToStream)
from .ir.plan import Plan
from .render import short_site
from .windows import _fmt

__all__ = ["Finding", "lint", "DEFAULT_RETENTION_MS", "RULES"]

#: Kafka's default topic ``retention.ms`` (7 days): a source's retention when none is declared.
DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000

RULES = ("unsupported-node", "dead-operator", "grace-exceeds-retention", "window-never-closes",
         "join-keys-differ", "having-on-changes", "shuffle-after-rekey", "keyless-source",
         "unknown-field")


@dataclass(frozen=True)
class Finding:
    """One linter message: ``severity`` is ``"error"`` or ``"warning"``."""

    severity: str
    code: str
    message: str
    node: str | None = None
    site: str | None = None

    def format(self) -> str:
        where = short_site(self.site) if self.site else "<topology>"
        return f"{where}: {self.severity}: {self.message} [{self.code}]"

    def to_dict(self) -> dict:
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "node": self.node, "site": self.site}


def lint(plan: Plan, backend: str | Backend | None = None, *, optimized: Plan | None = None,
         inputs: dict[str, Any] | None = None) -> list[Finding]:
    """Check ``plan`` (as written) and ``optimized`` (as it will run; default: the default
    passes) for ``backend`` (``None``: no backend-specific checks).

    ``inputs`` (``{source: URI or spec}``, as given to a run) tells which sources are
    unbounded. Findings come errors first, then by file and line.
    """
    if optimized is None:
        from .optimize import OptimizerWarning, optimize
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizerWarning)
            optimized = optimize(plan)
    be = get_backend(backend) if backend is not None else None
    out: list[Finding] = []
    if be is not None:
        out += _unsupported(optimized, be)
    out += _dead(plan)
    out += _grace_retention(plan)
    out += _never_closes(plan, inputs or {})
    out += _join_keys(plan)
    out += _having_on_changes(plan)
    out += _keyless_sources(plan, inputs or {})
    out += _unknown_fields(plan)
    if be is not None:
        out += _shuffles(optimized, be)
    return sorted(out, key=_order)


def _order(f: Finding) -> tuple:
    """Errors first, then by file and line (as a compiler lists them)."""
    path, _, line = (f.site or "").rpartition(":")
    num = int(line) if line.isdigit() else 1 << 30
    return (f.severity != "error", f.site is None, path, num)


def _w(code: str, node: Node, message: str) -> Finding:
    return Finding("warning", code, message, node.name, node.site)


# ---- errors: what the backend cannot run -----------------------------------------------------------

def _unsupported(plan: Plan, be: Backend) -> list[Finding]:
    out = []
    for node in plan.topological():
        for n in (node.stages if isinstance(node, Fused) else (node,)):
            if n.kind not in be.capabilities:
                out.append(Finding("error", "unsupported-node",
                                   f"{n.kind} {n.name!r} cannot run on backend {be.name!r}; see "
                                   "`streamdsl backends` for what each backend runs", n.name, n.site))
    if not out:
        try:
            be.check(plan)
        except UnsupportedNodeError as e:
            out.append(Finding("error", "unsupported-node", e.reason, e.node, e.site))
        except TopologyError as e:
            out.append(Finding("error", "unsupported-node", e.reason, e.node, e.site))
    return out


# ---- dead operators ---------------------------------------------------------------------------------

def _dead(plan: Plan) -> list[Finding]:
    live: set[str] = set()
    for n in plan.nodes():
        if isinstance(n, (Sink, Peek)):
            live.add(n.name)
            live |= nx.ancestors(plan.graph, n.name)
    out = []
    for n in plan.nodes():
        if n.name in live:
            continue
        if isinstance(n, Source):
            out.append(_w("dead-operator", n, f"source {n.topic!r} reaches no sink: nothing "
                                              "reads it (write a result with .to(name))"))
        else:
            out.append(_w("dead-operator", n, f"{n.kind} {n.name!r} reaches no sink and is "
                                              "removed by the optimizer; write its output with "
                                              ".to(name) or delete it"))
    return out


# ---- grace and retention -------------------------------------------------------------------------

def _retention(src: Source) -> tuple[int, str]:
    conn = src.connector or {}
    for k in ("retention_ms", "retention"):
        if conn.get(k) is not None:
            return int(conn[k]), f"declared {k}"
    return DEFAULT_RETENTION_MS, "Kafka's default retention.ms"


def _sources_of(plan: Plan, name: str) -> list[Source]:
    names = nx.ancestors(plan.graph, name)
    return [n for n in plan.sources() if n.name in names]


def _grace_retention(plan: Plan) -> list[Finding]:
    out = []
    for n in plan.topological():
        if isinstance(n, Aggregate) and n.window is not None:
            grace, what = n.window.grace, f"window {n.window.describe()}"
        elif isinstance(n, StreamStreamJoin):
            grace, what = n.grace, f"join window (within {_fmt(n.within)})"
        else:
            continue
        for src in _sources_of(plan, n.name):
            ret, how = _retention(src)
            if grace > ret:
                out.append(_w("grace-exceeds-retention", n,
                              f"grace {_fmt(grace)} of the {what} is longer than the retention of "
                              f"source {src.topic!r} ({_fmt(ret)}, {how}): a record that late "
                              "joins a window whose earlier records are already deleted from "
                              "the topic, so a replay cannot reproduce it; lower grace, or "
                              "declare the topic's retention with connector={'retention_ms': ...}"))
                break
    return out


# ---- windows that cannot close ----------------------------------------------------------------------

def _unbounded(src: Source, inputs: dict[str, Any]) -> bool:
    spec = inputs.get(src.topic, src.connector)
    if spec is None:
        return False
    if isinstance(spec, str):
        return spec == "-" or spec.startswith("kafka://")
    return isinstance(spec, dict) and spec.get("type") in ("kafka", "stdio")


def _constant_key(plan: Plan, name: str) -> bool:
    """Whether every record reaching ``name`` has the same key (a constant re-key upstream)."""
    node = plan.node(name)
    if isinstance(node, KeyBy):
        return node.fn.expr is not None and isinstance(node.fn.expr, Lit)
    if isinstance(node, (Filter, Peek, Repartition, Map, FlatMap, Branch)):
        ins = plan.in_edges(name)
        return len(ins) == 1 and _constant_key(plan, ins[0].src)
    return False


def _never_closes(plan: Plan, inputs: dict[str, Any]) -> list[Finding]:
    out = []
    for n in plan.topological():
        if isinstance(n, Aggregate) and n.window is not None and n.emit == "final":
            what = f"emit=\"final\" window {n.window.describe()}"
        elif isinstance(n, StreamStreamJoin) and n.how != "inner":
            what = f"{n.how} join's unmatched records (within {_fmt(n.within)})"
        else:
            continue
        ins = plan.in_edges(n.name)
        if isinstance(n, Aggregate) and ins and _constant_key(plan, ins[0].src):
            out.append(_w("window-never-closes", n,
                          f"{what} groups every record under one constant key: stream time moves "
                          "only with that key's own records, so once it goes idle the last window "
                          "is never emitted before end of input; group by a real key, or use "
                          "emit=\"changes\""))
            continue
        unbounded = [s.topic for s in _sources_of(plan, n.name) if _unbounded(s, inputs)]
        if unbounded:
            out.append(_w("window-never-closes", n,
                          f"{what} comes out only when stream time passes the window end + grace; "
                          f"source(s) {', '.join(unbounded)} never end, so an idle key's last "
                          "window closes only when other keys keep sending, and never if traffic "
                          "stops; send periodic records (heartbeats) or use emit=\"changes\""))
    return out


# ---- join keys -----------------------------------------------------------------------------------------

def _key_origin(plan: Plan, name: str, out: str | None = None) -> tuple[str, Node] | None:
    """(description of the key, node that set it) for records emitted by ``name``, if known."""
    node = plan.node(name)
    if isinstance(node, Source):
        if node.table or node.key is None or node.key.expr is None:
            return None
        return _key_desc(node.key), node
    if isinstance(node, KeyBy):
        return (_key_desc(node.fn), node) if node.fn.expr is not None else None
    if isinstance(node, Fused):
        last = [s for s in node.stages if s.key_changing]
        if last:
            s = last[-1]
            return (_key_desc(s.fn), s) if isinstance(s, KeyBy) and s.fn.expr is not None else None
    elif node.key_changing or isinstance(node, Merge) or node.stateful:
        return None
    if isinstance(node, (Filter, Peek, Repartition, Map, FlatMap, Branch, Fused)):
        ins = plan.in_edges(name)
        return _key_origin(plan, ins[0].src, ins[0].out) if len(ins) == 1 else None
    return None


def _key_desc(fn: Fn) -> str:
    e = fn.expr
    return e.name if isinstance(e, Col) else e.describe()  # type: ignore[union-attr]


def _join_keys(plan: Plan) -> list[Finding]:
    out = []
    for n in plan.topological():
        if not isinstance(n, StreamStreamJoin):
            continue
        sides = plan.in_edges(n.name)
        if len(sides) != 2:
            continue
        left = _key_origin(plan, sides[0].src, sides[0].out)
        right = _key_origin(plan, sides[1].src, sides[1].out)
        if left is None or right is None or left[0] == right[0]:
            continue
        out.append(_w("join-keys-differ", n,
                      f"the join's left side is keyed by {left[0]} (set by {left[1].name} at "
                      f"{short_site(left[1].site)}) and its right side by {right[0]} (set by "
                      f"{right[1].name} at {short_site(right[1].site)}): records match only when "
                      "the keys are equal; if these are not the same identifier, re-key one side "
                      "with key_by(...)"))
    return out


# ---- HAVING on emit-changes ------------------------------------------------------------------------------

def _having_on_changes(plan: Plan) -> list[Finding]:
    out = []
    for n in plan.topological():
        if not (isinstance(n, Aggregate) and n.window is not None and n.emit == "changes"):
            continue
        stack = [(n.name, None)]
        while stack:
            name, having = stack.pop()
            for e in plan.out_edges(name):
                d = plan.node(e.dst)
                if isinstance(d, (TableFilter, TableMap)):
                    stack.append((d.name, having or (d if isinstance(d, TableFilter) else None)))
                elif isinstance(d, ToStream) and having is not None:
                    sinks = [plan.node(x) for x in nx.descendants(plan.graph, d.name)]
                    topics = [s.topic for s in sinks if isinstance(s, Sink)]
                    if topics:
                        out.append(_w("having-on-changes", having,
                                      f"filter {having.describe()} on the emit=\"changes\" "
                                      f"aggregation {n.name} ({n.window.describe()}) sees every "
                                      f"update: {', '.join(map(repr, topics))} receives each "
                                      "intermediate value that passes, and tombstones when one "
                                      "stops passing, not one result per window; use "
                                      "emit=\"final\", or write the table with .to(...) as a "
                                      "changelog"))
    return out


# ---- shuffles --------------------------------------------------------------------------------------------

def _shuffles(plan: Plan, be: Backend) -> list[Finding]:
    shuffles = getattr(be, "shuffles", be.name != "local")
    if not shuffles:
        return []
    out = []
    for n in plan.topological():
        if not isinstance(n, Repartition):
            continue
        culprit = _rekey_of(plan, n.name)
        users = [plan.node(e.dst) for e in plan.out_edges(n.name)]
        where = (f" after {culprit.kind} {culprit.name} ({short_site(culprit.site)}) changed the key"
                 if culprit is not None else "")
        for u in users:
            out.append(_w("shuffle-after-rekey", u,
                          f"{u.kind} {u.name} runs{where}: on backend {be.name!r} the repartition "
                          f"{n.name} moves every record to the worker owning its new key (a "
                          "shuffle); if the input topic can be keyed that way, declare it with "
                          "stream(..., key=...) and group with group_by_key()"))
    return out


def _rekey_of(plan: Plan, name: str) -> Node | None:
    for e in plan.in_edges(name):
        node = plan.node(e.src)
        if isinstance(node, Fused):
            changing = [s for s in node.stages if s.key_changing]
            if changing:
                return changing[-1]
        elif node.key_changing:
            return node
        if isinstance(node, (Source, Repartition)) or node.stateful:
            continue
        found = _rekey_of(plan, e.src)
        if found is not None:
            return found
    return None


# ---- sources without keys ------------------------------------------------------------------------

#: operators that need the record key of their inputs (a null key is skipped)
_KEYED = (Aggregate, StreamStreamJoin, StreamTableJoin, TableTableJoin)


def _keyless_input(src: Source, inputs: dict[str, Any]) -> str | None:
    """Why ``src``'s records carry no key, when it declares none and its input (given, or its
    connector) is a file without ``?key=`` / ``?envelope=true``, or stdin; else None."""
    if src.key is not None:
        return None
    spec = inputs.get(src.topic, src.connector)
    if spec is None:
        return None
    try:
        from .connectors import parse_uri
        parsed = parse_uri(spec)
    except Exception:
        return None
    kind = parsed.get("type")
    if kind in ("jsonl", "csv") and not parsed.get("key") and not parsed.get("envelope"):
        path = str(parsed.get("path"))
        rel = os.path.relpath(path) if os.path.isabs(path) else path
        path = path if rel.startswith("..") else rel
        return f"its input {path} is a {kind} file whose lines carry no key"
    if kind == "stdio":
        return "its input is stdin, whose lines carry no key"
    return None


def _key_sources(plan: Plan, name: str) -> list[Source]:
    """Sources whose record key reaches ``name``'s output unchanged."""
    node = plan.node(name)
    if isinstance(node, Source):
        return [node]
    if node.key_changing or node.stateful and not isinstance(node, Aggregate):
        return []
    if isinstance(node, Repartition) or not node.stateful:
        out: list[Source] = []
        for e in plan.in_edges(name):
            out += _key_sources(plan, e.src)
        return out
    return []


def _keyless_sources(plan: Plan, inputs: dict[str, Any]) -> list[Finding]:
    out = []
    for n in plan.topological():
        if isinstance(n, Source) and n.table:
            why = _keyless_input(n, inputs)
            if why:
                out.append(_w("keyless-source", n,
                              f"table {n.topic!r} declares no key= and {why}: a table keeps "
                              "the last value per key and skips null keys, so it stays empty; "
                              f"declare table({n.topic!r}, key=\"field\") or bind the input "
                              "with ?key=field"))
            continue
        if not isinstance(n, _KEYED):
            continue
        for e in plan.in_edges(n.name):
            for src in _key_sources(plan, e.src):
                why = _keyless_input(src, inputs)
                if why:
                    out.append(_w("keyless-source", n,
                                  f"{n.kind} {n.name} needs the record key, but source "
                                  f"{src.topic!r} ({short_site(src.site)}) declares no key= and "
                                  f"{why}: every record has a null key and is skipped; declare "
                                  f"stream({src.topic!r}, key=\"field\"), group by a field "
                                  "(group_by(\"field\")), or bind the input with ?key=field"))
    return out


# ---- fields no declared schema has ----------------------------------------------------------------

def _expr_fields(fn: Fn | None) -> frozenset[str]:
    return fn.expr.fields() if fn is not None and fn.expr is not None else frozenset()


def _made_fields(fn: Fn) -> frozenset[str] | None:
    """The fields of the value a map expression makes, when it says (a projection)."""
    e = fn.expr
    if isinstance(e, Project):
        return frozenset(e.names)
    if isinstance(e, Func) and e.name == "struct":
        names = e.args[0::2]
        if all(isinstance(a, Lit) and isinstance(a.value, str) for a in names):
            return frozenset(a.value for a in names)  # type: ignore[union-attr]
    return None


def _reads(node: Node) -> list[tuple[Node, frozenset[str]]]:
    """The value fields each (stage of a) node reads through expressions."""
    stages = node.stages if isinstance(node, Fused) else (node,)
    out = []
    for st in stages:
        if isinstance(st, (Filter, TableFilter)):
            got = _expr_fields(st.pred)
        elif isinstance(st, (Map, KeyBy, TableMap)):
            got = _expr_fields(st.fn)
        elif isinstance(st, Branch):
            got = frozenset().union(*(_expr_fields(f) for _, f in st.branches))
        elif isinstance(st, Aggregate):
            got = st.aggregator.input_fields() or frozenset()
        else:
            got = frozenset()
        if got:
            out.append((st, got))
    return out


def _unknown_fields(plan: Plan) -> list[Finding]:
    """Walk the declared fields from the sources that declare a schema (the plan as written):
    ``known[name]`` is the fields of what ``name`` emits, or None when not known."""
    known: dict[str, frozenset[str] | None] = {}
    schema_of: dict[str, list[Source]] = {}
    out = []
    for n in plan.topological():
        ins = plan.in_edges(n.name)
        if isinstance(n, Source):
            known[n.name] = frozenset(n.schema) if n.schema is not None else None
            schema_of[n.name] = [n] if n.schema is not None else []
            for what, fn in (("key", n.key), ("timestamp", n.timestamp)):
                missing = sorted(_expr_fields(fn) - known[n.name]) if n.schema else []
                for f in missing:
                    out.append(_unknown(n, f, known[n.name], schema_of[n.name], what))
            continue
        upstream = [known.get(e.src) for e in ins]
        srcs = [s for e in ins for s in schema_of.get(e.src, [])]
        schema_of[n.name] = srcs
        fields: frozenset[str] | None
        if not upstream or any(u is None for u in upstream):
            fields = None
        else:
            fields = frozenset().union(*upstream)  # type: ignore[arg-type]
        if fields is not None:
            for st, reads in _reads(n):
                for f in sorted(reads - fields):
                    out.append(_unknown(st, f, fields, srcs))
        known[n.name] = _after(n, fields, upstream)
    return out


def _after(n: Node, fields: frozenset[str] | None,
           upstream: list[frozenset[str] | None]) -> frozenset[str] | None:
    """The fields of ``n``'s output value, given its input's."""
    stages = n.stages if isinstance(n, Fused) else (n,)
    for st in stages:
        if isinstance(st, (Filter, TableFilter, KeyBy, Peek, Branch, Repartition, Merge, ToStream,
                           Sink, Source)):
            continue
        if isinstance(st, (Map, TableMap)):
            made = _made_fields(st.fn) if st.fn.expr is not None else None
            if made is None:
                return None
            fields = made | (frozenset(st.window_columns) if getattr(st, "window_columns", None)
                             else frozenset())
            continue
        if isinstance(st, Aggregate) and st.aggregator.kind == "agg":
            fields = frozenset(name for name, _ in st.aggregator.fields)
            continue
        if isinstance(st, (StreamStreamJoin, StreamTableJoin, TableTableJoin)) and \
                st.joiner is None and len(upstream) == 2 and None not in upstream:
            fields = frozenset().union(*upstream)  # type: ignore[arg-type]
            continue
        return None
    return fields


def _unknown(node: Node, f: str, fields: frozenset[str] | None, srcs: list[Source],
             what: str | None = None) -> Finding:
    import difflib
    names = sorted(fields or ())
    near = difflib.get_close_matches(f, names, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    declared = "; ".join(f"source {s.topic!r} ({short_site(s.site)}): {', '.join(s.schema or ())}"
                         for s in srcs) or "none"
    reads = f"its {what} reads" if what else "reads"
    return _w("unknown-field", node,
              f"{node.kind} {node.name} {reads} field {f!r}, which no declared schema of its "
              f"input has (fields here: {', '.join(names) or 'none'}; declared by {declared}): "
              f"every record has null there; {hint}fix the name, or add it to schema=")
