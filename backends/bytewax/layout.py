"""How a plan is cut into sub-topologies for Bytewax (as Kafka Streams cuts it into tasks).

A *boundary* is a node that must see its records in the defined order: a stateful operator
(aggregation, join) or a sink. Every other node is a per-record function and runs inside the
sub-topology that feeds it:

* sub-topology 0 reads the input: the source nodes and every stateless node reachable from
  them without crossing a boundary;
* each stateful operator heads one sub-topology: the operator plus the stateless nodes
  reachable from its output up to the next boundaries.

Each sub-topology sends its records to *destinations*: ``op:<name>`` (a stateful operator),
``sink:<topic>`` (all sink nodes writing that topic) and ``errors`` (dead letters, fatal errors
and metrics; every sub-topology feeds it). The sub-topology id is the channel id its messages
carry (see :mod:`.inbox`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from streamdsl.ir.nodes import Sink, Source
from streamdsl.ir.plan import Plan

__all__ = ["Layout", "SubTopology", "ERRORS", "step_id"]

ERRORS = "errors"

_STEP_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def step_id(name: str) -> str:
    """A Bytewax step id for ``name`` (Bytewax forbids ``.`` in step ids).

    >>> step_id("count.v1 (x)")
    'count_v1_x_'
    """
    return _STEP_SAFE.sub("_", name) or "_"


@dataclass
class SubTopology:
    """One sub-topology: ``head`` (None for the input one), the stateless ``members`` it runs
    (topological order) and the destinations it sends to."""

    id: int
    head: str | None
    members: list[str] = field(default_factory=list)
    dests: list[str] = field(default_factory=list)


class Layout:
    """The cut of ``plan`` into sub-topologies, with channels per destination."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.order = [n.name for n in plan.topological()]
        self.topo_index = {n: i for i, n in enumerate(self.order)}
        self.dest_of: dict[str, str] = {}
        for name in self.order:
            node = plan.node(name)
            if isinstance(node, Sink):
                self.dest_of[name] = "sink:" + node.topic
            elif node.stateful:
                self.dest_of[name] = "op:" + name
        self.sink_topics = list(dict.fromkeys(plan.sink_topics()))
        #: source nodes per topic, in the order the local executor feeds them
        self.sources: dict[str, list[str]] = {}
        for s in plan.sources():
            self.sources.setdefault(s.topic, []).append(s.name)
        self.subs: list[SubTopology] = [self._cut(0, None)]
        for name in self.order:
            if plan.node(name).stateful:
                self.subs.append(self._cut(len(self.subs), name))
        self.sub_of_head = {s.head: s for s in self.subs if s.head is not None}
        self.channels: dict[str, list[int]] = {}
        for s in self.subs:
            for d in s.dests:
                self.channels.setdefault(d, []).append(s.id)
        self.dests = list(self.channels)

    def _cut(self, sid: int, head: str | None) -> SubTopology:
        plan = self.plan
        sub = SubTopology(sid, head)
        if head is None:
            starts = [n.name for n in plan.nodes() if isinstance(n, Source)]
            members = set(starts)
        else:
            starts = [head]
            members = set()
        dests: set[str] = set()
        stack = list(starts)
        seen = set(starts)
        while stack:
            name = stack.pop()
            for e in plan.out_edges(name):
                if e.dst in self.dest_of:
                    dests.add(self.dest_of[e.dst])
                elif e.dst not in seen:
                    seen.add(e.dst)
                    members.add(e.dst)
                    stack.append(e.dst)
        sub.members = sorted(members, key=self.topo_index.__getitem__)
        sub.dests = sorted(dests, key=self._dest_order) + [ERRORS]
        return sub

    def _dest_order(self, dest: str) -> tuple:
        for name, d in self.dest_of.items():
            if d == dest:
                return (self.topo_index[name], dest)
        return (len(self.order), dest)

    def is_terminal(self, dest: str) -> bool:
        """Sinks and the errors hub share the last Bytewax step."""
        return dest == ERRORS or dest.startswith("sink:")

    def describe(self) -> str:
        """One line per sub-topology (for ``explain``-style output and debugging)."""
        lines = []
        for s in self.subs:
            head = s.head or "input"
            lines.append(f"[{s.id}] {head}: runs {', '.join(s.members) or '-'} -> {', '.join(s.dests)}")
        return "\n".join(lines)
