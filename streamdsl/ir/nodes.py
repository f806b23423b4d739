"""IR nodes: one frozen dataclass per logical operator.

Nodes hold configuration only; edges (with port names) live in the plan's networkx graph.
Class-level flags tell the optimizer and the backends what a node does:

* ``stateful``: keeps state per key (needs records grouped by key, ordered).
* ``key_changing``: output key may differ from the input key (a downstream stateful node
  needs a repartition).
* ``output``: ``"stream"`` or ``"table"`` (a changelog, ``None`` value = tombstone).
* ``stateless``: a per-record function that can be fused.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..windows import SessionWindow, Window
from .aggregators import Aggregator
from .fn import Fn

__all__ = [
    "Node", "Source", "Sink", "Filter", "Map", "MapKV", "FlatMap", "FlatMapKV", "KeyBy", "Peek",
    "Merge", "Branch", "Repartition", "Aggregate", "TableFilter", "TableMap", "ToStream",
    "TableGroupBy", "TableAggregate", "StreamStreamJoin", "StreamTableJoin", "TableTableJoin", "Fused",
    "NODE_KINDS", "JOIN_HOWS", "EMIT_MODES", "LATE_MODES", "COLUMN_TYPES",
]

JOIN_HOWS = ("inner", "left", "outer")
EMIT_MODES = ("changes", "final")
#: What a windowed operator does with a late record: drop it (counted in ``late``, Kafka
#: Streams' behaviour) or also write it to the dead-letter output with its window and the
#: stream time (docs/semantics.md, "Late records").
LATE_MODES = ("drop", "dead-letter")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Node:
    """Base of every IR node. ``name`` is unique in a plan; ``site`` is the user's file:line."""

    kind: ClassVar[str] = "node"
    stateful: ClassVar[bool] = False
    stateless: ClassVar[bool] = False
    key_changing: ClassVar[bool] = False
    output: ClassVar[str] = "stream"
    in_ports: ClassVar[tuple[str, ...]] = ("in",)

    name: str
    site: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{self.kind} node needs a non-empty name")

    def describe(self) -> str:
        """One-line description of the configuration, for graph/explain output."""
        return ""

    def replace(self, **changes: Any) -> "Node":
        vals = {f.name: getattr(self, f.name) for f in fields(self)}
        vals.update(changes)
        return type(self)(**vals)

    def config_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("name", "site"):
                continue
            v = getattr(self, f.name)
            if f.name in _NEWER_DEFAULTS and v == _NEWER_DEFAULTS[f.name]:  # older plans equal
                continue
            out[f.name] = _to_jsonable(v)
        return out


#: Fields added after plans were first serialized: left out at their default value.
_NEWER_DEFAULTS: dict[str, Any] = {"late": "drop", "schema": None, "columns": None}


