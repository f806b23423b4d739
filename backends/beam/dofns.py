"""The DoFns of a compiled pipeline.

Each runs the kernel (``streamdsl.runtime``, the one implementation of the semantics):
``ingest.make_ingest`` at sources, and every node driven as every backend drives it
(``drive.node_step`` / ``drive.drive``), failures classified by ``failures.failure``: a dead
letter, or, with ``on_error="fail"``, a ``RecordError`` the driver raises for the first
failure in the defined order. What the DoFns add is the lineage key each element carries
(``ordering``).

Elements on an edge are *batches*, lists of ``(lineage_key, port, record)`` (a Beam element
costs far more than the record it would carry: a ``WindowedValue``, a trip through the
runner's receivers, an encoding at each stage boundary, size sampling); an edge into a
stateful node carries ``(task, bytes)`` so that a ``GroupByKey`` gathers each task, the
bytes one pickle of a batch whose records are packed as plain tuples (``_pack``), compressed
when the run's DoFns run in worker processes (``_pack_compressed``). A DoFn
emits one element per out edge (and task) for up to ``BATCH`` input records.
What goes back to the driver (records of collected sinks, dead letters, failures) is handed
over at the end of each bundle as ``(lineage_key, ...)`` items, on a named channel
(``runstate``); the driver sorts them by lineage key.
"""

from __future__ import annotations

import atexit
import gc
import pickle
import threading
import traceback
from collections import Counter
from operator import itemgetter
from typing import Any, Iterator, NamedTuple

import apache_beam as beam
import orjson
import zstandard
from apache_beam.metrics import Metrics as BeamMetrics
from apache_beam.pvalue import TaggedOutput

from streamdsl.connectors import open_sink, open_source
from streamdsl.connectors.files import os_error_line
from streamdsl.connectors.jsonl import dumps_output
from streamdsl.errors import ConnectorError, RecordError, StreamDSLError
from streamdsl.ir.nodes import Node, Source
from streamdsl.runtime.drive import drive, node_step
from streamdsl.runtime.failures import Failure, LateRecord, failure, input_failure
from streamdsl.runtime.ingest import BadRecord, make_ingest
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import DeadLetter, OutputRecord, Record

from .ordering import NEG_INF, end_key, merge_keys
from .runstate import RunState, lookup, spool_write
from .shares import SHARE_BITS, Share, share_events

__all__ = ["NAMESPACE", "DEAD_LETTERS", "DEAD", "FATAL", "EdgeSpec", "SourceFn", "RecordFn",
           "TaskFn", "SinkFn", "WriteSortedFn", "sink_channel", "Batch", "BatchCoder"]

#: Beam metrics namespace of every counter the backend reports.
NAMESPACE = "streamdsl"
#: Channel of dead letters (``(lineage_key, DEAD, DeadLetter)``) and failures
#: (``(lineage_key, FATAL, RecordError)``).
DEAD_LETTERS = "dead-letters"
DEAD, FATAL = 0, 1



class EdgeSpec(NamedTuple):
    """An out edge of a node as its DoFn emits along it."""

    #: input port at the receiving node
    port: str
    #: a branch's output port this edge takes, or None
    out: str | None
    #: task groups at the receiver, or 0 when it takes records one by one
    groups: int
    #: output tag, or None for the main output
    tag: str | None
    #: ``route(key) -> task group`` when ``groups > 1`` (``ordering.task_router``)
    route: Any = None

_by_key = itemgetter(0)
_dumps, _loads, _PROTOCOL = pickle.dumps, pickle.loads, pickle.HIGHEST_PROTOCOL

#: Input records per output batch (see the module docstring).
BATCH = 2048


def _pack(batch: list) -> bytes:
    """A batch crossing a ``GroupByKey``, as bytes: one pickle per batch costs a fraction of
    Beam's coder per element (which pickles what it does not know anyway), and the runner
    then only copies bytes (and sizes them for its metrics by their length)."""
    return _dumps(batch, _PROTOCOL)


#: zstandard level of batches crossing a GroupByKey between processes (``_pack_compressed``)
ZSTD_LEVEL = 1
_zstd = threading.local()  # a (de)compressor per thread: they are not thread-safe


