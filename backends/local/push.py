"""Record at a time: a record is pushed depth first through the graph, as a Kafka Streams task
does (what ``TestDriver`` sessions, diamond-shaped plans and end of input use). Every call
carries the partition of the record's task: a stateful node runs the processor of that task,
a repartition moves the record to its new key's partition."""

from __future__ import annotations

from typing import Callable

from streamdsl.ir.nodes import Repartition
from streamdsl.runtime.drive import BRANCH, FN, NodeStep
from streamdsl.runtime.partitioning import Partitioner
from streamdsl.runtime.records import OutputRecord, Record

from .graph import RepartitionWriter, Wiring

__all__ = ["compile_push", "Push", "Emit"]

#: ``push(port, record, partition)``: process a record at a node and forward what it emits
Push = Callable[[str, Record, int], None]
#: ``emit(record, out_port, partition)``: forward a node's output record to its targets
Emit = Callable[[Record, "str | None", int], None]


def compile_push(wiring: Wiring, steps: dict[str, list[NodeStep]], partitioner: Partitioner,
                 fail: Callable[[str, Record | None, Exception], None],
                 cut: RepartitionWriter | None = None
                 ) -> tuple[dict[str, Push], dict[str, Emit]]:
    """One closure per node that processes and forwards (``steps[name][p]``: the node's step
    in the task of partition ``p``). With ``cut``, a repartition hands its records to
    ``cut`` instead of forwarding them (they come back through ``emit[repartition]``).

    Built downstream-first, so each closure holds its targets directly: a record moves
    through the graph by plain function calls, without dictionary lookups.
    """
    push: dict[str, Push] = {}
    emit: dict[str, Emit] = {}
    for name in reversed(wiring.order):
        emit[name] = _make_emit([(push[t.dst], t.port, t.out) for t in wiring.edges[name]])
        push[name] = _make_push(wiring, steps[name], emit[name], partitioner, fail, cut)
    return push, emit


def _make_push(wiring: Wiring, steps: list[NodeStep], emit: Emit, partitioner: Partitioner,
               node_fail: Callable[[str, Record | None, Exception], None],
               cut: RepartitionWriter | None) -> Push:
    step = steps[0]
    name = step.name
    writer = wiring.writers.get(name)
    metrics = wiring.metrics
    if writer is not None:
        topic = wiring.sink_topic[name]
        counter = metrics.out_by_sink

        def sink(port: str, rec: Record, part: int) -> None:
            metrics.records_out += 1
            counter[topic] += 1
            writer(OutputRecord(rec.key, rec.value, rec.ts, rec.window))
        return sink
    if isinstance(step.node, Repartition) and cut is not None:
        def repartition_cut(port: str, rec: Record, part: int) -> None:
            cut(name, rec, part, part if rec.key is None else partitioner(rec.key, 0))
        return repartition_cut
    if isinstance(step.node, Repartition):
        def repartition(port: str, rec: Record, part: int) -> None:
            # the new key's task; a record without a key stays where it is (a stateful
            # operator skips it)
            emit(rec, None, part if rec.key is None else partitioner(rec.key, 0))
        return repartition
    call = step.call
    if step.kind is BRANCH:
        def branch_push(port: str, rec: Record, part: int) -> None:
            try:
                r = call(rec)
            except Exception as e:
                node_fail(name, rec, e)
                return
            if r is not None:
                emit(rec, r, part)
        return branch_push
    if step.kind is FN:
        def fn_push(port: str, rec: Record, part: int) -> None:
            try:
                outs = call(rec)
            except Exception as e:
                node_fail(name, rec, e)
                return
            for out in outs:
                emit(out, None, part)
        return fn_push
    calls = [s.call for s in steps]
    ctxs = [s.processor.ctx for s in steps]

    def late(r: Record, e: Exception) -> None:
        node_fail(name, r, e)

    def process_push(port: str, rec: Record, part: int) -> None:
        try:
            outs = calls[part](port, rec)
        except Exception as e:
            if ctxs[part].deferred:
                ctxs[part].drain(late)
            node_fail(name, rec, e)
            return
        if ctxs[part].deferred:  # late records, dead-lettered (late="dead-letter")
            ctxs[part].drain(late)
        for out in outs:
            emit(out, None, part)
    return process_push


def _make_emit(targets: list[tuple[Push, str, str | None]]) -> Emit:
    """Forwarding to the downstream closures (``out`` filters a branch's output port)."""
    if not targets:
        return lambda rec, out_port, part: None
    if len(targets) == 1 and targets[0][2] is None:
        fn, port, _ = targets[0]
        return lambda rec, out_port, part: fn(port, rec, part)
    if all(t[2] is None for t in targets):
        def fan_out(rec: Record, out_port: str | None, part: int) -> None:
            for fn, port, _ in targets:
                fn(port, rec, part)
        return fan_out

    def routed(rec: Record, out_port: str | None, part: int) -> None:
        for fn, port, out in targets:
            if out is None or out == out_port:
                fn(port, rec, part)
    return routed
