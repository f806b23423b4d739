"""Render a plan as text, Mermaid, Graphviz dot or JSON (``streamdsl graph``).

Every format shows the same things: the sub-topologies and their tasks, sources and sinks,
each operator with its configuration, repartitions (shuffles), state stores, windows (size,
grace, emit mode), join windows, the user's file:line, and the edges with their ports
(``left``/``right`` of a join, a branch's name).

>>> import streamdsl as sd
>>> t = sd.Topology("demo")
>>> t.stream("in").filter(sd.col("n") > 1).to("out")
>>> print(render_text(t.plan(), sites=False))
Topology demo: 3 operators, 1 source, 1 sink, 0 repartitions, 0 state stores
  sources: in (stream)
  sinks:   out (stream)
  tasks:   1 partition: 1 sub-topology, 1 task
<BLANKLINE>
  Sub-topology: 0 (tasks: 0_0)
    Source: source-in (topics: [in])
        stream 'in'
      --> filter-1
    Processor: filter-1 (Filter)
        n > 1
      --> sink-out
      <-- source-in
    Sink: sink-out (topic: out)
      <-- filter-1
"""

from __future__ import annotations

import os

from .ir.nodes import (Aggregate, Fused, Node, Repartition, Sink, Source, StreamStreamJoin,
                       StreamTableJoin, TableAggregate, TableGroupBy, TableTableJoin)
from .ir.plan import Plan
from .ir.tasks import repartition_topic, sub_topologies
from .windows import SessionWindow, SlidingWindow

__all__ = ["render_text", "render_mermaid", "render_dot", "render_json", "render", "short_site",
           "describe_node",
           "state_store", "FORMATS"]

FORMATS = ("text", "mermaid", "dot", "json")


def short_site(site: str | None) -> str:
    """``file:line`` relative to the working directory when below it (absolute otherwise)."""
    if not site:
        return "generated"
    path, sep, line = site.rpartition(":")
    if not sep or not line.isdigit():
        return site
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return site
    if rel.startswith(".."):
        return site
    return f"{rel}:{line}"


def state_store(node: Node) -> str | None:
    """What state ``node`` keeps (None for stateless operators)."""
    store = f"{node.name}-store"
    if isinstance(node, Aggregate):
        w = node.window
        if w is None:
            return f"{store}: key-value store, one aggregate per key"
        if isinstance(w, SessionWindow):
            return f"{store}: session store, one aggregate per key and session, freed when it closes"
        if isinstance(w, SlidingWindow):
            return f"{store}: window store, one aggregate per key and sliding window, freed when it closes"
        return f"{store}: window store, one aggregate per key and window, freed when it closes"
    if isinstance(node, TableGroupBy):
        return f"{store}: key-value store, the latest row per key (to subtract it when it changes)"
    if isinstance(node, TableAggregate):
        return f"{store}: key-value store, one aggregate per new key"
    if isinstance(node, StreamStreamJoin):
        return f"{store}: join buffers, each side's records kept for within + grace"
    if isinstance(node, StreamTableJoin):
        return f"{store}: table store, the latest row per key of the right side"
    if isinstance(node, TableTableJoin):
        return f"{store}: two table stores, the latest row per key of each side"
    return None


def _summary(plan: Plan) -> tuple[str, list[str]]:
    nodes = plan.nodes()
    rep = sum(isinstance(n, Repartition) for n in nodes)
    stores = sum(state_store(n) is not None for n in nodes)
    srcs = plan.source_topics()
    sinks = plan.sink_topics()
    head = (f"Topology {plan.name}: {len(nodes)} operator{'s' * (len(nodes) != 1)}, "
            f"{len(srcs)} source{'s' * (len(srcs) != 1)}, {len(sinks)} sink{'s' * (len(sinks) != 1)}, "
            f"{rep} repartition{'s' * (rep != 1)}, {stores} state store{'s' * (stores != 1)}")
    kinds = {}
    for s in plan.sources():
        kinds.setdefault(s.topic, "table" if s.table else "stream")
    lines = ["sources: " + ", ".join(f"{t} ({kinds[t]})" for t in srcs),
             "sinks:   " + ", ".join(f"{s.topic} ({plan.output_kind(s.name)})" for s in plan.sinks())]
    return head, lines


