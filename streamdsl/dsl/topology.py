"""``Topology``: the builder users start from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..callsite import user_site
from ..errors import TopologyError
from ..ir.fn import Fn, as_fn
from ..ir.nodes import LATE_MODES, Node, Sink, Source
from ..ir.plan import Plan

if TYPE_CHECKING:
    from .stream import Stream
    from .table import Table

__all__ = ["Topology", "ON_ERROR_MODES"]

ON_ERROR_MODES = ("fail", "dead-letter")
_VALUE_HINT = "the key and timestamp of a source are computed from the value: lambda v: ..."


class Topology:
    """A named dataflow being declared.

    Args:
        name: the topology (application) name.
        on_error: ``"fail"`` (default) stops a run at the first bad record, naming it;
            ``"dead-letter"`` sends bad records, with their reason, to the dead-letter output.
        late: what windowed aggregations and stream-stream joins do with a late record by
            default: ``"drop"`` (counted in the ``late`` metric, as Kafka Streams does) or
            ``"dead-letter"`` (also written to the dead-letter output with its window and the
            stream time); ``window(..., late=)`` and ``join(..., late=)`` override it.
        partitions: partitions of every source read from files, in-memory lists and
            ``TestDriver`` (default 1; a Kafka topic has its own): each sub-topology runs as
            that many tasks, each with its own state and stream time (docs/semantics.md,
            "Partitions and tasks"). A run, ``TestDriver`` or ``streamdsl run --partitions``
            can override it.

    >>> import streamdsl as sd
    >>> topo = sd.Topology("demo")
    >>> topo.stream("in").filter(sd.col("n") > 1).to("out")
    >>> [n.kind for n in topo.plan().topological()]
    ['Source', 'Filter', 'Sink']
    """

    def __init__(self, name: str, *, on_error: str = "fail", partitions: int = 1,
                 late: str = "drop"):
        if not isinstance(name, str) or not name:
            raise TopologyError("a topology needs a non-empty name", site=user_site())
        if on_error not in ON_ERROR_MODES:
            raise TopologyError(f"on_error must be one of {ON_ERROR_MODES}, got {on_error!r}",
                                site=user_site())
        if late not in LATE_MODES:
            raise TopologyError(f"late must be one of {LATE_MODES}, got {late!r}",
                                site=user_site())
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise TopologyError(f"partitions must be a positive int, got {partitions!r}",
                                site=user_site())
        self.name = name
        self.on_error = on_error
        self.late = late
        self._plan = Plan(name, on_error=on_error, partitions=partitions)

    # ---- sources --------------------------------------------------------------------------
    def stream(self, name: str, key: Any = None, timestamp: Any = None, *,
               connector: dict | None = None, schema: Any = None) -> "Stream":
        """Declare an input stream called ``name``.

        Args:
            name: the source name (a topic; ``--input NAME=PATH`` binds it to data).
            key: field name, expression or callable on the value giving the record key;
                None keeps the key the record was read with.
            timestamp: field name, expression or callable giving event time (int ms or
                datetime); None keeps the record's own timestamp.
            connector: optional connector declaration (``{"type": "jsonl", "path": ...}``).
            schema: optional field names of the value (a list, or a dict whose keys are the
                names): ``streamdsl validate`` then warns about any expression reading a
                field that no declared schema has (a typo would drop every record). A dict's
                values are the fields' types (``{"zip": str, "n": int}``; ``str``, ``int``,
                ``float``, ``bool`` or their names, None for any): a CSV input reads those
                cells as those types (``"01234"`` stays a string where declared ``str``; a
                cell that is not of its type makes the row a bad record).
        """
        from .stream import Stream
        node = self._source(name, key, timestamp, connector, table=False, schema=schema)
        return Stream(self, node.name)

    def table(self, name: str, key: Any = None, timestamp: Any = None, *,
              connector: dict | None = None, schema: Any = None) -> "Table":
        """Declare an input read as a table (a changelog: last value per key, None deletes);
        the arguments are ``stream``'s."""
        from .table import Table
        node = self._source(name, key, timestamp, connector, table=True, schema=schema)
        return Table(self, node.name)

    def _source(self, topic: str, key: Any, timestamp: Any, connector: dict | None, *,
                table: bool, schema: Any = None) -> Source:
        site = user_site()
        if not isinstance(topic, str) or not topic:
            raise TopologyError("a source needs a non-empty name", site=site)
        for s in self._plan.sources():
            if s.topic == topic and s.table != table:
                raise TopologyError(
                    f"source {topic!r} is already declared as a {'table' if s.table else 'stream'} "
                    f"at {s.site}; declare it once", site=site)
        if topic in self._plan.sink_topics():
            raise TopologyError(f"{topic!r} is already a sink of this topology; a topology cannot "
                                "read its own output", site=site)
        name = f"source-{topic}"
        if name in self._plan:
            name = self._plan.fresh_name(name)
        try:
            kfn = as_fn(key, what="key", hint=_VALUE_HINT) if key is not None else None
            tfn = (as_fn(timestamp, what="timestamp", hint=_VALUE_HINT)
                   if timestamp is not None else None)
        except TypeError as e:
            raise TopologyError(str(e), site=site) from None
        try:
            node = Source(name=name, site=site, topic=topic, table=table, key=kfn, timestamp=tfn,
                          connector=connector, schema=_schema(schema, site),
                          columns=_typed_columns(schema, site))
        except (TypeError, ValueError) as e:
            raise TopologyError(str(e), site=site) from None
        self._plan.add(node)
        return node

    # ---- internals used by the handles ------------------------------------------------------
    def _add(self, node_cls: type[Node], inputs: list[tuple], *, name: str | None, site: str | None,
             **config: Any) -> Node:
        if name is None:
            name = self._plan.fresh_name(node_cls.kind)
        elif not isinstance(name, str) or not name:
            raise TopologyError("name= must be a non-empty string", site=site)
        try:
            node = node_cls(name=name, site=site, **config)
        except (ValueError, TypeError) as e:
            raise TopologyError(str(e), site=site, node=name) from None
        self._plan.add(node, inputs)
        return node

    def _add_sink(self, topic: str, upstream: tuple, site: str | None, connector: dict | None = None,
                  name: str | None = None, columns: Any = None) -> None:
        if not isinstance(topic, str) or not topic:
            raise TopologyError("to() needs a sink name", site=site)
        for s in self._plan.sinks():
            if s.topic == topic:
                raise TopologyError(
                    f"sink {topic!r} is already written at {s.site}; each sink name is written once "
                    "(merge() the streams first)", site=site)
        if topic in self._plan.source_topics():
            raise TopologyError(f"{topic!r} is a source of this topology; a topology cannot write "
                                "to its own input", site=site)
        if columns is not None:
            if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                raise TopologyError(f"columns= takes a list of column names, got {columns!r}",
                                    site=site)
            columns = tuple(columns)
        self._add(Sink, [upstream], name=name or f"sink-{topic}", site=site, topic=topic,
                  connector=connector, columns=columns)

    def _check_same(self, other: Any, site: str | None) -> None:
        if getattr(other, "_topo", None) is not self:
            raise TopologyError("cannot combine streams of different topologies", site=site)

    # ---- public views -------------------------------------------------------------------------
    def plan(self) -> Plan:
        """A validated copy of the plan (the IR) built so far."""
        from ..ir.validate import validate
        p = self._plan.copy()
        validate(p)
        return p

    @property
    def sources(self) -> list[str]:
        return self._plan.source_topics()

    @property
    def sinks(self) -> list[str]:
        return self._plan.sink_topics()

    def describe(self) -> str:
        """The plan as indented text."""
        from ..render import render_text
        return render_text(self.plan())

    def __repr__(self) -> str:
        return f"<Topology {self.name!r}: sources={self.sources} sinks={self.sinks}>"


