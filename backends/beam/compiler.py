"""Compile a plan into a ``beam.Pipeline``: one ``visit_<Kind>`` per IR node kind.

Every node becomes one top-level transform labelled with the node's name, so a user finds
their operators in Beam's UI under the names ``streamdsl graph`` shows:

* ``Source``: ``Impulse`` then a ``ParDo`` that reads the events, ingests them and runs the
  source node; a JSON-lines file read in parallel (``shares``) starts from a ``Create`` of its
  shares and a ``GroupByKey`` spreading them over the workers instead of the ``Impulse``;
* stateless nodes (a ``Fused`` chain included), ``Branch``, ``Merge`` (a ``Flatten`` first),
  ``Repartition`` and the table nodes without state: one ``ParDo``;
* stateful nodes, and ``Peek`` (its side effects happen in order): ``Flatten`` of the inputs,
  ``GroupByKey`` on the task (or, for an operator whose state is per key, on one of
  ``KEY_GROUPS`` groups of keys), a ``ParDo`` running the processor over the group's records
  sorted by lineage key (see ``ordering``);
* ``Sink``: a ``ParDo`` counting records out and collecting them for the driver, or passing
  them to the writer of a file output (``GroupByKey``, then one writer producing the local
  backend's file, same order, same format).

A file output is written by one more transform, ``streamdsl-write-<topic>``. Records of other
outputs, dead letters and failures are handed to the driver by the DoFns (``runstate``).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from streamdsl.errors import UnsupportedNodeError
from streamdsl.ir.nodes import Fused, Node, Peek, Sink, Source
from streamdsl.ir.plan import Plan

from .dofns import Batch, EdgeSpec, RecordFn, SinkFn, SourceFn, TaskFn, WriteSortedFn, sink_channel
from .ordering import task_router
from .runstate import RunState

__all__ = ["PipelineBuilder", "groups_by_task"]


def groups_by_task(node: Node) -> bool:
    """Whether a node runs over its task's records in order (a GroupByKey stage)."""
    if node.stateful or isinstance(node, Peek):
        return True
    return isinstance(node, Fused) and any(isinstance(s, Peek) for s in node.stages)


def _groups(node: Node, partitions: int) -> tuple[int, Any]:
    """Task groups of a node's GroupByKey (0: the node takes records one by one) and the
    route of a record to its group (``ordering.task_router``)."""
    if not groups_by_task(node):
        return 0, None
    if not node.stateful:
        return 1, None
    return task_router(node, partitions)


class _Stage(beam.PTransform):
    """A node's transform: optional Flatten of several inputs, optional GroupByKey, a ParDo."""

    def __init__(self, fn: beam.DoFn, tags: list[str], *, group: bool, impulse: bool = False,
                 shares: list | None = None):
        super().__init__()
        self.fn = fn
        self.tags = tags
        self.group = group
        self.impulse = impulse
        self.shares = shares

    def expand(self, pvalue: Any) -> Any:
        if self.shares is not None:
            # ``(i, share)`` elements, grouped by ``i`` so that the runner spreads them over
            # its workers (the FnApiRunner deals a GroupByKey's keys out in turn)
            pvalue = (pvalue | "Shares" >> beam.Create(list(enumerate(self.shares)),
                                                        reshuffle=False)
                      | "Spread" >> beam.GroupByKey())
        elif self.impulse:
            pvalue = pvalue | "Impulse" >> beam.Impulse()
        elif isinstance(pvalue, tuple):
            pvalue = pvalue | "Flatten" >> beam.Flatten()
        if self.group:
            pvalue = pvalue | "GroupByKey" >> beam.GroupByKey()
        pardo = beam.ParDo(self.fn)
        out = pvalue | "ParDo" >> (pardo.with_outputs(*self.tags) if self.tags else pardo)
        for edge in getattr(self.fn, "edges", ()):
            if not edge.groups:  # list batches: sized without encoding them (``BatchCoder``)
                (out if edge.tag is None else out[edge.tag]).element_type = Batch
        return out


