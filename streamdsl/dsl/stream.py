"""``Stream``: a handle on a record stream. Every method adds one IR node; nothing executes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..callsite import user_site
from ..errors import TopologyError
from ..expr import Expr, Not
from ..ir.fn import Fn
from ..ir.nodes import (Branch, FlatMap, FlatMapKV, Filter, KeyBy, Map, MapKV, Merge, Peek,
                        Repartition, StreamStreamJoin, StreamTableJoin)
from ..timeutil import Duration, to_millis
from .topology import KV, LEFT_RIGHT, Topology, _fn, _late

if TYPE_CHECKING:
    from .grouped import GroupedStream
    from .table import Table

__all__ = ["Stream"]

_FILTER_HINT = ("write lambda v: ..., or an expression (sd.col(...), sd.key() "
                "for the key)")
_GROUP_HINT = ("group by an expression (sd.key() is the key), or re-key with "
               "map_kv first and use group_by_key()")
_MAP_HINT = "use map_kv(lambda k, v: (k, ...)) for (key, value)"
_MAP_KV_HINT = ("map_kv(lambda k, v: (k, v)) returns a (key, value) pair; use map(lambda v: "
                "...) for the value alone")
_FLAT_MAP_HINT = "use flat_map_kv(lambda k, v: [(k, v), ...]) for (key, value)"
_KEY_BY_HINT = ("use map_kv(lambda k, v: (new_key, v)) to compute the key from "
                "(key, value)")


class Stream:
    """A stream of ``(key, value, timestamp)`` records (Kafka Streams' ``KStream``).

    Handles are cheap and immutable: they hold the topology, the node they read from and
    whether the key changed since the last repartition.
    """

    __slots__ = ("_topo", "_node", "_out", "_key_changed")

    def __init__(self, topo: Topology, node: str, out: str | None = None, key_changed: bool = False):
        self._topo = topo
        self._node = node
        self._out = out
        self._key_changed = key_changed

    @property
    def node_name(self) -> str:
        return self._node

    def _up(self, port: str = "in") -> tuple:
        return (self._node, port, self._out)

    def _then(self, cls, *, name, site, key_changing=False, **cfg) -> "Stream":
        node = self._topo._add(cls, [self._up()], name=name, site=site, **cfg)
        return Stream(self._topo, node.name, None, self._key_changed or key_changing)

    # ---- stateless ------------------------------------------------------------------------------
    def filter(self, pred: Any, *, name: str | None = None) -> "Stream":
        """Keep records whose value satisfies ``pred`` (a callable or expression).

        >>> import streamdsl as sd
        >>> t = sd.Topology("t"); t.stream("in").filter(sd.col("amount") > 10).to("out")
        """
        site = user_site()
        return self._then(Filter, name=name, site=site,
                          pred=_fn(pred, site, "filter predicate", hint=_FILTER_HINT))

    def filter_not(self, pred: Any, *, name: str | None = None) -> "Stream":
        """Keep records whose value does not satisfy ``pred``."""
        site = user_site()
        f = _fn(pred, site, "filter_not predicate", hint=_FILTER_HINT)
        if f.expr is not None:
            f = Fn(expr=Not(f.expr))
        else:
            inner = f.func
            f = Fn(func=lambda v, _p=inner: not _p(v))
        return self._then(Filter, name=name, site=site, pred=f)

    def map(self, fn: Any, *, name: str | None = None) -> "Stream":
        """Transform each value (the key is unchanged)."""
        site = user_site()
        return self._then(Map, name=name, site=site,
                          fn=_fn(fn, site, "map function", hint=_MAP_HINT))

    map_values = map

    def map_kv(self, fn: Callable[[Any, Any], tuple[Any, Any]], *, name: str | None = None) -> "Stream":
        """Transform ``(key, value) -> (key, value)``; may change the key."""
        site = user_site()
        return self._then(MapKV, name=name, site=site, key_changing=True,
                          fn=_fn(fn, site, "map_kv function", arity=2, passed=KV,
                                 hint=_MAP_KV_HINT))

    def flat_map(self, fn: Any, *, name: str | None = None) -> "Stream":
        """Turn each value into zero or more values (same key, same timestamp)."""
        site = user_site()
        return self._then(FlatMap, name=name, site=site,
                          fn=_fn(fn, site, "flat_map function", hint=_FLAT_MAP_HINT))

    def flat_map_kv(self, fn: Callable[[Any, Any], Any], *, name: str | None = None) -> "Stream":
        """Turn each ``(key, value)`` into zero or more ``(key, value)`` pairs."""
        site = user_site()
        return self._then(FlatMapKV, name=name, site=site, key_changing=True,
                          fn=_fn(fn, site, "flat_map_kv function", arity=2, passed=KV))

    def key_by(self, key: Any, *, name: str | None = None) -> "Stream":
        """Re-key: the new key is ``key`` (field name, expression or callable on the value)."""
        site = user_site()
        return self._then(KeyBy, name=name, site=site, key_changing=True,
                          fn=_fn(key, site, "key_by key", hint=_KEY_BY_HINT))

    select_key = key_by

    def peek(self, fn: Callable[[Any, Any], Any], *, name: str | None = None) -> "Stream":
        """Call ``fn(key, value)`` for each record (a side effect); records pass unchanged."""
        site = user_site()
        return self._then(Peek, name=name, site=site,
                          fn=_fn(fn, site, "peek function", arity=2, passed=KV))

    def merge(self, *others: "Stream", name: str | None = None) -> "Stream":
        """Union with other streams of the same topology."""
        site = user_site()
        if not others:
            raise TopologyError("merge() needs at least one other stream", site=site)
        for o in others:
            self._topo._check_same(o, site)
            if not isinstance(o, Stream):
                raise TopologyError("merge() takes streams (call to_stream() on a table first)",
                                    site=site)
        ins = [(s._node, f"in{i}", s._out) for i, s in enumerate((self, *others))]
        node = self._topo._add(Merge, ins, name=name, site=site)
        return Stream(self._topo, node.name, None,
                      any(s._key_changed for s in (self, *others)))

    def branch(self, predicates: dict[str, Any] | None = None, /, *, otherwise: str | None = None,
               name: str | None = None, **kw_predicates: Any) -> dict[str, "Stream"]:
        """Split by predicates: each record goes to the first branch whose predicate holds.

        Records that match none are dropped, or kept in the ``otherwise`` branch if named.

        >>> import streamdsl as sd
        >>> t = sd.Topology("t")
        >>> b = t.stream("in").branch(big=sd.col("n") > 10, otherwise="small")
        >>> sorted(b)
        ['big', 'small']
        """
        site = user_site()
        preds = dict(predicates or {})
        preds.update(kw_predicates)
        branches = tuple((n, _fn(p, site, f"branch {n!r} predicate", hint=_FILTER_HINT))
                         for n, p in preds.items())
        node = self._topo._add(Branch, [self._up()], name=name, site=site, branches=branches,
                               otherwise=otherwise)
        return {port: Stream(self._topo, node.name, port, self._key_changed)
                for port in node.out_ports}

    # ---- grouping -------------------------------------------------------------------------------
    def group_by(self, key: Any, *, name: str | None = None) -> "GroupedStream":
        """Re-key by ``key`` and group (a repartition follows; a None key drops the record)."""
        from .grouped import GroupedStream
        site = user_site()
        kb = self._topo._add(KeyBy, [self._up()], name=name, site=site,
                             fn=_fn(key, site, "group_by key", hint=_GROUP_HINT),
                             drop_null=True)
        rp = self._topo._add(Repartition, [(kb.name, "in")], name=None, site=site)
        return GroupedStream(self._topo, rp.name, site)

    def group_by_key(self, *, name: str | None = None) -> "GroupedStream":
        """Group by the current key (repartitions only if an earlier step changed the key)."""
        from .grouped import GroupedStream
        site = user_site()
        if self._key_changed:
            rp = self._topo._add(Repartition, [self._up()], name=name, site=site)
            return GroupedStream(self._topo, rp.name, site)
        return GroupedStream(self._topo, self._node, site, self._out)

    def _repartitioned(self, site: str | None) -> tuple:
        if self._key_changed:
            rp = self._topo._add(Repartition, [self._up()], name=None, site=site)
            return (rp.name, "left", None)
        return (self._node, "left", self._out)

    # ---- joins -----------------------------------------------------------------------------------
    def join(self, other: "Stream | Table", joiner: Any = None, *,
             within: Duration | tuple[Duration, Duration] | None = None, grace: Duration = 0,
             eager: bool = False, late: str | None = None, name: str | None = None) -> "Stream":
        """Inner join with a stream (``within=`` required) or a table (lookup by key).

        ``within``: a duration (records match iff their timestamps differ by at most it) or a
        ``(before, after)`` pair (a left record at ``t`` matches right records in
        ``[t - before, t + after]``). ``eager``: see ``left_join``. ``late``: a stream-stream
        join's late records, ``"drop"`` or ``"dead-letter"`` (default: the topology's).
        """
        return self._join("inner", other, joiner, within, grace, name, user_site(), eager, late)

    def left_join(self, other: "Stream | Table", joiner: Any = None, *,
                  within: Duration | tuple[Duration, Duration] | None = None,
                  grace: Duration = 0, eager: bool = False, late: str | None = None,
                  name: str | None = None) -> "Stream":
        """Left join: every left record appears, with ``None`` for a missing partner.

        A stream-stream left join holds an unmatched record back until its window and grace
        have passed; ``eager=True`` emits it with ``None`` at once when it finds no partner on
        arrival, and again with each partner that comes later (Kafka Streams' behaviour before
        KIP-633, and ksqlDB's for joins without GRACE PERIOD).
        """
        return self._join("left", other, joiner, within, grace, name, user_site(), eager, late)

    def outer_join(self, other: "Stream", joiner: Any = None, *,
                   within: Duration | tuple[Duration, Duration] | None = None,
                   grace: Duration = 0, eager: bool = False, late: str | None = None,
                   name: str | None = None) -> "Stream":
        """Outer stream-stream join: unmatched records of both sides appear with ``None``."""
        return self._join("outer", other, joiner, within, grace, name, user_site(), eager, late)

    def _join(self, how, other, joiner, within, grace, name, site, eager=False,
              late=None) -> "Stream":
        from .table import Table
        self._topo._check_same(other, site)
        jfn = (_fn(joiner, site, "joiner", arity=2, passed=LEFT_RIGHT)
               if joiner is not None else None)
        left = self._repartitioned(site)
        if isinstance(other, Table):
            if other._windowed:
                raise TopologyError(
                    "cannot join a stream to a windowed table (its key includes the window); "
                    "call to_stream() on it and join streams with within= instead", site=site)
            if within is not None or eager or late is not None:
                raise TopologyError("a stream-table join takes no within=, eager= or late= (the "
                                    "table's current row is looked up)", site=site)
            if how == "outer":
                raise TopologyError("a stream-table join is inner or left; outer_join needs two "
                                    "streams or two tables", site=site)
            node = self._topo._add(StreamTableJoin, [left, (other._node, "right", None)],
                                   name=name, site=site, how=how, joiner=jfn)
            return Stream(self._topo, node.name)
        if not isinstance(other, Stream):
            raise TopologyError(f"cannot join a stream with {type(other).__name__}", site=site)
        if within is None:
            raise TopologyError(
                f"a stream-stream {how} join needs a join window: pass within= (e.g. "
                "within=sd.minutes(5))", site=site)
        try:
            if isinstance(within, tuple):
                if len(within) != 2:
                    raise ValueError("within= takes a duration or a (before, after) pair")
                w = to_millis(within[0], what="within (before)")
                after: int | None = to_millis(within[1], what="within (after)")
            else:
                w, after = to_millis(within, what="within"), None
            g = to_millis(grace, what="grace")
        except (TypeError, ValueError) as e:
            raise TopologyError(str(e), site=site) from None
        right = other._repartitioned(site)
        right = (right[0], "right", right[2])
        node = self._topo._add(StreamStreamJoin, [left, right], name=name, site=site, how=how,
                               within=w, grace=g, joiner=jfn, after=after, eager=bool(eager),
                               late=_late(self._topo, late, site))
        return Stream(self._topo, node.name)

    # ---- sink --------------------------------------------------------------------------------------
    def to(self, name: str, *, connector: dict | None = None,
           columns: list[str] | None = None) -> None:
        """Write the stream to the sink called ``name``.

        ``columns``: the value's fields, in order: the columns of a CSV output (else the
        first non-null value's fields, sorted).
        """
        self._topo._add_sink(name, self._up(), user_site(), connector, columns=columns)

    # ---- helpful errors for stateful calls on an ungrouped stream ------------------------------
    def _needs_group(self, what: str) -> None:
        raise TopologyError(
            f"{what}() needs a grouped stream: call group_by(...) or group_by_key() first",
            site=user_site())

    def count(self, *a, **k):
        self._needs_group("count")

    def reduce(self, *a, **k):
        self._needs_group("reduce")

    def aggregate(self, *a, **k):
        self._needs_group("aggregate")

    def agg(self, *a, **k):
        self._needs_group("agg")

    def window(self, *a, **k):
        self._needs_group("window")

    def __repr__(self) -> str:
        return f"<Stream {self._node}{'.' + self._out if self._out else ''}>"


_ = Expr  # re-exported type for hints
