"""Processor protocol, the ingest step of sources, and the stateless processors."""

from __future__ import annotations

from typing import Callable, Sequence

from ..expr import Col
from ..ir.nodes import Branch, Fused, Merge, Node, Repartition, Sink, Source, ToStream
from ..timeutil import to_timestamp
from .metrics import Metrics
from .records import InputEvent, OutputRecord, Record
from .store import StoreSet

__all__ = ["Processor", "reraise", "OpContext", "BadRecord", "make_ingest", "stateless_fn", "StatelessProcessor",
           "BranchProcessor"]


class BadRecord(Exception):
    """A record that cannot be ingested (missing key/timestamp field, undecodable)."""


class OpContext:
    """What an operator may touch: its stores and the run's metrics."""

    __slots__ = ("node", "stores", "metrics")

    def __init__(self, node: str, metrics: Metrics):
        self.node = node
        self.stores = StoreSet(node)
        self.metrics = metrics

    def late(self, n: int = 1) -> None:
        self.metrics.record_late(self.node, n)

    def skipped(self, n: int = 1) -> None:
        self.metrics.record_skipped(self.node, n)


def reraise(rec: Record, exc: Exception) -> None:
    """The ``fail`` of a record-at-a-time call: the exception goes to the caller."""
    raise exc


class Processor:
    """One operator instance. ``process`` takes a record on an input port and returns the
    records it emits, in order; ``on_end`` is called once at end of input (stream time to
    infinity) and returns what closing every window emits."""

    node: Node
    ctx: OpContext

    def __init__(self, node: Node, ctx: OpContext):
        self.node = node
        self.ctx = ctx

    def process(self, port: str, rec: Record) -> list[Record]:
        raise NotImplementedError

    def process_batch(self, port: str, recs: list[Record],
                      fail: Callable[[Record, Exception], None]) -> list[Record]:
        """``process`` over a run of records arriving on one port, outputs concatenated.

        Must equal calling ``process`` record by record: a record whose processing raises is
        handed to ``fail(rec, exc)`` (which dead-letters it or raises), the outputs it had
        produced are dropped, state changes it made stay, and the batch goes on. Operators
        override this with a tighter loop; this default is the reference.
        """
        out: list[Record] = []
        extend = out.extend
        process = self.process
        for rec in recs:
            try:
                extend(process(port, rec))
            except Exception as e:
                fail(rec, e)
        return out

    def process_mixed(self, items: list[tuple[str, Record]],
                      fail: Callable[[Record, Exception], None]) -> list[Record]:
        """``process_batch`` for an operator with several inputs: ``(port, record)`` pairs in
        arrival order (a join's left and right records interleaved as the merge gave them)."""
        out: list[Record] = []
        extend = out.extend
        process = self.process
        for port, rec in items:
            try:
                extend(process(port, rec))
            except Exception as e:
                fail(rec, e)
        return out

    def process_columns(self, keys: list, values: list, timestamps: list,
                        positions: Sequence[int],
                        source: str, fail: Callable[[Record, Exception], None],
                        port: str = "in", to_sink: bool = False) -> list:
        """``process_batch`` over records given as columns (a source's records, window None,
        origin ``(source, position)``), as ``fused.compile_columns`` produces them.

        With ``to_sink`` (the operator's only output is a sink) it returns the sink's
        ``OutputRecord``s instead of records."""
        out = self.process_batch(port, [Record(k, v, t, None, (source, p)) for k, v, t, p
                                        in zip(keys, values, timestamps, positions)], fail)
        if to_sink:
            new = tuple.__new__
            return [new(OutputRecord, (r.key, r.value, r.ts, r.window)) for r in out]
        return out

    def on_end(self) -> list[Record]:
        return []

    def state_size(self) -> int:
        return sum(self.ctx.stores.sizes().values())

    def snapshot(self) -> dict:
        return self.ctx.stores.snapshot()

    def restore(self, snap: dict) -> None:
        self.ctx.stores.restore(snap)


# ---- ingest --------------------------------------------------------------------------------------

def make_ingest(node: Source) -> Callable[[InputEvent], Record]:
    """Turn a raw input event into a record: decode errors, key and timestamp extraction.

    Raises ``BadRecord`` with the reason for a record that must be dead-lettered.
    """
    key_fn = node.key.compile_value() if node.key is not None else None
    key_field = node.key.expr.name if node.key is not None and isinstance(node.key.expr, Col) else None
    ts_fn = node.timestamp.compile_value() if node.timestamp is not None else None
    ts_field = (node.timestamp.expr.name
                if node.timestamp is not None and isinstance(node.timestamp.expr, Col) else None)
    table = node.table
    topic = node.topic

    def ingest(ev: InputEvent) -> Record:
        if ev.error is not None:
            raise BadRecord(ev.error)
        value = ev.value
        if value is None and not table:
            key = ev.key if key_fn is None else None
        elif key_fn is None or (value is None and table):
            key = ev.key
        else:
            if key_field is not None and isinstance(value, dict) and key_field not in value:
                raise BadRecord(f"missing key field {key_field!r}")
            try:
                key = key_fn(value)
            except Exception as e:
                raise BadRecord(f"cannot compute the key: {type(e).__name__}: {e}") from e
        if ts_fn is None or value is None:
            ts = ev.timestamp
            if ts is None:
                raise BadRecord("record has no timestamp (declare timestamp= on "
                                f"{'table' if table else 'stream'}({topic!r}) or send one)")
        else:
            try:
                ts = ts_fn(value)
            except Exception as e:
                raise BadRecord(f"cannot compute the timestamp: {type(e).__name__}: {e}") from e
            if ts is None:
                if ts_field is not None:
                    raise BadRecord(f"missing timestamp field {ts_field!r}")
                raise BadRecord("the timestamp function returned None")
        try:
            ts = to_timestamp(ts)
        except (TypeError, ValueError) as e:
            raise BadRecord(f"bad timestamp: {e}") from e
        if ts < 0:
            raise BadRecord(f"negative timestamp {ts}")
        return Record(key, value, ts, None, (topic, ev.position))

    if key_field is not None and ts_field is not None:
        # The common case, a dict value with key and timestamp fields and an int timestamp
        # (stream or table: only a table's tombstone, a None value, differs), without the
        # general path's checks; anything else falls back to it.
        def ingest_fields(ev: InputEvent) -> Record:
            value = ev.value
            if type(value) is dict and ev.error is None:
                key = value.get(key_field, _MISSING)
                ts = value.get(ts_field)
                if key is not _MISSING and type(ts) is int and ts >= 0:
                    return Record(key, value, ts, None, (topic, ev.position))
            return ingest(ev)
        return ingest_fields
    return ingest


