"""``share_sources``: one read per source name, however many times the user declared it.

Declaring ``topo.stream("orders")`` twice gives two ``Source`` nodes; each would ingest (and,
on Kafka, consume) every record. When the declarations agree (stream/table, key, timestamp,
connector), the later ones are folded into the first: their consumers read from it.

Before::

    source-orders   -> filter-1 -> sink-big
    source-orders-1 -> map-2    -> sink-all

After::

    source-orders -> filter-1 -> sink-big
                  -> map-2    -> sink-all

Declarations that disagree (say ``key="id"`` and ``key="user"``) stay separate. A record
that cannot be read (bad JSON, a missing key field) was dead-lettered once per declaration;
after folding, once. A record
used to reach the first source's consumers, then the second's; after folding it reaches
the consumers in creation order, so a fold that would reorder the delivery to operators
that both subgraphs feed (a self-join, a merge) is skipped.
"""

from __future__ import annotations

from ..ir.nodes import Source
from ..ir.plan import Plan
from ..render import short_site
from ._notes import note
from ._rewrite import concat_order_kept, redirect_out, remove_node, same_fn

__all__ = ["share_sources"]


def share_sources(plan: Plan) -> Plan:
    """Fold repeated declarations of one source into the first.

    >>> import streamdsl as sd
    >>> t = sd.Topology("t")
    >>> t.stream("in").to("a"); t.stream("in").to("b")
    >>> [n.name for n in share_sources(t.plan()).sources()]
    ['source-in']
    """
    by_topic: dict[str, list[Source]] = {}
    for s in plan.sources():
        by_topic.setdefault(s.topic, []).append(s)
    if all(len(v) == 1 for v in by_topic.values()):
        return plan
    plan = plan.copy()
    for topic, decls in by_topic.items():
        keep = decls[0]
        for other in decls[1:]:
            if not _same_declaration(keep, other):
                note(f"kept {other.name} ({short_site(other.site)}) separate from {keep.name}: "
                     f"the two declarations of {topic!r} differ (key, timestamp or connector)")
                continue
            if not _order_kept(plan, keep.name, other.name):
                note(f"kept {other.name} separate from {keep.name}: sharing would change the "
                     "order in which operators fed by both see each record")
                continue
            redirect_out(plan, other.name, keep.name)
            remove_node(plan, other.name)
            note(f"{other.name} ({short_site(other.site)}) now reads from {keep.name}: "
                 f"{topic!r} is read once")
    return plan


def _same_declaration(a: Source, b: Source) -> bool:
    return (a.table == b.table and same_fn(a.key, b.key) and same_fn(a.timestamp, b.timestamp)
            and a.connector == b.connector)


def _order_kept(plan: Plan, keep: str, other: str) -> bool:
    """Each record reached ``keep``'s consumers, then ``other``'s; after folding it reaches
    all of them in creation order."""
    return concat_order_kept(plan, [e.dst for e in plan.out_edges(keep)],
                             [e.dst for e in plan.out_edges(other)])
