"""Bytewax sources and sinks for streamdsl runs.

* :class:`EventSource`: one partition that reads every input (memory, JSON lines, CSV, stdin,
  Kafka through ``streamdsl.connectors``), merges them in timestamp-synchronized order
  (``merge_inputs``, the order every backend uses) and numbers the events. Merging needs each
  event's timestamp, so the source ingests the events of single-source topics itself and
  hands over the records (:func:`merge_ingested`; in-memory inputs without an ``InputEvent``
  per item, :func:`merge_memory`). Its resume state is the number of events already emitted,
  so a resumed run re-opens the inputs and skips them.
* :class:`ConnectorSink`: one partition per sink topic (its items are the lists of records
  the sink step releases per batch). JSON-lines and CSV files are written to their partial
  files (``streamdsl.connectors.files``; the launcher renames them when the run has succeeded)
  by the connectors' writers, whose resume state is the byte offset of the last snapshot: a
  resumed run cuts off whatever the failed run wrote after its last snapshot and writes it
  again, so files end up exactly as after an uninterrupted run. Other sinks (stdout, Kafka)
  are at-least-once. A sink that fails (a closed stdout too) stops the run without a Rust
  panic (``cluster.note_sink_failure``).
* :class:`CollectSink`: gathers the terminal step's items in this process (results of
  ``execute`` and the sinks ``run`` returns).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections import Counter
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import (DynamicSink, FixedPartitionedSink, StatefulSinkPartition,
                             StatelessSinkPartition)

from streamdsl.connectors import open_dead_letter_sink, open_sink, parse_uri
from streamdsl.ir.plan import Plan
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.ordering import merge_by_timestamp
from streamdsl.runtime.ingest import BadRecord, make_ingest, make_ingest_items
from streamdsl.runtime.records import InputEvent, Record

from .cluster import note_crash, note_sink_failure
from .inbox import CLOSED
from .messages import InputBatch, Lines
from .prefilter import Dropped, source_prefilter

__all__ = ["EventSource", "ShardedFileSource", "FileShares", "file_chunks", "merge_ingested", "merge_memory", "memory_items", "CollectSink", "ConnectorSink", "DeadLetterFileSink"]


def merge_ingested(plan: Plan, inputs: dict[str, Iterable[InputEvent]]) -> Iterator[Any]:
    """``merge_inputs(plan, inputs)`` (the timestamp-synchronized order every backend uses),
    each event with the record its topic's first source node makes of it: that ``Record``
    alone if it is the topic's only source node, else ``(InputEvent, Record | None)`` (None:
    the event cannot be ingested; or there is one input, which needs no timestamps).

    The merge needs every event's timestamp as that source node extracts it; keeping the
    record saves ingesting the event a second time in the input stage.
    """
    topics = [t for t in plan.source_topics() if t in inputs]
    if len(topics) == 1:
        return zip(inputs[topics[0]], itertools.repeat(None))
    first_source: dict[str, Any] = {}
    for s in plan.sources():
        first_source.setdefault(s.topic, s)
    nodes = Counter(s.topic for s in plan.sources())
    return _merge([iter(inputs[t]) for t in topics],
                  [make_ingest(first_source[t]) for t in topics],
                  [nodes[t] == 1 for t in topics])


def _merge(its: list[Iterator[InputEvent]], ingests: list[Callable[[InputEvent], Record]],
           alone: list[bool]) -> Iterator[Any]:
    """``ordering.merge_by_timestamp`` with the timestamp of ``ingest(event).ts`` (events
    that cannot be ingested first), yielding what ``merge_ingested`` describes."""
    def stamped(i: int) -> Iterator[tuple[int, Any]]:
        ingest, keep = ingests[i], alone[i]
        for ev in its[i]:
            try:
                rec = ingest(ev)
            except BadRecord:
                yield _BAD_TS, (ev, None)
                continue
            yield rec.ts, (rec if keep else (ev, rec))
    merged = merge_by_timestamp([stamped(i) for i in range(len(its))], ts=itemgetter(0))
    return map(itemgetter(1), merged)


_BAD_TS = -(1 << 62)


def merge_memory(plan: Plan, items: dict[str, Iterable[Any]]) -> Iterator[Any]:
    """``merge_ingested`` over in-memory inputs (``{topic: items}`` as the memory connector
    takes them) whose topics each have one source node, without an ``InputEvent`` per item:
    a ``Record`` per item that ingests, ``(InputEvent, None)`` per item that does not."""
    node_of = {s.topic: s for s in plan.sources()}
    topics = [t for t in plan.source_topics() if t in items]
    if len(topics) == 1:  # one input: its source's leading filter may drop items early
        node = node_of[topics[0]]
        return _ingest_memory(node, items[topics[0]], keep=source_prefilter(plan, node))
    return _merge_records([_ingest_memory(node_of[t], items[t]) for t in topics])


def memory_items(plan: Plan, specs: dict[str, Any]) -> dict[str, Iterable[Any]] | None:
    """``{topic: items}`` if every input is in memory and every topic has one source node
    (what ``merge_memory`` takes), else None."""
    nodes = Counter(s.topic for s in plan.sources())
    out = {}
    for topic, spec in specs.items():
        spec = parse_uri(spec)
        if spec["type"] != "memory" or nodes.get(topic) != 1:
            return None
        out[topic] = spec.get("records", [])
    return out


def _ingest_memory(node: Any, items: Iterable[Any], size: int = 1024,
                   keep: Callable[[list], list[int]] | None = None) -> Iterator[Any]:
    """The items of one in-memory input ingested in runs of ``size`` (``make_ingest_items``:
    what ``make_ingest`` makes of ``memory.read_memory``'s events): a ``Record`` per item,
    ``(InputEvent, None)`` for an item that cannot be ingested, in input order. With ``keep``
    (``prefilter.source_prefilter``) only the items it keeps are ingested, at their own
    positions, and a ``prefilter.Dropped`` follows the records of a run that dropped some."""
    ingest = make_ingest_items(node)
    it = iter(items)
    pos = 0
    bad: list[InputEvent] = []

    def failed(ev: InputEvent, reason: str) -> None:
        bad.append(ev)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        if keep is not None:
            kept = keep(chunk)
            if len(kept) < len(chunk):
                yield from _ingest_kept(ingest, chunk, kept, pos, bad)
                yield Dropped(node.topic, len(chunk) - len(kept))
                pos += len(chunk)
                continue
        recs = ingest(chunk, pos, failed)
        pos += len(chunk)
        if not bad:
            yield from recs
            continue
        # put the items that failed back in their places (records know their positions)
        evs = [(ev.position, 0, (ev, None)) for ev in bad]
        bad.clear()
        both = sorted([(r.origin[1], 1, r) for r in recs] + evs, key=_position)
        yield from (x for _, _, x in both)


def _ingest_kept(ingest: Callable, chunk: list, kept: list[int], pos: int,
                 bad: list) -> list:
    """What ``_ingest_memory`` yields for the items ``kept`` (indices) of ``chunk`` (its first
    item at position ``pos``): ingested together, then given their own positions."""
    def failed(ev: InputEvent, reason: str) -> None:
        ev.position = pos + kept[ev.position]
        bad.append(ev)
    recs = ingest([chunk[i] for i in kept], 0, failed)
    for r in recs:
        topic, i = r.origin
        r.origin = (topic, pos + kept[i])
    if not bad:
        return recs
    evs = [(ev.position, 0, (ev, None)) for ev in bad]
    bad.clear()
    return [x for _, _, x in sorted([(r.origin[1], 1, r) for r in recs] + evs, key=_position)]


_position = itemgetter(0)


def _merge_records(streams: list[Iterator[Any]]) -> Iterator[Any]:
    """``ordering.merge_by_timestamp`` of ``_ingest_memory`` streams: by record timestamp,
    ties to the earlier stream, items that cannot be ingested first."""
    return merge_by_timestamp(streams, ts=lambda x: x.ts if type(x) is Record else _BAD_TS)


class _EventPartition(StatefulSourcePartition):
    def __init__(self, open_events: Callable[..., Iterator], resume: tuple | None, *, flush: bool,
                 batch_size: int, progress: Callable[[Metrics], None] | None,
                 stop: Callable[[], bool], ingested: bool, kafka_topics: frozenset[str]):
        self.seq, self.counter, self.done = resume[:3] if resume is not None else (0, 0, False)
        self.kafka_topics = kafka_topics
        if kafka_topics:  # positions per input: resume from them, nothing read twice
            self.read: dict[str, Any] | None = copy.deepcopy(resume[3]) if resume else {}
            self.events = iter(open_events(self.read))
        else:             # read the inputs again and skip what was emitted
            self.read = None
            events = iter(open_events())
            self.events = itertools.islice(events, self.seq, None) if self.seq else events
        self.ingested = ingested
        self.flush = flush
        self.batch_size = batch_size
        self.progress = progress
        self.stop = stop
        self._last_progress = time.monotonic()

    def next_batch(self) -> list:
        if self.done or self.stop():
            raise StopIteration
        start = self.seq
        try:
            chunk = itertools.islice(self.events, self.batch_size)
            items = list(chunk) if self.ingested else list(zip(chunk, itertools.repeat(None)))
        except BaseException as e:
            note_crash(e)
            raise
        self.seq = start + len(items)
        if self.read is not None:
            self._advance(items)
        if len(items) < self.batch_size:
            self.done = True
            frontier = CLOSED if self.flush else self.seq - 1
        else:
            frontier = self.seq - 1
        msg = InputBatch(self.counter, frontier, start, items)
        self.counter += 1
        if self.progress is not None and time.monotonic() - self._last_progress >= 0.5:
            self._last_progress = time.monotonic()
            self.progress(Metrics(records_in=self.seq))
        return [msg]

    def _advance(self, items: list) -> None:
        """Note where each input is after ``items``: a Kafka partition's next offset, the number
        of events read from any other input."""
        read, kafka = self.read, self.kafka_topics
        for item in items:
            topic, pos = item.origin if type(item) is Record else (item[0].topic, item[0].position)
            if topic in kafka:
                read.setdefault(topic, {})[pos[0]] = pos[1] + 1
            else:
                read[topic] = read.get(topic, 0) + 1

    def snapshot(self) -> tuple:
        if self.read is None:
            return (self.seq, self.counter, self.done)
        return (self.seq, self.counter, self.done, copy.deepcopy(self.read))


class EventSource(FixedPartitionedSource):
    """The run's input: ``open_events()`` gives the merged events (called once per execution).

    Args:
        open_events: returns an iterator of ``InputEvent`` in the defined input order (or,
            with ``ingested``, of ``(InputEvent, Record | None)`` as ``merge_ingested`` gives).
            With ``kafka_topics`` it takes where to start: ``{topic: {partition: offset}}`` for
            those topics, ``{topic: events to skip}`` for the others (what a snapshot holds,
            ``{}`` at first).
        flush: after the last event, close the input (every window closes); otherwise the
            input just stops (``TestDriver.output(flush=False)``).
        batch_size: events per message.
        progress: called now and then with the events read so far.
        stop: when it returns True, the input ends early (the run has failed).
        kafka_topics: inputs read from Kafka: the snapshot holds every input's position, and a
            resumed run starts there instead of reading everything again and skipping it.
    """

    def __init__(self, open_events: Callable[..., Iterator[InputEvent]], *, flush: bool = True,
                 batch_size: int = 1000, progress: Callable[[Metrics], None] | None = None,
                 stop: Callable[[], bool] = lambda: False, ingested: bool = False,
                 kafka_topics: frozenset[str] = frozenset()):
        self.open_events = open_events
        self.kafka_topics = kafka_topics
        self.ingested = ingested
        self.flush = flush
        self.batch_size = batch_size
        self.progress = progress
        self.stop = stop

    def list_parts(self) -> list[str]:
        return ["input"]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _EventPartition:
        return _EventPartition(self.open_events, resume_state, flush=self.flush,
                               batch_size=self.batch_size, progress=self.progress,
                               stop=self.stop, ingested=self.ingested,
                               kafka_topics=self.kafka_topics)


# ---- a JSON-lines file read in parallel ------------------------------------------------------

#: bytes per chunk of a file read in parallel (about 12,000 lines of 80 bytes): downstream
#: steps release a chunk's records once every share has passed it, so they hold about one
#: chunk per share
CHUNK_BYTES = 1 << 20
#: bits of an event's position within its chunk (``seq = chunk << CHUNK_BITS | event``)
CHUNK_BITS = 32


class Chunk(NamedTuple):
    """Lines of a file: the bytes ``[start, end)``, the first of them line ``first_line``."""

    start: int
    end: int
    first_line: int


def file_chunks(path: str, chunk_bytes: int | None = None) -> list[Chunk]:
    """``path`` cut into chunks of about ``chunk_bytes`` bytes at line boundaries (a chunk
    holds the lines that start in its range), each with the number of its first line (one
    pass over the file, counting newlines)."""
    size = chunk_bytes or CHUNK_BYTES
    chunks: list[Chunk] = []
    with open(path, "rb") as f:
        start, line = 0, 1
        while True:
            data = f.read(size)
            if not data:
                break
            nl = data.rfind(b"\n")
            if nl < 0:  # a line longer than a chunk: read on to its end
                more = f.read(size)
                while more:
                    data += more
                    nl = data.rfind(b"\n")
                    if nl >= 0:
                        break
                    more = f.read(size)
            if nl < 0:
                chunks.append(Chunk(start, start + len(data), line))
                break
            end = start + nl + 1
            chunks.append(Chunk(start, end, line))
            line += data.count(b"\n", 0, nl + 1)
            f.seek(end)
            start = end
    return chunks


class FileShares:
    """One JSON-lines input read in parallel: chunk ``c`` (:func:`file_chunks`) is read by
    share ``c % shares``; its ``k``-th event is input event ``c << CHUNK_BITS | k``. Event
    numbers are not dense, but their order is the file's order, which is all positions need
    (no input merge: this is the run's only input)."""

    def __init__(self, topic: str, spec: dict, shares: int, chunk_bytes: int | None = None):
        self.topic = topic
        self.spec = spec
        self.path = spec["path"]
        self.shares = shares
        self.chunks = file_chunks(self.path, chunk_bytes)

    def of(self, share: int) -> list[int]:
        """The chunks ``share`` reads, in order."""
        return list(range(share, len(self.chunks), self.shares))

    def events(self, c: int) -> list[InputEvent]:
        """The events of chunk ``c`` (those ``read_jsonl`` gives for its lines)."""
        from streamdsl.connectors.jsonl import read_jsonl_lines
        start, end, first = self.chunks[c]
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        lines = data.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        spec = self.spec
        return list(read_jsonl_lines(self.topic, zip(itertools.count(first), lines), self.path,
                                     envelope=bool(spec.get("envelope", False)),
                                     key_field=spec.get("key")))


class _SharePartition(StatefulSourcePartition):
    """One share of a file read in parallel; its resume state is ``(chunk ordinal, events of
    that chunk emitted, message counter, done)``."""

    def __init__(self, source: "ShardedFileSource", share: int, resume: tuple | None):
        self.source = source
        self.share = share
        self.mine = source.files.of(share)
        self.at, self.emitted, self.counter, self.done = resume if resume is not None \
            else (0, 0, 0, False)
        self.events: list | None = None

    def next_batch(self) -> list:
        src = self.source
        if self.done or src.stop():
            raise StopIteration
        try:
            if self.at >= len(self.mine):  # no chunk (left) for this share
                self.done = True
                return [self._msg(CLOSED, 0, [])]
            c = self.mine[self.at]
            if self.events is None:
                self.events = src.files.events(c)
            evs = self.events
            k = self.emitted
            items = evs[k:k + src.batch_size]
        except BaseException as e:
            note_crash(e)
            raise
        start = (c << CHUNK_BITS) | k
        self.emitted = k + len(items)
        if self.emitted >= len(evs):
            self.at += 1
            self.emitted = 0
            self.events = None
            if self.at >= len(self.mine):
                self.done = True
                frontier = CLOSED
            else:  # nothing more before this share's next chunk
                frontier = (self.mine[self.at] << CHUNK_BITS) - 1
        else:
            frontier = start + len(items) - 1
        src.read[0] += len(items)
        if src.progress is not None and time.monotonic() - src.last_progress[0] >= 0.5:
            src.last_progress[0] = time.monotonic()
            src.progress(Metrics(records_in=src.read[0]))
        return [self._msg(frontier, start, list(zip(items, itertools.repeat(None))))]

    def _msg(self, frontier: int, start: int, items: list) -> InputBatch:
        msg = InputBatch(self.counter, frontier, start, items, self.share)
        self.counter += 1
        return msg

    def snapshot(self) -> tuple:
        return (self.at, self.emitted, self.counter, self.done)


class ShardedFileSource(FixedPartitionedSource):
    """The run's only input, a JSON-lines file, read by ``files.shares`` partitions (one per
    worker: Bytewax gives partition ``i`` of ``n`` to worker ``i % workers``), share ``s``
    sending its events on input channel ``(0, s)`` (:class:`FileShares`). Each worker parses
    and ingests its own chunks; the input stage routes each record to its task."""

    def __init__(self, files: FileShares, *, batch_size: int = 1000,
                 progress: Callable[[Metrics], None] | None = None,
                 stop: Callable[[], bool] = lambda: False):
        self.files = files
        self.batch_size = batch_size
        self.progress = progress
        self.stop = stop
        self.read = [0]  # events read by the shares of this process
        self.last_progress = [time.monotonic()]

    def list_parts(self) -> list[str]:
        return [f"share-{i:05d}" for i in range(self.files.shares)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _SharePartition:
        return _SharePartition(self, int(for_part.rsplit("-", 1)[1]), resume_state)


class _Collect(StatelessSinkPartition):
    def __init__(self, store: list):
        self.store = store

    def write_batch(self, items: list) -> None:
        self.store.extend(items)


class CollectSink(DynamicSink):
    """Appends every item to ``store`` (a list owned by this process)."""

    def __init__(self, store: list):
        self.store = store

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Collect:
        return _Collect(self.store)


# ---- sinks that fail ------------------------------------------------------------------------

class _Failed:
    """The writer of a sink that could not be opened: it writes nothing (the error is noted)."""

    def write(self, item: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _opened(open_writer: Callable[[], Any]) -> Any:
    try:
        return open_writer()
    except Exception as e:  # noqa: BLE001 - noted, raised by the launcher at the end
        note_sink_failure(e)
        return _Failed()


class _HandlePartition(StatefulSinkPartition):
    """Writes each value (``batched``: each value is a list of them) to ``handle``."""

    def __init__(self, handle: Any, batched: bool = False):
        self.handle = handle
        self.batched = batched
        self.failed = isinstance(handle, _Failed)

    def write_batch(self, values: list) -> None:
        if self.failed:
            return  # the run is stopping
        write = self.handle.write
        try:
            if not self.batched:
                for v in values:
                    write(v)
                return
            for v in values:
                if type(v) is Lines:  # records encoded by the stages (``messages.Lines``)
                    self.handle.write_lines(v.data)
                else:
                    for r in v:
                        write(r)
        except Exception as e:  # noqa: BLE001
            # not raised through Bytewax (a Rust panic on stderr): the sink writes nothing
            # more, the input stops at its next batch, and the run raises it at its end
            self.failed = True
            note_sink_failure(e)

    def snapshot(self) -> Any:
        snap = getattr(self.handle, "snapshot", None)
        return snap() if snap is not None else None

    def close(self) -> None:
        try:
            if self.failed:
                getattr(self.handle, "abort", self.handle.close)()
            else:
                self.handle.close()
        except Exception as e:  # noqa: BLE001
            if not self.failed:
                note_sink_failure(e)


class _Idle(StatefulSinkPartition):
    """A partition that never gets an item (see ``_OnePartitionSink``)."""

    def write_batch(self, values: list) -> None:
        pass

    def snapshot(self) -> Any:
        return None


class _OnePartitionSink(FixedPartitionedSink):
    """One partition that writes; with ``parts > 1`` it is the ``at``-th of ``parts`` (the
    others never get an item), so that it lives on worker ``at`` (Bytewax gives the ``i``-th
    partition, in name order, to worker ``i % workers``): the worker of the task that
    releases its records (``Layout.worker_of``), so they need not cross to another process."""

    def __init__(self, part: str, at: int = 0, parts: int = 1):
        self.part = part
        self.parts = max(1, parts)
        self.at = at % self.parts
        self.name = part if self.parts == 1 else f"{self.at:05d}:{part}"

    def list_parts(self) -> list[str]:
        if self.parts == 1:
            return [self.part]
        return [f"{i:05d}:{self.part}" for i in range(self.parts)]

    def part_fn(self, item_key: str) -> int:
        return self.at


class ConnectorSink(_OnePartitionSink):
    """Writes one sink topic to its connector (``spec``: a URI or a connector dict); its
    items are lists of ``OutputRecord``."""

    def __init__(self, topic: str, spec: Any, at: int = 0, parts: int = 1):
        super().__init__(topic, at, parts)
        self.topic = topic
        self.spec = parse_uri(spec)

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
        if for_part != self.name:
            return _Idle()
        # a file is written to its partial file, at the snapshot's offset when resuming; the
        # launcher renames it once the run has succeeded (``connectors.files``)
        return _HandlePartition(
            _opened(lambda: open_sink(self.topic, self.spec, resume=resume_state)), True)


class DeadLetterFileSink(_OnePartitionSink):
    """Writes dead letters (JSON lines) to ``spec``."""

    def __init__(self, spec: Any, at: int = 0, parts: int = 1):
        super().__init__("dead-letters", at, parts)
        self.spec = parse_uri(spec)

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Any:
        if for_part != self.name:
            return _Idle()
        return _HandlePartition(
            _opened(lambda: open_dead_letter_sink(self.spec, resume=resume_state)))