def _edge_label(port: str, out: str | None, dst_in_ports: int) -> str:
    parts = []
    if out is not None:
        parts.append(f"[{out}]")
    if port not in ("in",) and not (port.startswith("in") and port[2:].isdigit()):
        parts.append(port)
    return " ".join(parts)


def describe_node(node: Node) -> str:
    if isinstance(node, Repartition):
        return "shuffle by key"
    return node.describe()


def render_text(plan: Plan, *, sites: bool = True) -> str:
    """The plan as Kafka Streams' ``Topology.describe()`` shows a topology: sub-topologies
    with their tasks, each one's sources, processors and sinks in topological order, ``-->``
    to the nodes a node feeds and ``<--`` from those feeding it; each node with what it does,
    its state store and its file:line. A repartition is a sink of one sub-topology and a
    source of the next (``streamdsl.ir.tasks``)."""
    head, lines = _summary(plan)
    subs = sub_topologies(plan)
    n = plan.partitions
    ntasks = len(subs) * n
    lines.append(f"tasks:   {n} partition{'s' * (n != 1)}: {len(subs)} sub-topolog"
                 f"{'ies' if len(subs) != 1 else 'y'}, {ntasks} task{'s' * (ntasks != 1)}")
    out = [head] + ["  " + x for x in lines]

    def where(node: Node) -> str:
        return f"  [{short_site(node.site)}]" if sites and node.site else ""

    def targets(name: str, members: set[str]) -> list[str]:
        outs = []
        for e in plan.out_edges(name):
            if e.dst in members:
                label = _edge_label(e.port, e.out, 0)
                outs.append(f"      --> {e.dst}" + (f" ({label})" if label else ""))
        return outs

    def sources_of(name: str) -> list[str]:
        ins = [e.src for e in plan.in_edges(name)]
        return [f"      <-- {', '.join(ins)}"] if ins else []

    for sub in subs:
        members = set(sub.nodes)
        out += ["", f"  Sub-topology: {sub.id} (tasks: "
                    f"{' '.join(f'{sub.id}_{p}' for p in range(n))})"]
        for rp in sub.reads:
            out.append(f"    Source: {rp} (topics: [{repartition_topic(plan, rp)}])")
            out += targets(rp, members)
        for name in sub.nodes:
            node = plan.node(name)
            if isinstance(node, Source):
                out.append(f"    Source: {name} (topics: [{node.topic}]){where(node)}")
            elif isinstance(node, Sink):
                out.append(f"    Sink: {name} (topic: {node.topic}){where(node)}")
            elif isinstance(node, Repartition):
                out.append(f"    Sink: {name} (topic: {repartition_topic(plan, name)})"
                           f"{where(node)}")
            else:
                store = state_store(node)
                stores = f"; stores: [{store.split(':', 1)[0]}]" if store else ""
                out.append(f"    Processor: {name} ({node.kind}{stores}){where(node)}")
            if isinstance(node, Fused):
                for st in node.stages:
                    out.append(f"        | {st.kind} {st.name}: {st.describe()}{where(st)}")
            else:
                d = describe_node(node)
                if d and not isinstance(node, Sink):
                    out.append(f"        {d}")
            store = state_store(node)
            if store:
                out.append(f"        state: {store}")
            if not isinstance(node, (Sink, Repartition)):
                out += targets(name, members)
            if not isinstance(node, Source):
                out += sources_of(name)
    return "\n".join(out)


# ---- mermaid ----------------------------------------------------------------------------------------

def _ids(plan: Plan) -> dict[str, str]:
    return {n.name: f"n{i}" for i, n in enumerate(plan.topological())}


def _label_lines(node: Node, sites: bool) -> list[str]:
    lines = [f"{node.kind}: {node.name}"]
    if isinstance(node, Fused):
        lines += [f"{s.kind} {s.name}: {s.describe()}" for s in node.stages]
    else:
        d = describe_node(node)
        if d:
            lines.append(d)
    store = state_store(node)
    if store:
        lines.append("state: " + store.split(":")[0])
    if sites and node.site:
        lines.append(short_site(node.site))
    return lines


