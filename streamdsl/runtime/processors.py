"""The processor protocol (one operator instance over records) and the stateless processors."""

from __future__ import annotations

from itertools import repeat
from typing import Callable, Iterable

from ..ir.nodes import Branch, Node
from .drops import Drops
from .failures import LateRecord
from .metrics import Metrics
from .records import Record
from .stateless import stateless_fn
from .store import StoreSet

__all__ = ["Processor", "reraise", "OpContext", "StatelessProcessor", "BranchProcessor", "Fail"]

#: ``fail(record, exception)``: what a batch entry point does with a record that raised.
Fail = Callable[[Record, Exception], None]


class OpContext:
    """What an operator may touch: its stores and the run's metrics.

    ``deferred`` holds the late records (``LateRecord``) an operator met while called one
    record at a time (``process``, which has no ``fail`` to hand them to): whoever called it
    passes them on (``drain``) as dead letters of that record (``runtime/drive.py``).
    """

    __slots__ = ("node", "stores", "metrics", "deferred")

    def __init__(self, node: str, metrics: Metrics):
        self.node = node
        self.stores = StoreSet(node)
        self.metrics = metrics
        self.deferred: list[tuple[Record, Exception]] = []

    def late(self, n: int = 1) -> None:
        self.metrics.record_late(self.node, n)

    def defer(self, rec: Record, exc: Exception) -> None:
        """The ``fail`` of a record-at-a-time call: a late record is kept for the caller
        (``deferred``); any other exception goes to the caller."""
        if isinstance(exc, LateRecord):
            self.deferred.append((rec, exc))
            return
        raise exc

    def drain(self, fail: Callable[[Record, Exception], None]) -> None:
        """Hand the ``deferred`` late records to ``fail``."""
        items = self.deferred[:]
        self.deferred.clear()
        for rec, exc in items:
            fail(rec, exc)

    def skipped(self, n: int = 1) -> None:
        self.metrics.record_skipped(self.node, n)


def reraise(rec: Record, exc: Exception) -> None:
    """A ``fail`` that hands every exception to the caller."""
    raise exc


class Processor:
    """One operator instance. ``process`` takes a record on an input port and returns the
    records it emits, in order; ``on_end`` is called once at end of input (stream time to
    infinity) and returns what closing every window emits.

    ``process_batch`` (a run of records on one port) and ``process_mixed`` (``(port, record)``
    pairs, as a join's inputs interleave) must equal calling ``process`` record by record: a
    record whose processing raises is handed to ``fail(rec, exc)`` (which dead-letters it or
    raises), the outputs it had produced are dropped, state changes it made stay, and the
    batch goes on. An operator writes its rule once: either as ``process`` (one record), or
    as one loop ``_run(items, fail)`` over ``(port, record)`` pairs that all three entry
    points call. It overrides one of the two; each default is written in terms of the other.
    """

    node: Node
    ctx: OpContext
    #: ``_run(items, fail, marks)`` appends to the list ``marks``, before each item, the number
    #: of outputs so far (a backend that positions each output by its input record calls
    #: ``_run`` once per batch: its bytewax tasks)
    run_marks = False

    def __init__(self, node: Node, ctx: OpContext):
        self.node = node
        self.ctx = ctx
        #: late records go to the dead-letter output (the node's ``late="dead-letter"``)
        self.late_letters = getattr(node, "late", "drop") == "dead-letter"

    def process(self, port: str, rec: Record) -> list[Record]:
        return self._run(((port, rec),), self.ctx.defer)

    def late_record(self, rec: Record, exc: "LateRecord", fail: Fail) -> None:
        """``rec`` was dropped as late (``exc`` says for which window): counted, and handed to
        ``fail`` under ``late="dead-letter"``. Call it once per dropped window."""
        self.ctx.late()
        if self.late_letters:
            fail(rec, exc)

    def process_batch(self, port: str, recs: list[Record], fail: Fail) -> list[Record]:
        """``process`` over a run of records arriving on one port, outputs concatenated."""
        return self._run(zip(repeat(port), recs), fail)

    def process_mixed(self, items: list[tuple[str, Record]], fail: Fail) -> list[Record]:
        """``process_batch`` for an operator with several inputs: ``(port, record)`` pairs in
        arrival order (a join's left and right records interleaved as the merge gave them)."""
        return self._run(items, fail)

    def _run(self, items: Iterable[tuple[str, Record]], fail: Fail) -> list[Record]:
        out: list[Record] = []
        extend = out.extend
        process = self.process
        ctx = self.ctx
        deferred = ctx.deferred
        for port, rec in items:
            try:
                extend(process(port, rec))
            except Exception as e:
                if deferred:
                    ctx.drain(fail)
                fail(rec, e)
                continue
            if deferred:
                ctx.drain(fail)
        return out

    def on_end(self) -> list[Record]:
        return []

    def state_size(self) -> int:
        return sum(self.ctx.stores.sizes().values())

    def snapshot(self, live: bool = False) -> dict:
        """The operator's state (``live=True``: not copied, to be serialized at once)."""
        return self.ctx.stores.snapshot(live)

    def restore(self, snap: dict) -> None:
        self.ctx.stores.restore(snap)


class StatelessProcessor(Processor):
    """A stateless node (or fused chain): ``fn(rec) -> outputs`` (``stateless.stateless_fn``)."""

    def __init__(self, node: Node, ctx: OpContext):
        super().__init__(node, ctx)
        self.fn = stateless_fn(node, ctx)

    def process(self, port: str, rec: Record) -> list[Record]:
        return self.fn(rec)

    def _run(self, items: Iterable[tuple[str, Record]], fail: Fail) -> list[Record]:
        out: list[Record] = []
        extend = out.extend
        fn = self.fn
        for _port, rec in items:
            try:
                extend(fn(rec))
            except Exception as e:
                fail(rec, e)
        return out


class BranchProcessor(Processor):
    """Routes a record to the first branch whose predicate holds: ``route`` gives the port
    (``None``: no branch and no ``otherwise``, the record is dropped)."""

    def __init__(self, node: Branch, ctx: OpContext):
        super().__init__(node, ctx)
        self.preds = [(name, f.compile_kv()) for name, f in node.branches]
        self.otherwise = node.otherwise
        drops = Drops.of(node, [f for _, f in node.branches], ctx)
        #: counts a record no branch takes while a predicate was null for a missing field
        self._null = drops.null if drops.fields and node.otherwise is None else None

    def route(self, rec: Record) -> str | None:
        null = False
        for name, pred in self.preds:
            r = pred(rec.key, rec.value)
            if r is not None and r:
                return name
            if r is None:
                null = True
        if null and self._null is not None:
            self._null(rec.value)
        return self.otherwise

    def _run(self, items, fail):  # pragma: no cover - drivers call route (runtime/drive.py)
        raise TypeError("BranchProcessor.route() decides the output port")
