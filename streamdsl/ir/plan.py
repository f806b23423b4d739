"""The plan: IR nodes in a ``networkx.MultiDiGraph``.

Graph nodes are node names; each carries its IR node under the attribute ``op`` and an
insertion index ``order`` (so every traversal is deterministic). Each edge carries ``port``
(the input port of the downstream node: ``in``, ``left``, ``right``, ``in0``...) and ``out``
(the output port of the upstream node, for ``Branch``; otherwise None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import orjson

from ..errors import ValidationError
from .nodes import Fused, Node, Sink, Source, node_output

__all__ = ["Plan", "Edge", "check_partitions"]


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    port: str
    out: str | None = None


class Plan:
    """A topology's dataflow graph. Treat as immutable once built: passes return new plans.

    >>> from streamdsl.ir.nodes import Source, Sink
    >>> p = Plan("demo")
    >>> p.add(Source(name="src", topic="in"))
    >>> p.add(Sink(name="out", topic="out"), [("src", "in")])
    >>> [n.name for n in p.topological()]
    ['src', 'out']
    """

    def __init__(self, name: str, *, on_error: str = "fail", partitions: int = 1):
        self.name = name
        self.on_error = on_error
        #: partitions of every source read from files, in-memory lists and ``TestDriver``
        #: (a Kafka topic has its own): the number of tasks of each sub-topology
        self.partitions = check_partitions(partitions)
        # networkx is imported where a plan is built, not with this module: a Beam or Bytewax
        # worker process imports the IR's nodes (through this package) but never a plan, and
        # importing networkx is a tenth of a second of each worker's start
        import networkx as nx
        self.graph = nx.MultiDiGraph()
        self._counter = 0

    # ---- building ---------------------------------------------------------------------
    def add(self, node: Node, inputs: list[tuple[str, str]] | list[tuple[str, str, str | None]] = ()) -> None:
        """Add ``node`` fed by ``inputs``: ``(upstream_name, port[, out_port])`` tuples."""
        if node.name in self.graph:
            other = self.graph.nodes[node.name]["op"]
            raise ValidationError(
                f"duplicate operator name {node.name!r} (already used by the {other.kind} "
                f"defined at {other.site or 'unknown site'}); pass a different name= "
                "or leave name= out to get a generated one", site=node.site, node=node.name)
        for inp in inputs:
            if inp[0] not in self.graph:
                raise ValidationError(f"unknown upstream {inp[0]!r}", site=node.site, node=node.name)
        self.graph.add_node(node.name, op=node, order=self._counter)
        self._counter += 1
        for inp in inputs:
            src, port = inp[0], inp[1]
            out = inp[2] if len(inp) > 2 else None
            self.graph.add_edge(src, node.name, key=port, port=port, out=out)

    def replace_node(self, node: Node) -> None:
        """Swap the IR node stored under ``node.name`` (same edges)."""
        self.graph.nodes[node.name]["op"] = node

    def fresh_name(self, kind: str) -> str:
        """A deterministic unused name ``<kind>-<n>``."""
        base = kind.lower()
        n = 1
        while f"{base}-{n}" in self.graph:
            n += 1
        return f"{base}-{n}"

    def copy(self) -> "Plan":
        p = Plan(self.name, on_error=self.on_error, partitions=self.partitions)
        p.graph = self.graph.copy()
        p._counter = self._counter
        return p

    def with_partitions(self, partitions: int | None) -> "Plan":
        """This plan with ``partitions`` (None: unchanged; the same plan when equal)."""
        if partitions is None or partitions == self.partitions:
            return self
        p = self.copy()
        p.partitions = check_partitions(partitions)
        return p

    # ---- reading ----------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self.graph

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def node(self, name: str) -> Node:
        return self.graph.nodes[name]["op"]

    def nodes(self) -> list[Node]:
        return [self.graph.nodes[n]["op"] for n in self._ordered(self.graph.nodes)]

    def _ordered(self, names) -> list[str]:
        return sorted(names, key=lambda n: self.graph.nodes[n]["order"])

    def in_edges(self, name: str) -> list[Edge]:
        """Incoming edges, ordered by port name order (left before right, in0 before in1)."""
        edges = [Edge(u, v, d["port"], d.get("out")) for u, v, d in self.graph.in_edges(name, data=True)]
        return sorted(edges, key=lambda e: _port_order(e.port))

    def out_edges(self, name: str) -> list[Edge]:
        edges = [Edge(u, v, d["port"], d.get("out")) for u, v, d in self.graph.out_edges(name, data=True)]
        return sorted(edges, key=lambda e: self.graph.nodes[e.dst]["order"])

    def upstream(self, name: str) -> list[Node]:
        return [self.node(e.src) for e in self.in_edges(name)]

    def downstream(self, name: str) -> list[Node]:
        return [self.node(e.dst) for e in self.out_edges(name)]

    def topological(self) -> list[Node]:
        """Nodes in a deterministic topological order (ties by insertion)."""
        import networkx as nx
        order = nx.lexicographical_topological_sort(
            self.graph, key=lambda n: self.graph.nodes[n]["order"])
        return [self.node(n) for n in order]

    def sources(self) -> list[Source]:
        return [n for n in self.nodes() if isinstance(n, Source)]

    def sinks(self) -> list[Sink]:
        return [n for n in self.nodes() if isinstance(n, Sink)]

    def source_topics(self) -> list[str]:
        seen: list[str] = []
        for s in self.sources():
            if s.topic not in seen:
                seen.append(s.topic)
        return seen

    def sink_topics(self) -> list[str]:
        return [s.topic for s in self.sinks()]

    def output_kind(self, name: str) -> str:
        """``stream`` or ``table`` for what node ``name`` emits."""
        node = self.node(name)
        return node_output(node, [self.output_kind(e.src) for e in self.in_edges(name)])

    def kinds(self) -> set[str]:
        out = set()
        for n in self.nodes():
            out.add(n.kind)
            if isinstance(n, Fused):
                out.update(s.kind for s in n.stages)
        return out

    def __iter__(self) -> Iterator[Node]:
        return iter(self.topological())

    # ---- serialization ----------------------------------------------------------------
    def to_dict(self) -> dict:
        nodes = []
        for n in self.topological():
            d = {"name": n.name, "kind": n.kind, "site": n.site, "config": n.config_dict(),
                 "inputs": [{"from": e.src, "port": e.port, **({"out": e.out} if e.out else {})}
                            for e in self.in_edges(n.name)]}
            nodes.append(d)
        out: dict = {"name": self.name, "on_error": self.on_error}
        if self.partitions != 1:
            out["partitions"] = self.partitions
        out["nodes"] = nodes
        return out

    def to_json(self, *, indent: bool = True) -> str:
        opt = orjson.OPT_INDENT_2 if indent else 0
        return orjson.dumps(self.to_dict(), option=opt).decode()

    @staticmethod
    def from_dict(d: dict) -> "Plan":
        from .serialize import node_from_dict
        p = Plan(d["name"], on_error=d.get("on_error", "fail"), partitions=d.get("partitions", 1))
        for nd in d["nodes"]:
            node = node_from_dict(nd)
            p.add(node, [(i["from"], i["port"], i.get("out")) for i in nd["inputs"]])
        return p

    def signature(self) -> list[tuple]:
        """A comparable summary (kinds, names, edges, config) used by optimizer tests."""
        out = []
        for n in self.topological():
            out.append((n.name, n.kind, orjson.dumps(n.config_dict(), option=orjson.OPT_SORT_KEYS).decode(),
                        tuple((e.src, e.port, e.out) for e in self.in_edges(n.name))))
        return out

    def __repr__(self) -> str:
        return f"<Plan {self.name!r}: {len(self)} nodes>"


def check_partitions(partitions: object) -> int:
    """``partitions`` as a positive int, or ``ValidationError``."""
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValidationError(f"partitions must be a positive int, got {partitions!r}")
    return partitions


def _port_order(port: str) -> tuple:
    fixed = {"in": 0, "left": 0, "right": 1}
    if port in fixed:
        return (0, fixed[port], "")
    if port.startswith("in") and port[2:].isdigit():
        return (1, int(port[2:]), "")
    return (2, 0, port)

