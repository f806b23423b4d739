"""The local backend's engine: a plan run in this process over the kernel's processors.

Its results are those of processing one input record at a time, depth first through the graph
(as a Kafka Streams task does). How it gets them fast is in the modules beside it:

* ``push.py``: record at a time (``feed``; ``TestDriver`` sessions; end of input);
* ``batches.py``: runs of up to ``BATCH`` input records moved operator by operator
  (``feed_many``), fused tails included;
* ``merge.py``: in-memory inputs merged in the input order run by run (``feed_items``);
* ``columnar.py``: the last in-memory input left ingested into columns;
* ``fastpaths.py`` / ``codegen.py``: the registered second implementations those use.

``execution_notes`` says which of these a plan gets (``streamdsl explain``).
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from itertools import compress, islice
from operator import attrgetter, le
from typing import Any, Callable, Iterable, Iterator

import networkx as nx

from streamdsl.ir.nodes import Fused
from streamdsl.ir.plan import Plan
from streamdsl.ir.tasks import keys_only, sub_topology_of
from streamdsl.runtime.build import make_processor
from streamdsl.runtime.drive import NodeStep, node_step
from streamdsl.runtime.failures import failure, input_failure
from streamdsl.runtime.ingest import BadRecord, make_ingest, make_ingest_items
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.ordering import UNDECODABLE_TS, merge_inputs
from streamdsl.runtime.partitioning import Partitioner
from streamdsl.runtime.processors import Processor
from streamdsl.runtime.records import DeadLetter, InputEvent, OutputRecord, Record

from . import fastpaths
from .batches import BatchGraph, batchable
from .columnar import Segments
from .graph import Handoff, Part, RepartitionWriter, SinkWriter, Wiring
from .merge import merge_runs, running_max
from .push import compile_push

__all__ = ["Executor"]

_KEY = attrgetter("key")


class Executor:
    """Run ``plan`` with record-at-a-time results.

    Args:
        plan: the (validated, usually optimized) plan.
        on_error: ``"fail"`` raises ``RecordError`` at the first bad record; ``"dead-letter"``
            collects it (``dead_letters``) and goes on.
        sink_writers: optional ``{sink topic: callable(OutputRecord)}``; sinks without a writer
            collect their records in ``outputs``.
        dead_letter_writer: optional callable receiving each ``DeadLetter``.
        repartition_writer: optional ``write(node, record, task partition, partition)``:
            every ``Repartition`` node hands its records to it (``partition``: its new key's
            task) instead of passing them on in this process; they come back, through any
            channel (a Kafka topic), as ``Handoff`` items of ``feed_many``. The plan's
            sub-topologies are then connected only through that channel.
    """

    #: Largest run of input records moved through the graph as one batch.
    BATCH = 512

    def __init__(self, plan: Plan, *, on_error: str | None = None,
                 sink_writers: dict[str, SinkWriter] | None = None,
                 dead_letter_writer: Callable[[DeadLetter], None] | None = None,
                 partition_of: Callable[[Record], int] | None = None,
                 exact_tasks: bool = False,
                 repartition_writer: RepartitionWriter | None = None,
                 compile_aggs: bool = True):
        self.plan = plan
        self.on_error = on_error or plan.on_error
        self.metrics = Metrics()
        self.wiring = Wiring.of(plan, self.metrics, sink_writers)
        self.outputs: dict[str, list[OutputRecord]] = self.wiring.outputs
        self.dead_letters: list[DeadLetter] = []
        self._dl_writer = dead_letter_writer
        #: dead letters of the batch being run, written in input order when it ends
        #: (``_batch_letters``); None: written as they come (record at a time)
        self._pending_dl: list[DeadLetter] | None = None
        self._hold_depth = 0
        #: placeholders of undecodable in-memory items not yet taken by the merge
        self._placeholders = 0
        #: the partitions of the run: each sub-topology runs as that many tasks
        self.partitions = plan.partitions
        self.partitioner = Partitioner(plan.partitions)
        partitioner = self.partitioner
        #: ``partition_of(record)``: an ingested record's partition (by default its key's,
        #: or its position's when it has none; a Kafka run gives the record's own partition)
        self.partition_of = partition_of or (lambda rec: partitioner(rec.key, rec.origin[1]))
        self._default_partition_of = partition_of is None
        #: ``steps[name][p]``: node ``name`` in the task of partition ``p``. A stateless node
        #: shares one step between its tasks, and so does a stateful node whose results per
        #: key depend on that key's records only (``ir.tasks.keys_only``: its tasks' states
        #: hold disjoint keys, so one processor gives the same records) unless
        #: ``exact_tasks`` asks for one processor per task (a run whose tasks' states must be
        #: snapshotted apart: a Kafka run sharing its tasks with other instances)
        self.steps: dict[str, list[NodeStep]] = {}
        for n in plan.topological():
            if n.stateful and (exact_tasks or not keys_only(n)):
                self.steps[n.name] = [node_step(n, self.metrics) for _ in range(self.partitions)]
            else:
                self.steps[n.name] = [node_step(n, self.metrics)] * self.partitions
        #: aggregations whose operations are generated (the ``agg-inline`` fast path); a
        #: ``LocalSession`` (TestDriver, record at a time) keeps the kernel's
        self.compiled_aggs: list[str] = []
        if compile_aggs:
            for name, steps in self.steps.items():
                fp = fastpaths.find("agg-inline", plan.node(name))
                if fp is not None:
                    for proc in {id(s.processor): s.processor for s in steps}.values():
                        proc.ops = fp.build(plan.node(name).aggregator)
                    self.compiled_aggs.append(name)
        self.sub_topology = sub_topology_of(plan)
        #: input records per batch: ``BATCH`` for each partition, so that every task's share of
        #: a batch is as large as one partition's batch
        self._batch_size = self.BATCH * self.partitions
        self._ingest = {s.name: make_ingest(s) for s in plan.sources()}
        #: the sub-topologies whose input has ended (``end``)
        self.ended_subs: set[int] = set()
        self._all_subs = frozenset(self.sub_topology.values())
        self._push, self._emit = compile_push(self.wiring, self.steps, partitioner, self._fail,
                                              repartition_writer)
        self.batchable = batchable(plan)
        self.batches = BatchGraph(self.wiring, self.steps, partitioner, self._fail,
                                  repartition_writer)
        self.segments = Segments(self.batches, self._bad)
        #: source nodes whose records are not split by partition (``_parts``): every node
        #: downstream runs one step shared by its tasks (stateless, or stateful by key only)
        #: and none is a repartition, so a record gives what it gives in any task; and every
        #: source feeding those nodes is unsplit too (a node's inputs stay in one order). A
        #: batch run unsplit gives each task's records in input order.
        self.unsplit: set[str] = set()
        if self.partitions > 1 and partition_of is None:
            g = plan.graph
            down = {s.name: nx.descendants(g, s.name) for s in plan.sources()}
            unsplit = {s for s, ds in down.items()
                       if all(self.steps[d][0] is self.steps[d][-1]
                              and plan.node(d).kind != "Repartition" for d in ds)}
            while True:
                keep = {s for s in unsplit
                        if all(t in unsplit for t, ds in down.items() if ds & down[s])}
                if keep == unsplit:
                    break
                unsplit = keep
            self.unsplit = unsplit

    @property
    def ended(self) -> bool:
        """Whether the input has ended for every sub-topology."""
        return self.ended_subs >= self._all_subs

    @property
    def stateful(self) -> bool:
        """Whether the plan keeps state (its snapshots are worth taking)."""
        return any(n.stateful for n in self.plan.nodes())

    def _parts(self, name: str, recs: list[Record], seqs: list[int] | None) -> list[Part]:
        """Records ingested by source node ``name``, as one part per partition (with
        sequence numbers when a node downstream merges the parts of several tasks), each
        part in the records' order, the parts in partition order."""
        if self.partitions == 1:
            return [Part("in", recs, seqs, 0)]
        if seqs is None and self.batches.need_seq[name]:
            seqs = list(range(len(recs)))
        if name in self.unsplit:
            return [Part("in", recs, seqs, 0)]
        parts = self._partitions_of(recs)
        # one pass appending each record to its partition's list: measured 3-4x cheaper than
        # a map/compress pass per partition (each ``q.__eq__`` call builds an argument tuple)
        outs: list[list[Record]] = [[] for _ in range(self.partitions)]
        add = [o.append for o in outs]
        if seqs is None:
            for rec, q in zip(recs, parts):
                add[q](rec)
            return [Part("in", o, None, q) for q, o in enumerate(outs) if o]
        oseqs: list[list[int]] = [[] for _ in range(self.partitions)]
        add_seq = [o.append for o in oseqs]
        for rec, sq, q in zip(recs, seqs, parts):
            add[q](rec)
            add_seq[q](sq)
        return [Part("in", o, oseqs[q], q) for q, o in enumerate(outs) if o]

    def _partitions_of(self, recs: list[Record]) -> list[int]:
        """Each record's partition (``partition_of``): by default from the partitioner's
        cache of keys by C-level ``map`` calls, the partitioner computing what it misses
        (a new key, a null key's position, an unhashable key)."""
        partition_of = self.partition_of
        if not self._default_partition_of:
            return list(map(partition_of, recs))
        try:
            parts = list(map(self.partitioner.cache.get, map(_KEY, recs)))
        except TypeError:  # an unhashable key
            parts = [None] * len(recs)
        if None in parts:
            parts = [q if q is not None else partition_of(r) for q, r in zip(parts, recs)]
        return parts

    # ---- input ------------------------------------------------------------------------------------
    def feed(self, ev: InputEvent | Handoff) -> None:
        """Process one input event through every source node reading its topic (or a
        ``Handoff`` through the nodes its repartition feeds)."""
        if type(ev) is Handoff:
            self._emit[ev.node](ev.record, None, ev.partition)
            return
        names = self.wiring.sources.get(ev.topic)
        if names is None:
            self.wiring.check_topics([ev.topic])
        self.metrics.records_in += 1
        self.metrics.in_by_source[ev.topic] += 1
        for name in names:
            try:
                rec = self._ingest[name](ev)
            except BadRecord as e:
                self._bad(name, str(e), ev)
                continue
            self._push[name]("in", rec, self.partition_of(rec))

    def feed_many(self, events: Iterable[InputEvent | Handoff]) -> None:
        """Process events in order (in batches when that gives the same results); ``Handoff``
        items (records back from a repartition) are not input records (``records_in``)."""
        if not self.batchable:
            for ev in events:
                self.feed(ev)
            return
        size = self._batch_size
        if isinstance(events, list):
            for i in range(0, len(events), size):
                self._feed_batch(events[i:i + size])
            return
        it = iter(events)
        while True:
            batch = list(itertools.islice(it, size))
            if not batch:
                return
            self._feed_batch(batch)

    def _feed_batch(self, events: list[InputEvent]) -> None:
        """Ingest a run of events (of one or several topics; ``Handoff`` items too) and move it
        through the graph; its dead letters come out in the events' order."""
        with self._batch_letters(lambda: {(ev.record.origin if type(ev) is Handoff
                                           else (ev.topic, ev.position)): i
                                          for i, ev in enumerate(events)}):
            self._run_events(events)

    def _run_events(self, events: list[InputEvent | Handoff]) -> None:
        topic = getattr(events[0], "topic", None)
        sources = self.wiring.sources
        inbox: dict[str, list[Part]] = {}
        if topic is not None and getattr(events[-1], "topic", None) == topic and \
                all(type(ev) is InputEvent and ev.topic == topic for ev in events):
            names = sources.get(topic)
            if names is None:
                self.wiring.check_topics([topic])
            n = len(events)
            self.metrics.records_in += n
            self.metrics.in_by_source[topic] += n
            # One topic: no operator can receive records on two ports, no sequence numbers.
            for name in names:
                recs = self._ingest_many(name, events)
                if recs:
                    inbox[name] = self._parts(name, recs, None)
        else:
            per_source: dict[str, tuple[list[Record], list[int]]] = {}
            handed: dict[tuple[str, str, int], tuple[list[Record], list[int]]] = {}
            in_by_source = self.metrics.in_by_source
            edges = self.wiring.edges
            for i, ev in enumerate(events):
                if type(ev) is Handoff:
                    for dst, port, _out in edges[ev.node]:
                        got = handed.get((dst, port, ev.partition))
                        if got is None:
                            got = handed[(dst, port, ev.partition)] = ([], [])
                        got[0].append(ev.record)
                        got[1].append(i)
                    continue
                names = sources.get(ev.topic)
                if names is None:
                    self.wiring.check_topics([ev.topic])
                self.metrics.records_in += 1
                in_by_source[ev.topic] += 1
                for name in names:
                    try:
                        rec = self._ingest[name](ev)
                    except BadRecord as e:
                        self._bad(name, str(e), ev)
                        continue
                    got = per_source.get(name)
                    if got is None:
                        got = per_source[name] = ([], [])
                    got[0].append(rec)
                    got[1].append(i)
            for name, (recs, seqs) in per_source.items():
                inbox[name] = self._parts(name, recs, seqs)
            for (dst, port, q), (recs, seqs) in sorted(handed.items(), key=lambda kv: kv[0][2]):
                inbox.setdefault(dst, []).append(Part(port, recs, seqs, q))
        self.batches.run(inbox)

    def feed_ingested(self, name: str, recs: list[Record]) -> None:
        """Records that source node ``name`` ingested already (the Kafka loop ingests each
        record once, as it reads it, to merge by event time), in order; counted as read."""
        n = len(recs)
        self.metrics.records_in += n
        self.metrics.in_by_source[self.plan.node(name).topic] += n
        if not self.batchable:
            push, partition_of = self._push[name], self.partition_of
            for rec in recs:
                push("in", rec, partition_of(rec))
            return
        size = self._batch_size
        for i in range(0, n, size):
            batch = recs[i:i + size]
            with self._batch_letters(lambda batch=batch: {r.origin: j
                                                          for j, r in enumerate(batch)}):
                self.batches.run({name: self._parts(name, batch, None)})

    def feed_ingested_mixed(self, names: list[str], recs: list[Record]) -> None:
        """``feed_ingested`` of records of several source nodes, ``recs[i]`` ingested by
        ``names[i]``, in that order."""
        if not self.batchable:
            for name, rec in zip(names, recs):
                self.feed_ingested(name, [rec])
            return
        size = self._batch_size
        metrics = self.metrics
        for start in range(0, len(recs), size):
            per_source: dict[str, tuple[list[Record], list[int]]] = {}
            for i in range(start, min(start + size, len(recs))):
                name = names[i]
                got = per_source.get(name)
                if got is None:
                    got = per_source[name] = ([], [])
                got[0].append(recs[i])
                got[1].append(i - start)
            inbox: dict[str, list[Part]] = {}
            for name, (rs, seqs) in per_source.items():
                metrics.records_in += len(rs)
                metrics.in_by_source[self.plan.node(name).topic] += len(rs)
                inbox[name] = self._parts(name, rs, seqs if len(per_source) > 1 else None)
            batch = recs[start:start + size]
            with self._batch_letters(lambda batch=batch: {r.origin: j
                                                          for j, r in enumerate(batch)}):
                self.batches.run(inbox)

    def feed_columns(self, name: str, values: list, positions: list, parts: list[int]) -> None:
        """Records of source node ``name`` as columns, in order: ``values[i]`` a dict with the
        source's key and timestamp fields (an int in range), at ``positions[i]``, in the task of
        partition ``parts[i]`` (the Kafka loop's columnar hand-over, ``kafka_columns``), run
        through the source's columnar run (``segments``: there must be one); counted as read.
        Equal to ``feed_ingested`` of the records the source's ingest makes of them.
        """
        topic = self.plan.node(name).topic
        seg = self.segments.segment(topic)
        assert seg is not None, f"no columnar run for {topic!r}"
        n = len(values)
        self.metrics.records_in += n
        self.metrics.in_by_source[topic] += n
        fail_of, op = self.batches.fail, seg.op

        def fail(rec: Record, exc: Exception) -> None:
            fail_of(op, rec, exc)

        def at(rec: Record) -> Record:  # the stages' failures name the record's place in the run
            rec.origin = (topic, positions[rec.origin[1]])
            return rec
        fails = {owner: (lambda rec, e, f=f: f(at(rec), e)) for owner, f in seg.fails.items()}

        def bad(ev: InputEvent, reason: str) -> None:  # (the caller checked every value)
            raise AssertionError(f"feed_columns: {reason}")
        with self._batch_letters(lambda: {(topic, p): j for j, p in enumerate(positions)}):
            ks, vs, tss, ps = seg.ingest(values, 0, bad, fails)
            if len(ps) < n:  # some filtered out
                parts = list(map(parts.__getitem__, ps))
                ps = list(map(positions.__getitem__, ps))
            else:
                ps = positions
            if not ks:
                return
            outs_of = seg.columns(ks, vs, tss, ps, topic, fail, parts)
            if seg.sink is not None:  # the operator built the sink's records itself
                write = self.wiring.sink_output(seg.sink)
                for _, outs in outs_of:
                    write(outs)
                return
            targets = self.wiring.edges[seg.op]
            for part, outs in outs_of:  # (as ``Segments.feed`` runs them)
                if outs:
                    inbox: dict[str, list[Part]] = {}
                    for dst, dport, _ in targets:
                        inbox.setdefault(dst, []).append(Part(dport, outs, None, part))
                    self.batches.run(inbox)

    def _ingest_many(self, name: str, events: list[InputEvent]) -> list[Record]:
        ingest = self._ingest[name]
        try:
            return [ingest(ev) for ev in events]
        except BadRecord:
            pass
        recs: list[Record] = []
        append = recs.append
        for ev in events:
            try:
                append(ingest(ev))
            except BadRecord as e:
                self._bad(name, str(e), ev)
        return recs

    def can_feed_items(self, topics: Iterable[str]) -> bool:
        """Whether ``feed_items`` can take these topics (batched plan, one source each)."""
        return self.batchable and all(len(self.wiring.sources.get(t, ())) == 1 for t in topics)

    def feed_items(self, inputs: dict[str, Iterable[Any]],
                   tick: Callable[[], None] | None = None,
                   first_positions: dict[str, int] | None = None) -> None:
        """Process in-memory inputs (``{topic: items}``, items as the memory connector takes
        them) in the order ``merge_inputs`` defines, each item ingested once and no
        ``InputEvent`` built: the fast path of ``run`` over lists and generators.

        Each topic is ingested in runs of ``BATCH`` items, lazily (a generator of any length
        is fine); several topics are merged by record timestamp, ties to the topic declared
        first (``merge.py``), so every operator sees what ``feed_many(merge_inputs(...))``
        gives it (an item that cannot be ingested is dead-lettered when its run is ingested).
        Once a single topic is left, its runs go columnar when the plan allows
        (``columnar.py``). ``tick`` is called after every batch. Each topic's first item has
        position ``first_positions[topic]`` (default 0).
        """
        self.wiring.check_topics(inputs)
        topics = [t for t in self.plan.source_topics() if t in inputs]
        first = first_positions or {}
        chunks = {t: self._chunks(t, inputs[t], first.get(t, 0)) for t in topics}
        if len(topics) == 1:
            self._feed_alone(topics[0], chunks[topics[0]], tick)
            return
        names = [self.wiring.sources[t][0] for t in topics]
        ingest = [self._merge_ingester(t) for t in topics]

        carry = [UNDECODABLE_TS] * len(topics)  # each topic's largest timestamp so far
        pre = [self._prefilter(t) for t in topics]

        def next_run(j: int):
            # the runs' merge keys: the running maximum of each topic's timestamps, always in
            # order (``merge.running_max``: the same merged order as the timestamps give)
            for chunk, pos in chunks[topics[j]]:
                if pre[j] is not None:
                    got = pre[j](chunk, pos, carry[j])
                    if got is not None:
                        recs, keys, carry[j] = got
                        if recs:
                            return recs, keys
                        continue
                recs = ingest[j](chunk, pos)
                if recs:
                    tss = [r.ts for r in recs]
                    if not all(map(le, tss, islice(tss, 1, None))) or tss[0] < carry[j]:
                        tss = running_max(tss, carry[j])
                    carry[j] = tss[-1]
                    return recs, tss
            return None

        def flush(parts) -> None:
            def order() -> dict:
                return {r.origin: s for recs, seqs in parts for r, s in zip(recs, seqs)}
            with self._batch_letters(order):
                inbox = {}
                for j, (recs, seqs) in enumerate(parts):
                    recs, seqs = self._undecodable(names[j], recs, seqs)
                    if recs:
                        inbox[names[j]] = self._parts(names[j], recs, seqs)
                self.batches.run(inbox)
            if tick is not None:
                tick()
        left = merge_runs(len(topics), next_run, self.BATCH, flush)
        if left is not None:  # one topic left: no more merging, no sequence numbers
            j, rest = left
            with self._batch_letters(None, topics[j]):
                rest, _ = self._undecodable(names[j], rest, None)
                if rest:
                    self.batches.run({names[j]: self._parts(names[j], rest, None)})
            self._feed_alone(topics[j], chunks[topics[j]], tick)

    def _prefilter(self, topic: str) -> Callable | None:
        """``run(items, pos0, carry) -> (records, their merge keys, new carry)`` or None (then
        the run takes ``_merge_ingester``): the ``merge-prefilter`` fast path, for a topic
        whose keyless source feeds only a filter of int fields (``codegen.compile_prefilter``):
        records are built for the items the filter keeps only."""
        (name,) = self.wiring.sources[topic]
        edges = self.wiring.edges[name]
        if len(edges) != 1 or edges[0].out is not None:
            return None
        dst = edges[0].dst
        node = self.plan.node(dst)
        if len(self.plan.in_edges(dst)) != 1 or dst in self.wiring.writers:
            return None
        first = node.stages[0] if isinstance(node, Fused) else node
        fp = fastpaths.find("merge-prefilter", self.plan.node(name))
        test = fp.build(self.plan.node(name), first) if fp is not None else None
        if test is None:
            return None

        def run(items: list, pos0: int, carry: int):
            got = test(items)
            if got is None:
                return None
            mask, tss = got
            keys = tss if all(map(le, tss, islice(tss, 1, None))) and tss[0] >= carry \
                else running_max(tss, carry)
            recs = [Record(None, v, ts, None, (topic, p)) for v, ts, p in
                    compress(zip(items, tss, itertools.count(pos0)), mask)]
            return recs, list(compress(keys, mask)), keys[-1]
        return run

    def _merge_ingester(self, topic: str) -> Callable[[list, int], list[Record]]:
        """``_items_ingester`` for the merge of several topics: an item that cannot be
        ingested stays in the run as a placeholder record (``_Undecodable``, at
        ``UNDECODABLE_TS`` as ``merge_inputs`` places it) and is dead-lettered where the
        merge takes it (``_undecodable``), so its dead letter comes in input order."""
        (name,) = self.wiring.sources[topic]
        ingest = make_ingest_items(self.plan.node(name))

        def run(chunk: list, pos: int) -> list[Record]:
            bad: list[Record] = []
            recs = ingest(chunk, pos, lambda ev, reason: bad.append(
                Record(None, _Undecodable(ev, reason), UNDECODABLE_TS, None,
                       (topic, ev.position))))
            if bad:  # back in position order among the records
                self._placeholders += len(bad)
                recs = sorted(recs + bad, key=lambda r: r.origin[1])
            return recs
        return run

    def _undecodable(self, name: str, recs: list[Record], seqs: list[int] | None
                     ) -> tuple[list[Record], list[int] | None]:
        """``recs`` (and ``seqs``) without the placeholders of ``_merge_ingester``, each
        dead-lettered (its source node ``name``)."""
        if not self._placeholders or not any(type(r.value) is _Undecodable for r in recs):
            return recs, seqs
        keep = []
        keep_seqs: list[int] | None = [] if seqs is not None else None
        for i, r in enumerate(recs):
            if type(r.value) is _Undecodable:
                self._placeholders -= 1
                self._bad(name, r.value.reason, r.value.event)
                continue
            keep.append(r)
            if keep_seqs is not None:
                keep_seqs.append(seqs[i])  # type: ignore[index]
        return keep, keep_seqs

    def _items_ingester(self, topic: str) -> Callable[[list, int], list[Record]]:
        (name,) = self.wiring.sources[topic]
        ingest = make_ingest_items(self.plan.node(name))
        bad_of = self._bad

        def bad(ev: InputEvent, reason: str) -> None:
            bad_of(name, reason, ev)
        return lambda chunk, pos: ingest(chunk, pos, bad)

    def _feed_alone(self, topic: str, chunks: Iterator[tuple[list, int]],
                    tick: Callable[[], None] | None) -> None:
        """The rest of ``topic``'s runs, the only input left."""
        if self.segments.segment(topic) is not None:
            self.segments.feed(topic, chunks, tick,
                               lambda: self._batch_letters(None, topic))
            return
        (name,) = self.wiring.sources[topic]
        ingest = self._items_ingester(topic)
        for chunk, pos in chunks:
            with self._batch_letters(None, topic):
                recs = ingest(chunk, pos)
                if recs:
                    self.batches.run({name: self._parts(name, recs, None)})
            if tick is not None:
                tick()

    def _chunks(self, topic: str, items: Iterable[Any], pos: int = 0) -> Iterator[tuple[list, int]]:
        """``(run of up to BATCH items per partition, position of its first)``, counted as
        read."""
        size = self._batch_size
        metrics = self.metrics
        if isinstance(items, list):
            chunks: Iterator[list] = (items[i:i + size] for i in range(0, len(items), size))
        else:
            it = iter(items)
            chunks = iter(lambda: list(itertools.islice(it, size)), [])
        for chunk in chunks:
            metrics.records_in += len(chunk)
            metrics.in_by_source[topic] += len(chunk)
            yield chunk, pos
            pos += len(chunk)

    def merged(self, inputs: dict[str, Iterable[InputEvent]]) -> Iterator[InputEvent]:
        """The input order the semantics define (``runtime.ordering.merge_inputs``)."""
        self.wiring.check_topics(inputs)
        return merge_inputs(self.plan, inputs)

    def end(self, sub_topologies: Iterable[int] | None = None) -> None:
        """End of input: stream time goes to infinity, every window closes, in topological
        order (each node's tasks by partition). ``sub_topologies``: only theirs (a run cut at
        its repartitions ends each once what its upstream wrote has come back); the others
        by default. A sub-topology's input ends once."""
        subs = set(self._all_subs if sub_topologies is None else sub_topologies) - self.ended_subs
        if not subs:
            return
        self.ended_subs |= subs
        sub_of = self.sub_topology
        for name in self.wiring.order:
            if sub_of[name] not in subs:
                continue
            emit = self._emit[name]
            steps = self.steps[name]
            for part, step in enumerate(steps[:1] if steps[1:2] == steps[:1] else steps):
                try:
                    outs = step.processor.on_end()
                except Exception as e:  # a user function failing while windows close
                    self._fail(name, None, e)
                    continue
                for rec in outs:
                    emit(rec, None, part)

    # ---- failures: the kernel's rules (runtime/failures.py) -----------------------------------
    def _fail(self, name: str, rec: Record | None, exc: Exception) -> None:
        self._dead(failure(self.plan.node(name), rec, exc, self.on_error).raise_or_dead_letter())

    def _bad(self, name: str, reason: str, ev: InputEvent) -> None:
        self._dead(input_failure(name, reason, ev, self.on_error).raise_or_dead_letter())

    def _dead(self, dl: DeadLetter) -> None:
        self.metrics.dead_lettered += 1
        if self._pending_dl is not None:
            self._pending_dl.append(dl)
        elif self._dl_writer is not None:
            self._dl_writer(dl)
        else:
            self.dead_letters.append(dl)

    def _write_letters(self, letters: list[DeadLetter]) -> None:
        for dl in letters:
            if self._dl_writer is not None:
                self._dl_writer(dl)
            else:
                self.dead_letters.append(dl)

    @contextmanager
    def _batch_letters(self, order: Callable[[], dict] | None,
                       topic: str | None = None) -> Iterator[None]:
        """Within the block (one batch), dead letters are held and then written in input
        order, as record-at-a-time processing meets them (a batch runs operator by operator,
        so an ingest failure would otherwise come before a map failure of an earlier record):
        by ``order()[(source, position)]`` (the record's place in the batch; None: one
        source, ``topic``, whose positions are in order); a letter whose record is not in the
        batch (ingested ahead of the merge) where the merge would have taken it, one derived
        from no input record (a window's result) last (``_in_input_order``). Nested blocks
        join the outer one."""
        self._hold_depth += 1
        if self._pending_dl is None:
            self._pending_dl = []
        try:
            yield
        finally:
            self._hold_depth -= 1
            if self._hold_depth == 0:
                held = self._pending_dl
                self._pending_dl = None
                self._write_letters(_in_input_order(held, order, topic) if len(held) > 1
                                    else held)

    # ---- introspection --------------------------------------------------------------------------------
    def execution_notes(self) -> list[str]:
        """How this executor runs the plan (``streamdsl explain`` prints these)."""
        tasks = []
        if self.partitions > 1:
            n = len({s for s in self.sub_topology.values()}) * self.partitions
            tasks = [f"{n} tasks ({self.partitions} partitions), all in this process: each "
                     "stateful operator has its own state and stream time per partition"]
            if self.unsplit:
                topics = sorted({self.plan.node(s).topic for s in self.unsplit})
                tasks.append(f"not split by partition: {', '.join(topics)} (every operator "
                             "after it keeps state by key only, shared by its tasks; records "
                             "stay in input order)")
        if not self.batchable:
            return tasks + ["record at a time: an operator has two inputs fed by the same "
                            "source topic"]
        out = tasks + [f"batched: runs of up to {self.BATCH} input records, operator by operator"]
        for topic, names in self.wiring.sources.items():
            seg = self.segments.segment(topic) if len(names) == 1 else None
            if seg is not None:
                port_note = f" (port {seg.port})" if seg.port != "in" else ""
                if seg.sink == seg.op:
                    port_note += " (outputs built for the sink directly)"
                elif seg.sink is not None:
                    port_note += ", outputs built for the sink directly"
                out.append(f"columnar ingest of in-memory input: {' -> '.join(seg.chain)}"
                           f"{port_note}")
        single = [t for t, names in self.wiring.sources.items() if len(names) == 1]
        if len(single) > 1:
            out += [f"merged runs filtered before records are built: {names[0]} -> "
                    f"{self.wiring.edges[names[0]][0].dst}"
                    for t, names in self.wiring.sources.items()
                    if t in single and self._prefilter(t) is not None]
        out += [f"fused into the sink: {' -> '.join(chain)}" for chain in self.batches.tails]
        fps = self.fast_paths()
        if fps:
            out.append("fast paths (each tested equal to its kernel rule): "
                       + ", ".join(fp.name for fp in fps))
        return out

    def fast_paths(self) -> list[fastpaths.FastPath]:
        """The registered fast paths this executor uses for its plan (in-memory inputs)."""
        used = {n for name in self.wiring.order for n in self.batches.fast_paths(name)}
        if self.batches.tails:
            used.add("fused-tail")
        single = [t for t, names in self.wiring.sources.items() if len(names) == 1]
        for topic in single:
            seg = self.segments.segment(topic)
            if seg is not None:
                used.add("columnar-ingest")
                used.update(seg.paths)
        if len(single) > 1:
            used.add("ordered-run-merge")
            if any(self._prefilter(t) is not None for t in single):
                used.add("merge-prefilter")
        if self.compiled_aggs:
            used.add("agg-inline")
        return [fp for fp in fastpaths.FAST_PATHS if fp.name in used]

    def task_processors(self) -> dict[str, dict[str, Processor]]:
        """Task id (``"<sub-topology>_<partition>"``) -> its stateful nodes' processors (a
        processor shared by a node's tasks is listed under its first task)."""
        out: dict[str, dict[str, Processor]] = {}
        for name, steps in self.steps.items():
            if steps[0].node.stateful:
                sub = self.sub_topology[name]
                shared = steps[1:2] == steps[:1]  # one processor for every task: listed once
                for p, step in enumerate(steps[:1] if shared else steps):
                    out.setdefault(f"{sub}_{p}", {})[name] = step.processor
        return out

    def reset_tasks(self, tasks: set[str]) -> None:
        """Empty the state of ``tasks`` (task ids), as a fresh run's: a task that moved to
        another instance, or one about to be restored."""
        procs = self.task_processors()
        for task in tasks:
            for name, proc in procs.get(task, {}).items():
                fresh = make_processor(self.plan.node(name), self.metrics)
                proc.restore(fresh.snapshot())

    def state_sizes(self) -> dict[str, int]:
        """Number of state entries held per stateful operator (all its tasks)."""
        sizes: dict[str, int] = {}
        for procs in self.task_processors().values():
            for name, proc in procs.items():
                sizes[name] = sizes.get(name, 0) + proc.state_size()
        return sizes

    def snapshot(self, live: bool = False) -> dict:
        """The state of every task: ``{task id: {node: its store snapshot}}`` (``live=True``:
        the stores' data itself, for a caller that pickles it at once)."""
        return {task: {n: p.snapshot(live) for n, p in procs.items()}
                for task, procs in self.task_processors().items()}

    def restore(self, snap: dict) -> None:
        """Restore the tasks of ``snapshot()``'s result (all of them, or some)."""
        tasks = self.task_processors()
        for task, nodes in snap.items():
            for n, s in nodes.items():
                tasks[task][n].restore(s)


class _Undecodable:
    """The value of a placeholder record: an in-memory item that cannot be ingested, kept in
    its topic's run until the merge takes it (``Executor._merge_ingester``)."""

    __slots__ = ("event", "reason")

    def __init__(self, event: InputEvent, reason: str):
        self.event = event
        self.reason = reason


def _in_input_order(letters: list[DeadLetter], order: Callable[[], dict] | None,
                    topic: str | None) -> list[DeadLetter]:
    """``letters`` sorted stably by the input place of the record each comes from (see
    ``Executor._batch_letters``): ``order()`` maps ``(source, position)`` to the place of the
    batch's records; None: the batch is ``topic``'s records in position order. A letter
    derived from no input record comes last."""
    end = float("inf")
    if order is None:
        def place(dl: DeadLetter) -> Any:
            if dl.source is None:
                return end
            if dl.source != topic or not isinstance(dl.position, (int, float)):
                return -1
            return dl.position
        return sorted(letters, key=place)
    places = order()

    def place_of(dl: DeadLetter) -> Any:
        if dl.source is None:
            return end
        return places.get((dl.source, dl.position), -1)
    return sorted(letters, key=place_of)
