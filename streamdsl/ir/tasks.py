"""Sub-topologies and tasks, as Kafka Streams builds them.

The plan is cut at every ``Repartition``: what a repartition writes is read by another
sub-topology, as a Kafka Streams repartition topic is. Each sub-topology runs as one task per
partition (``"<sub-topology>_<partition>"``), and each task keeps its own state and stream
time (docs/semantics.md, "Partitions and tasks"). A ``Repartition`` node belongs to the
sub-topology that writes it.

>>> import streamdsl as sd
>>> t = sd.Topology("clicks", partitions=2)
>>> t.stream("in").group_by("user").count().to_stream().to("out")
>>> [(s.id, s.topics, s.reads) for s in sub_topologies(t.plan())]
[(0, ('in',), ()), (1, (), ('repartition-1',))]
>>> task_ids(t.plan())
['0_0', '0_1', '1_0', '1_1']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .nodes import (Aggregate, Node, Repartition, Source, StreamTableJoin, TableAggregate,
                    TableGroupBy, TableTableJoin)
from .plan import Plan

__all__ = ["SubTopology", "sub_topologies", "sub_topology_of", "task_ids", "repartition_topic",
           "keys_only"]


@dataclass(frozen=True)
class SubTopology:
    """One sub-topology: its nodes (topological order), the source topics and the
    repartitions it reads."""

    id: int
    nodes: tuple[str, ...]
    topics: tuple[str, ...]
    reads: tuple[str, ...]


def sub_topologies(plan: Plan) -> list[SubTopology]:
    """The plan's sub-topologies, numbered in topological order of their first node."""
    import networkx as nx  # not with the module: see ``Plan.__init__``
    g = nx.Graph()
    g.add_nodes_from(plan.graph.nodes)
    for u, v in plan.graph.edges():
        if not isinstance(plan.node(u), Repartition):
            g.add_edge(u, v)
    index = {n.name: i for i, n in enumerate(plan.topological())}
    comps = sorted((sorted(c, key=index.__getitem__) for c in nx.connected_components(g)),
                   key=lambda c: index[c[0]])
    out = []
    for i, names in enumerate(comps):
        members = set(names)
        topics: list[str] = []
        for n in names:
            node = plan.node(n)
            if isinstance(node, Source) and node.topic not in topics:
                topics.append(node.topic)
        reads = sorted({e.src for n in names for e in plan.in_edges(n)
                        if e.src not in members}, key=index.__getitem__)
        out.append(SubTopology(i, tuple(names), tuple(topics), tuple(reads)))
    return out


def sub_topology_of(plan: Plan) -> dict[str, int]:
    """Node name -> the id of its sub-topology."""
    return {n: s.id for s in sub_topologies(plan) for n in s.nodes}


def task_ids(plan: Plan, partitions: int | None = None) -> list[str]:
    """Every task, ``"<sub-topology>_<partition>"``."""
    n = plan.partitions if partitions is None else partitions
    return [f"{s.id}_{p}" for s in sub_topologies(plan) for p in range(n)]


def repartition_topic(plan: Plan, name: str, group: str | None = None) -> str:
    """The Kafka topic of repartition node ``name``: ``<group>-<name>-repartition`` (the
    group defaults to the topology name, as Kafka Streams' application id).

    A name Kafka would refuse (a character other than ``[a-zA-Z0-9._-]``, more than 249
    characters) has each such character replaced by ``_`` and, if still too long, is cut and
    given a hash of the full name, so every group and operator name has a topic.

    >>> import streamdsl as sd
    >>> t = sd.Topology("clicks")
    >>> repartition_topic(t.plan(), "repartition-1"), repartition_topic(t.plan(), "r", "my group")
    ('clicks-repartition-1-repartition', 'my_group-r-repartition')
    >>> len(repartition_topic(t.plan(), "r", "g" * 300))
    249
    """
    topic = f"{group or plan.name}-{name}-repartition"
    legal = _ILLEGAL.sub("_", topic)
    if len(legal) > _MAX_TOPIC:
        import hashlib
        digest = hashlib.sha1(topic.encode()).hexdigest()[:12]
        legal = legal[:_MAX_TOPIC - len("-repartition") - 13] + "-" + digest + "-repartition"
    return legal


_ILLEGAL = re.compile(r"[^a-zA-Z0-9._-]")
_MAX_TOPIC = 249  # Kafka's limit on a topic name


def keys_only(node: Node) -> bool:
    """Whether a stateful node's state and results for a key depend on that key's records only:
    no stream time, no expiry, nothing shared between keys (a non-windowed aggregation, a
    table's re-grouping and its aggregate, a stream-table or table-table join). Such a node
    gives the same results however its keys are spread over tasks, so a backend may split (or
    share) its tasks by key as it likes; any other stateful node runs one task per partition."""
    if isinstance(node, Aggregate):
        return node.window is None
    return isinstance(node, (StreamTableJoin, TableTableJoin, TableGroupBy, TableAggregate))
