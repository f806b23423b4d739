"""Graph surgery shared by the passes (private).

Every pass works on a copy of the plan (``Plan.copy``) and edits that copy with these helpers,
so the plan it was given never changes.

Ordering matters. The executor pushes a record depth first, to a node's consumers in the
order of their ``order`` attribute, and closes windows at end of input in topological order
(ties by ``order``). Plans built by the DSL number nodes in creation order, so a consumer
always has a larger ``order`` than its producers. The helpers keep that invariant: a node put
on an edge gets an order just below its consumer (``order_before``), so it takes the
consumer's place among its producer's consumers, and a node that replaces others keeps the
first one's order.
"""

from __future__ import annotations

from typing import Any, Iterable

import networkx as nx

from ..expr import Col, Func, Lit
from ..ir.fn import Fn
from ..ir.nodes import Fused, Node
from ..ir.plan import Edge, Plan

__all__ = [
    "order", "set_order", "order_before", "add_node", "add_edge", "remove_node", "redirect_out",
    "fresh_name", "fn_key", "same_fn", "descendants", "disjoint", "concat_order_kept",
    "passthrough_fields",
]


def order(plan: Plan, name: str) -> float:
    return plan.graph.nodes[name]["order"]


def set_order(plan: Plan, name: str, value: float) -> None:
    plan.graph.nodes[name]["order"] = value


def order_before(plan: Plan, name: str, k: int = 1) -> list[float]:
    """``k`` increasing orders strictly between ``name``'s order and the next lower one."""
    hi = order(plan, name)
    lower = [d["order"] for _, d in plan.graph.nodes(data=True) if d["order"] < hi]
    lo = max(lower) if lower else hi - 1
    step = (hi - lo) / (k + 1)
    return [lo + step * (i + 1) for i in range(k)]


def add_node(plan: Plan, node: Node, at: float) -> None:
    """Add ``node`` (no edges) with order ``at``."""
    if node.name in plan.graph:
        raise ValueError(f"node {node.name!r} already exists")
    plan.graph.add_node(node.name, op=node, order=at)
    plan._counter = max(plan._counter, int(at) + 1)


def add_edge(plan: Plan, src: str, dst: str, port: str, out: str | None = None) -> None:
    plan.graph.add_edge(src, dst, key=port, port=port, out=out)


def remove_node(plan: Plan, name: str) -> None:
    plan.graph.remove_node(name)


def redirect_out(plan: Plan, old: str, new: str) -> None:
    """Make every consumer of ``old`` read from ``new`` instead (same ports)."""
    for e in plan.out_edges(old):
        plan.graph.remove_edge(old, e.dst, key=e.port)
        add_edge(plan, new, e.dst, e.port, e.out)


def fresh_name(plan: Plan, base: str, taken: Iterable[str] = ()) -> str:
    """``<base>-<n>`` unused by any node, fused stage or name in ``taken``."""
    used = set(plan.graph.nodes) | set(taken)
    for n in plan.nodes():
        if isinstance(n, Fused):
            used.update(s.name for s in n.stages)
    i = 1
    while f"{base}-{i}" in used:
        i += 1
    return f"{base}-{i}"


def fn_key(fn: Fn | None) -> Any:
    """A hashable identity of a user function: its expression's JSON, or the callable itself."""
    if fn is None:
        return None
    if fn.expr is not None:
        import orjson
        return ("expr", orjson.dumps(fn.expr.to_dict(), option=orjson.OPT_SORT_KEYS), fn.arity)
    return ("func", id(fn.func), fn.arity)


def same_fn(a: Fn | None, b: Fn | None) -> bool:
    """Equal expressions, or the very same callable object (both None counts as equal)."""
    if a is None or b is None:
        return a is b
    if a.expr is not None and b.expr is not None:
        return fn_key(a) == fn_key(b)
    return a.func is not None and a.func is b.func and a.arity == b.arity


def passthrough_fields(fn: Fn) -> frozenset[str] | None:
    """Fields a ``Map`` with ``fn`` carries unchanged from input to output value, if known.

    Known for the optimizer's ``project(...)`` and for ``struct`` projections (SQL ``SELECT``)
    where an output field is the input field of the same name. None for anything else.

    >>> from streamdsl.expr import col, func, lit
    >>> sorted(passthrough_fields(Fn(expr=func("struct", lit("a"), col("a"), lit("b"), col("c") + 1))))
    ['a']
    """
    expr = fn.expr
    if expr is None or fn.uses_key():
        return None
    own = getattr(expr, "passthrough_fields", None)
    if own is not None:
        return own()
    if isinstance(expr, Func) and expr.name == "struct":
        args = expr.args
        kept = set()
        for name, value in zip(args[0::2], args[1::2]):
            if isinstance(name, Lit) and isinstance(value, Col) and value.name == name.value:
                kept.add(value.name)
        return frozenset(kept)
    return None


def descendants(plan: Plan, name: str) -> set[str]:
    return nx.descendants(plan.graph, name) | {name}


def disjoint(plan: Plan, a: Iterable[str], b: Iterable[str]) -> bool:
    """True when no operator is reached from both node sets ``a`` and ``b``.

    Reordering the delivery of one record to two such subgraphs changes no sink's output and
    no operator's input sequence.
    """
    da: set[str] = set()
    for n in a:
        da |= descendants(plan, n)
    for n in b:
        if da & descendants(plan, n):
            return False
    return True


def concat_order_kept(plan: Plan, first: list[str], then: list[str]) -> bool:
    """Whether delivering a record to ``first`` (in order) and then to ``then`` can become
    delivering it to all of them sorted by order: every pair whose order flips (``x`` in
    ``first`` sorting after ``y`` in ``then``) must lead to disjoint operators."""
    for x in first:
        for y in then:
            if order(plan, x) > order(plan, y) and not disjoint(plan, [x], [y]):
                return False
    return True


def single_in(plan: Plan, name: str) -> Edge | None:
    ins = plan.in_edges(name)
    return ins[0] if len(ins) == 1 else None
