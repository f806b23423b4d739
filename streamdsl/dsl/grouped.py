"""Grouped and windowed handles: where aggregations are declared."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..callsite import user_site
from ..errors import TopologyError
from ..ir.fn import check_arity
from ..ir.aggregators import SUBTRACTABLE, AggFunc, Aggregator
from ..ir.nodes import Aggregate, Repartition, TableAggregate, TableGroupBy
from ..windows import SessionWindow, Window
from .topology import AGG_AGG, AGG_VALUE, Topology, _fn, _late

if TYPE_CHECKING:
    from .table import Table

__all__ = ["GroupedStream", "WindowedStream", "GroupedTable"]


def _agg_fields(named: dict[str, Any], site: str | None) -> tuple[tuple[str, AggFunc], ...]:
    if not named:
        raise TopologyError("agg() needs at least one named aggregate, e.g. "
                            "agg(n=sd.count(), total=sd.sum('amount'))", site=site)
    out = []
    for n, a in named.items():
        if not isinstance(a, AggFunc):
            raise TopologyError(f"agg({n}=...) takes an aggregate such as sd.count(), sd.sum(f), "
                                f"sd.min(f), sd.max(f), sd.avg(f), sd.collect(f), sd.first(f) or "
                                f"sd.last(f), got {a!r}", site=site)
        out.append((n, a))
    return tuple(out)


def _init(init: Any, site: str | None) -> Any:
    """``aggregate(init, ...)``: a value, or a callable taking no argument."""
    if callable(init):
        try:
            check_arity(init, 0, "aggregate() init", "init is a value or a function of no "
                        "argument (lambda: {...}) giving the initial aggregate")
        except TypeError as e:
            raise TopologyError(str(e), site=site) from None
    return init


class _Aggregations:
    """Shared aggregation methods of GroupedStream and WindowedStream."""

    _topo: Topology
    _node: str
    _out: str | None
    _window: Window | None = None
    _emit: str = "changes"
    _late: str = "drop"

    def _aggregate(self, aggregator: Aggregator, name: str | None, site: str | None) -> "Table":
        from .table import Table
        node = self._topo._add(Aggregate, [(self._node, "in", self._out)], name=name, site=site,
                               aggregator=aggregator, window=self._window, emit=self._emit,
                               late=self._late)
        return Table(self._topo, node.name, windowed=self._window is not None)

    def count(self, *, name: str | None = None) -> "Table":
        """Count records per key (per window when windowed)."""
        return self._aggregate(Aggregator("count"), name, user_site())

    def reduce(self, fn: Any, *, name: str | None = None) -> "Table":
        """Combine values per key with ``fn(agg, value) -> agg``; the first value starts."""
        site = user_site()
        add = _fn(fn, site, "reducer", arity=2, passed=AGG_VALUE)
        return self._aggregate(Aggregator("reduce", add=add), name, site)

    def aggregate(self, init: Any, add: Any, *, merge: Any = None, name: str | None = None) -> "Table":
        """Fold values per key: ``init`` (value or zero-arg callable), ``add(agg, value)``.

        Session windows also need ``merge(agg1, agg2) -> agg`` to combine merged sessions.
        """
        site = user_site()
        if isinstance(self._window, SessionWindow) and merge is None:
            raise TopologyError("aggregate() over session windows needs merge=(agg1, agg2) -> agg, "
                                "used when a record bridges two sessions", site=site)
        add_fn = _fn(add, site, "aggregator", arity=2, passed=AGG_VALUE)
        merge_fn = (_fn(merge, site, "merger", arity=2, passed=AGG_AGG)
                    if merge is not None else None)
        agg = Aggregator("aggregate", init=_init(init, site), add=add_fn, merge=merge_fn)
        return self._aggregate(agg, name, site)

    def agg(self, *, name: str | None = None, **named: AggFunc) -> "Table":
        """Several named aggregates at once; values are dicts.

        >>> import streamdsl as sd
        >>> t = sd.Topology("t")
        >>> tbl = t.stream("in").group_by("card").agg(n=sd.count(), total=sd.sum("amount"))
        """
        site = user_site()
        return self._aggregate(Aggregator("agg", fields=_agg_fields(named, site)), name, site)


class GroupedStream(_Aggregations):
    """A stream grouped by key (Kafka's ``KGroupedStream``)."""

    def __init__(self, topo: Topology, node: str, site: str | None, out: str | None = None):
        self._topo = topo
        self._node = node
        self._out = out
        self._site = site

    def window(self, window: Window, *, emit: str = "changes",
               late: str | None = None) -> "WindowedStream":
        """Window the grouped stream.

        Args:
            window: ``sd.tumbling(...)``, ``sd.hopping(...)``, ``sd.sliding(...)`` or ``sd.session(...)``.
            emit: ``"changes"`` (every update) or ``"final"`` (one result when the window closes).
            late: a record arriving after its window closed (window end + grace): ``"drop"``
                (counted in the ``late`` metric) or ``"dead-letter"`` (also written to the
                dead-letter output with its window and the stream time); default: the
                topology's ``late=``.
        """
        site = user_site()
        if not isinstance(window, Window):
            raise TopologyError(f"window() takes sd.tumbling/hopping/sliding/session, got {window!r}",
                                site=site)
        if emit not in ("changes", "final"):
            raise TopologyError(f"emit must be 'changes' or 'final', got {emit!r}", site=site)
        return WindowedStream(self._topo, self._node, window, emit, self._out,
                              _late(self._topo, late, site))

    windowed_by = window


class WindowedStream(_Aggregations):
    """A grouped stream with a window (``TimeWindowedKStream`` / ``SessionWindowedKStream``)."""

    def __init__(self, topo: Topology, node: str, window: Window, emit: str, out: str | None = None,
                 late: str = "drop"):
        self._topo = topo
        self._node = node
        self._out = out
        self._window = window
        self._emit = emit
        self._late = late


class GroupedTable:
    """A table re-grouped by a new key (``KGroupedTable``): updates subtract then add."""

    def __init__(self, topo: Topology, node: str, key: Any, site: str | None):
        self._topo = topo
        self._node = node
        self._key = _fn(key, site, "group_by key")
        self._site = site

    def _aggregate(self, aggregator: Aggregator, name: str | None, site: str | None) -> "Table":
        from .table import Table
        # Kafka Streams' shape: the table's task turns each update into changes keyed by the
        # new key, a repartition moves them to the new key's task, which aggregates them.
        gb = self._topo._add(TableGroupBy, [(self._node, "in", None)], name=None, site=site,
                             group_key=self._key)
        rp = self._topo._add(Repartition, [(gb.name, "in")], name=None, site=site)
        node = self._topo._add(TableAggregate, [(rp.name, "in")], name=name, site=site,
                               aggregator=aggregator)
        return Table(self._topo, node.name)

    def count(self, *, name: str | None = None) -> "Table":
        """Count rows per new key (0 is a value, not a delete)."""
        return self._aggregate(Aggregator("count"), name, user_site())

    def agg(self, *, name: str | None = None, **named: AggFunc) -> "Table":
        """count / sum / avg / collect / histogram of rows per new key (the others, such as
        min, max, first and last, cannot be subtracted and are refused)."""
        site = user_site()
        fields = _agg_fields(named, site)
        for n, a in fields:
            if a.kind not in SUBTRACTABLE:
                raise TopologyError(f"{a.kind}() cannot be subtracted, so it is not available on a "
                                    f"grouped table; use {', '.join(SUBTRACTABLE)}", site=site)
        return self._aggregate(Aggregator("agg", fields=fields), name, site)

    def reduce(self, add: Any, subtract: Any, *, name: str | None = None) -> "Table":
        """``add(agg, new)`` and ``subtract(agg, old)`` per new key."""
        site = user_site()
        return self._aggregate(Aggregator("reduce", add=_fn(add, site, "adder", arity=2,
                                                            passed=AGG_VALUE),
                                          subtract=_fn(subtract, site, "subtractor", arity=2,
                                                       passed=AGG_VALUE)),
                               name, site)

    def aggregate(self, init: Any, add: Any, subtract: Any, *, name: str | None = None) -> "Table":
        """``init``, ``add(agg, new)``, ``subtract(agg, old)`` per new key."""
        site = user_site()
        return self._aggregate(Aggregator("aggregate", init=_init(init, site),
                                          add=_fn(add, site, "adder", arity=2, passed=AGG_VALUE),
                                          subtract=_fn(subtract, site, "subtractor", arity=2,
                                                       passed=AGG_VALUE)),
                               name, site)
