"""Whole-plan checks. Each failure raises ``ValidationError`` naming the node and the user's
file:line. The DSL catches most mistakes at the call; these checks also guard plans built by
the SQL front end, by hand, or rewritten by optimizer passes.
"""

from __future__ import annotations

import networkx as nx

from ..errors import ValidationError
from .nodes import (Aggregate, Branch, Fused, Merge, Node, Repartition, Sink, Source,
                    StreamStreamJoin, StreamTableJoin, TableAggregate, TableFilter, TableGroupBy,
                    TableMap, TableTableJoin, ToStream)
from .plan import Plan

__all__ = ["validate"]

_TABLE_INPUT = (TableFilter, TableMap, ToStream, TableGroupBy)


def validate(plan: Plan) -> Plan:
    """Check ``plan``; return it unchanged or raise ``ValidationError``.

    >>> from streamdsl.ir.nodes import Source, Sink
    >>> p = Plan("p"); p.add(Source(name="s", topic="in")); p.add(Sink(name="o", topic="out"), [("s", "in")])
    >>> validate(p) is p
    True
    """
    g = plan.graph
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        first = plan.node(cycle[0][0])
        raise ValidationError("the topology has a cycle: " + " -> ".join(e[0] for e in cycle),
                              site=first.site, node=first.name)
    sink_topics: dict[str, Node] = {}
    for node in plan.topological():
        ins = plan.in_edges(node.name)
        _check_ports(plan, node, ins)
        kinds = [plan.output_kind(e.src) for e in ins]
        if isinstance(node, Sink):
            if node.topic in sink_topics:
                raise ValidationError(
                    f"sink {node.topic!r} is written twice (also by {sink_topics[node.topic].name!r} "
                    f"at {sink_topics[node.topic].site}); merge() the streams first",
                    site=node.site, node=node.name)
            sink_topics[node.topic] = node
        if isinstance(node, (Aggregate,)) and kinds and kinds[0] != "stream":
            _err(node, "aggregates a table as a stream; use table.group_by(...) instead")
        if isinstance(node, _TABLE_INPUT) and kinds and kinds[0] != "table":
            _err(node, f"{node.kind} needs a table input, got a stream")
        if isinstance(node, StreamTableJoin):
            if kinds != ["stream", "table"]:
                _err(node, "a stream-table join needs a stream on the left and a table on the right")
            right = plan.node(ins[1].src)
            if _is_windowed_table(plan, right.name):
                _err(node, "cannot join a stream to a windowed table (a table joined to a windowed "
                           "stream); join two streams with within= instead")
        if isinstance(node, StreamStreamJoin):
            if kinds != ["stream", "stream"]:
                _err(node, "a stream-stream join needs two streams")
            if node.within is None or node.within < 0:
                _err(node, "a stream-stream join needs within= (the join window)")
        if isinstance(node, TableTableJoin) and kinds != ["table", "table"]:
            _err(node, "a table-table join needs two tables")
        if isinstance(node, TableAggregate) and not _reads_table_group_by(plan, node.name):
            _err(node, "a TableAggregate aggregates the changes of a TableGroupBy (through a "
                       "Repartition); use table.group_by(...).count()/agg(...)")
        if node.stateful and not isinstance(node, (TableAggregate, TableGroupBy)):
            for e in ins:
                culprit = _key_changed_since_repartition(plan, e.src)
                if culprit is not None:
                    c = plan.node(culprit)
                    raise ValidationError(
                        f"stateful {node.kind} on an ungrouped stream: the key was changed by "
                        f"{c.kind} {c.name!r} ({c.site}) without a repartition; use group_by()/"
                        "group_by_key() (the DSL inserts the Repartition)", site=node.site,
                        node=node.name)
    return plan


def _err(node: Node, msg: str) -> None:
    raise ValidationError(msg, site=node.site, node=node.name)


def _check_ports(plan: Plan, node: Node, ins) -> None:
    if isinstance(node, Source):
        if ins:
            _err(node, "a source has no inputs")
        return
    ports = [e.port for e in ins]
    if isinstance(node, Merge):
        if len(ins) < 2:
            _err(node, "merge needs at least two inputs")
        return
    expected = list(node.in_ports)
    if ports != expected:
        _err(node, f"expects inputs on ports {expected}, got {ports}")
    for e in ins:
        up = plan.node(e.src)
        if isinstance(up, Branch):
            if e.out not in up.out_ports:
                _err(node, f"reads unknown branch {e.out!r} of {up.name!r}")
        elif e.out is not None:
            _err(node, f"reads output port {e.out!r} of {up.name!r}, which has none")


def _key_changed_since_repartition(plan: Plan, name: str) -> str | None:
    """Name of a key-changing node between ``name`` and the nearest repartition/source/stateful node."""
    node = plan.node(name)
    if node.key_changing:  # a Fused chain says whether one of its stages is
        return name
    if isinstance(node, (Repartition, Source)) or node.stateful:
        return None
    for e in plan.in_edges(name):
        found = _key_changed_since_repartition(plan, e.src)
        if found:
            return found
    return None


def _reads_table_group_by(plan: Plan, name: str) -> bool:
    """Whether ``name``'s input is a ``TableGroupBy`` through repartitions only."""
    ins = plan.in_edges(name)
    if len(ins) != 1:
        return False
    up = plan.node(ins[0].src)
    if isinstance(up, Repartition):
        return _reads_table_group_by(plan, up.name)
    return isinstance(up, TableGroupBy)


def _is_windowed_table(plan: Plan, name: str) -> bool:
    node = plan.node(name)
    if isinstance(node, Aggregate):
        return node.window is not None
    if isinstance(node, (TableFilter, TableMap, TableTableJoin)):
        return any(_is_windowed_table(plan, e.src) for e in plan.in_edges(name))
    return False