def _pack_compressed(batch: list) -> bytes:
    """``_pack``, compressed: for runs whose DoFns run in worker processes.

    There, every batch crossing a ``GroupByKey`` goes from the worker that made it to the
    runner and on to the worker of its task: on the DirectRunner (``multi_processing``) through
    the launching process, which moves every stage's output while the workers wait for the
    next stage. The pickled records compress about 9 to 1 (fraud: 48 MB of batches, 5.4 MB at
    zstandard level 1, 0.05 s to compress and 0.04 s to decompress all of them), which took
    the launching process's CPU in a 200k-record run from about 0.9 s to 0.5 s."""
    c = getattr(_zstd, "c", None)
    if c is None:
        c = _zstd.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return c.compress(_dumps(batch, _PROTOCOL))


def _decompress(data: bytes) -> bytes:
    d = getattr(_zstd, "d", None)
    if d is None:
        d = _zstd.d = zstandard.ZstdDecompressor()
    return d.decompress(data)


def _unpack(batches: Any, compressed: bool = False) -> list:
    """The items of a task's packed batches (``compressed``: by ``_pack_compressed``), sorted
    by lineage key."""
    items: list = []
    extend = items.extend
    for data in batches:
        extend(_loads(_decompress(data) if compressed else data))
    items.sort(key=_by_key)  # batches are sorted runs: this is a merge
    return items


class Batch(list):
    """Type of an edge's list batches (the element type of their PCollections, whose coder is
    ``BatchCoder``); the batches themselves are plain lists."""


def _batch_size(batch: list) -> int:
    """A batch's size for Beam's metrics, estimated (``BATCH_RECORD_BYTES`` a record)."""
    return BATCH_RECORD_BYTES * len(batch)


#: Bytes a record of a list batch is assumed to take (Beam's size metrics only).
BATCH_RECORD_BYTES = 100


