"""A source's leading filter, run on its raw in-memory items before any ``Record`` is built.

When a run's only input is in memory and its source node feeds, alone, a filter of the value
written as an expression (``sd.col("auction") % 123 == 0``; also the first stage of a fused
node), most of a selective query's time went into making a ``Record`` of every item and
carrying it to the filter that drops it. :func:`source_prefilter` generates one list
comprehension per source that, over a chunk of items, finds those the filter surely drops:

* items the source ingests by its fast rule (a plain dict, not an envelope, holding the key
  field if the source declares one, an int timestamp in range: ``ingest.make_ingest_items``),
* for which the predicate, evaluated inline (``exprsource.expr_source``: ``Expr.compile``'s
  semantics), is false but not None.

Every other item is kept and takes the ordinary path: one that ingests otherwise (or fails
to: a dead letter), one whose predicate is None (a missing field, counted by the filter's
``Drops``), every item of a chunk where the predicate raises (the filter's failure, at its
position). The kept items keep their input positions; those dropped would have produced
nothing, no metric but the count of input records (a :class:`Dropped` item carries it to the
input stage). An expression is pure, so the stage evaluating it again on a kept item gives
the same answer. Only for a run with one input topic: with several, the merge by timestamp
looks at every item, so dropping one early could change the order of the others.

tests/backends/bytewax/test_prefilter.py checks runs with and without it give the same
records, dead letters and metrics.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from streamdsl.expr import _get
from streamdsl.ir.nodes import Filter, Fused, Source
from streamdsl.ir.plan import Plan
from streamdsl.runtime.exprsource import expr_source
from streamdsl.runtime.ingest import field_name
from streamdsl.timeutil import MAX_TIMESTAMP

__all__ = ["Dropped", "source_prefilter"]


class Dropped(NamedTuple):
    """An item of the merged input standing for ``count`` input items of ``topic`` that the
    prefilter dropped (counted as read, and nothing else)."""

    topic: str
    count: int


def source_prefilter(plan: Plan, node: Source) -> Callable[[list], list[int]] | None:
    """For source ``node`` of ``plan`` (the run's only input): ``keep(items) -> indices`` of
    the items of a chunk that must be ingested (see the module docstring), or None when its
    records do not go, alone, to a filter expression of the value."""
    if node.table or len(plan.source_topics()) != 1:
        return None
    ts_field = field_name(node.timestamp)
    key_field = field_name(node.key)
    if ts_field is None or (node.key is not None and key_field is None):
        return None
    edges = plan.out_edges(node.name)
    if len(edges) != 1 or edges[0].out is not None:
        return None
    first = plan.node(edges[0].dst)
    if len(plan.in_edges(first.name)) != 1:
        return None
    if isinstance(first, Fused):
        first = first.stages[0]
    if not isinstance(first, Filter) or first.pred.expr is None or first.pred.uses_key():
        return None
    env: dict[str, Any] = {"_get": _get, "top": MAX_TIMESTAMP}
    pred = expr_source(first.pred.expr, env, [0])
    if pred is None:
        env["pred"] = first.pred.compile_value()
        pred = "pred(v)"
    has_key = f" and {key_field!r} in v" if key_field is not None else ""
    # a loop rather than a comprehension: the expression's walrus names stay fast locals
    src = "\n".join([
        "def keep(items):",
        "    out = []",
        "    append = out.append",
        "    k = None",
        "    i = -1",
        "    for v in items:",
        "        i += 1",
        # dropped: ingests by the fast rule, and the predicate is false (not None)
        f"        if type(v) is dict and 'value' not in v{has_key} and "
        f"type(_ts := v.get({ts_field!r})) is int and 0 <= _ts < top:",
        f"            _r = {pred}",
        "            if _r is not None and not _r:",
        "                continue",
        "        append(i)",
        "    return out"])
    exec(src, env)  # noqa: S102 - our own template; user code is only called
    fast = env["keep"]

    def keep(items: list) -> list[int]:
        try:
            return fast(items)
        except Exception:  # the filter fails on some item: it reports that, at its place
            return list(range(len(items)))
    return keep
