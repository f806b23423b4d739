"""``cull``: drop operators whose records reach no sink.

An operator is live if a path leads from it to a ``Sink`` or a ``Peek`` (a side effect the
user asked for, such as sending an email). Every other operator does work nobody sees, and
is removed with an ``OptimizerWarning`` naming it and its file:line. Sources are kept even
when unused: they are the topology's declared inputs (``TestDriver.send`` and ``--input``
accept them), and an unused source reads nothing once its consumers are gone.

Before::

    source-in -> map-1 -> sink-out
              -> filter-2            (reaches no sink)

After::

    source-in -> map-1 -> sink-out
"""

from __future__ import annotations

import warnings

import networkx as nx

from ..ir.nodes import Fused, Node, Peek, Sink, Source
from ..ir.plan import Plan
from ..render import short_site
from ._notes import OptimizerWarning, note
from ._rewrite import remove_node

__all__ = ["cull"]


def _is_root(node: Node) -> bool:
    if isinstance(node, (Sink, Peek)):
        return True
    return isinstance(node, Fused) and any(isinstance(s, Peek) for s in node.stages)


def cull(plan: Plan) -> Plan:
    """Remove operators that reach no sink or peek.

    >>> import streamdsl as sd
    >>> t = sd.Topology("t")
    >>> s = t.stream("in"); s.to("out"); _ = s.filter(sd.col("x") > 1)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     [n.kind for n in cull(t.plan()).nodes()]
    ['Source', 'Sink']
    """
    live: set[str] = set()
    for n in plan.nodes():
        if _is_root(n):
            live.add(n.name)
            live |= nx.ancestors(plan.graph, n.name)
    dead = [n for n in plan.nodes() if n.name not in live and not isinstance(n, Source)]
    if not dead:
        return plan
    plan = plan.copy()
    for n in dead:
        remove_node(plan, n.name)
    listed = ", ".join(f"{n.kind} {n.name!r} ({short_site(n.site)})" for n in dead)
    note(f"removed {len(dead)} operator(s) whose records reach no sink: {listed}")
    warnings.warn(f"these operators reach no sink and were removed: {listed}; write their "
                  "output with .to(name) or delete them", OptimizerWarning, stacklevel=3)
    return plan