class BatchCoder(beam.coders.Coder):
    """Coder of list batches: pickled, as Beam's default coder would, but sized without
    being encoded. Beam's counters sample the size of about 10 * ln(n) of a PCollection's n
    elements by encoding them; for batches of 2048 records that pickling of a third of the
    batches took about a quarter of a worker's time (fraud, 2 workers)."""

    def encode(self, value: Any) -> bytes:
        return _dumps(value, _PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return _loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> Any:
        return Batch

    def _create_impl(self) -> Any:
        from apache_beam.coders.coder_impl import CallbackCoderImpl
        return CallbackCoderImpl(_pack, _loads, size_estimator=_batch_size)

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


beam.coders.registry.register_coder(Batch, BatchCoder)


def sink_channel(topic: str) -> str:
    """Channel of a collected sink's ``(lineage_key, OutputRecord)`` items."""
    return "out:" + topic


class Counters:
    """Counts of one DoFn instance, reported as Beam counters under ``NAMESPACE`` at the end
    of each bundle (a Beam counter update per record would cost more than the record)."""

    def __init__(self) -> None:
        self.pending: Counter = Counter()
        self._made: dict[str, Any] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.pending[name] += n

    def flush(self, m: Metrics | None) -> None:
        """Report the pending counts, and what processors counted into ``m`` (late, skipped and
        missing-field records), then reset both."""
        pending = self.pending
        if m is not None and (m.late or m.skipped or m.missing_field):
            for node, n in m.late_by_node.items():
                pending["late:" + node] += n
            for node, n in m.skipped_by_node.items():
                pending["skipped:" + node] += n
            for key, n in m.missing_field_by_node.items():
                pending["missing:" + orjson.dumps(key).decode()] += n
            m.late = m.skipped = m.missing_field = 0
            m.late_by_node.clear()
            m.skipped_by_node.clear()
            m.missing_field_by_node.clear()
        for name, n in pending.items():
            c = self._made.get(name)
            if c is None:
                c = self._made[name] = BeamMetrics.counter(NAMESPACE, name)
            c.inc(n)
        pending.clear()


class _LeanDoFn(beam.DoFn):
    """A DoFn that lists only the DoFn methods it defines in ``dir()``.

    Beam looks for state and timer parameters by taking the signature of every method
    ``dir(dofn)`` lists (``userstate.get_dofn_specs``), several times per DoFn while it builds
    and runs a pipeline: about two thirds of the construction time of a small pipeline. Our
    DoFns use neither state nor timers, so only the methods Beam calls need checking.
    """

    def __dir__(self) -> list[str]:
        return ["finish_bundle", "process", "setup", "start_bundle", "teardown"]


_exit_prepared = False


def _prepare_worker_exit() -> None:
    """Spare a worker process the collector's passes over everything it imported when it exits.

    A DirectRunner worker (``multi_processing``) ends once the run is done, and the runner waits
    for each worker to end in turn. The interpreter's final collections then scan the million
    objects that importing Beam and streamdsl left alive: 0.4 to 0.5 s of wall time per worker
    (``gc.freeze`` at exit: 0.05 s). Frozen objects are freed as usual at exit, without the
    scan; only the rare object in a reference cycle with a ``__del__`` loses its finalizer,
    which the interpreter never promises at exit anyway.
    """
    global _exit_prepared
    if not _exit_prepared:
        _exit_prepared = True
        atexit.register(gc.freeze)


class _RunFn(_LeanDoFn):
    """A DoFn of one run: pickles only a token when the run executes in this process."""

    _runtime = ("counters", "_out", "pack")

    def __init__(self, run: RunState):
        super().__init__()
        self.token = run.token
        self.in_process = run.in_process
        self.spool = run.spool

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        for attr in self._runtime:
            d.pop(attr, None)
        if self.in_process:
            for attr in self._payload():
                d[attr] = None
        return d

    def _payload(self) -> tuple[str, ...]:
        """Attributes that a DoFn running in this process finds in its ``RunState`` instead."""
        return ()

    def _run(self) -> RunState:
        run = lookup(self.token)
        if run is None:
            raise RuntimeError("streamdsl's Beam backend ran a DoFn outside the process that "
                               "launched an in-process run; use direct_running_mode="
                               "multi_processing (or a remote runner) to run in workers")
        return run

    def setup(self) -> None:
        self.counters = Counters()
        #: packs a batch for a GroupByKey (compressed when it crosses processes)
        self.pack = _pack if self.in_process else _pack_compressed
        if not self.in_process:
            _prepare_worker_exit()

    def start_bundle(self) -> None:
        self._out: dict[str, list] = {}

    def _channel(self, channel: str) -> list:
        """This bundle's list of items for the driver on ``channel``."""
        buf = self._out.get(channel)
        if buf is None:
            buf = self._out[channel] = []
        return buf

    def _collect(self, channel: str, item: tuple) -> None:
        self._channel(channel).append(item)

    def finish_bundle(self) -> None:
        self.counters.flush(getattr(self, "metrics", None))
        out, self._out = self._out, {}
        for channel, items in out.items():
            if self.in_process:
                self._run().add(channel, items)
            else:
                spool_write(self.spool, channel, items)  # type: ignore[arg-type]


class _NodeFn(_RunFn):
    """Runs one plan node: emits along its out edges and turns failures into dead letters."""

    _runtime = _RunFn._runtime + ("node", "metrics", "proc")

    def __init__(self, run: RunState, node: Node, edges: list[EdgeSpec], on_error: str):
        super().__init__(run)
        self.name = node.name
        self._node: Node | None = node
        self.edges = edges
        self.on_error = on_error

    def _payload(self) -> tuple[str, ...]:
        return ("_node",)

    def setup(self) -> None:
        super().setup()
        self.node = self._node if self._node is not None else self._run().nodes[self.name]
        self.metrics = Metrics()
        self.step = node_step(self.node, self.metrics)
        self.proc = self.step.processor

    # ---- output batches ----------------------------------------------------------------------
    def _outbox(self) -> list:
        """Empty output buffers, one per out edge: a list, or ``{task: list}`` for an edge
        into a node split over several task groups."""
        return [{} if e.groups > 1 else [] for e in self.edges]

    def _emitter(self) -> Any:
        """``emit(lkey, outs, box, route=None)``: add a call's output records ``outs`` (a
        list) to the buffers ``box``, along the out edges (those of ``route`` for a branch)."""
        edges = self.edges
        if len(edges) == 1 and edges[0].out is None and edges[0].groups <= 1:
            port, groups = edges[0].port, edges[0].groups
            if groups:  # into a single-task node: records packed as plain tuples
                def emit_packed(lkey: tuple, outs: list, box: list, route: Any = None) -> None:
                    append = box[0].append
                    for i, r in enumerate(outs):
                        append((lkey + (i, 0), port, (r.key, r.value, r.ts, r.window, r.origin)))
                return emit_packed

            def emit_one(lkey: tuple, outs: list, box: list, route: Any = None) -> None:
                if len(outs) == 1:
                    box[0].append((lkey + (0, 0), port, outs[0]))
                else:
                    append = box[0].append
                    for i, r in enumerate(outs):
                        append((lkey + (i, 0), port, r))
            return emit_one

        def emit(lkey: tuple, outs: list, box: list, route: Any = None) -> None:
            for i, r in enumerate(outs):
                for j, (port, out, groups, _tag, task_of) in enumerate(edges):
                    if out is not None and out != route:
                        continue
                    if not groups:
                        box[j].append((lkey + (i, j), port, r))
                        continue
                    item = (lkey + (i, j), port, (r.key, r.value, r.ts, r.window, r.origin))
                    if groups == 1:
                        box[j].append(item)
                    else:
                        task = task_of(r.key)
                        lst = box[j].get(task)
                        if lst is None:
                            box[j][task] = [item]
                        else:
                            lst.append(item)
        return emit

    def _drain(self, box: list) -> Iterator[Any]:
        """The elements of the buffers ``box`` (emptied): one batch per edge and task."""
        for j, (_port, _out, groups, tag, _route) in enumerate(self.edges):
            b = box[j]
            if not b:
                continue
            if groups > 1:
                elems: Any = [(task, self.pack(lst)) for task, lst in b.items()]
                box[j] = {}
            else:
                elems = [(0, self.pack(b)) if groups else b]
                box[j] = []
            for elem in elems:
                yield elem if tag is None else TaggedOutput(tag, elem)

    # ---- failures: the kernel's rules (streamdsl.runtime.failures) ----------------------------
    def _fail(self, lkey: tuple, rec: Any, exc: Exception) -> None:
        if isinstance(exc, LateRecord):
            # a record's k-th late letter at this node (a hopping record can be late for
            # several windows): after the record's own key, before what its outputs lead to
            last, k = getattr(self, "_late_at", (None, 0))
            k = k + 1 if last == lkey else 0
            self._late_at = (lkey, k)
            lkey = lkey + (-1, k)
        self._route(lkey, failure(self.node, rec, exc, self.on_error))

    def _bad(self, lkey: tuple, reason: str, ev: Any) -> None:
        self._route(lkey, input_failure(self.name, reason, ev, self.on_error))

    def _route(self, lkey: tuple, f: Failure) -> None:
        if f.error is not None:
            self._fatal(lkey, f.error)
        else:
            self._dead(lkey, f.dead_letter)  # type: ignore[arg-type]

    def _dead(self, lkey: tuple, dl: DeadLetter) -> None:
        self.counters.inc("dead_lettered")
        self._collect(DEAD_LETTERS, (lkey, DEAD, dl))

    def _fatal(self, lkey: tuple, err: RecordError) -> None:
        cause = err.__cause__
        if not self.in_process and cause is not None:
            # the cause does not survive pickling: keep its traceback as text
            err.add_note("raised in a Beam worker by:\n" + "".join(
                traceback.format_exception(type(cause), cause, cause.__traceback__)))
        self._collect(DEAD_LETTERS, (lkey, FATAL, err))

    # ---- a batch of records ------------------------------------------------------------------
    def _handle(self, batch: list) -> Iterator[Any]:
        """Run the node over a batch of ``(lineage_key, port, record)``; its output batches."""
        box = self._outbox()
        emit = self._emitter()
        for lkey, outs, route in drive(self.step, batch, self._fail):
            emit(lkey, outs, box, route)
        return self._drain(box)


class SourceFn(_NodeFn):
    """Reads one source's events (from the run, embedded, or a file), ingests them (key and
    timestamp extraction) and runs the source node.

    ``reader`` is ``("events", [(lineage key, event)...] or None)`` (the events in the
    defined input order, keyed; None: in the ``RunState``), or ``(kind, what, source_index,
    order_node)`` for one source's events in its own order, keyed here by ``merge_keys``:
    ``("memory", [event...] or None, ...)`` or ``("file", spec, ...)`` (the file is read
    here, line by line). ``order_node`` (the first source node of a multi-source topology
    reading this topic, else None) gives the timestamps of the merge order. Or
    ``("shares", spec, source_index, shares)``: the run's only input, a JSON-lines file read
    in shares (``shares``), one share per element.
    """

    _runtime = _NodeFn._runtime + ("ingest",)

    def __init__(self, run: RunState, node: Source, edges: list[EdgeSpec], on_error: str, *,
                 index: int, count_in: bool, reader: tuple):
        super().__init__(run, node, edges, on_error)
        self.topic = node.topic
        self.index = index
        self.count_in = count_in
        self.reader = reader

    def setup(self) -> None:
        super().setup()
        self.ingest = make_ingest(self.node)  # type: ignore[arg-type]

    def process(self, element: Any) -> Iterator[Any]:
        reader = self.reader
        if reader[0] == "shares":  # (i, [share i]) from the stage's GroupByKey
            return self._run_shares(element[0], element[1])
        if reader[0] == "events":
            keyed = reader[1] if reader[1] is not None else self._run().events[self.topic]
            return self._run_keyed(keyed)
        kind, what, source_index, order_node = reader
        if kind == "file":
            events: Any = open_source(self.topic, what)
        else:
            events = what if what is not None else self._run().events[self.topic]
        if order_node is not None and order_node.name == self.name:
            # this node gives the merge order's timestamps: ingest each event once
            return self._run_merged(events, source_index)
        ts_of = None
        if order_node is not None:
            first = make_ingest(order_node)

            def ts_of(ev: Any) -> int:
                try:
                    return first(ev).ts
                except BadRecord:
                    return NEG_INF
        return self._run_keyed(((0, *key), ev)
                               for key, ev in merge_keys(events, source_index, ts_of))

    def _run_shares(self, i: int, shares: Any) -> Iterator[Any]:
        """Read share ``i`` of a JSON-lines file (the run's only input): its ``k``-th event
        is input event ``i << SHARE_BITS | k`` (``shares``)."""
        _kind, spec, source_index, _all = self.reader
        base = i << SHARE_BITS
        for share in shares:
            yield from self._run_keyed(((0, NEG_INF, source_index, base | k), ev)
                                       for k, ev in enumerate(
                                           share_events(self.topic, spec, Share(*share))))

    def _run_keyed(self, keyed: Any) -> Iterator[Any]:
        """Ingest and run ``(lineage key, event)`` pairs; the output batches."""
        ingest = self.ingest
        index = self.index
        batch: list = []
        n = 0
        for okey, ev in keyed:
            n += 1
            lkey = okey + (index,)
            try:
                batch.append((lkey, "in", ingest(ev)))
            except BadRecord as e:
                self._bad(lkey, str(e), ev)
            if n % BATCH == 0:
                yield from self._handle(batch)
                batch = []
        self._count_in(n)
        yield from self._handle(batch)

    def _run_merged(self, events: Any, source_index: int) -> Iterator[Any]:
        """``_run_keyed`` over ``merge_keys(events, source_index, ts of this ingest)``, with
        one ingest per event (the keys are computed here, as ``merge_keys`` does)."""
        ingest = self.ingest
        index = self.index
        batch: list = []
        high = NEG_INF
        n = 0
        for seq, ev in enumerate(events):
            n += 1
            try:
                rec = ingest(ev)
            except BadRecord as e:
                self._bad((0, high, source_index, seq, index), str(e), ev)
            else:
                if rec.ts > high:
                    high = rec.ts
                batch.append(((0, high, source_index, seq, index), "in", rec))
            if n % BATCH == 0:
                yield from self._handle(batch)
                batch = []
        self._count_in(n)
        yield from self._handle(batch)

    def _count_in(self, n: int) -> None:
        if self.count_in and n:
            self.counters.inc("records_in", n)
            self.counters.inc("in:" + self.topic, n)


class RecordFn(_NodeFn):
    """A node whose processor keeps no state between records: records in any order."""

    def process(self, batch: list) -> Iterator[Any]:
        return self._handle(batch)


class TaskFn(_NodeFn):
    """A stateful (or order-sensitive) node: one task's records, sorted by lineage key, through
    one fresh processor; with ``flush``, the processor is then closed (end of input)."""

    def __init__(self, run: RunState, node: Node, edges: list[EdgeSpec], on_error: str, *,
                 flush: bool, topo_index: int):
        super().__init__(run, node, edges, on_error)
        self.flush = flush
        self.topo_index = topo_index

    def process(self, task_batches: tuple) -> Iterator[Any]:
        task, batches = task_batches
        items = _unpack(batches, not self.in_process)
        self.step = node_step(self.node, self.metrics)  # one fresh processor per task
        self.proc = self.step.processor
        for i in range(0, len(items), BATCH):
            yield from self._handle([(lkey, port, Record(*packed))
                                     for lkey, port, packed in items[i:i + BATCH]])
        del items
        if self.flush:
            box = self._outbox()
            key = end_key(self.topo_index, task)
            try:
                outs = self.proc.on_end()
            except Exception as e:  # a user function failing while windows close
                self._fail(key, None, e)
            else:
                if outs:
                    self._emitter()(key, outs, box)
            yield from self._drain(box)


class SinkFn(_NodeFn):
    """Counts records out; collects ``(lineage_key, OutputRecord)`` for the driver (on
    ``channel``) or passes them on to the sorted writer of a file output (``channel`` None):
    for a JSON-lines file as their lines, encoded here (where the tasks run in parallel)
    rather than by the one writer (``encoded``)."""

    def __init__(self, run: RunState, node: Node, on_error: str, *, topic: str,
                 channel: str | None, encoded: bool = False):
        super().__init__(run, node, [], on_error)
        self.topic = topic
        self.channel = channel
        self.encoded = encoded

    def setup(self) -> None:
        _RunFn.setup(self)

    def process(self, batch: list) -> Iterator[Any]:
        n = len(batch)
        self.counters.inc("records_out", n)
        self.counters.inc("out:" + self.topic, n)
        if self.channel is not None:
            new = tuple.__new__
            self._channel(self.channel).extend([
                (lkey, new(OutputRecord, (rec.key, rec.value, rec.ts, rec.window)))
                for lkey, _port, rec in batch])
        elif self.encoded:
            new = tuple.__new__
            yield (0, self.pack([(lkey, dumps_output(new(OutputRecord, (rec.key, rec.value, rec.ts,
                                                                         rec.window))) + b"\n")
                                 for lkey, _port, rec in batch]))
        else:
            yield (0, self.pack([(lkey, (rec.key, rec.value, rec.ts, rec.window))
                                 for lkey, _port, rec in batch]))


class WriteSortedFn(_RunFn):
    """Writes one output file in the local backend's order and format (the connector's sink),
    to its partial file (renamed by the driver once the run has succeeded). A file that cannot
    be written fails the run as a bad record does (a ``FATAL`` at the record it failed on, for
    the driver to raise) rather than through Beam's logged traceback."""

    def __init__(self, run: RunState, topic: str, spec: Any):
        super().__init__(run)
        self.topic = topic
        self.spec = spec

    def process(self, task_batches: tuple) -> Iterator[Any]:
        _task, batches = task_batches
        items = _unpack(batches, not self.in_process)
        lkey = items[0][0] if items else ()
        sink = None
        try:
            sink = open_sink(self.topic, self.spec)
            if items and isinstance(items[0][1], bytes):  # JSON lines, encoded by ``SinkFn``
                sink.write_lines(b"".join([line for lkey, line in items]))
            else:
                for lkey, rec in items:
                    sink.write(OutputRecord(*rec))
            sink.close()
        except StreamDSLError as e:
            if sink is not None:
                sink.abort()
            self._collect(DEAD_LETTERS, (lkey, FATAL, e))
        except OSError as e:
            if sink is not None:
                sink.abort()
            self._collect(DEAD_LETTERS, (lkey, FATAL, ConnectorError(os_error_line(
                e, self.spec.get("path")))))
        return iter(())
