"""``Table``: a changelog handle (Kafka Streams' ``KTable``)."""

from __future__ import annotations

from typing import Any

from ..callsite import user_site
from ..errors import TopologyError
from ..ir.nodes import TableFilter, TableMap, TableTableJoin, ToStream
from .grouped import GroupedTable
from .stream import Stream
from .topology import LEFT_RIGHT, Topology, _fn

__all__ = ["Table"]


class Table:
    """Last value per key; a ``None`` value is a tombstone (delete)."""

    __slots__ = ("_topo", "_node", "_windowed")

    def __init__(self, topo: Topology, node: str, *, windowed: bool = False):
        self._topo = topo
        self._node = node
        self._windowed = windowed

    @property
    def node_name(self) -> str:
        return self._node

    def _then(self, cls, *, name, site, **cfg) -> "Table":
        node = self._topo._add(cls, [(self._node, "in", None)], name=name, site=site, **cfg)
        return Table(self._topo, node.name, windowed=self._windowed)

    def filter(self, pred: Any, *, name: str | None = None) -> "Table":
        """Keep rows satisfying ``pred``; a row that fails is forwarded as a tombstone."""
        site = user_site()
        return self._then(TableFilter, name=name, site=site,
                          pred=_fn(pred, site, "filter predicate"))

    def map(self, fn: Any, *, window_columns: tuple[str, str] | None = None,
            name: str | None = None) -> "Table":
        """Map values (tombstones pass through).

        ``window_columns=(start, end)``, on a windowed table: ``fn`` sees a dict value extended
        with the row's window bounds (ms) under these two names, so that they can be kept in
        the value (SQL's ``WINDOWSTART`` and ``WINDOWEND``) and used after ``to_stream()``.

        >>> import streamdsl as sd
        >>> from streamdsl.testing import TestDriver
        >>> topo = sd.Topology("per-window")
        >>> (topo.stream("in", timestamp="ts").group_by_key()
        ...     .window(sd.tumbling(seconds=10)).agg(n=sd.count())
        ...     .map(lambda v: {"n": v["n"], "start": v["start"]}, window_columns=("start", "end"))
        ...     .to_stream().to("out"))
        >>> with TestDriver(topo) as d:
        ...     d.send("in", {"ts": 12_000}, key="k")
        ...     [r.value for r in d.output("out")]
        [{'n': 1, 'start': 10000}]
        """
        site = user_site()
        if window_columns is not None:
            if not self._windowed:
                raise TopologyError("window_columns= needs a windowed table (an aggregation "
                                    "after .window(...))", site=site)
            if (not isinstance(window_columns, tuple) or len(window_columns) != 2
                    or not all(isinstance(c, str) and c for c in window_columns)):
                raise TopologyError("window_columns= takes a (start, end) pair of field names",
                                    site=site)
        return self._then(TableMap, name=name, site=site, fn=_fn(fn, site, "map function"),
                          window_columns=window_columns)

    map_values = map

    def to_stream(self, *, name: str | None = None) -> Stream:
        """The table's changelog as a stream."""
        node = self._topo._add(ToStream, [(self._node, "in", None)], name=name, site=user_site())
        return Stream(self._topo, node.name)

    def to(self, name: str, *, connector: dict | None = None,
           columns: list[str] | None = None) -> None:
        """Write the changelog (tombstones included) to the sink ``name`` (``columns``: as
        ``Stream.to``)."""
        self._topo._add_sink(name, (self._node, "in", None), user_site(), connector,
                             columns=columns)

    def group_by(self, key: Any) -> GroupedTable:
        """Re-group the table's rows by ``key`` for count/agg/reduce/aggregate."""
        site = user_site()
        if self._windowed:
            raise TopologyError("cannot re-group a windowed table", site=site)
        return GroupedTable(self._topo, self._node, key, site)

    def join(self, other: "Table", joiner: Any = None, *, name: str | None = None) -> "Table":
        """Inner table-table join on key."""
        return self._join("inner", other, joiner, name, user_site())

    def left_join(self, other: "Table", joiner: Any = None, *, name: str | None = None) -> "Table":
        return self._join("left", other, joiner, name, user_site())

    def outer_join(self, other: "Table", joiner: Any = None, *, name: str | None = None) -> "Table":
        return self._join("outer", other, joiner, name, user_site())

    def _join(self, how, other, joiner, name, site) -> "Table":
        self._topo._check_same(other, site)
        if isinstance(other, Stream):
            raise TopologyError("a table cannot join a stream; join the stream to the table "
                                "instead (stream.join(table))", site=site)
        if not isinstance(other, Table):
            raise TopologyError(f"cannot join a table with {type(other).__name__}", site=site)
        if self._windowed != other._windowed:
            raise TopologyError("cannot join a windowed table with a non-windowed one", site=site)
        jfn = (_fn(joiner, site, "joiner", arity=2, passed=LEFT_RIGHT)
               if joiner is not None else None)
        node = self._topo._add(TableTableJoin, [(self._node, "left", None), (other._node, "right", None)],
                               name=name, site=site, how=how, joiner=jfn)
        return Table(self._topo, node.name, windowed=self._windowed)

    def __repr__(self) -> str:
        return f"<Table {self._node}>"
