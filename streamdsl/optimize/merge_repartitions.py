"""``merge_repartitions``: as few shuffles as the keys allow (Kafka Streams' repartition merge).

A ``Repartition`` redistributes records by key before a stateful operator; on a cluster it
is a shuffle. This pass applies four rewrites until none applies:

1. **Re-keying by the key the records already have** (``stream(key="card").group_by("card")``):
   the ``KeyBy`` computes the key the source (or an earlier ``KeyBy``) already set from the
   same, unchanged value, so it is replaced by a filter dropping null keys (what
   ``group_by`` does with them), or removed when it keeps null keys. Expressions only.
2. **Redundant repartitions**: a ``Repartition`` with no key change since the last source,
   repartition or stateful operator is removed.
3. **Identical re-keys** of one stream (``s.group_by("card")`` twice) become one ``KeyBy``.
4. **One repartition per key-changing operator**: the several repartitions reading the same
   operator (one per stateful consumer) become one.

Before (rewrite 4)::

    keyby-1 -> repartition-2 -> aggregate-3
            -> repartition-4 -> streamstreamjoin-5

After::

    keyby-1 -> repartition-2 -> aggregate-3
                             -> streamstreamjoin-5

A merge is skipped when it would change the order in which some operator sees records.
"""

from __future__ import annotations

from typing import Any

from ..expr import KeyRef
from ..ir.fn import Fn
from ..ir.nodes import Branch, Filter, KeyBy, Map, Node, Peek, Repartition, Source
from ..ir.plan import Plan
from ..render import short_site
from ._notes import note
from ._rewrite import (add_edge, concat_order_kept, disjoint, fn_key, order, passthrough_fields,
                       redirect_out, remove_node, single_in)

__all__ = ["merge_repartitions"]


def merge_repartitions(plan: Plan) -> Plan:
    """Remove needless repartitions and merge the rest per key-changing operator.

    >>> import streamdsl as sd
    >>> t = sd.Topology("t")
    >>> s = t.stream("in").key_by("user")
    >>> s.group_by_key().count().to("n"); s.group_by_key().agg(m=sd.max("x")).to("m")
    >>> p = merge_repartitions(t.plan())
    >>> sum(n.kind == "Repartition" for n in p.nodes())
    1
    """
    out = plan
    copied = False
    while True:
        for rewrite in (_same_key, _redundant, _identical_keybys, _sibling_repartitions):
            target = rewrite(out, find=True)
            if target is not None:
                if not copied:
                    out = out.copy()
                    copied = True
                rewrite(out, find=False, target=target)
                break
        else:
            return out


# ---- 1. re-keying by the current key ------------------------------------------------------------

def _current_key(plan: Plan, name: str, out: str | None = None,
                 kept: frozenset[str] | None = None) -> Any:
    """The key expression (``fn_key``) of the records ``name`` emits, if known.

    Walks up through operators that change neither the key nor the fields the key was
    computed from, to the source or ``KeyBy`` that set it.
    """
    node = plan.node(name)
    if isinstance(node, (Filter, Peek, Repartition, Branch, Map)):
        if isinstance(node, Map):
            through = passthrough_fields(node.fn)
            if through is None:
                return None
            kept = through if kept is None else kept & through
        e = single_in(plan, name)
        return _current_key(plan, e.src, e.out, kept) if e is not None else None
    fn = node.key if isinstance(node, Source) and not node.table else (
        node.fn if isinstance(node, KeyBy) else None)
    if fn is None or fn.expr is None or (kept is not None and not fn.expr.fields() <= kept):
        return None
    return _expr_key(fn)


def _expr_key(fn: Fn | None) -> Any:
    if fn is None or fn.expr is None or fn.expr.uses_key():
        return None
    return fn_key(Fn(expr=fn.expr))