def _sub_label(plan: Plan, sub) -> str:
    n = plan.partitions
    return (f"Sub-topology {sub.id}: {n} task{'s' * (n != 1)} "
            f"({', '.join(f'{sub.id}_{p}' for p in range(n))})")


def _mermaid_escape(s: str) -> str:
    return (s.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))


def render_mermaid(plan: Plan, *, sites: bool = True) -> str:
    """A Mermaid flowchart: sources are stadiums, sinks parallelograms, repartitions hexagons,
    stateful operators cylinders (they hold a state store)."""
    ids = _ids(plan)
    out = ["flowchart TD", f"  %% Topology {plan.name}"]
    for sub in sub_topologies(plan):
        out.append(f'  subgraph s{sub.id} ["{_mermaid_escape(_sub_label(plan, sub))}"]')
        for name in sub.nodes:
            n = plan.node(name)
            label = "<br/>".join(_mermaid_escape(x) for x in _label_lines(n, sites))
            i = ids[n.name]
            if isinstance(n, Source):
                out.append(f'    {i}(["{label}"])')
            elif isinstance(n, Sink):
                out.append(f'    {i}[/"{label}"/]')
            elif isinstance(n, Repartition):
                out.append(f'    {i}{{{{"{label}"}}}}')
            elif n.stateful:
                out.append(f'    {i}[("{label}")]')
            else:
                out.append(f'    {i}["{label}"]')
        out.append("  end")
    for n in plan.topological():
        for e in plan.out_edges(n.name):
            label = _edge_label(e.port, e.out, 0)
            arrow = f"-->|{_mermaid_escape(label)}|" if label else "-->"
            out.append(f"  {ids[n.name]} {arrow} {ids[e.dst]}")
    return "\n".join(out)


# ---- dot ------------------------------------------------------------------------------------------

def _dot_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def render_dot(plan: Plan, *, sites: bool = True) -> str:
    """A Graphviz digraph (``dot -Tsvg``): same shapes as the Mermaid output."""
    ids = _ids(plan)
    out = [f'digraph "{_dot_escape(plan.name)}" {{',
           "  rankdir=TB;",
           f'  label="Topology {_dot_escape(plan.name)}"; labelloc=t;',
           '  node [fontname="Helvetica", fontsize=10, shape=box, style=rounded];',
           '  edge [fontname="Helvetica", fontsize=9];']
    for sub in sub_topologies(plan):
        out += [f"  subgraph cluster_{sub.id} {{",
                f'    label="{_dot_escape(_sub_label(plan, sub))}"; style=dashed;']
        for name in sub.nodes:
            n = plan.node(name)
            label = "\\n".join(_dot_escape(x) for x in _label_lines(n, sites))
            if isinstance(n, Source):
                attrs = 'shape=ellipse, style=filled, fillcolor="#dbeafe"'
            elif isinstance(n, Sink):
                attrs = 'shape=parallelogram, style=filled, fillcolor="#dcfce7"'
            elif isinstance(n, Repartition):
                attrs = 'shape=hexagon, style=filled, fillcolor="#fef3c7"'
            elif n.stateful:
                attrs = 'shape=cylinder, style=filled, fillcolor="#fee2e2"'
            else:
                attrs = "shape=box, style=rounded"
            out.append(f'    {ids[n.name]} [label="{label}", {attrs}];')
        out.append("  }")
    for n in plan.topological():
        for e in plan.out_edges(n.name):
            label = _edge_label(e.port, e.out, 0)
            extra = f' [label="{_dot_escape(label)}"]' if label else ""
            out.append(f"  {ids[n.name]} -> {ids[e.dst]}{extra};")
    out.append("}")
    return "\n".join(out)


def render_json(plan: Plan) -> str:
    """The plan's JSON form (``Plan.to_json``), the input of ``Plan.from_dict``."""
    return plan.to_json()


def render(plan: Plan, fmt: str, *, sites: bool = True) -> str:
    """Render in one of ``FORMATS``."""
    if fmt == "text":
        return render_text(plan, sites=sites)
    if fmt == "mermaid":
        return render_mermaid(plan, sites=sites)
    if fmt == "dot":
        return render_dot(plan, sites=sites)
    if fmt == "json":
        return render_json(plan)
    raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
