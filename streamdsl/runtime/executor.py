"""A push-based, single-threaded executor of a plan over the shared processors.

It is the local backend's engine, and the reference every other backend is compared with.
The semantics are those of processing one input record at a time, depth first through the
graph (as a Kafka Streams task does); several sources are merged in timestamp-synchronized
order.

``feed_many`` moves runs of input records through the graph in batches, operator by
operator, which costs far fewer Python calls per record. That gives every operator exactly
the input sequence depth-first processing gives it when no operator has two inputs reachable
from the same source topic (a branch merged back, a self-join); for plans with such a
diamond, and for ``feed``, records go one at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import networkx as nx

from ..ir.plan import Plan
from .build import make_processor
from .metrics import Metrics
from .ordering import merge_by_timestamp
from .failures import bad_input, record_failure
from .processors import BadRecord, BranchProcessor, StatelessProcessor, make_ingest
from .records import DeadLetter, InputEvent, OutputRecord, Record

__all__ = ["Executor", "merge_inputs"]

SinkWriter = Callable[[OutputRecord], None]


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
    BATCH = 256

    def feed_many(self, events: Iterable[InputEvent]) -> None:
        """Process events in order (in batches when that gives the same results)."""
        if not self.batchable:
            for ev in events:
                self.feed(ev)
            return
        batch: list[InputEvent] = []
        topic = None
        size = self.BATCH
        for ev in events:
            if ev.topic != topic or len(batch) >= size:
                if batch:
                    self._feed_batch(topic, batch)
                batch = []
                topic = ev.topic
            batch.append(ev)
        if batch:
            self._feed_batch(topic, batch)

    def _feed_batch(self, topic: str | None, events: list[InputEvent]) -> None:
        names = self._sources.get(topic)  # type: ignore[arg-type]
        if names is None:
            raise KeyError(f"unknown source {topic!r}; sources: {', '.join(self._sources)}")
        n = len(events)
        self.metrics.records_in += n
        self.metrics.in_by_source[topic] += n
        for name in names:
            ingest = self._ingest[name]
            recs: list[Record] = []
            append = recs.append
            for ev in events:
                try:
                    append(ingest(ev))
                except BadRecord as e:
                    self._bad(name, str(e), ev.topic, ev.position, ev.key, ev.value, None)
            if recs:
                self._bpush_fns[name]("in", recs)

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
        """Batch closures (``port, [rec] -> None``): each operator runs over the whole batch,
        then hands its outputs to the next operators in one call."""
        bpush: dict[str, Callable[[str, list[Record]], None]] = {}
        for name in reversed(self._order):
            targets = [(bpush[dst], port, out) for dst, port, out in self._edges[name]]
            bpush[name] = self._make_batch_push(name, targets)
        self._bpush_fns = bpush

    def _make_batch_push(self, name: str, targets: list):
        writer = self._writers.get(name)
        metrics = self.metrics
        fail = self._fail
        if writer is not None:
            topic = self._sink_topic[name]

            def sink_batch(port: str, recs: list[Record]) -> None:
                metrics.records_out += len(recs)
                metrics.out_by_sink[topic] += len(recs)
                for rec in recs:
                    writer(OutputRecord(rec.key, rec.value, rec.ts, rec.window))
            return sink_batch
        plain = [(fn, port) for fn, port, out in targets if out is None]
        routed = [(fn, port, out) for fn, port, out in targets if out is not None]

        def forward(outs: list[Record]) -> None:
            if outs:
                for fn, port in plain:
                    fn(port, outs)

        branch = self._branch.get(name)
        if branch is not None:
            route = branch.route

            def branch_batch(port: str, recs: list[Record]) -> None:
                by_port: dict[str, list[Record]] = {}
                for rec in recs:
                    try:
                        r = route(rec)
                    except Exception as e:
                        fail(name, rec, e)
                        continue
                    if r is not None:
                        by_port.setdefault(r, []).append(rec)
                for fn, port_in, out in routed:
                    part = by_port.get(out)
                    if part:
                        fn(port_in, part)
            return branch_batch
        proc = self.processors[name]
        step = proc.fn if isinstance(proc, StatelessProcessor) else None
        process = proc.process

        def batch(port: str, recs: list[Record]) -> None:
            outs: list[Record] = []
            extend = outs.extend
            for rec in recs:
                try:
                    extend(step(rec) if step is not None else process(port, rec))
                except Exception as e:
                    fail(name, rec, e)
            forward(outs)
        return batch

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
