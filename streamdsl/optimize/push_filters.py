"""``push_filters``: run expression filters as early as possible.

A ``Filter`` whose predicate is an expression moves ahead of the operator feeding it when
that operator is its only producer, feeds nothing else, and leaves what the predicate reads
unchanged:

* ``Repartition``: changes nothing (filtering first shuffles fewer records);
* ``KeyBy`` without null-key dropping, when the predicate does not read the key;
* ``Map`` whose expression passes the predicate's fields through unchanged: a ``struct``
  projection (SQL ``SELECT a, b, ...``) copying them under the same names, or the
  optimizer's own ``project(...)``;
* ``Merge``: the filter is copied onto each input (``<name>@in0``, ``<name>@in1`` ...).

Never moved: opaque callables (the optimizer cannot see what they read), and anything across
stateful operators, table operators, ``Peek`` (it would see fewer records), ``Branch``,
``FlatMap`` or ``MapKV``. The pass repeats until no filter can move.

Before::

    source-orders -> keyby-1 (customer_id) -> filter-2 (status = 'PAID') -> repartition-3

After::

    source-orders -> filter-2 (status = 'PAID') -> keyby-1 (customer_id) -> repartition-3

Guarantee: on any input on which the original plan raises no error, the sinks receive the
same records in the same order. (A moved filter can spare an operator a record that would
have failed there; a record failing inside a moved filter is reported under its name.)
"""

from __future__ import annotations

from ..ir.nodes import Filter, KeyBy, Map, Merge, Node, Repartition
from ..ir.plan import Plan
from ..render import short_site
from ._notes import note
from ._rewrite import (add_edge, add_node, fresh_name, order, order_before, passthrough_fields,
                       remove_node, set_order, single_in)

__all__ = ["push_filters"]


def push_filters(plan: Plan) -> Plan:
    """Move expression filters upstream past operators that leave their inputs unchanged.

    >>> import streamdsl as sd
    >>> t = sd.Topology("t")
    >>> t.stream("in").key_by("user").filter(sd.col("n") > 1).to("out")
    >>> [n.kind for n in push_filters(t.plan()).topological()]
    ['Source', 'Filter', 'KeyBy', 'Sink']
    """
    out = plan
    copied = False
    while True:
        move = _find_move(out)
        if move is None:
            return out
        if not copied:
            out = out.copy()
            copied = True
        f, up = move
        if isinstance(up, Merge):
            _push_into_merge(out, f, up)
        else:
            _swap(out, f, up)


def _find_move(plan: Plan) -> tuple[Filter, Node] | None:
    for f in plan.topological():
        if not isinstance(f, Filter) or f.pred.expr is None:
            continue
        e = single_in(plan, f.name)
        if e is None or e.out is not None:
            continue
        up = plan.node(e.src)
        if len(plan.out_edges(up.name)) != 1:
            continue
        if isinstance(up, Merge) or _commutes(f, up):
            return f, up
    return None


def _commutes(f: Filter, up: Node) -> bool:
    reads = f.pred.fields() or frozenset()
    if isinstance(up, Repartition):
        return True
    if isinstance(up, KeyBy):
        return not up.drop_null and not f.pred.uses_key()
    if isinstance(up, Map):
        kept = passthrough_fields(up.fn)
        return kept is not None and reads <= kept
    return False


def _swap(plan: Plan, f: Filter, up: Node) -> None:
    """``X -> up -> f -> consumers`` becomes ``X -> f -> up -> consumers``."""
    (x,) = plan.in_edges(up.name)
    consumers = plan.out_edges(f.name)
    o_up, o_f = order(plan, up.name), order(plan, f.name)
    plan.graph.remove_edge(x.src, up.name, key=x.port)
    plan.graph.remove_edge(up.name, f.name, key="in")
    for c in consumers:
        plan.graph.remove_edge(f.name, c.dst, key=c.port)
        add_edge(plan, up.name, c.dst, c.port, c.out)
    add_edge(plan, x.src, f.name, "in", x.out)
    add_edge(plan, f.name, up.name, "in")
    set_order(plan, f.name, o_up)
    set_order(plan, up.name, o_f)
    note(f"moved {f.name} ({f.pred.describe()}, {short_site(f.site)}) ahead of {up.kind} "
         f"{up.name}: {_why(f, up)}")


def _why(f: Filter, up: Node) -> str:
    fields = ", ".join(sorted(f.pred.fields() or ())) or "no field"
    if isinstance(up, Repartition):
        return "fewer records are shuffled"
    if isinstance(up, KeyBy):
        return f"the predicate reads {fields}, not the key, and re-keying leaves the value unchanged"
    return f"the predicate reads {fields}, which {up.name} passes through unchanged"


def _push_into_merge(plan: Plan, f: Filter, m: Merge) -> None:
    """``inputs -> m -> f -> consumers`` becomes ``input_i -> f@in_i -> m -> consumers``."""
    ins = plan.in_edges(m.name)
    consumers = plan.out_edges(f.name)
    orders = order_before(plan, m.name, len(ins))
    names = []
    for e, o in zip(ins, orders):
        name = f"{f.name}@{e.port}"
        if name in plan:
            name = fresh_name(plan, name)
        copy = f.replace(name=name)
        add_node(plan, copy, o)
        plan.graph.remove_edge(e.src, m.name, key=e.port)
        add_edge(plan, e.src, name, "in", e.out)
        add_edge(plan, name, m.name, e.port)
        names.append(name)
    remove_node(plan, f.name)
    for c in consumers:
        add_edge(plan, m.name, c.dst, c.port, c.out)
    note(f"moved {f.name} ({f.pred.describe()}, {short_site(f.site)}) ahead of Merge {m.name}, "
         f"one copy per input: {', '.join(names)}")
