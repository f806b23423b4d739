"""``prune_fields``: projection pushdown, so shuffles and join buffers carry only what is read.

Working back from the sinks, the pass computes which fields of the value each operator's
input still needs. It knows only when every consumer downstream is an expression: a sink
needs the whole value, and so does an opaque callable, a table operator or a custom joiner.
On each edge into a ``Repartition`` (a shuffle) or a stream-stream join (values are
buffered), when the needed fields are known, it inserts a ``Map`` with a projection
(``project(a, b)``): dict values keep only those fields (a dict stays a dict, even an empty
one, so ``count()`` still counts it); other values pass unchanged.

Before::

    keyby-1 (card_number) -> repartition-2 -> aggregate-3 (count())

After::

    keyby-1 (card_number) -> project-1 (project()) -> repartition-2 -> aggregate-3 (count())

What each operator reads: a filter or re-key its expression's fields plus what follows;
a map or flat-map its expression's fields (it replaces the value); an aggregation the fields
of its aggregates (none for ``count()``); a join with the default joiner (merged dicts)
what follows the join.
"""

from __future__ import annotations

from functools import lru_cache

from ..expr import Project
from ..ir.fn import Fn
from ..ir.nodes import (Aggregate, Branch, Filter, FlatMap, FlatMapKV, KeyBy, Map, MapKV, Merge,
                        Node, Peek, Repartition, StreamStreamJoin, StreamTableJoin)
from ..ir.plan import Edge, Plan
from ._notes import note
from ._rewrite import add_edge, add_node, fresh_name, order_before

__all__ = ["prune_fields"]

ALL = None  # "the whole value is needed"


def prune_fields(plan: Plan) -> Plan:
    """Insert projections before shuffles and join buffers where fewer fields are needed.

    >>> import streamdsl as sd
    >>> t = sd.Topology("t")
    >>> t.stream("in").group_by("card").count().to("n")
    >>> [n.describe() for n in prune_fields(t.plan()).topological() if n.kind == "Map"]
    ['project()']
    """
    needs = _Needs(plan)
    out = plan
    for node in plan.topological():
        if not isinstance(node, (Repartition, StreamStreamJoin)):
            continue
        for e in out.in_edges(node.name):
            need = needs.input(node.name, e.port)
            if need is ALL or out.output_kind(e.src) != "stream":
                continue
            have = _projected(out, e.src)
            if have is not None and have <= need:
                continue
            if out is plan:
                out = plan.copy()
            _insert(out, e, need)
    return out


def _insert(plan: Plan, e: Edge, need: frozenset[str]) -> None:
    names = tuple(sorted(need))
    name = fresh_name(plan, "project")
    (at,) = order_before(plan, e.dst)
    add_node(plan, Map(name=name, site=None, fn=Fn(expr=Project(names))), at)
    plan.graph.remove_edge(e.src, e.dst, key=e.port)
    add_edge(plan, e.src, name, "in", e.out)
    add_edge(plan, name, e.dst, e.port)
    kept = ", ".join(names) if names else "no field"
    where = "shuffle" if isinstance(plan.node(e.dst), Repartition) else "join buffer"
    note(f"inserted {name} before {e.dst}: downstream reads {kept}, so the other fields are "
         f"dropped before the {where}")


def _projected(plan: Plan, name: str) -> frozenset[str] | None:
    """Fields the records emitted by ``name`` can have, if a projection upstream bounds them."""
    node = plan.node(name)
    if isinstance(node, Map) and isinstance(node.fn.expr, Project):
        return frozenset(node.fn.expr.names)
    if isinstance(node, (Filter, KeyBy, Peek, Repartition, Branch)):
        ins = plan.in_edges(name)
        return _projected(plan, ins[0].src) if len(ins) == 1 else None
    return None


class _Needs:
    """Fields each operator's input needs (``ALL`` when unknown)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.input = lru_cache(maxsize=None)(self._input)
        self.output = lru_cache(maxsize=None)(self._output)

    def _output(self, name: str) -> frozenset[str] | None:
        need: frozenset[str] = frozenset()
        for e in self.plan.out_edges(name):
            n = self.input(e.dst, e.port)
            if n is ALL:
                return ALL
            need |= n
        return need

    def _input(self, name: str, port: str) -> frozenset[str] | None:
        node: Node = self.plan.node(name)
        if isinstance(node, (Repartition, Merge)):
            return self.output(name)
        if isinstance(node, (Filter, KeyBy, Peek)):
            fn = node.pred if isinstance(node, Filter) else node.fn
            return _union(fn.fields(), self.output(name))
        if isinstance(node, Branch):
            need = self.output(name)
            for _, pred in node.branches:
                need = _union(pred.fields(), need)
            return need
        if isinstance(node, (Map, FlatMap, MapKV, FlatMapKV)):
            return node.fn.fields()  # the value is replaced by a function of these fields
        if isinstance(node, Aggregate):
            return node.aggregator.input_fields()
        if isinstance(node, StreamStreamJoin) and node.joiner is None:
            return self.output(name)
        if isinstance(node, StreamTableJoin) and node.joiner is None and port == "left":
            return self.output(name)
        return ALL


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is ALL or b is ALL:
        return ALL
    return a | b
