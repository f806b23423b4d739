"""Record at a time: a record is pushed depth first through the graph, as a Kafka Streams task
does (what ``TestDriver`` sessions, diamond-shaped plans and end of input use)."""

from __future__ import annotations

from typing import Callable

from streamdsl.runtime.drive import BRANCH, FN, NodeStep
from streamdsl.runtime.records import OutputRecord, Record

from .graph import Wiring

__all__ = ["compile_push", "Push", "Emit"]

#: ``push(port, record)``: process a record at a node and forward what it emits
Push = Callable[[str, Record], None]
#: ``emit(record, out_port)``: forward a node's output record to its targets
Emit = Callable[[Record, "str | None"], None]


def compile_push(wiring: Wiring, steps: dict[str, NodeStep],
                 fail: Callable[[str, Record | None, Exception], None]
                 ) -> tuple[dict[str, Push], dict[str, Emit]]:
    """One closure per node that processes and forwards.

    Built downstream-first, so each closure holds its targets directly: a record moves
    through the graph by plain function calls, without dictionary lookups.
    """
    push: dict[str, Push] = {}
    emit: dict[str, Emit] = {}
    for name in reversed(wiring.order):
        emit[name] = _make_emit([(push[t.dst], t.port, t.out) for t in wiring.edges[name]])
        push[name] = _make_push(wiring, steps[name], emit[name], fail)
    return push, emit


def _make_push(wiring: Wiring, step: NodeStep, emit: Emit,
               node_fail: Callable[[str, Record | None, Exception], None]) -> Push:
    name = step.name
    writer = wiring.writers.get(name)
    metrics = wiring.metrics
    if writer is not None:
        topic = wiring.sink_topic[name]
        counter = metrics.out_by_sink

        def sink(port: str, rec: Record) -> None:
            metrics.records_out += 1
            counter[topic] += 1
            writer(OutputRecord(rec.key, rec.value, rec.ts, rec.window))
        return sink
    call = step.call
    if step.kind is BRANCH:
        def branch_push(port: str, rec: Record) -> None:
            try:
                r = call(rec)
            except Exception as e:
                node_fail(name, rec, e)
                return
            if r is not None:
                emit(rec, r)
        return branch_push
    if step.kind is FN:
        def fn_push(port: str, rec: Record) -> None:
            try:
                outs = call(rec)
            except Exception as e:
                node_fail(name, rec, e)
                return
            for out in outs:
                emit(out, None)
        return fn_push

    def process_push(port: str, rec: Record) -> None:
        try:
            outs = call(port, rec)
        except Exception as e:
            node_fail(name, rec, e)
            return
        for out in outs:
            emit(out, None)
    return process_push


def _make_emit(targets: list[tuple[Push, str, str | None]]) -> Emit:
    """Forwarding to the downstream closures (``out`` filters a branch's output port)."""
    if not targets:
        return lambda rec, out_port: None
    if len(targets) == 1 and targets[0][2] is None:
        fn, port, _ = targets[0]
        return lambda rec, out_port: fn(port, rec)
    if all(t[2] is None for t in targets):
        def fan_out(rec: Record, out_port: str | None) -> None:
            for fn, port, _ in targets:
                fn(port, rec)
        return fan_out

    def routed(rec: Record, out_port: str | None) -> None:
        for fn, port, out in targets:
            if out is None or out == out_port:
                fn(port, rec)
    return routed