def _to_jsonable(v: Any) -> Any:
    if hasattr(v, "to_dict"):
        return v.to_dict()
    if isinstance(v, tuple):
        return [_to_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_jsonable(x) for k, x in v.items()}
    return v


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Source(Node):
    """A named input. ``table=True`` reads it as a changelog (upserts, tombstones).

    ``schema``: the value's field names when the topology declares them (``streamdsl
    validate`` warns about an expression reading a field none has); None: not declared.
    """

    kind: ClassVar[str] = "Source"
    in_ports: ClassVar[tuple[str, ...]] = ()
    topic: str
    table: bool = False
    key: Fn | None = None
    timestamp: Fn | None = None
    connector: dict | None = None
    schema: tuple[str, ...] | None = None
    #: declared value columns with a type (``("zip", "str")``; types: str, int, float, bool;
    #: from ``schema={"zip": str}``): how a CSV input reads them
    columns: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.schema is not None and not all(isinstance(f, str) and f for f in self.schema):
            raise ValueError(f"schema= takes field names, got {self.schema!r}")
        _check_columns(self.columns, typed=True)

    @property
    def output(self) -> str:  # type: ignore[override]
        return "table" if self.table else "stream"

    def describe(self) -> str:
        parts = [("table " if self.table else "stream ") + repr(self.topic)]
        if self.key is not None:
            parts.append(f"key={self.key.describe()}")
        if self.timestamp is not None:
            parts.append(f"timestamp={self.timestamp.describe()}")
        if self.connector:
            parts.append(f"connector={self.connector.get('type')}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Sink(Node):
    """A named output."""

    kind: ClassVar[str] = "Sink"
    topic: str
    connector: dict | None = None
    #: declared value columns: the columns of a CSV output, in this order
    columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        _check_columns(self.columns, typed=False)

    def describe(self) -> str:
        return f"to {self.topic!r}"


#: Types a declared column may have (``Source.columns``).
COLUMN_TYPES = ("str", "int", "float", "bool")


def _check_columns(columns: Any, *, typed: bool) -> None:
    if columns is None:
        return
    if not isinstance(columns, tuple) or not columns:
        raise ValueError("columns must be a non-empty tuple")
    names = [c[0] if typed else c for c in columns]
    for c in columns:
        name = c[0] if typed else c
        if not isinstance(name, str) or not name:
            raise ValueError(f"a column name must be a non-empty string, got {name!r}")
        if typed and c[1] not in COLUMN_TYPES:
            raise ValueError(f"column {name!r}: type must be one of {', '.join(COLUMN_TYPES)}, "
                             f"got {c[1]!r}")
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:
        raise ValueError(f"column {dup!r} is declared twice")




@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Filter(Node):
    kind: ClassVar[str] = "Filter"
    stateless: ClassVar[bool] = True
    pred: Fn

    def describe(self) -> str:
        return self.pred.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Map(Node):
    """value -> value."""

    kind: ClassVar[str] = "Map"
    stateless: ClassVar[bool] = True
    fn: Fn

    def describe(self) -> str:
        return self.fn.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MapKV(Node):
    """(key, value) -> (key, value)."""

    kind: ClassVar[str] = "MapKV"
    stateless: ClassVar[bool] = True
    key_changing: ClassVar[bool] = True
    fn: Fn

    def describe(self) -> str:
        return self.fn.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FlatMap(Node):
    """value -> iterable of values."""

    kind: ClassVar[str] = "FlatMap"
    stateless: ClassVar[bool] = True
    fn: Fn

    def describe(self) -> str:
        return self.fn.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FlatMapKV(Node):
    """(key, value) -> iterable of (key, value)."""

    kind: ClassVar[str] = "FlatMapKV"
    stateless: ClassVar[bool] = True
    key_changing: ClassVar[bool] = True
    fn: Fn

    def describe(self) -> str:
        return self.fn.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class KeyBy(Node):
    """Re-key: new key = fn(value) (or fn(key, value) for arity 2).

    ``drop_null``: a ``None`` key drops the record (``group_by`` semantics).
    """

    kind: ClassVar[str] = "KeyBy"
    stateless: ClassVar[bool] = True
    key_changing: ClassVar[bool] = True
    fn: Fn
    drop_null: bool = False

    def describe(self) -> str:
        return self.fn.describe() + (" (null key drops)" if self.drop_null else "")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Peek(Node):
    """Call fn(key, value) for its side effect; records pass unchanged."""

    kind: ClassVar[str] = "Peek"
    stateless: ClassVar[bool] = True
    fn: Fn

    def describe(self) -> str:
        return self.fn.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Merge(Node):
    """Union of several streams (inputs on ports ``in0``, ``in1`` ...)."""

    kind: ClassVar[str] = "Merge"
    in_ports: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Branch(Node):
    """Route each record to the first branch whose predicate holds (out ports = names)."""

    kind: ClassVar[str] = "Branch"
    branches: tuple[tuple[str, Fn], ...]
    otherwise: str | None = None

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        names = [n for n, _ in self.branches] + ([self.otherwise] if self.otherwise else [])
        if len(set(names)) != len(names):
            raise ValueError(f"branch names must be unique: {names}")
        if not names:
            raise ValueError("branch() needs at least one predicate")

    @property
    def out_ports(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.branches) + ((self.otherwise,) if self.otherwise else ())

    def describe(self) -> str:
        s = ", ".join(f"{n}: {f.describe()}" for n, f in self.branches)
        return s + (f", otherwise: {self.otherwise}" if self.otherwise else "")

    def config_dict(self) -> dict:
        return {"branches": [[n, f.to_dict()] for n, f in self.branches], "otherwise": self.otherwise}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Repartition(Node):
    """Records are redistributed by their (new) key before a stateful operator.

    With one partition per source this changes no record; on a cluster it is a shuffle.
    """

    kind: ClassVar[str] = "Repartition"

    def describe(self) -> str:
        return "by key"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Aggregate(Node):
    """Grouped (optionally windowed) aggregation of a stream; outputs a table."""

    kind: ClassVar[str] = "Aggregate"
    stateful: ClassVar[bool] = True
    output: ClassVar[str] = "table"
    aggregator: Aggregator
    window: Window | None = None
    emit: str = "changes"
    #: a windowed aggregation's late records: ``LATE_MODES``
    late: str = "drop"

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.emit not in EMIT_MODES:
            raise ValueError(f"emit must be one of {EMIT_MODES}, got {self.emit!r}")
        if self.late not in LATE_MODES:
            raise ValueError(f"late must be one of {LATE_MODES}, got {self.late!r}")
        if isinstance(self.window, SessionWindow) and self.aggregator.kind == "aggregate" \
                and self.aggregator.merge is None:
            raise ValueError("aggregate() over session windows needs merge=(agg1, agg2) -> agg")

    @property
    def windowed(self) -> bool:
        return self.window is not None

    def describe(self) -> str:
        s = self.aggregator.describe()
        if self.window is not None:
            s += f" over {self.window.describe()}, emit {self.emit}"
            if self.late != "drop":
                s += f", late records to the {self.late}"
        return s


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TableGroupBy(Node):
    """``table.group_by(key)``: each row update becomes two changes keyed by the new key, the
    old row to subtract (keyed by its group) then the new row to add (Kafka Streams'
    ``KTableRepartitionMap``); a ``Repartition`` then a ``TableAggregate`` follow."""

    kind: ClassVar[str] = "TableGroupBy"
    stateful: ClassVar[bool] = True
    key_changing: ClassVar[bool] = True
    group_key: Fn

    def describe(self) -> str:
        return f"group by {self.group_key.describe()}"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TableAggregate(Node):
    """``table.group_by(key).count()/agg(...)``: the aggregate per new key of the changes a
    ``TableGroupBy`` made, subtracting old rows and adding new ones."""

    kind: ClassVar[str] = "TableAggregate"
    stateful: ClassVar[bool] = True
    output: ClassVar[str] = "table"
    aggregator: Aggregator

    def describe(self) -> str:
        return self.aggregator.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TableFilter(Node):
    """A row that fails the predicate is forwarded as a tombstone."""

    kind: ClassVar[str] = "TableFilter"
    output: ClassVar[str] = "table"
    pred: Fn

    def describe(self) -> str:
        return self.pred.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TableMap(Node):
    """Map a table's values; tombstones pass through.

    ``window_columns=(start, end)``: ``fn`` sees a dict value extended with the record's window
    bounds under these names (SQL ``WINDOWSTART``/``WINDOWEND`` over a windowed table).
    """

    kind: ClassVar[str] = "TableMap"
    output: ClassVar[str] = "table"
    fn: Fn
    window_columns: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.window_columns is not None and (
                len(self.window_columns) != 2 or not all(isinstance(c, str) for c in self.window_columns)):
            raise ValueError("window_columns is a (start, end) pair of field names")

    def describe(self) -> str:
        if self.window_columns is not None:
            return f"{self.fn.describe()} (window as {', '.join(self.window_columns)})"
        return self.fn.describe()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ToStream(Node):
    """A table's changelog as a stream (tombstones become records with a None value)."""

    kind: ClassVar[str] = "ToStream"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StreamStreamJoin(Node):
    """Windowed join of two streams: a left record at ``t`` matches right records in
    ``[t - within, t + after]`` (``after`` None: ``within``, so ``|t_left - t_right| <= within``).

    ``eager``: a left/outer record that finds no partner on arrival is emitted at once with a
    ``None`` partner (Kafka Streams' ``JoinWindows.of`` before KIP-633; ksqlDB without GRACE
    PERIOD) instead of being held back until its window closes.
    """

    kind: ClassVar[str] = "StreamStreamJoin"
    stateful: ClassVar[bool] = True
    in_ports: ClassVar[tuple[str, ...]] = ("left", "right")
    how: str
    within: int
    grace: int = 0
    joiner: Fn | None = None
    after: int | None = None
    eager: bool = False
    #: late records: ``LATE_MODES``
    late: str = "drop"

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.how not in JOIN_HOWS:
            raise ValueError(f"join how must be one of {JOIN_HOWS}")
        if self.late not in LATE_MODES:
            raise ValueError(f"late must be one of {LATE_MODES}, got {self.late!r}")
        for what, v in (("within", self.within), ("after", self.after), ("grace", self.grace)):
            if v is not None and v < 0:
                raise ValueError(f"{what} must not be negative, got {v}")

    def describe(self) -> str:
        from ..windows import _fmt
        window = (_fmt(self.within) if self.after is None or self.after == self.within
                  else f"({_fmt(self.within)} before, {_fmt(self.after)} after)")
        s = f"{self.how} within {window}, grace {_fmt(self.grace)}"
        if self.eager:
            s += ", unmatched emitted eagerly"
        if self.late != "drop":
            s += f", late records to the {self.late}"
        return s + (f", joiner {self.joiner.describe()}" if self.joiner else "")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StreamTableJoin(Node):
    """Each stream record looks up the table's current row for its key."""

    kind: ClassVar[str] = "StreamTableJoin"
    stateful: ClassVar[bool] = True
    in_ports: ClassVar[tuple[str, ...]] = ("left", "right")
    how: str
    joiner: Fn | None = None

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.how not in ("inner", "left"):
            raise ValueError("a stream-table join is inner or left")

    def describe(self) -> str:
        return self.how + (f", joiner {self.joiner.describe()}" if self.joiner else "")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TableTableJoin(Node):
    """Join of two tables on their keys; the result is a table."""

    kind: ClassVar[str] = "TableTableJoin"
    stateful: ClassVar[bool] = True
    output: ClassVar[str] = "table"
    in_ports: ClassVar[tuple[str, ...]] = ("left", "right")
    how: str
    joiner: Fn | None = None

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.how not in JOIN_HOWS:
            raise ValueError(f"join how must be one of {JOIN_HOWS}")

    def describe(self) -> str:
        return self.how + (f", joiner {self.joiner.describe()}" if self.joiner else "")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Fused(Node):
    """A chain of stateless nodes run as one stage (made by the optimizer)."""

    kind: ClassVar[str] = "Fused"
    stateless: ClassVar[bool] = True
    stages: tuple[Node, ...]

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if not self.stages or not all(s.stateless and not isinstance(s, Fused) for s in self.stages):
            raise ValueError("Fused holds a non-empty chain of stateless, unfused nodes")

    @property
    def key_changing(self) -> bool:  # type: ignore[override]
        return any(s.key_changing for s in self.stages)

    def describe(self) -> str:
        return " -> ".join(f"{s.kind}({s.name})" for s in self.stages)

    def config_dict(self) -> dict:
        return {"stages": [{"kind": s.kind, "name": s.name, "site": s.site, **s.config_dict()}
                           for s in self.stages]}


NODE_KINDS: dict[str, type[Node]] = {
    c.kind: c for c in (Source, Sink, Filter, Map, MapKV, FlatMap, FlatMapKV, KeyBy, Peek, Merge,
                        Branch, Repartition, Aggregate, TableGroupBy, TableAggregate, TableFilter,
                        TableMap,
                        ToStream, StreamStreamJoin, StreamTableJoin, TableTableJoin, Fused)
}


def node_output(node: Node, input_outputs: list[str]) -> str:
    """Whether a node's output is a stream or a table, given its inputs'."""
    if isinstance(node, Source):
        return node.output
    if isinstance(node, (Aggregate, TableAggregate, TableFilter, TableMap, TableTableJoin)):
        return "table"
    if isinstance(node, Sink):
        return input_outputs[0] if input_outputs else "stream"
    return "stream"