class PipelineBuilder:
    """Builds the transforms of ``plan`` onto a pipeline.

    Args:
        backend: backend name, for error messages.
        plan: the plan (checked against the backend's capabilities).
        run: the run's shared state (``runstate``).
        readers: per source topic, the reader given to ``SourceFn``.
        sinks: per sink topic, a file connector spec written by the pipeline, or None to
            collect the records for the driver.
        flush: close every window at end of input.
        on_error: ``"fail"`` or ``"dead-letter"``.
    """

    def __init__(self, backend: str, plan: Plan, run: RunState, *, readers: dict[str, tuple],
                 sinks: dict[str, Any], flush: bool, on_error: str):
        self.backend = backend
        self.plan = plan
        self.run = run
        self.readers = readers
        self.sinks = sinks
        self.flush = flush
        self.on_error = on_error
        self._outputs: dict[str, Any] = {}
        self._written: dict[str, list[Any]] = {}
        self._order = {n.name: i for i, n in enumerate(plan.topological())}

    # ---- driving ---------------------------------------------------------------------------
    def build(self, pipeline: beam.Pipeline) -> beam.Pipeline:
        self.pipeline = pipeline
        for node in self.plan.topological():
            self.visit(node)
        for topic, outs in self._written.items():
            (tuple(outs) | self._label(f"streamdsl-write-{topic}")
             >> _WriteFile(self.run, topic, self.sinks[topic]))
        return pipeline

    def _label(self, label: str) -> str:
        """A label for a transform of the backend's own, never clashing with a node name."""
        while label in self.plan:
            label += "_"
        return label

    def visit(self, node: Node) -> None:
        method = getattr(self, "visit_" + node.kind, None)
        if method is None:
            raise UnsupportedNodeError(self.backend, node.kind, node=node.name, site=node.site,
                                       hint="see `streamdsl backends` for what each backend runs")
        self.run.nodes[node.name] = node
        method(node)

    # ---- edges -----------------------------------------------------------------------------
    def _edges(self, node: Node) -> list[EdgeSpec]:
        outs = self.plan.out_edges(node.name)
        multi = len(outs) > 1
        out = []
        for j, e in enumerate(outs):
            groups, route = _groups(self.plan.node(e.dst), self.plan.partitions)
            out.append(EdgeSpec(e.port, e.out, groups, f"e{j}" if multi else None, route))
        return out

    def _tags(self, edges: list[EdgeSpec]) -> list[str]:
        return [e.tag for e in edges if e.tag is not None]

    def _inputs(self, node: Node) -> Any:
        pcolls = []
        for e in self.plan.in_edges(node.name):
            outs = self.plan.out_edges(e.src)
            j = next(i for i, o in enumerate(outs) if o.dst == node.name and o.port == e.port)
            produced = self._outputs[e.src]
            pcolls.append(produced if len(outs) == 1 else produced[f"e{j}"])
        return pcolls[0] if len(pcolls) == 1 else tuple(pcolls)

    def _apply(self, node: Node, stage: _Stage, pvalue: Any) -> None:
        self._outputs[node.name] = pvalue | node.name >> stage

    # ---- node kinds --------------------------------------------------------------------------
    def visit_Source(self, node: Source) -> None:
        edges = self._edges(node)
        same_topic = [s.name for s in self.plan.sources() if s.topic == node.topic]
        fn = SourceFn(self.run, node, edges, self.on_error, index=same_topic.index(node.name),
                      count_in=same_topic[0] == node.name, reader=self.readers[node.topic])
        reader = self.readers[node.topic]
        self._apply(node, _Stage(fn, self._tags(edges), group=False, impulse=True,
                                 shares=reader[3] if reader[0] == "shares" else None),
                    self.pipeline)

    def _per_record(self, node: Node) -> None:
        if groups_by_task(node):
            return self._per_task(node)
        edges = self._edges(node)
        fn = RecordFn(self.run, node, edges, self.on_error)
        self._apply(node, _Stage(fn, self._tags(edges), group=False), self._inputs(node))

    def _per_task(self, node: Node) -> None:
        edges = self._edges(node)
        fn = TaskFn(self.run, node, edges, self.on_error, flush=self.flush,
                    topo_index=self._order[node.name])
        self._apply(node, _Stage(fn, self._tags(edges), group=True), self._inputs(node))

    visit_Filter = visit_Map = visit_MapKV = visit_FlatMap = visit_FlatMapKV = _per_record
    visit_KeyBy = visit_Peek = visit_Merge = visit_Branch = visit_Repartition = _per_record
    visit_TableFilter = visit_TableMap = visit_ToStream = visit_Fused = _per_record
    visit_Aggregate = visit_TableGroupBy = visit_TableAggregate = _per_task
    visit_StreamStreamJoin = visit_StreamTableJoin = visit_TableTableJoin = _per_task

    def visit_Sink(self, node: Sink) -> None:
        spec = self.sinks.get(node.topic)
        written = spec is not None
        fn = SinkFn(self.run, node, self.on_error, topic=node.topic,
                    channel=None if written else sink_channel(node.topic),
                    encoded=written and spec.get("type") == "jsonl")
        out = self._inputs(node) | node.name >> beam.ParDo(fn)
        if written:
            self._written.setdefault(node.topic, []).append(out)


class _WriteFile(beam.PTransform):
    """Group ``(0, packed batch of (lineage_key, item))`` elements and write the items sorted
    into one file."""

    def __init__(self, run: Any, topic: str, spec: Any):
        super().__init__()
        self.run = run
        self.topic = topic
        self.spec = spec

    def expand(self, pvalue: Any) -> Any:
        if isinstance(pvalue, tuple):
            pvalue = pvalue | "Flatten" >> beam.Flatten()
        return (pvalue | "GroupByKey" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(WriteSortedFn(self.run, self.topic, self.spec)))