_MISSING = object()


def make_ingest_items(node: Source) -> Callable[[list, int, Callable], list[Record]]:
    """Ingest a run of in-memory items (as the memory connector takes them: bare values,
    ``(key, value, timestamp)`` tuples, envelope dicts) without an ``InputEvent`` each.

    ``ingest(items, pos0, bad)`` returns the records of the items that ingest, in order; item
    ``i`` has position ``pos0 + i``; ``bad(event, reason)`` gets each one that does not.
    Equal to ``make_ingest(node)`` over ``memory.to_event``; a plain dict value with the key
    and timestamp fields (an int timestamp) takes a loop without a call.
    """
    from ..connectors.memory import to_event
    ingest = make_ingest(node)
    topic = node.topic
    key_field = node.key.expr.name if node.key is not None and isinstance(node.key.expr, Col) else None
    ts_field = (node.timestamp.expr.name
                if node.timestamp is not None and isinstance(node.timestamp.expr, Col) else None)

    def slow(item, pos, out, bad) -> None:
        ev = to_event(topic, item, pos)
        try:
            out.append(ingest(ev))
        except BadRecord as e:
            bad(ev, str(e))

    if key_field is None or ts_field is None:
        def ingest_items(items: list, pos0: int, bad: Callable) -> list[Record]:
            out: list[Record] = []
            for i, item in enumerate(items, pos0):
                slow(item, i, out, bad)
            return out
        return ingest_items

    missing = _MISSING
    new = object.__new__

    def ingest_fields(items: list, pos0: int, bad: Callable) -> list[Record]:
        out: list[Record] = []
        append = out.append
        i = pos0
        for v in items:
            if type(v) is dict and "value" not in v:
                k = v.get(key_field, missing)
                ts = v.get(ts_field)
                if k is not missing and type(ts) is int and ts >= 0:
                    # Record(...) without its __init__ call: a third cheaper
                    r = new(Record)
                    r.key = k
                    r.value = v
                    r.ts = ts
                    r.window = None
                    r.origin = (topic, i)
                    append(r)
                    i += 1
                    continue
            slow(v, i, out, bad)
            i += 1
        return out
    return ingest_fields


# ---- stateless -------------------------------------------------------------------------------------

def stateless_fn(node: Node) -> Callable[[Record], list[Record]]:
    """Compile one stateless node (or a fused chain) into ``rec -> list[rec]``.

    A failing user function raises ``fused.StageError`` naming the node (``failures`` unwraps
    it), so a node fails the same way alone or inside a fused chain.
    """
    from .fused import compile_fused, compile_stage
    if isinstance(node, Fused):
        return compile_fused(node)
    if isinstance(node, (Merge, Repartition, Sink, ToStream)):
        return lambda rec: [rec]
    return compile_stage(node)


class StatelessProcessor(Processor):
    """Wraps a stateless function as a processor."""

    def __init__(self, node: Node, ctx: OpContext):
        super().__init__(node, ctx)
        from .fused import compile_batch
        self.fn = stateless_fn(node)
        self._batch = compile_batch(node)

    def process(self, port: str, rec: Record) -> list[Record]:
        return self.fn(rec)

    def process_batch(self, port: str, recs: list[Record],
                      fail: Callable[[Record, Exception], None]) -> list[Record]:
        if self._batch is not None:
            return self._batch(recs, fail)
        return super().process_batch(port, recs, fail)


class BranchProcessor(Processor):
    """Routes a record to the first branch whose predicate holds: ``route`` gives the port."""

    def __init__(self, node: Branch, ctx: OpContext):
        super().__init__(node, ctx)
        self.preds = [(name, f.compile_kv()) for name, f in node.branches]
        self.otherwise = node.otherwise

    def route(self, rec: Record) -> str | None:
        for name, pred in self.preds:
            r = pred(rec.key, rec.value)
            if r is not None and r:
                return name
        return self.otherwise

    def process(self, port: str, rec: Record) -> list[Record]:  # pragma: no cover - executors use route
        raise TypeError("BranchProcessor.route() decides the output port")