#: What streamdsl passes to a user function of two arguments, by role (``_fn(passed=)``).
KV = "(key, value)"
AGG_VALUE = "(aggregate, value)"
AGG_AGG = "(aggregate, aggregate)"
LEFT_RIGHT = "(left value, right value)"


def _schema(schema: Any, site: str | None) -> tuple[str, ...] | None:
    """``schema=``: field names (a list or a dict's keys), as a tuple."""
    if schema is None:
        return None
    names = list(schema.keys()) if isinstance(schema, dict) else schema
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise TopologyError("schema= takes the value's field names: a list of strings, or a "
                            f"dict keyed by them, got {schema!r}", site=site)
    return tuple(names)


def _late(topo: Topology, late: str | None, site: str | None) -> str:
    """A ``late=`` argument (None: the topology's default)."""
    if late is None:
        return topo.late
    if late not in LATE_MODES:
        raise TopologyError(f"late must be one of {LATE_MODES}, got {late!r}", site=site)
    return late


def _fn(x: Any, site: str | None, what: str, arity: int = 1, *, hint: str | None = None,
        passed: str | None = None) -> Fn:
    """``as_fn`` at a DSL call: a bad argument (or a callable of the wrong arity) is a
    ``TopologyError`` at the user's ``site``."""
    try:
        return as_fn(x, arity=arity, what=what, hint=hint, passed=passed)
    except TypeError as e:
        raise TopologyError(str(e), site=site) from None


_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


def _typed_columns(schema: Any, site: str | None) -> tuple[tuple[str, str], ...] | None:
    """The typed fields of ``schema={"zip": str, "n": "int", "note": None}``: ``(("zip",
    "str"), ("n", "int"))`` (how a CSV input reads them; None leaves a field untyped); None
    for a list of names."""
    if not isinstance(schema, dict):
        return None
    out = []
    for name, t in schema.items():
        if t is None:
            continue
        kind = _TYPE_NAMES.get(t, t) if isinstance(t, (type, str)) else None
        if kind not in _TYPE_NAMES.values():
            raise TopologyError(f"schema= field {name!r}: a type is str, int, float, bool (or "
                                f"None: any), got {t!r}", site=site)
        out.append((name, kind))
    return tuple(out) or None
