"""``fuse_stateless``: run chains of stateless operators as one stage.

A chain is two or more of ``Filter``, ``Map``, ``MapKV``, ``FlatMap``, ``FlatMapKV``,
``KeyBy``, ``Peek`` where each link is the only consumer of the previous one and has no other
input; a flat-map can only end a chain (each of its outputs then moves on alone, as unfused). The chain becomes one ``Fused`` node holding the original nodes (names and file:line
kept): the local runtime compiles it into one function with no per-operator dispatch or
intermediate lists (``streamdsl.runtime.stateless``), and Bytewax and Beam run it as one step.
A failing stage is still reported under its own name.

Before::

    source-in -> filter-1 -> map-2 -> keyby-3 -> repartition-4

After::

    source-in -> fused-1 [filter-1 -> map-2 -> keyby-3] -> repartition-4

Runs last: the other passes do not look inside fused nodes.
"""

from __future__ import annotations

from ..ir.nodes import Filter, FlatMap, FlatMapKV, Fused, KeyBy, Map, MapKV, Node, Peek
from ..ir.plan import Plan
from ._notes import note
from ._rewrite import add_edge, add_node, fresh_name, order, remove_node

__all__ = ["fuse_stateless"]

FUSABLE = (Filter, Map, MapKV, FlatMap, FlatMapKV, KeyBy, Peek)
# A flat-map ends a chain: its outputs then leave one by one, so a record failing further
# down (dead-lettered) never takes its siblings with it, and side effects keep their order.
ENDS_CHAIN = (FlatMap, FlatMapKV)


def fuse_stateless(plan: Plan) -> Plan:
    """Replace each chain of two or more stateless operators by one ``Fused`` node.

    >>> import streamdsl as sd
    >>> t = sd.Topology("t")
    >>> t.stream("in").filter(sd.col("n") > 1).map(sd.col("n") * 2).to("out")
    >>> [n.describe() for n in fuse_stateless(t.plan()).nodes() if n.kind == "Fused"]
    ['Filter(filter-1) -> Map(map-1)']
    """
    chains = _chains(plan)
    if not chains:
        return plan
    plan = plan.copy()
    for chain in chains:
        _fuse(plan, chain)
    return plan


def _fusable(node: Node) -> bool:
    return isinstance(node, FUSABLE)


def _chains(plan: Plan) -> list[list[str]]:
    used: set[str] = set()
    chains = []
    for node in plan.topological():
        if node.name in used or not _fusable(node):
            continue
        chain = [node.name]
        cur = node.name
        while not isinstance(plan.node(cur), ENDS_CHAIN):
            outs = plan.out_edges(cur)
            if len(outs) != 1:
                break
            nxt = outs[0].dst
            if nxt in used or not _fusable(plan.node(nxt)) or len(plan.in_edges(nxt)) != 1:
                break
            chain.append(nxt)
            cur = nxt
        used.update(chain)
        if len(chain) > 1:
            chains.append(chain)
    return chains


def _fuse(plan: Plan, chain: list[str]) -> None:
    stages = tuple(plan.node(n) for n in chain)
    ins = plan.in_edges(chain[0])
    outs = plan.out_edges(chain[-1])
    at = order(plan, chain[0])
    for n in chain:
        remove_node(plan, n)
    name = fresh_name(plan, "fused", taken=chain)
    add_node(plan, Fused(name=name, site=stages[0].site, stages=stages), at)
    for e in ins:
        add_edge(plan, e.src, name, e.port, e.out)
    for e in outs:
        add_edge(plan, name, e.dst, e.port, e.out)
    note(f"fused {' -> '.join(chain)} into {name}: one function call per record instead of "
         f"{len(chain)}")
