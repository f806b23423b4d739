"""How a node is driven one record at a time, the same way on every backend.

A backend builds a ``NodeStep`` per plan node (``node_step``) and runs it with ``drive``: each
input record goes through the node's processor, and a record whose processing raises goes to
the backend's ``fail`` (which classifies it with ``failures.failure``: a dead letter or the
run's error). Only where records go next, and how they are tagged for ordering (the local
executor's sequence numbers, Bytewax's positions, Beam's lineage keys), is the backend's own.

>>> import streamdsl as sd
>>> from streamdsl.runtime.metrics import Metrics
>>> from streamdsl.runtime.records import Record
>>> t = sd.Topology("t")
>>> t.stream("in").filter(sd.col("n") > 1, name="big").to("out")
>>> step = node_step(t.plan().node("big"), Metrics())
>>> [(tag, [r.value for r in outs]) for tag, outs, _ in
...  drive(step, [(0, "in", Record("a", {"n": 2}, 1)), (1, "in", Record("b", {"n": 0}, 2))], None)]
[(0, [{'n': 2}])]
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, NamedTuple

from ..ir.nodes import Filter, Fused, KeyBy, Map, MapKV, Merge, Node, Peek, Repartition, Sink, \
    Source, TableFilter, TableMap, ToStream
from .build import make_processor
from .metrics import Metrics
from .processors import BranchProcessor, Processor, StatelessProcessor
from .records import Record

__all__ = ["NodeStep", "node_step", "drive", "BRANCH", "FN", "PROCESS"]

#: ``NodeStep.kind``: ``call(rec)`` gives the output port (or None: dropped)
BRANCH = "branch"
#: ``call(rec)`` gives the output records (a stateless node)
FN = "fn"
#: ``call(port, rec)`` gives the output records (every other node)
PROCESS = "process"

#: Node kinds whose processor emits at most one record per input record.
_ONE_OUTPUT = (Filter, Map, MapKV, KeyBy, Peek, Merge, Repartition, ToStream, TableFilter,
               TableMap, Source, Sink)


class NodeStep(NamedTuple):
    """A plan node ready to be driven record by record."""

    name: str
    node: Node
    processor: Processor
    kind: str
    call: Callable[..., Any]
    #: at most one output per input: the output's index need not be part of its position
    one_output: bool


def node_step(node: Node, metrics: Metrics) -> NodeStep:
    """A fresh processor (empty state) for ``node``, and how to call it."""
    proc = make_processor(node, metrics)
    stages = node.stages if isinstance(node, Fused) else (node,)
    one = all(isinstance(s, _ONE_OUTPUT) for s in stages)
    if isinstance(proc, BranchProcessor):
        return NodeStep(node.name, node, proc, BRANCH, proc.route, True)
    if isinstance(proc, StatelessProcessor):
        return NodeStep(node.name, node, proc, FN, proc.fn, one)
    return NodeStep(node.name, node, proc, PROCESS, proc.process, one)


def drive(step: NodeStep, items: Iterable[tuple[Any, str, Record]],
          fail: Callable[[Any, Record, Exception], None] | None
          ) -> Iterator[tuple[Any, list[Record], str | None]]:
    """Run ``step`` over ``(tag, port, record)`` items, in order.

    Yields ``(tag, outputs, output port)`` for each input record that produced something
    (the port is a branch's route, else None). A record whose processing raises is handed to
    ``fail(tag, record, exception)`` (None: the exception propagates) and produces nothing;
    the state changes it made stay, as in Kafka Streams. A record an operator drops as late
    under ``late="dead-letter"`` goes to ``fail`` too, with a ``failures.LateRecord`` (its
    outputs for other windows, if any, are kept).
    """
    call = step.call
    kind = step.kind
    branch = kind is BRANCH
    route = None
    ctx = step.processor.ctx
    deferred = ctx.deferred  # late records met by ``process`` (dead letters of that record)
    for tag, port, rec in items:
        try:
            if kind is FN:
                outs = call(rec)
            elif branch:
                route = call(rec)
                outs = [rec] if route is not None else None
            else:
                outs = call(port, rec)
        except Exception as e:
            if fail is None:
                raise
            if deferred:
                ctx.drain(lambda r, x, tag=tag: fail(tag, r, x))
            fail(tag, rec, e)
            continue
        if deferred:
            if fail is None:
                deferred.clear()
            else:
                ctx.drain(lambda r, x, tag=tag: fail(tag, r, x))
        if outs:
            yield tag, outs, route
