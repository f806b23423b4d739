"""Columnar runs: an in-memory topic that is the only input left is ingested into columns,
through the stateless stages after its source, straight into the operator that takes
columns (the ``columnar-ingest`` fast path feeding a ``columns`` one), without a ``Record``
per item."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Iterator, NamedTuple

from streamdsl.ir.nodes import Fused
from streamdsl.runtime.drive import BRANCH
from streamdsl.runtime.partitioning import Partitioner
from streamdsl.runtime.processors import StatelessProcessor
from streamdsl.runtime.records import InputEvent, Record
from streamdsl.runtime.stateless import IDENTITY_KINDS

from . import codegen, fastpaths
from .batches import BatchGraph
from .graph import Part

__all__ = ["Segment", "Segments"]


class Segment(NamedTuple):
    """The columnar run of one topic."""

    #: ``ingest(items, pos0, bad, fails) -> (keys, values, timestamps, positions)``
    ingest: Callable
    #: the operator that takes the columns, and its input port
    op: str
    port: str
    #: ``{stage owner: fail(record, exception)}`` for the stateless stages on the way
    fails: dict[str, Callable]
    #: ``columns(keys, values, timestamps, positions, source, fail, parts=None)``: the
    #: operator over a run, ``[(partition, that task's outputs)]`` (its columnar fast paths;
    #: ``parts``: each row's partition when not its key's)
    columns: Callable
    #: the sink that is the operator's only output, when ``columns`` builds its records
    sink: str | None
    #: the nodes on the way, for ``explain``
    chain: list[str]
    #: the registered fast paths the operator runs with over the columns, for ``explain``
    paths: tuple[str, ...] = ()


class Segments:
    """The columnar runs of a plan's topics, built on first use."""

    def __init__(self, batches: BatchGraph,
                 bad: Callable[[str, str, InputEvent], None]):
        self.batches = batches
        self.wiring = batches.wiring
        self.bad = bad
        self._segments: dict[str, Segment | None] = {}

    def segment(self, topic: str) -> Segment | None:
        """``topic``'s columnar run: when its one source is followed by stateless stages only,
        into an operator with a ``columns`` fast path; else None."""
        if topic in self._segments:
            return self._segments[topic]
        self._segments[topic] = None
        wiring = self.wiring
        steps = {name: s[0] for name, s in self.batches.steps.items()}
        plan = wiring.plan
        (name,) = wiring.sources[topic]
        source = plan.node(name)
        chain: list[tuple[str, Any]] = []
        through: list[str] = []
        cur = name
        while True:
            edges = wiring.edges[cur]
            if len(edges) != 1 or edges[0].out is not None:
                return None
            dst, port = edges[0].dst, edges[0].port
            if dst in wiring.writers:
                return self._to_sink(topic, source, chain, through, dst)
            if steps[dst].kind is BRANCH:
                return None
            proc = steps[dst].processor
            if not isinstance(proc, StatelessProcessor):
                break
            if len(plan.in_edges(dst)) != 1:
                return None
            node = proc.node
            if node.kind not in IDENTITY_KINDS:
                stages = node.stages if isinstance(node, Fused) else (node,)
                chain += [(dst, st) for st in stages]
                through.append(dst)
            cur = dst
        op_node = plan.node(dst)
        sink = wiring.direct_sink(dst, False)
        if sink in self.batches.merging_sinks:
            sink = None
        tasks = self.batches.steps[dst]
        n = self.batches.partitioner.n
        shared = n > 1 and tasks[1] == tasks[0]  # one processor for every task (keys only)
        rows = self.batches.rows_nodes.get(dst, False)
        fp = fastpaths.find("stream-table-join-to-sink", op_node, port) if sink else None
        if fp is not None:
            fns = [fp.build(tasks[0].processor)] * n if shared else \
                [fp.build(t.processor) for t in tasks]
        else:
            sink = None
            fp = fastpaths.find("tumbling-columns", op_node, port)
            if fp is None:
                return None
            fns = [fp.build(t.processor, rows=rows) for t in tasks]
        partitions_of = _partitions(self.batches.partitioner)
        every = fastpaths.find("tumbling-columns-tasks", op_node, port) if n > 1 else None
        all_tasks = every.build([t.processor for t in tasks], rows=rows) if every else None

        def columns(ks: list, vs: list, tss: list, ps: Any, source: str,
                    fail: Callable, parts: list | None = None) -> list[tuple[int, list]]:
            """The operator over a run of columns: ``[(partition, its task's outputs)]``
            (``parts``: each row's partition, when not its key's: a Kafka run's)."""
            if n == 1 or (shared and sink is not None):  # the sink needs no partition
                return [(0, fns[0](ks, vs, tss, ps, source, fail))]
            if parts is None:
                parts = partitions_of(ks, ps)
            if all_tasks is not None:
                return list(enumerate(all_tasks(ks, vs, tss, ps, source, fail, parts)))
            # each task takes its rows in one pass over the columns (partition order)
            return [(q, fns[q](ks, vs, tss, ps, source, fail, parts, q))
                    for q in sorted(set(parts))]
        ingest_fp = fastpaths.find("columnar-ingest", source)
        ctxs = {owner: steps[owner].processor.ctx for owner, _ in chain}
        ingest = ingest_fp.build(source, chain, ctxs) if ingest_fp is not None else None
        if ingest is None:
            return None
        fail = self.batches.fail
        fails = {owner: (lambda rec, e, owner=owner: fail(owner, rec, e)) for owner, _ in chain}
        paths = (fp.name,) if n == 1 or all_tasks is None else (fp.name, every.name)
        seg = Segment(ingest, dst, port, fails, columns, sink, [name, *through, dst]
                      + ([sink] if sink is not None else []), paths)
        self._segments[topic] = seg
        return seg

    def _to_sink(self, topic: str, source: Any, chain: list[tuple[str, Any]],
                 through: list[str], sink: str) -> Segment | None:
        """The columnar run of a source whose stateless stages end in a sink (fed by nothing
        else): the columns made the sink's records (``sink-columns``), in input order at any
        number of partitions (no stateful operator on the way: the order a merging sink
        restores)."""
        plan = self.wiring.plan
        if len(plan.in_edges(sink)) != 1 or not codegen.columnar_first_stage(chain):
            return None  # a loop per item is no faster than the batches' fused tail
        sink_fp = fastpaths.find("sink-columns", plan.node(sink))
        ingest_fp = fastpaths.find("columnar-ingest", source)
        if sink_fp is None or ingest_fp is None:
            return None
        steps = self.batches.steps
        ctxs = {owner: steps[owner][0].processor.ctx for owner, _ in chain}
        ingest = ingest_fp.build(source, chain, ctxs)
        if ingest is None:
            return None
        to_sink = sink_fp.build(plan.node(sink))

        def columns(ks: list, vs: list, tss: list, ps: Any, source: str,
                    fail: Callable, parts: list | None = None) -> list[tuple[int, list]]:
            return [(0, to_sink(ks, vs, tss, ps, source, fail))]
        fail = self.batches.fail
        fails = {owner: (lambda rec, e, owner=owner: fail(owner, rec, e)) for owner, _ in chain}
        (name,) = self.wiring.sources[topic]
        seg = Segment(ingest, sink, "in", fails, columns, sink, [name, *through, sink],
                      ("sink-columns",))
        self._segments[topic] = seg
        return seg

    def feed(self, topic: str, chunks: Iterator[tuple[list, int]],
             tick: Callable[[], None] | None,
             batch: Callable[[], ContextManager[None]] | None = None) -> None:
        """Run ``topic``'s remaining chunks (``(items, position of the first)``) columnar,
        each in a ``batch()`` block (the executor's dead letters of one batch)."""
        seg = self.segment(topic)
        assert seg is not None
        (name,) = self.wiring.sources[topic]
        targets = self.wiring.edges[seg.op]
        bad_of = self.bad
        fail_of = self.batches.fail
        op = seg.op

        def bad(ev: InputEvent, reason: str) -> None:
            bad_of(name, reason, ev)

        def fail(rec: Record, exc: Exception) -> None:
            fail_of(op, rec, exc)
        write = self.wiring.sink_output(seg.sink) if seg.sink is not None else None
        ingest, columns = seg.ingest, seg.columns
        run = self.batches.run
        for chunk, pos in chunks:
            with batch() if batch is not None else nullcontext():
                for part, outs in columns(*ingest(chunk, pos, bad, seg.fails), topic, fail):
                    if write is not None:  # the operator built the sink's records itself
                        write(outs)
                    elif outs:
                        inbox: dict[str, list[Part]] = {}
                        for dst, dport, _ in targets:
                            inbox.setdefault(dst, []).append(Part(dport, outs, None, part))
                        run(inbox)
            if tick is not None:
                tick()


def _partitions(partitioner: Partitioner) -> Callable[[list, Any], list | None]:
    """``partitions(keys, positions)``: each row's partition (None with one partition), from
    the partitioner's cache by one C-level ``map``; a miss, or a null key, takes the
    partitioner."""
    if partitioner.n == 1:
        return lambda ks, ps: None
    cache_get = partitioner.cache.get

    def partitions(ks: list, ps: Any) -> list:
        try:
            parts = list(map(cache_get, ks))
        except TypeError:  # an unhashable key
            parts = [None] * len(ks)
        if None in parts:
            parts = [q if q is not None else partitioner(k, p)
                     for q, k, p in zip(parts, ks, ps)]
        return parts
    return partitions
