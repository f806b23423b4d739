"""Running the stateless part of a sub-topology, record by record, with positions.

This mirrors ``streamdsl.runtime.executor.Executor`` (depth-first pushes through the shared
processors, the same error handling) for the nodes of one sub-topology, and tags every record
with its position (see :mod:`.inbox`). Records that reach a boundary are collected per
destination; failures become dead letters or fatal errors addressed to the errors hub, at the
position where the local executor would have met them.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable

from streamdsl.errors import RecordError
from streamdsl.ir.nodes import (Filter, Fused, KeyBy, Map, MapKV, Merge, Peek, Repartition, Sink,
                                Source, TableFilter, TableMap, ToStream)
from streamdsl.runtime import failures
from streamdsl.runtime.build import make_processor
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.processors import (BadRecord, BranchProcessor, StatelessProcessor,
                                          make_ingest)
from streamdsl.runtime.records import InputEvent, Record

from .keys import key_group
from .layout import ERRORS, Layout, SubTopology

__all__ = ["Fatal", "StageRunner", "record_failure", "bad_input"]


class Fatal:
    """A record that fails the run (``on_error="fail"``): the ``RecordError`` it raises.

    It travels to the errors hub like a dead letter, so that the run fails with the first
    failure in the defined order, whichever worker meets one first.
    """

    __slots__ = ("error", "cause")

    def __init__(self, error: RecordError):
        self.error = error
        self.cause = error.__cause__

    def to_error(self) -> RecordError:
        if self.error.__cause__ is None and self.cause is not None:
            self.error.__cause__ = self.cause
        return self.error

    def __getstate__(self) -> dict:
        # Crossing processes: exceptions pickle without their __cause__; keep it if it can.
        cause = self.cause
        try:
            pickle.loads(pickle.dumps(cause))
        except Exception:
            cause = None
        return {"error": self.error, "cause": cause}

    def __setstate__(self, state: dict) -> None:
        self.error = state["error"]
        self.cause = state["cause"]


def record_failure(layout: Layout, on_error: str, name: str, rec: Record | None,
                   exc: Exception) -> tuple[str, Any]:
    """The errors-hub payload for ``exc`` raised at node ``name`` (the shared rule of
    ``streamdsl.runtime.failures``, as the local executor applies it)."""
    try:
        return ("dl", failures.record_failure(layout.plan.node(name), rec, exc, on_error))
    except RecordError as err:
        return ("fatal", Fatal(err))


def bad_input(on_error: str, name: str, reason: str, ev: InputEvent) -> tuple[str, Any]:
    """The errors-hub payload for an input event that cannot be ingested."""
    try:
        return ("dl", failures.bad_input(name, reason, ev.topic, ev.position, ev.key, ev.value,
                                         None, on_error))
    except RecordError as err:
        return ("fatal", Fatal(err))


Push = Callable[[str, Record, tuple], None]

#: Node kinds whose processor emits at most one record per input record.
_ONE_OUTPUT = (Filter, Map, MapKV, KeyBy, Peek, Merge, Repartition, ToStream, TableFilter,
               TableMap, Source)


def _at_most_one_output(node) -> bool:
    if isinstance(node, Fused):
        return all(isinstance(s, _ONE_OUTPUT) for s in node.stages)
    return isinstance(node, _ONE_OUTPUT)


class StageRunner:
    """Runs one sub-topology's stateless nodes; one instance per worker thread.

    ``run_head(channel, counter, frontier, outputs, errors, report)`` takes what a task of the
    head emitted (records with their positions) and returns one message per destination task,
    as ``(bytewax_key, (dest, group, channel, counter, frontier, items, metrics_delta,
    report))``; the messages of one call all carry the same counter and frontier.
    """

    def __init__(self, layout: Layout, sub: SubTopology, on_error: str):
        self.layout = layout
        self.sub = sub
        self.on_error = on_error
        self.plan = layout.plan
        self.metrics = Metrics()
        self._ctxs: list = []
        self._buf: list[tuple[int, Any]] = []
        self._dest_index = {d: i for i, d in enumerate(sub.dests)}
        self._groups = [layout.groups_of(d) for d in sub.dests]
        self._tasks = [layout.tasks[d] for d in sub.dests]
        self._errors_index = self._dest_index[ERRORS]
        self._push: dict[str, Push] = {}
        self._members = set(sub.members)
        if sub.head is not None:
            self.emit_head = self._emit_fn(sub.head)
        else:
            self._ingest: dict[str, list[tuple[Callable[[InputEvent], Record], Push, str]]] = {}
            for topic, names in layout.sources.items():
                self._ingest[topic] = [(make_ingest(self.plan.node(n)), self._push_fn(n), n)
                                       for n in names]

    # ---- compiling the pushes --------------------------------------------------------------------
    def _push_fn(self, name: str) -> Push:
        fn = self._push.get(name)
        if fn is None:
            fn = self._push[name] = self._make_push(name)
        return fn

    def _emit_fn(self, name: str) -> Callable[[Record, str | None, tuple], None]:
        targets = [(self._push_fn(e.dst), e.port, e.out, i)
                   for i, e in enumerate(self.plan.out_edges(name))]
        if not targets:
            return lambda rec, out_port, pos: None
        if len(targets) == 1:  # one edge: its index is always 0 and adds nothing to the order
            fn, port, out, _ = targets[0]
            if out is None:
                return lambda rec, out_port, pos: fn(port, rec, pos)

            def emit_port(rec: Record, out_port: str | None, pos: tuple) -> None:
                if out_port == out:
                    fn(port, rec, pos)
            return emit_port

        def emit(rec: Record, out_port: str | None, pos: tuple) -> None:
            for fn, port, out, i in targets:
                if out is None or out == out_port:
                    fn(port, rec, pos + (i,))
        return emit

    def _make_push(self, name: str) -> Push:
        buf = self._buf
        dest = self.layout.dest_of.get(name)
        if dest is not None:
            idx = self._dest_index[dest]
            if isinstance(self.plan.node(name), Sink):
                def to_sink(port: str, rec: Record, pos: tuple) -> None:
                    buf.append((idx, (pos, rec)))
                return to_sink

            def to_operator(port: str, rec: Record, pos: tuple) -> None:
                buf.append((idx, (pos, (port, rec))))
            return to_operator
        if name not in self._members:  # pragma: no cover - the layout guarantees membership
            raise AssertionError(f"{name} is not part of sub-topology {self.sub.id}")
        proc = make_processor(self.plan.node(name), self.metrics)
        self._ctxs.append(proc.ctx)
        emit = self._emit_fn(name)
        fail = self._fail
        if isinstance(proc, BranchProcessor):
            route = proc.route

            def branch_push(port: str, rec: Record, pos: tuple) -> None:
                try:
                    r = route(rec)
                except Exception as e:
                    fail(name, rec, e, pos)
                    return
                if r is not None:
                    emit(rec, r, pos)
            return branch_push
        call = proc.fn if isinstance(proc, StatelessProcessor) else None
        process = proc.process
        if _at_most_one_output(self.plan.node(name)):
            # The output index is always 0: it adds nothing to the order, leave it out.
            if call is not None:
                def push_one(port: str, rec: Record, pos: tuple) -> None:
                    try:
                        outs = call(rec)
                    except Exception as e:
                        fail(name, rec, e, pos)
                        return
                    for out in outs:
                        emit(out, None, pos)
                return push_one

            def process_one(port: str, rec: Record, pos: tuple) -> None:
                try:
                    outs = process(port, rec)
                except Exception as e:
                    fail(name, rec, e, pos)
                    return
                for out in outs:
                    emit(out, None, pos)
            return process_one

        def push(port: str, rec: Record, pos: tuple) -> None:
            try:
                outs = call(rec) if call is not None else process(port, rec)
            except Exception as e:
                fail(name, rec, e, pos)
                return
            for j, out in enumerate(outs):
                emit(out, None, pos + (j,))
        return push

    def _fail(self, name: str, rec: Record | None, exc: Exception, pos: tuple) -> None:
        self._buf.append((self._errors_index,
                          (pos, record_failure(self.layout, self.on_error, name, rec, exc))))

    # ---- running ----------------------------------------------------------------------------------
    def run_input(self, counter: int, frontier: int, events: list) -> list[tuple]:
        """The input sub-topology: ``events`` are ``(seq, InputEvent)``."""
        metrics = self.metrics
        ingest = self._ingest
        buf = self._buf
        err = self._errors_index
        for seq, ev in events:
            metrics.records_in += 1
            metrics.in_by_source[ev.topic] += 1
            for i, (make, push, name) in enumerate(ingest.get(ev.topic, ())):
                pos = (seq, i)
                try:
                    rec = make(ev)
                except BadRecord as e:
                    buf.append((err, (pos, bad_input(self.on_error, name, str(e), ev))))
                    continue
                push("in", rec, pos)
        return self._messages((0, 0), counter, frontier, None)

    def run_head(self, channel: tuple[int, int], counter: int, frontier: int, outputs: list,
                 errors: list, report: Metrics | None) -> list[tuple]:
        """A stateful head's outputs ``(pos, Record)`` and errors ``(pos, payload)``, both in
        processing order (each channel's items must stay in position order)."""
        emit = self.emit_head
        buf = self._buf
        err = self._errors_index
        if not errors:
            for pos, rec in outputs:
                emit(rec, None, pos)
        else:
            pending = iter(errors)
            nxt = next(pending, None)
            for pos, rec in outputs:
                while nxt is not None and nxt[0] < pos:
                    buf.append((err, nxt))
                    nxt = next(pending, None)
                emit(rec, None, pos)
            while nxt is not None:
                buf.append((err, nxt))
                nxt = next(pending, None)
        return self._messages(channel, counter, frontier, report)

    def _messages(self, channel: tuple[int, int], counter: int, frontier: int,
                  report: Metrics | None) -> list[tuple]:
        items: list[list] = [[] for _ in self.sub.dests]
        for idx, item in self._buf:
            items[idx].append(item)
        self._buf.clear()
        delta = None
        m = self.metrics
        if m.records_in or m.skipped or m.late or m.dead_lettered or m.records_out:
            delta = m
            self.metrics = Metrics()
            for ctx in self._ctxs:
                ctx.metrics = self.metrics
        out = []
        for i, dest in enumerate(self.sub.dests):
            n = self._groups[i]
            tasks = self._tasks[i]
            if n == 1:
                msg = (dest, 0, channel, counter, frontier, items[i],
                       delta if dest == ERRORS else None, report if dest == ERRORS else None)
                out.append((tasks[0], msg))
                continue
            per: list[list] = [[] for _ in range(n)]
            for item in items[i]:  # (pos, (port, rec)): the record's key picks its task
                per[key_group(item[1][1].key, n)].append(item)
            for g in range(n):
                out.append((tasks[g], (dest, g, channel, counter, frontier, per[g], None, None)))
        return out