def _same_key(plan: Plan, *, find: bool, target: Any = None) -> Any:
    if find:
        for n in plan.topological():
            if isinstance(n, KeyBy) and n.fn.expr is not None:
                e = single_in(plan, n.name)
                if e is not None:
                    cur = _current_key(plan, e.src, e.out)
                    if cur is not None and cur == _expr_key(n.fn):
                        return n.name
        return None
    k: KeyBy = plan.node(target)
    if k.drop_null:
        plan.replace_node(Filter(name=k.name, site=k.site, pred=Fn(expr=KeyRef().not_null())))
        note(f"{k.name} ({short_site(k.site)}) re-keys by {k.fn.describe()}, the key the records "
             "already have: replaced by a filter dropping null keys")
    else:
        _bypass(plan, k.name)
        note(f"removed {k.name} ({short_site(k.site)}): it re-keys by {k.fn.describe()}, the key "
             "the records already have")
    return None


def _bypass(plan: Plan, name: str) -> None:
    """Remove a single-input node, connecting its producer to its consumers."""
    (e,) = plan.in_edges(name)
    for c in plan.out_edges(name):
        add_edge(plan, e.src, c.dst, c.port, e.out if c.out is None else c.out)
    remove_node(plan, name)


# ---- 2. repartitions with no key change before them ----------------------------------------------

def _key_changed(plan: Plan, name: str) -> bool:
    node = plan.node(name)
    if node.key_changing:  # a table re-grouping is stateful and changes the key
        return True
    if isinstance(node, (Repartition, Source)) or node.stateful:
        return False
    return any(_key_changed(plan, e.src) for e in plan.in_edges(name))


def _redundant(plan: Plan, *, find: bool, target: Any = None) -> Any:
    if find:
        for n in plan.topological():
            if isinstance(n, Repartition):
                e = single_in(plan, n.name)
                if e is not None and not _key_changed(plan, e.src):
                    return n.name
        return None
    r = plan.node(target)
    _bypass(plan, target)
    note(f"removed {target} ({short_site(r.site)}): the key has not changed since the records were "
         "last partitioned")
    return None


# ---- 3 and 4: siblings ----------------------------------------------------------------------------------

def _siblings(plan: Plan, pick) -> tuple[str, list[str]] | None:
    """Groups of consumers of one (producer, out port) with equal ``pick(node)`` (not None)."""
    for n in plan.topological():
        groups: dict[tuple, list[str]] = {}
        for e in plan.out_edges(n.name):
            dst = plan.node(e.dst)
            k = pick(dst)
            if k is None or len(plan.in_edges(e.dst)) != 1:
                continue
            groups.setdefault((e.out, k), []).append(e.dst)
        for names in groups.values():
            if len(names) < 2:
                continue
            keep, rest = names[0], []
            for other in names[1:]:
                if _merge_keeps_order(plan, n.name, keep, other, rest):
                    rest.append(other)
            if rest:
                return keep, rest
    return None


def _merge_keeps_order(plan: Plan, parent: str, keep: str, other: str, merged: list[str]) -> bool:
    """Folding ``other`` into ``keep`` delivers ``other``'s records at ``keep``'s place among
    ``parent``'s consumers, and to the union of their consumers in creation order."""
    lo, hi = order(plan, keep), order(plan, other)
    between = [e.dst for e in plan.out_edges(parent)
               if lo < order(plan, e.dst) < hi and e.dst not in merged]
    if between and not disjoint(plan, between, [other]):
        return False
    a = [e.dst for n in [keep, *merged] for e in plan.out_edges(n)]
    return concat_order_kept(plan, a, [e.dst for e in plan.out_edges(other)])


def _keyby_key(node: Node) -> Any:
    if isinstance(node, KeyBy) and node.fn.expr is not None:
        return (fn_key(node.fn), node.drop_null)
    return None


def _identical_keybys(plan: Plan, *, find: bool, target: Any = None) -> Any:
    if find:
        return _siblings(plan, _keyby_key)
    keep, rest = target
    for other in rest:
        redirect_out(plan, other, keep)
        remove_node(plan, other)
    note(f"{', '.join(rest)} re-key the same stream by the same key as {keep}: merged into {keep}")
    return None


def _sibling_repartitions(plan: Plan, *, find: bool, target: Any = None) -> Any:
    if find:
        return _siblings(plan, lambda n: True if isinstance(n, Repartition) else None)
    keep, rest = target
    for other in rest:
        redirect_out(plan, other, keep)
        remove_node(plan, other)
    users = ", ".join(e.dst for e in plan.out_edges(keep))
    note(f"merged {', '.join(rest)} into {keep}: one repartition serves {users}")
    return None
