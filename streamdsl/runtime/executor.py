"""A push-based, single-threaded executor of a plan over the shared processors.

It is the local backend's engine, and the reference every other backend is compared with.
The semantics are those of processing one input record at a time, depth first through the
graph (as a Kafka Streams task does); several sources are merged in timestamp-synchronized
order.

``feed_many`` moves runs of input records through the graph in batches, operator by
operator, which costs far fewer Python calls per record. That gives every operator exactly
the input sequence depth-first processing gives it when no operator has two inputs reachable
from the same source topic (a branch merged back, a self-join); for plans with such a
diamond, and for ``feed``, records go one at a time. A run may mix topics: records carry the
position of the input record they derive from, and an operator with several inputs gets them
merged back into that order. ``feed_items`` is the same for in-memory inputs, without an
``InputEvent`` per item, and with the fused columnar ingest (``fused.compile_columns``) where
the plan allows; row-local operators down to a sink run as one generated loop
(``fused.compile_tail``). ``execution_notes`` says which of these a plan gets (``streamdsl
explain`` prints it); docs/performance.md describes them.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from itertools import islice, repeat
from operator import add, itemgetter, le
from typing import Any, Callable, Iterable, Iterator

import networkx as nx

from ..ir.nodes import Fused
from ..windows import TumblingWindow
from ..ir.plan import Plan
from .build import _SourceProcessor, make_processor
from .metrics import Metrics
from .ordering import merge_by_timestamp
from .failures import bad_input, record_failure
from .processors import (BadRecord, BranchProcessor, Processor, StatelessProcessor, make_ingest,
                         make_ingest_items)
from .records import DeadLetter, InputEvent, OutputRecord, Record, Rows

__all__ = ["Executor", "merge_inputs"]

SinkWriter = Callable[[OutputRecord], None]

_topic_of = itemgetter(1)


def _merge_ordered_runs(heads: list[list], parts: list[tuple[list, list]], seq: int) -> int:
    """One step of ``Executor.feed_items``'s merge when every head's run is in timestamp
    order: the records that come before the end of the run that ends first.

    Merging sorted runs by (timestamp, topic index) takes, from each topic, the records up to
    that run's last one (a lower topic index wins a tie) and no record of a run not yet
    loaded (every other run ends later). Their merged order is a stable sort of their
    timestamps concatenated in topic order; each record's sequence number is ``seq`` plus
    its place in it. The heads move past what was taken; returns the next sequence number.
    """
    e = min(heads, key=lambda h: (h[4][-1], h[1]))
    bound, ej = e[4][-1], e[1]
    segs = []
    all_ts: list[int] = []
    for h in sorted(heads, key=_topic_of):
        j, i, tss = h[1], h[3], h[4]
        hi = len(tss) if h is e else (bisect_right if j < ej else bisect_left)(tss, bound, i)
        if hi > i:
            segs.append((h, i, hi))
            all_ts += tss[i:hi]
    m = len(all_ts)
    order = sorted(range(m), key=all_ts.__getitem__)
    place = sorted(range(m), key=order.__getitem__)  # the inverse permutation
    off = 0
    for h, i, hi in segs:
        recs, pseq = parts[h[1]]
        recs += h[2][i:hi]
        pseq += map(add, place[off:off + hi - i], repeat(seq))
        off += hi - i
        h[3] = hi
        if hi < len(h[2]):
            h[0] = h[4][hi]
    return seq + m


class Executor:
    """Run ``plan`` record by record.

    Args:
        plan: the (validated, usually optimized) plan.
        on_error: ``"fail"`` raises ``RecordError`` at the first bad record; ``"dead-letter"``
            collects it (``dead_letters``) and goes on.
        sink_writers: optional ``{sink topic: callable(OutputRecord)}``; sinks without a writer
            collect their records in ``outputs``.
        dead_letter_writer: optional callable receiving each ``DeadLetter``.
    """

    def __init__(self, plan: Plan, *, on_error: str | None = None,
                 sink_writers: dict[str, SinkWriter] | None = None,
                 dead_letter_writer: Callable[[DeadLetter], None] | None = None):
        self.plan = plan
        self.on_error = on_error or plan.on_error
        self.metrics = Metrics()
        self.outputs: dict[str, list[OutputRecord]] = {t: [] for t in plan.sink_topics()}
        self.dead_letters: list[DeadLetter] = []
        self._dl_writer = dead_letter_writer
        self._order = [n.name for n in plan.topological()]
        self.processors = {n.name: make_processor(n, self.metrics) for n in plan.topological()}
        self._edges: dict[str, list[tuple[str, str, str | None]]] = {
            name: [(e.dst, e.port, e.out) for e in plan.out_edges(name)] for name in self._order}
        self._sources: dict[str, list[str]] = {}
        self._ingest: dict[str, Callable[[InputEvent], Record]] = {}
        for s in plan.sources():
            self._sources.setdefault(s.topic, []).append(s.name)
            self._ingest[s.name] = make_ingest(s)
        self._writers: dict[str, SinkWriter] = {}
        for s in plan.sinks():
            w = (sink_writers or {}).get(s.topic)
            self._writers[s.name] = w if w is not None else self.outputs[s.topic].append
        self._sink_topic = {s.name: s.topic for s in plan.sinks()}
        self._branch = {n: p for n, p in self.processors.items() if isinstance(p, BranchProcessor)}
        self.ended = False
        self._segments: dict[str, tuple | None] = {}
        self.batchable = self._is_batchable()
        self._compile()
        self._compile_batch()

    # ---- input ------------------------------------------------------------------------------------
    def feed(self, ev: InputEvent) -> None:
        """Process one input event through every source node reading its topic."""
        names = self._sources.get(ev.topic)
        if names is None:
            raise KeyError(f"unknown source {ev.topic!r}; sources: {', '.join(self._sources)}")
        self.metrics.records_in += 1
        self.metrics.in_by_source[ev.topic] += 1
        for name in names:
            try:
                rec = self._ingest[name](ev)
            except BadRecord as e:
                self._bad(name, str(e), ev.topic, ev.position, ev.key, ev.value, None)
                continue
            self._push(name, "in", rec)

    #: Largest run of input records moved through the graph as one batch.
    BATCH = 512

    def feed_many(self, events: Iterable[InputEvent]) -> None:
        """Process events in order (in batches when that gives the same results)."""
        if not self.batchable:
            for ev in events:
                self.feed(ev)
            return
        size = self.BATCH
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
        """Ingest a run of events (of one or several topics) and move it through the graph."""
        topic = events[0].topic
        inbox: dict[str, list] = {}
        if events[-1].topic == topic and all(ev.topic == topic for ev in events):
            names = self._sources.get(topic)
            if names is None:
                raise KeyError(f"unknown source {topic!r}; sources: {', '.join(self._sources)}")
            n = len(events)
            self.metrics.records_in += n
            self.metrics.in_by_source[topic] += n
            # One topic: no operator can receive records on two ports, no sequence numbers.
            for name in names:
                recs = self._ingest_many(name, events)
                if recs:
                    inbox[name] = [("in", recs, None)]
        else:
            per_source: dict[str, tuple[list[Record], list[int]]] = {}
            in_by_source = self.metrics.in_by_source
            for i, ev in enumerate(events):
                names = self._sources.get(ev.topic)
                if names is None:
                    raise KeyError(f"unknown source {ev.topic!r}; sources: "
                                   f"{', '.join(self._sources)}")
                self.metrics.records_in += 1
                in_by_source[ev.topic] += 1
                for name in names:
                    try:
                        rec = self._ingest[name](ev)
                    except BadRecord as e:
                        self._bad(name, str(e), ev.topic, ev.position, ev.key, ev.value, None)
                        continue
                    got = per_source.get(name)
                    if got is None:
                        got = per_source[name] = ([], [])
                    got[0].append(rec)
                    got[1].append(i)
            for name, (recs, seqs) in per_source.items():
                inbox[name] = [("in", recs, seqs)]
        self._run_inbox(inbox)

    def feed_records(self, source: str, recs: list[Record], n_in: int) -> None:
        """Move already-ingested records of one source topic through the graph as one batch
        (``n_in`` input records were read to make them; the rest were dead-lettered)."""
        self.metrics.records_in += n_in
        self.metrics.in_by_source[source] += n_in
        if recs:
            self._run_inbox({name: [("in", recs, None)] for name in self._sources[source]})

    def can_feed_items(self, topics: Iterable[str]) -> bool:
        """Whether ``feed_items`` can take these topics (batched plan, one source each)."""
        return self.batchable and all(len(self._sources.get(t, ())) == 1 for t in topics)

    def feed_items(self, inputs: dict[str, Iterable[Any]],
                   tick: Callable[[], None] | None = None) -> None:
        """Process in-memory inputs (``{topic: items}``, items as the memory connector takes
        them) in the order ``merge_inputs`` defines, each item ingested once and no
        ``InputEvent`` built: the fast path of ``run`` over lists and generators.

        Each topic is ingested in runs of ``BATCH`` items, lazily (a generator of any length
        is fine); several topics are merged by record timestamp, ties to the topic declared
        first, so every operator sees what ``feed_many(merge_inputs(...))`` gives it (an item
        that cannot be ingested is dead-lettered when its run is ingested). Once a single
        topic is left, its runs go through the fused columnar ingest when the plan allows
        (``_segment``). ``tick`` is called after every batch.
        """
        topics = [t for t in self.plan.source_topics() if t in inputs]
        unknown = set(inputs) - set(self._sources)
        if unknown:
            raise KeyError(f"unknown source(s) {sorted(unknown)}; sources: {', '.join(self._sources)}")
        chunks = {t: self._chunks(t, inputs[t]) for t in topics}
        if len(topics) == 1:
            self._feed_alone(topics[0], chunks[topics[0]], tick)
            return
        size = self.BATCH
        names = [self._sources[t][0] for t in topics]
        ingest = [self._run_ingester(t) for t in topics]

        def next_run(j: int) -> tuple[list[Record], list[int] | None] | None:
            """Topic ``j``'s next ingested run, and its timestamps if they are in order."""
            for chunk, pos in chunks[topics[j]]:
                recs = ingest[j](chunk, pos)
                if recs:
                    tss = [r.ts for r in recs]
                    return recs, (tss if all(map(le, tss, islice(tss, 1, None))) else None)
            return None
        # Heads of every topic's record stream: [ts, topic index, records, next index,
        # the run's timestamps when they are in order, else None].
        heads: list[list] = [[0, j, [], 0, []] for j in range(len(topics))]
        parts: list[tuple[list[Record], list[int]]] = [([], []) for _ in topics]

        def refill(h: list) -> None:
            """Head ``h`` has no records left: its topic's next run, or no head."""
            run = next_run(h[1])
            if run:
                h[0], h[2], h[3], h[4] = run[0][0].ts, run[0], 0, run[1]
            else:
                heads.remove(h)

        def flush() -> None:
            self._flush_parts(names, parts)
            if tick is not None:
                tick()
        for h in list(heads):
            refill(h)
        seq = 0
        while len(heads) > 1:
            if all(h[4] is not None for h in heads):
                # Every head's run is in timestamp order: merge up to the end of the run
                # that ends first in one step (C-level sorts, no loop per record).
                seq = _merge_ordered_runs(heads, parts, seq)
                if seq >= size:
                    flush()
                    seq = 0
                for h in [h for h in heads if h[3] == len(h[2])]:
                    refill(h)
                continue
            h = heads[0]
            for other in heads:
                if other[0] < h[0] or (other[0] == h[0] and other[1] < h[1]):
                    h = other
            _, j, recs, i, _ = h
            # Take this topic's records while they stay first (ties go to the lower index).
            lo = None
            for o in heads:
                if o is not h and (lo is None or o[0] < lo[0] or (o[0] == lo[0] and o[1] < lo[1])):
                    lo = o
            prs, pseq = parts[j]
            n = len(recs)
            while i < n:
                r = recs[i]
                if r.ts > lo[0] or (r.ts == lo[0] and lo[1] < j):
                    break
                prs.append(r)
                pseq.append(seq)
                seq += 1
                i += 1
                if seq >= size:
                    flush()
                    seq = 0
                    prs, pseq = parts[j]
            h[3] = i
            if i < n:
                h[0] = recs[i].ts
            else:
                refill(h)
        if seq:
            flush()
        if heads:  # one topic left: no more merging, no sequence numbers
            _, j, recs, i, _ = heads[0]
            self._run_inbox({names[j]: [("in", recs[i:], None)]})
            self._feed_alone(topics[j], chunks[topics[j]], tick)

    def _run_ingester(self, topic: str) -> Callable[[list, int], list[Record]]:
        (name,) = self._sources[topic]
        ingest = make_ingest_items(self.plan.node(name))

        def bad(ev: InputEvent, reason: str) -> None:
            self._bad(name, reason, ev.topic, ev.position, ev.key, ev.value, None)
        return lambda chunk, pos: ingest(chunk, pos, bad)

    def _feed_alone(self, topic: str, chunks: Iterator[tuple[list, int]],
                    tick: Callable[[], None] | None) -> None:
        """The rest of ``topic``'s runs, the only input left."""
        seg = self._segment(topic)
        if seg is not None:
            self._feed_segment(topic, chunks, tick)
            return
        (name,) = self._sources[topic]
        ingest = self._run_ingester(topic)
        for chunk, pos in chunks:
            recs = ingest(chunk, pos)
            if recs:
                self._run_inbox({name: [("in", recs, None)]})
            if tick is not None:
                tick()

    def _flush_parts(self, names: list[str], parts: list) -> None:
        inbox = {}
        for j, (recs, seqs) in enumerate(parts):
            if recs:
                inbox[names[j]] = [("in", recs, seqs)]
                parts[j] = ([], [])
        self._run_inbox(inbox)

    def _segment(self, topic: str) -> tuple | None:
        """The fused ingest of ``topic`` once it is the only input left: when its source is
        followed by stateless stages only, into an operator with a columnar batch path,
        ``(ingest_columns, operator name, its input port, {stage owner: fail})``; else None
        (see ``fused.compile_columns``)."""
        if topic in self._segments:
            return self._segments[topic]
        from .fused import _IDENTITY_KINDS, compile_columns
        self._segments[topic] = None
        (name,) = self._sources[topic]
        chain: list[tuple[str, Any]] = []
        cur = name
        while True:
            edges = self._edges[cur]
            if len(edges) != 1 or edges[0][2] is not None:
                return None
            dst, port = edges[0][0], edges[0][1]
            if dst in self._writers or dst in self._branch:
                return None
            proc = self.processors[dst]
            if not isinstance(proc, StatelessProcessor):
                break
            if len(self.plan.in_edges(dst)) != 1:
                return None
            node = proc.node
            if node.kind not in _IDENTITY_KINDS:
                stages = node.stages if isinstance(node, Fused) else (node,)
                chain += [(dst, st) for st in stages]
            cur = dst
        if type(proc).process_columns is Processor.process_columns:
            return None
        fn = compile_columns(self.plan.node(name), chain)
        if fn is None:
            return None
        fails = {owner: (lambda rec, e, owner=owner: self._fail(owner, rec, e))
                 for owner, _ in chain}
        self._segments[topic] = (fn, dst, port, fails)
        return self._segments[topic]

    def _sink_output(self, sink: str) -> Callable[[list[OutputRecord]], None]:
        """``write(outputs)`` for sink node ``sink``: counts them and hands them to its writer
        (one ``extend`` when the sink collects into ``outputs``)."""
        topic = self._sink_topic[sink]
        writer = self._writers[sink]
        out_list = self.outputs.get(topic)
        metrics = self.metrics
        collect = out_list is not None and writer == out_list.append

        def write(outs: list[OutputRecord]) -> None:
            if outs:
                metrics.records_out += len(outs)
                metrics.out_by_sink[topic] += len(outs)
                if collect:
                    out_list.extend(outs)
                else:
                    for o in outs:
                        writer(o)
        return write

    def _direct_sink(self, op: str) -> str | None:
        """The sink that is ``op``'s only output, if any (its outputs can be built directly)."""
        edges = self._edges[op]
        if op in self._branch or len(edges) != 1 or edges[0][2] is not None:
            return None
        dst = edges[0][0]
        return dst if dst in self._writers else None

    def _feed_segment(self, topic: str, chunks: Iterator[tuple[list, int]],
                      tick: Callable[[], None] | None) -> None:
        fn, op, port, fails = self._segment(topic)
        (name,) = self._sources[topic]
        proc = self.processors[op]
        targets = self._batch_targets[op]

        def bad(ev: InputEvent, reason: str) -> None:
            self._bad(name, reason, ev.topic, ev.position, ev.key, ev.value, None)

        def fail(rec: Record, exc: Exception) -> None:
            self._fail(op, rec, exc)
        sink = self._direct_sink(op)
        write = self._sink_output(sink) if sink is not None else None
        for chunk, pos in chunks:
            ks, vs, tss, ps = fn(chunk, pos, bad, fails)
            if sink is not None:  # the operator builds the sink's records itself
                write(proc.process_columns(ks, vs, tss, ps, topic, fail, port, True))
                if tick is not None:
                    tick()
                continue
            outs = proc.process_columns(ks, vs, tss, ps, topic, fail, port)
            if outs:
                inbox: dict[str, list] = {}
                for dst, dport, _ in targets:
                    inbox.setdefault(dst, []).append((dport, outs, None))
                self._run_inbox(inbox)
            if tick is not None:
                tick()

    def _chunks(self, topic: str, items: Iterable[Any]) -> Iterator[tuple[list, int]]:
        """``(run of up to BATCH items, position of its first)``, counted as read."""
        size = self.BATCH
        metrics = self.metrics
        if isinstance(items, list):
            chunks: Iterator[list] = (items[i:i + size] for i in range(0, len(items), size))
        else:
            it = iter(items)
            chunks = iter(lambda: list(itertools.islice(it, size)), [])
        pos = 0
        for chunk in chunks:
            metrics.records_in += len(chunk)
            metrics.in_by_source[topic] += len(chunk)
            yield chunk, pos
            pos += len(chunk)

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
                self._bad(name, str(e), ev.topic, ev.position, ev.key, ev.value, None)
        return recs

    def _run_inbox(self, inbox: dict[str, list]) -> None:
        """Run every node, in topological order, over the records its inputs produced.

        ``inbox[node]`` lists ``(port, records, sequence numbers or None)`` parts. A node with
        several parts (several inputs) gets them merged by sequence number, the position in
        the batch of the input record each derives from: the order depth-first processing
        would deliver them in.
        """
        runners = self._runners
        targets = self._batch_targets
        for name in self._order:
            parts = inbox.pop(name, None)
            if parts is None:
                continue
            for out_port, outs, seqs in runners[name](parts):
                if outs:
                    for dst, port, want in targets[name]:
                        if want is None or want == out_port:
                            got = inbox.get(dst)
                            if got is None:
                                inbox[dst] = [(port, outs, seqs)]
                            else:
                                got.append((port, outs, seqs))

    def _is_batchable(self) -> bool:
        g = self.plan.graph
        topic_of = {s.name: s.topic for s in self.plan.sources()}
        for name in self._order:
            ins = self.plan.in_edges(name)
            if len(ins) < 2:
                continue
            seen: set[str] = set()
            for e in ins:
                ups = nx.ancestors(g, e.src) | {e.src}
                topics = {topic_of[u] for u in ups if u in topic_of}
                if seen & topics:
                    return False
                seen |= topics
        return True

    def merged(self, inputs: dict[str, Iterable[InputEvent]]) -> Iterator[InputEvent]:
        """The input order the semantics define (see ``merge_inputs``)."""
        unknown = set(inputs) - set(self._sources)
        if unknown:
            raise KeyError(f"unknown source(s) {sorted(unknown)}; sources: {', '.join(self._sources)}")
        return merge_inputs(self.plan, inputs)

    def end(self) -> None:
        """End of input: stream time goes to infinity, every window closes, in topological order."""
        if self.ended:
            return
        self.ended = True
        for name in self._order:
            proc = self.processors[name]
            try:
                outs = proc.on_end()
            except Exception as e:  # a user function failing while windows close
                self._fail(name, None, e)
                continue
            for rec in outs:
                self._forward(name, rec, None)

    # ---- propagation --------------------------------------------------------------------------------
    def _compile(self) -> None:
        """Build one closure per node (``port, rec -> None``) that processes and forwards.

        Built downstream-first, so each closure holds its targets directly: a record moves
        through the graph by plain function calls, without dictionary lookups.
        """
        push: dict[str, Callable[[str, Record], None]] = {}
        emit: dict[str, Callable[[Record, str | None], None]] = {}
        for name in reversed(self._order):
            targets = [(push[dst], port, out) for dst, port, out in self._edges[name]]
            emit[name] = _make_emit(targets)
            push[name] = self._make_push(name, emit[name])
        self._push_fns = push
        self._emit_fns = emit

    def _make_push(self, name: str, emit: Callable[[Record, str | None], None]):
        writer = self._writers.get(name)
        metrics = self.metrics
        if writer is not None:
            topic = self._sink_topic[name]
            counter = metrics.out_by_sink

            def sink(port: str, rec: Record) -> None:
                metrics.records_out += 1
                counter[topic] += 1
                writer(OutputRecord(rec.key, rec.value, rec.ts, rec.window))
            return sink
        fail = self._fail
        branch = self._branch.get(name)
        if branch is not None:
            route = branch.route

            def branch_push(port: str, rec: Record) -> None:
                try:
                    r = route(rec)
                except Exception as e:
                    fail(name, rec, e)
                    return
                if r is not None:
                    emit(rec, r)
            return branch_push
        proc = self.processors[name]
        step = proc.fn if isinstance(proc, StatelessProcessor) else None  # skips one call
        process = proc.process

        def push(port: str, rec: Record) -> None:
            try:
                outs = step(rec) if step is not None else process(port, rec)
            except Exception as e:
                fail(name, rec, e)
                return
            for out in outs:
                emit(out, None)
        return push

    def _compile_batch(self) -> None:
        """One batch runner per node: ``parts -> [(out port, records, seqs)]``."""
        g = self.plan.graph
        multi = {n for n in self._order if len(self.plan.in_edges(n)) > 1}
        need: dict[str, bool] = {}
        for name in reversed(self._order):  # does anything downstream merge inputs?
            need[name] = any(s in multi or need[s] for s in g.successors(name))
        self._need_seq = need
        self._batch_targets = {name: [(dst, port, out) for dst, port, out in self._edges[name]]
                               for name in self._order}
        self._runners = {name: self._make_runner(name, need[name]) for name in self._order}
        absorbed: set[str] = set()
        self._tails: list[list[str]] = []
        for name in self._order:
            if name not in absorbed:
                tail = self._make_tail(name)
                if tail is not None:
                    self._runners[name], chain = tail
                    absorbed.update(chain)
                    self._tails.append([name, *chain])

    def execution_notes(self) -> list[str]:
        """How this executor runs the plan (``streamdsl explain`` prints these)."""
        if not self.batchable:
            return ["record at a time: an operator has two inputs fed by the same source topic"]
        out = [f"batched: runs of up to {self.BATCH} input records, operator by operator"]
        for topic in self._sources:
            if len(self._sources[topic]) == 1 and self._segment(topic) is not None:
                _, op, port, fails = self._segment(topic)
                chain = [self._sources[topic][0], *fails, op]
                port_note = f" (port {port})" if port != "in" else ""
                sink = self._direct_sink(op)
                if sink is not None:
                    chain.append(sink)
                    port_note += ", outputs built for the sink directly"
                out.append(f"columnar ingest of in-memory input: {' -> '.join(chain)}{port_note}")
        out += [f"fused into the sink: {' -> '.join(chain)}" for chain in self._tails]
        return out

    def _make_tail(self, name: str):
        """A runner for ``name`` and the row-local operators after it down to a sink, fused
        (``fused.compile_tail``), and the names of the nodes it absorbs; or None."""
        from ..ir.nodes import TableFilter
        from .fused import _IDENTITY_KINDS, _LINEAR, compile_tail

        def eligible(n: str) -> bool:
            node = self.plan.node(n)
            if n in self._writers:
                return True
            if n in self._branch or len(self.plan.in_edges(n)) != 1:
                return False
            if isinstance(node, TableFilter) or node.kind in _IDENTITY_KINDS:
                return True
            stages = node.stages if isinstance(node, Fused) else (node,)
            return (isinstance(self.processors[n], StatelessProcessor)
                    and all(isinstance(st, _LINEAR) for st in stages))
        if name in self._writers or not eligible(name) or \
                isinstance(self.processors[name], _SourceProcessor):
            return None
        chain = [name]
        cur = name
        while cur not in self._writers:
            edges = self._edges[cur]
            if len(edges) != 1 or edges[0][2] is not None or not eligible(edges[0][0]):
                return None
            cur = edges[0][0]
            chain.append(cur)
        stages: list[tuple[str, Any]] = []
        for n in chain:
            node = self.plan.node(n)
            stages += [(n, st) for st in (node.stages if isinstance(node, Fused) else (node,))]
        fn = compile_tail(stages)
        if fn is None:
            return None
        # An emit-final tumbling window feeding only this tail hands over rows, not records.
        fn_rows = None
        ups = list(self.plan.graph.predecessors(name))
        if len(ups) == 1 and len(self._edges[ups[0]]) == 1:
            up = self.processors[ups[0]]
            if getattr(up, "emit_rows", None) is False and up.final and \
                    isinstance(up.window, TumblingWindow):
                fn_rows = compile_tail(stages, rows=True)
                up.emit_rows = True
        fails = {n: (lambda rec, e, n=n: self._fail(n, rec, e)) for n in chain}
        write = self._sink_output(chain[-1])

        def tail_runner(parts):
            for _, recs, _ in parts:
                write(fn_rows(recs, fails) if type(recs) is Rows else fn(recs, fails))
            return ()
        return tail_runner, chain[1:]

    def _make_runner(self, name: str, need_seq: bool):  # noqa: C901 - one small closure per case
        proc = self.processors[name]
        node_fail = self._fail

        def fail(rec: Record, exc: Exception) -> None:
            node_fail(name, rec, exc)

        if name in self._writers:
            write = self._sink_output(name)
            new = tuple.__new__

            def sink_runner(parts):
                for _, recs, _ in parts:
                    write([new(OutputRecord, (r.key, r.value, r.ts, r.window)) for r in recs])
                return ()
            return sink_runner

        branch = self._branch.get(name)
        if branch is not None:
            route = branch.route

            def branch_runner(parts):
                by_port: dict[str, tuple[list, list | None]] = {}
                for port, recs, seqs in parts:
                    for i, rec in enumerate(recs):
                        try:
                            r = route(rec)
                        except Exception as e:
                            fail(rec, e)
                            continue
                        if r is not None:
                            got = by_port.get(r)
                            if got is None:
                                got = by_port[r] = ([], [] if seqs is not None else None)
                            got[0].append(rec)
                            if got[1] is not None:
                                got[1].append(seqs[i])
                return [(r, recs, seqs) for r, (recs, seqs) in by_port.items()]
            return branch_runner

        if isinstance(proc, _SourceProcessor):  # a stream source forwards what it ingested
            def source_runner(parts):
                return parts
            return source_runner

        process_batch = proc.process_batch
        process_mixed = proc.process_mixed
        step = proc.fn if isinstance(proc, StatelessProcessor) else None

        def one_by_one(items):
            """Outputs and their sequence numbers, record by record."""
            outs: list[Record] = []
            oseqs: list[int] = []
            for s, port, rec in items:
                try:
                    o = step(rec) if step is not None else proc.process(port, rec)
                except Exception as e:
                    fail(rec, e)
                    continue
                if o:
                    outs.extend(o)
                    oseqs.extend([s] * len(o))
            return [(None, outs, oseqs)]

        def runner(parts):
            if len(parts) == 1:
                port, recs, seqs = parts[0]
                if need_seq and seqs is not None:
                    return one_by_one([(s, port, r) for s, r in zip(seqs, recs)])
                return [(None, process_batch(port, recs, fail), None)]
            # Each part is in sequence order: a stable sort by sequence number merges them
            # (at C speed: Timsort merges the runs).
            seqs_all: list[int] = []
            pairs: list[tuple[str, Record]] = []
            for port, recs, seqs in parts:
                seqs_all += seqs
                pairs += zip(itertools.repeat(port, len(recs)), recs)
            order = sorted(range(len(seqs_all)), key=seqs_all.__getitem__)
            items = [pairs[i] for i in order]
            if need_seq:
                return one_by_one([(seqs_all[i], port, r)
                                   for i, (port, r) in zip(order, items)])
            return [(None, process_mixed(items, fail), None)]
        return runner

    def _push(self, name: str, port: str, rec: Record) -> None:
        self._push_fns[name](port, rec)

    def _forward(self, name: str, rec: Record, out_port: str | None) -> None:
        self._emit_fns[name](rec, out_port)

    # ---- errors -------------------------------------------------------------------------------------
    def _fail(self, name: str, rec: Record | None, exc: Exception) -> None:
        self._dead(record_failure(self.plan.node(name), rec, exc, self.on_error))

    def _bad(self, name: str, reason: str, source: str, position: Any, key: Any, value: Any,
             ts: int | None) -> None:
        self._dead(bad_input(name, reason, source, position, key, value, ts, self.on_error))

    def _dead(self, dl: DeadLetter) -> None:
        self.metrics.dead_lettered += 1
        if self._dl_writer is not None:
            self._dl_writer(dl)
        else:
            self.dead_letters.append(dl)

    # ---- introspection --------------------------------------------------------------------------------
    def state_sizes(self) -> dict[str, int]:
        """Number of state entries held per stateful operator."""
        return {n: p.state_size() for n, p in self.processors.items() if p.node.stateful}

    def snapshot(self) -> dict:
        return {n: p.snapshot() for n, p in self.processors.items()}

    def restore(self, snap: dict) -> None:
        for n, s in snap.items():
            self.processors[n].restore(s)





def merge_inputs(plan: Plan, inputs: dict[str, Iterable[InputEvent]]) -> Iterator[InputEvent]:
    """Merge per-source event sequences in Kafka Streams' timestamp-synchronized order.

    Each source keeps its own order; the next event is the head with the smallest timestamp
    (as the source's key/timestamp extraction gives it), ties going to the source declared
    first. Undecodable events go first (they are dead-lettered, so their place changes no
    result). Every backend uses this order for a run's input.
    """
    topics = [t for t in plan.source_topics() if t in inputs]
    if len(topics) == 1:
        return iter(inputs[topics[0]])
    first_source = {}
    for s in plan.sources():
        first_source.setdefault(s.topic, s)
    ingest = {t: make_ingest(first_source[t]) for t in topics}

    def ts_of(ev: InputEvent) -> int:
        try:
            return ingest[ev.topic](ev).ts
        except BadRecord:
            return -(1 << 62)
    return merge_by_timestamp([inputs[t] for t in topics], ts_of)


def _make_emit(targets: list[tuple[Callable[[str, Record], None], str, str | None]]):
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
