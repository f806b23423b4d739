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
and metrics; every sub-topology feeds it).

**Tasks.** Every source has one partition, so, as in Kafka Streams, an operator whose results
depend on its stream time (windowed aggregations, stream-stream joins) or on more than one key
is *one task*: all its records meet in one place, in order. An operator
whose state is purely per key (a non-windowed aggregation, a table re-grouping and its aggregate,
a stream-table or table-table join)
gives each key the same results whichever other keys it shares a task with, so it runs as
``key_groups`` tasks, ``op:<name>#<g>``, a record going to group ``key_group(key)``
(:mod:`.keys`). A task is one Bytewax key, so tasks spread over the workers; the number of
groups changes where records are processed, never what comes out.

Messages are sent on *channels*, one per task that sends them: ``(sub-topology id, group)``
(see :mod:`.inbox`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from streamdsl.ir.nodes import Node, Sink, Source
from streamdsl.ir.plan import Plan
from streamdsl.ir.tasks import keys_only
from streamdsl.runtime.partitioning import Partitioner

from .keys import key_group

__all__ = ["Layout", "SubTopology", "ERRORS", "step_id", "per_key"]

ERRORS = "errors"

_STEP_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def step_id(name: str) -> str:
    """A Bytewax step id for ``name`` (Bytewax forbids ``.`` in step ids).

    >>> step_id("count.v1 (x)")
    'count_v1_x_'
    """
    return _STEP_SAFE.sub("_", name) or "_"


def per_key(node: Node) -> bool:
    """Whether ``node``'s state and results are per key (``streamdsl.ir.tasks.keys_only``)."""
    return keys_only(node)


@dataclass
class SubTopology:
    """One sub-topology: ``head`` (None for the input one), the stateless ``members`` it runs
    (topological order) and the destinations it sends to."""

    id: int
    head: str | None
    members: list[str] = field(default_factory=list)
    dests: list[str] = field(default_factory=list)
    groups: int = 1


class Layout:
    """The cut of ``plan`` into sub-topologies, with channels per destination.

    Args:
        plan: the plan.
        key_groups: tasks of each per-key operator (see the module docs).
        input_shares: partitions of the input (``io.ShardedFileSource``: a file read in
            parallel), each sending on a channel ``(0, share)`` of its own; 1: one reader.
        workers: workers of the run (threads x processes): the tasks' Bytewax keys are
            chosen so that the tasks spread over them (:mod:`.placement`).
    """

    def __init__(self, plan: Plan, key_groups: int = 1, input_shares: int = 1,
                 workers: int = 1):
        self.plan = plan
        self.key_groups = max(1, int(key_groups))
        self.input_shares = max(1, int(input_shares))
        #: the run's partitions: a stateful operator that is not per key runs one task per
        #: partition, a record going to its key's partition (docs/semantics.md, "Partitions
        #: and tasks": at a stateful operator a record's key gives its task)
        self.partitions = plan.partitions
        self._partitioner = Partitioner(plan.partitions)
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
        #: source nodes per topic, in feeding order (the order of ``plan.sources()``)
        self.sources: dict[str, list[str]] = {}
        for s in plan.sources():
            self.sources.setdefault(s.topic, []).append(s.name)
        self.subs: list[SubTopology] = [self._cut(0, None)]
        self.subs[0].groups = self.input_shares
        for name in self.order:
            if plan.node(name).stateful:
                self.subs.append(self._cut(len(self.subs), name))
        self.sub_of_head = {s.head: s for s in self.subs if s.head is not None}
        for s in self.subs:
            if s.head is not None:
                s.groups = self.key_groups if per_key(plan.node(s.head)) else self.partitions
        #: destination -> its tasks' Bytewax keys (one, or one per key group)
        self.tasks: dict[str, list[str]] = {}
        self.channels: dict[str, list[tuple[int, int]]] = {}
        for s in self.subs:
            for d in s.dests:
                self.channels.setdefault(d, []).extend((s.id, g) for g in range(s.groups))
        for d in self.channels:
            head = d[3:] if d.startswith("op:") else None
            n = self.sub_of_head[head].groups if head is not None else 1
            self.tasks[d] = [d] if n == 1 else [f"{d}#{g}" for g in range(n)]
        self.dests = list(self.channels)
        #: sink destinations written to a JSON-lines file: their records are encoded by the
        #: stages that send them (``messages.Lines``); set by the run before compiling
        self.line_sinks: frozenset[str] = frozenset()
        #: the workers the tasks are spread over (``workers``), and where each single-task
        #: destination (a sink, the errors hub) was put
        self.spread = max(1, int(workers))
        self.worker_of: dict[str, int] = {}
        if self.spread > 1:
            self._spread(self.spread)

    def _spread(self, workers: int) -> None:
        """Task keys that put task ``g`` of a destination with several tasks on worker
        ``g % workers``, and the single tasks (sinks, the errors hub, one-task operators) on
        workers in turn from the last one (worker 0 reads a single input)."""
        from .placement import placed

        wanted: list[tuple[str, int]] = []
        single = 0
        # sinks first (they do the most work of the single tasks), the errors hub last
        for d in sorted(self.dests, key=lambda d: (0 if d.startswith("sink:") else
                                                   2 if d == ERRORS else 1)):
            names = self.tasks[d]
            if len(names) > 1:
                wanted.extend((t, g) for g, t in enumerate(names))
            else:
                single += 1
                self.worker_of[d] = workers - single % workers if single % workers else 0
                wanted.append((names[0], self.worker_of[d]))
        keys = placed(wanted, workers)
        self.tasks = {d: [keys[t] for t in names] for d, names in self.tasks.items()}

    def groups_of(self, dest: str) -> int:
        """Tasks of a destination: key groups of a per-key operator, partitions of another
        stateful operator, 1 for a sink or the errors hub."""
        return len(self.tasks[dest])

    def router(self, dest: str) -> Callable[[Any], int]:
        """``key -> task index`` at ``dest`` (one of ``groups_of(dest)``): a per-key
        operator's key group, another stateful operator's partition (a key of None: task 0;
        the operator skips the record)."""
        n = self.groups_of(dest)
        head = dest[3:] if dest.startswith("op:") else None
        if head is not None and per_key(self.plan.node(head)):
            return _cached_groups(n)
        partitioner = self._partitioner
        return lambda key: 0 if key is None else partitioner(key, 0)

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

    def paths_to_dests(self, sub: SubTopology, start: str | None = None) -> list[int]:
        """Per destination of ``sub`` (in ``sub.dests`` order): by how many paths of the plan
        a record entering ``sub`` (at ``start``, or at any of its entry nodes) reaches it. A
        destination reached by one path only receives a batch already in position order."""
        plan = self.plan
        index = {d: i for i, d in enumerate(sub.dests)}
        if start is not None:
            starts = [start]
        elif sub.head is not None:
            starts = [sub.head]
        else:
            starts = [n for names in self.sources.values() for n in names]
        paths: dict[str, int] = {}
        for n in starts:
            paths[n] = paths.get(n, 0) + 1
        counts = [0] * len(sub.dests)
        for name in ([sub.head] if sub.head is not None else []) + sub.members:
            k = paths.get(name, 0)
            for e in plan.out_edges(name):
                dest = self.dest_of.get(e.dst)
                if dest is None:
                    paths[e.dst] = paths.get(e.dst, 0) + k
                else:
                    counts[index[dest]] += k
        return counts

    def batch_positions(self, name: str) -> bool:
        """Whether stateful operator ``name`` may process a batch in one call
        (``Processor.process_mixed``) and number its outputs by batch, ``(last input seq,
        j)``, rather than by the input record each comes from.

        Such positions keep the operator's output order, so they are enough where nothing
        downstream merges its outputs with another channel's: its sub-topology runs no other
        node (no failures of later nodes to order at the errors hub), sends only to sinks fed
        by it alone, and every record reaches it at most once per batch (so a failing
        record's own position is known by identity).
        """
        sub = self.sub_of_head[name]
        if sub.members or sub.groups > 1:
            return False
        for dest in sub.dests:
            if dest == ERRORS:
                continue
            if not dest.startswith("sink:") or len(self.channels[dest]) != 1:
                return False
        dest = self.dest_of[name]
        for s in self.subs:
            if dest not in s.dests:
                continue
            # every entry node makes records of its own (a source node ingests its own)
            starts = [s.head] if s.head is not None else \
                [n for names in self.sources.values() for n in names]
            i = s.dests.index(dest)
            if any(self.paths_to_dests(s, n)[i] > 1 for n in starts):
                return False
        return True

    def is_terminal(self, dest: str) -> bool:
        """Sinks and the errors hub share the last Bytewax step."""
        return dest == ERRORS or dest.startswith("sink:")

    def describe(self) -> str:
        """One line per sub-topology (for ``explain``-style output and debugging)."""
        lines = []
        for s in self.subs:
            head = s.head or "input"
            kind = "key groups" if s.head is not None and per_key(self.plan.node(s.head)) \
                else "partitions" if s.head is not None else "shares"
            tasks = f" ({s.groups} {kind})" if s.groups > 1 else ""
            lines.append(f"[{s.id}] {head}{tasks}: runs {', '.join(s.members) or '-'} -> "
                         f"{', '.join(s.dests)}")
        return "\n".join(lines)


#: keys whose key group a router remembers (then it starts again)
_GROUP_CACHE = 1 << 16


def _cached_groups(n: int) -> Callable[[Any], int]:
    """``key -> key_group(key, n)``, remembered for ``str`` and ``int`` keys (exact types:
    equal keys of those types have equal encodings, whatever process sees them first)."""
    cache: dict = {}
    get = cache.get

    def group(key: Any) -> int:
        g = get(key)
        if g is None:
            g = key_group(key, n)
            t = type(key)
            if t is str or t is int:
                if len(cache) >= _GROUP_CACHE:
                    cache.clear()
                cache[key] = g
        return g
    return group

