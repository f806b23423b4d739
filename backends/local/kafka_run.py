"""The local backend's Kafka run loop: incremental reads, checkpoints, commits, transactions.

``LocalBackend.run`` hands a run to ``run_kafka`` when one of its inputs is a Kafka topic. The
loop drives the shared ``Executor`` record by record, like the finite path, but reads Kafka
incrementally and commits as it goes:

* **Repartition topics.** Each ``Repartition`` node writes a Kafka topic,
  ``<group>-<operator>-repartition`` (``ir.tasks.repartition_topic``; created at start-up with
  the input topics' partitions), and the sub-topology downstream of it reads that topic as a
  source, as in Kafka Streams: the executor hands what a repartition receives to ``_cut``
  instead of passing it on in this process, and records read back from the topic enter the
  downstream nodes as ``Handoff`` items. A record is written to its new key's partition (Kafka's
  partitioner over the key bytes our sink writes), with its event time as the Kafka timestamp,
  the record pickled as the value (``kafka.encode_repartition``).
* **Order.** Each Kafka partition (and each non-Kafka input) is one ordered channel, taken by
  the merge of the sub-topology that reads it (upstream sub-topologies first). The next
  record is the channel head with the smallest event time (ties: source declaration order, then
  partition), Kafka Streams' timestamp-synchronized order. A channel with nothing buffered holds
  the others back until it delivers a record or reports that it is at its end (librdkafka's
  partition EOF), so a topology reading data already in Kafka sees the same order on every run.
  A repartition partition holds its merge back only in a sub-topology with several input topics,
  or one that writes a repartition itself (elsewhere each task has one input and order between
  tasks changes nothing), and until it has taken what this run wrote to it while the
  sub-topology upstream could go no further (``_at_end``).
* **Commits** (every ``commit_interval`` seconds, at a stop and at the end). The run's state
  (every operator's store) and the next offset of each partition, repartition partitions
  included, are written as one checkpoint record to ``<group>-checkpoint`` (for topologies with
  state or non-Kafka inputs), then the offsets are committed to the group. ``at_least_once``:
  sink and repartition writes are flushed first, so a committed offset never covers an output
  that was not written; each repartition record carries its upstream task and number
  (``SEQ_HEADER``), and a task reading it passes over numbers it has had, so a record written
  again after a stop without a commit is counted once. ``exactly_once``: sink writes,
  repartition writes, dead letters, the checkpoint and the offsets (of the repartition topics
  too) are committed in one Kafka transaction; a repartition record of a transaction that did
  not commit is passed over (by its ``TXN_HEADER``), whatever the broker shows.
* **Sharing.** An ``at_least_once`` run over Kafka inputs only, each topic read by one
  sub-topology, shares its tasks with the other instances of its group: each task is a set of
  topic partitions (input partitions upstream, repartition partitions downstream), assigned
  through the consumer group, checkpointed apart (``<group>#<task>``), restored where it goes.
* **Restart.** A run restores the latest checkpoint whose offsets equal the group's committed
  offsets (the latest one otherwise) and resumes from its offsets; without a checkpoint it starts
  at the group's committed offsets, else at the beginning.
* **Stops.** ``until_idle=S``: once every partition is read to its end and no record arrived for
  S seconds, the input ends (every window closes, as at the end of a file), sub-topology by
  sub-topology: those upstream first, then each downstream one once it has read what those
  wrote; then the run commits and returns.
  ``max_records=N``: after N input records (of input topics, not repartition topics), processed
  through every sub-topology, the run commits and returns *without* ending the input (windows
  stay open in the checkpoint; the next run continues them). Ctrl-C: the records in flight (one
  chunk) are finished, the run commits, then ``KeyboardInterrupt`` propagates.
"""

from __future__ import annotations

import copy
import heapq
import logging
import pickle
import signal
import threading
import time
import uuid
from collections import Counter, deque
from itertools import chain, groupby, islice, repeat, takewhile
from operator import contains, is_, itemgetter
from typing import Any, Callable, NamedTuple

from streamdsl.connectors import kafka as kc
from streamdsl.connectors import open_dead_letter_sink, open_sink, open_source, parse_uri
from streamdsl.errors import ConnectorError
from streamdsl.ir.nodes import Repartition
from streamdsl.ir.plan import Plan
from streamdsl.ir.tasks import repartition_topic, sub_topologies, sub_topology_of
from streamdsl.runtime.collector import collect_frozen, collector_for_a_run
from streamdsl.runtime.ingest import BadRecord, field_name, make_ingest
from streamdsl.runtime.drops import warn_drops
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.partitioning import Partitioner
from streamdsl.runtime.records import InputEvent, Record
from streamdsl.timeutil import MAX_TIMESTAMP

from .executor import Executor
from .graph import Handoff
from .kafka_columns import ColumnBuffer, Head, take_order

__all__ = ["run_kafka", "plan_difference", "GUARANTEES", "CHECKPOINT_SUFFIX", "TXN_HEADER",
           "SEQ_HEADER", "SESSION_TIMEOUT_MS"]

log = logging.getLogger("streamdsl.kafka")

GUARANTEES = {"at_least_once": "at_least_once", "exactly_once": "exactly_once",
              "exactly_once_v2": "exactly_once"}
CHECKPOINT_SUFFIX = "-checkpoint"
#: Header of every record an exactly_once run writes: ``<run id>-<commit number>``, the
#: transaction's id. The checkpoint of that transaction names it and its parent (the last
#: commit before it), so the committed transactions can be told from aborted ones without
#: the broker's help (see ``tests/kafka/eos_check.py``).
TXN_HEADER = "streamdsl.txn"
#: Header of every repartition record an at_least_once run writes: ``<task>:<n>``, the
#: upstream task that wrote it and how many records that task had handed on with it. A task
#: that reads the topic passes over a record whose number it has had already from that task
#: (written again by the task's next run after a stop without a commit).
SEQ_HEADER = "streamdsl.seq"
_CALL_TIMEOUT = 10.0  # seconds given to one transactional call (it is retried within broker_timeout)
_NEG_INF = -(1 << 62)
_MISSING = object()
_PAUSE_AT = 20_000  # buffered records of one partition before it is paused (back-pressure)
_RESUME_AT = 2_000
SESSION_TIMEOUT_MS = 6000  # the consumer's default session.timeout.ms (see ``_consumer``)
FETCH_QUEUE_BACKOFF_MS = 10  # the consumer's default fetch.queue.backoff.ms (see ``_consumer``)
_GC_EVERY = 60.0  # seconds between the loop's full collections (``collect_frozen``)
_CHUNK = 256  # records fed to the executor at once (a stop waits for the chunk in flight)
#: buffer entries are ``(event time, rank, Record | _Raw)``; a sentinel's third item is None
_real = itemgetter(2)
_RANK = itemgetter(1)
_REC = itemgetter(2)


class _Raw(NamedTuple):
    """A buffered event left for the executor to ingest (see ``_entry_maker``)."""

    ev: InputEvent


def _KIND(entry: tuple) -> type:
    return type(entry[2])


def run_kafka(plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
              on_error: str | None = None, dead_letter: Any = None,
              progress: Callable[[Metrics], None] | None = None, progress_every: float = 0.5,
              processing_guarantee: str = "at_least_once", until_idle: float | None = None,
              max_records: int | None = None, commit_interval: float = 1.0,
              assignment_timeout: float = 60.0, broker_timeout: float = 60.0,
              **options: Any) -> Any:
    """Run ``plan`` over inputs of which at least one is a Kafka topic (see the module doc).

    Args:
        processing_guarantee: ``"at_least_once"`` (default) or ``"exactly_once"``.
        until_idle: end the input and return once no record arrived for this many seconds.
        max_records: stop (without ending the input) after this many input records.
        commit_interval: seconds between commits.
        assignment_timeout: seconds to wait for the group to assign every partition.
        broker_timeout: seconds a run keeps retrying commits that the broker does not accept
            (unreachable, a rebalance, a transaction that cannot commit) before it stops.

    Raises:
        ConnectorError: misconfiguration, Kafka unreachable, a missing input topic, a write
            that failed, or no commit accepted for ``broker_timeout`` s (nothing is committed
            past what was written).
        KeyboardInterrupt: after a clean, committed stop on Ctrl-C.
    """
    if options:
        raise TypeError(f"unknown option(s) for a Kafka run: {', '.join(sorted(options))}; known: "
                        "processing_guarantee, until_idle, max_records, commit_interval, "
                        "assignment_timeout, broker_timeout")
    run = _KafkaRun(plan, inputs, outputs, on_error=on_error, dead_letter=dead_letter,
                    progress=progress, progress_every=progress_every,
                    guarantee=processing_guarantee, until_idle=until_idle, max_records=max_records,
                    commit_interval=commit_interval, assignment_timeout=assignment_timeout,
                    broker_timeout=broker_timeout)
    ck = kc._require_kafka()
    try:
        # the collector policy of every local run, and a full collection every _GC_EVERY s
        with collector_for_a_run():
            return run.run()
    except ck.KafkaException as e:  # whatever librdkafka raised that the loop did not expect
        err = e.args[0] if e.args else e
        reason = err.str() if hasattr(err, "str") else str(err)
        raise ConnectorError(f"Kafka at {run.base.bootstrap_servers} (group {run.group!r}): "
                             f"{reason}") from None


def plan_difference(written: list[tuple[str, str]], running: list[tuple[str, str]]) -> str:
    """What differs between the operators a checkpoint was written by and this plan's
    (``[(name, kind), ...]`` in topological order), in a few words.

    >>> print(plan_difference([("source-a", "Source"), ("filter-1", "Filter"), ("sink-o", "Sink")],
    ...                       [("source-a", "Source"), ("fused-1", "Fused"), ("sink-o", "Sink")]))
    operators only in the checkpoint: filter-1 (Filter); only in this plan: fused-1 (Fused); a plan optimized differently (streamdsl run optimizes; Backend.run(..., optimize=False) does not) writes other operators
    """
    old, new = dict(written), dict(running)
    parts = []
    gone = [f"{n} ({k})" for n, k in written if n not in new]
    added = [f"{n} ({k})" for n, k in running if n not in old]
    kinds = [f"{n} ({old[n]} -> {k})" for n, k in running if n in old and old[n] != k]
    if gone:
        parts.append("operators only in the checkpoint: " + ", ".join(gone))
    if added:
        parts.append("only in this plan: " + ", ".join(added))
    if kinds:
        parts.append("other kinds: " + ", ".join(kinds))
    if not parts:
        parts.append("the same operators in another order")
    if any(k == "Fused" for _, k in written) != any(k == "Fused" for _, k in running):
        parts.append("a plan optimized differently (streamdsl run optimizes; "
                     "Backend.run(..., optimize=False) does not) writes other operators")
    return "; ".join(parts)


class _Committed(NamedTuple):
    """What the last commit covered: where an exactly_once run goes back to when a transaction
    cannot commit."""

    state: bytes               # the executor's snapshot, pickled
    positions: dict            # (topic, partition) -> next offset
    consumed: dict             # non-Kafka source -> records read
    metrics: Metrics
    fed: int
    ended: bool
    txn: str | None            # the transaction's id (the checkpoint's and outputs' header)
    ended_subs: frozenset = frozenset()  # the sub-topologies whose input had ended


class _Channel:
    """One ordered input: a Kafka partition (``buf`` filled by the consumer) or a non-Kafka
    source (``it``, a finite iterator). A partition of a repartition topic is ``internal``:
    ``source`` is then the ``Repartition`` node, and its buffer holds ``(ts, tie, Handoff,
    offset, txn)`` entries instead of ``(ts, tie, InputEvent)``."""

    __slots__ = ("source", "order", "topic", "partition", "buf", "eof", "next_offset", "it",
                 "consumed", "exhausted", "paused", "active", "internal", "sub", "rank", "entry",
                 "take", "sentinel")

    def __init__(self, source: str, order: int, topic: str | None = None, partition: int = 0, *,
                 internal: bool = False, sub: int = 0):
        self.source = source
        self.order = order
        self.topic = topic
        self.partition = partition
        self.internal = internal
        #: the sub-topology whose merge takes this channel's records (``_KafkaRun.stages``)
        self.sub = sub
        #: ``(event time, rank, Record | _Raw)`` entries, in offset (or file) order
        self.buf: deque[tuple] = deque()
        self.eof = False
        self.next_offset: int | None = None
        self.it: Any = None
        self.consumed = 0
        self.exhausted = False
        self.paused = False
        #: a Kafka partition this run owns now (a shared group can take it away)
        self.active = True
        #: ties of the merge: source declaration order, then partition
        self.rank = order * 1_000_000 + partition
        self.entry: Callable[[Any], tuple] | None = None  # set by the run (``_entry_maker``)
        #: ``(messages, i, n) -> j``: buffers the entries of messages ``i`` to ``j - 1``, the
        #: run of this partition's messages from ``i`` (set by the run: ``_taker``)
        self.take: Callable[[list, int, int], int] | None = None
        #: what ends the buffer in a merge while more may come: sorts before every record
        self.sentinel = ((float("-inf"), self.rank, None),)


class _RepartitionWriter:
    """Writes what the repartitions hand on to their topics (``kafka.encode_repartition``), each
    record to the partition of its new key, given explicitly, with the run's shared producer
    (transactional under exactly_once: ``producer`` and ``headers`` are set like the sinks')."""

    _POLL_EVERY = 512  # writes between two polls of the producer (its delivery reports)

    def __init__(self, producer: Any, on_delivery: Callable[[Any, Any], None]):
        self.producer = producer
        self.on_delivery = on_delivery
        self.headers: list[tuple[str, bytes]] | None = None
        self._unpolled = 0

    def write(self, item: tuple) -> None:
        topic, partition, key, value, ts, headers = item
        headers = headers if headers is not None else self.headers
        try:
            self.producer.produce(topic, value=value, key=key, partition=partition,
                                  on_delivery=self.on_delivery, timestamp=ts, headers=headers)
        except BufferError:  # the local queue is full: wait for room
            kc.produce(self.producer, topic, key, value, ts, self.on_delivery,
                       partition=partition, headers=headers)
            self._unpolled = 0
            return
        self._unpolled += 1
        if self._unpolled >= self._POLL_EVERY:
            self.producer.poll(0)
            self._unpolled = 0


class _KafkaRun:
    def __init__(self, plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
                 on_error: str | None, dead_letter: Any, progress: Callable[[Metrics], None] | None,
                 progress_every: float, guarantee: str, until_idle: float | None,
                 max_records: int | None, commit_interval: float, assignment_timeout: float,
                 broker_timeout: float = 60.0):
        if guarantee not in GUARANTEES:
            raise ConnectorError(f"processing_guarantee must be one of {', '.join(GUARANTEES)}, "
                                 f"got {guarantee!r}")
        if until_idle is not None and not until_idle >= 0:
            raise ConnectorError(f"until_idle must be >= 0 seconds, got {until_idle!r}")
        if max_records is not None and (not isinstance(max_records, int) or max_records < 1):
            raise ConnectorError(f"max_records must be a positive integer, got {max_records!r}")
        self.plan = plan
        self.eos = GUARANTEES[guarantee] == "exactly_once"
        self.until_idle = until_idle
        self.max_records = max_records
        self.commit_interval = float(commit_interval)
        self.assignment_timeout = float(assignment_timeout)
        self.broker_timeout = float(broker_timeout)
        self.progress = progress
        self.progress_every = progress_every
        self.on_error = on_error
        self.order = {t: i for i, t in enumerate(plan.source_topics())}
        missing = [t for t in self.order if t not in inputs]
        if missing:
            raise ConnectorError(f"no input given for source(s) {', '.join(missing)}")
        unknown = [t for t in inputs if t not in self.order]
        if unknown:
            raise ConnectorError(f"input(s) {', '.join(unknown)} are not sources of topology "
                                 f"{plan.name!r} (sources: {', '.join(self.order)})")
        self.kafka_in: dict[str, kc.KafkaSpec] = {}
        self.other_in: dict[str, Any] = {}
        for source, spec in inputs.items():
            if kc.is_kafka(spec):
                self.kafka_in[source] = kc.kafka_spec(spec)
            else:
                self.other_in[source] = spec
        specs = list(self.kafka_in.values())
        self.base = specs[0]
        clusters = {s.bootstrap_servers for s in specs}
        if len(clusters) > 1:
            raise ConnectorError("the Kafka inputs of one run must be on one cluster, got "
                                 + ", ".join(sorted(clusters)))
        groups = {s.group for s in specs if s.group}
        if len(groups) > 1:
            raise ConnectorError("the Kafka inputs of one run share one consumer group, got "
                                 + ", ".join(sorted(groups)) + "; give the same ?group= to each")
        self.group = groups.pop() if groups else plan.name
        self.key_used = {t: kc.uses_kafka_key(s for s in plan.sources() if s.topic == t)
                         for t in self.kafka_in}
        self.source_of: dict[str, str] = {}
        for source, s in self.kafka_in.items():
            if s.topic in self.source_of:
                raise ConnectorError(f"sources {self.source_of[s.topic]!r} and {source!r} both read "
                                     f"Kafka topic {s.topic!r}; read it once and branch the stream")
            self.source_of[s.topic] = source
        self._plan_repartitions(plan)
        self.config: dict[str, str] = {}
        for s in specs:
            self.config.update(s.config)
        first = next((s for s in specs if s.checkpoint_topic), None)
        self.checkpoint_topic = (first.checkpoint_topic if first else None) or self.group + CHECKPOINT_SUFFIX
        first = next((s for s in specs if s.transactional_id), None)
        self.transactional_id = (first.transactional_id if first else None) or f"streamdsl-{self.group}"
        self.outputs = {t: parse_uri(s) for t, s in outputs.items()}
        self.dead_letter = parse_uri(dead_letter) if dead_letter is not None else None
        if self.eos:
            for name, spec in [*self.outputs.items(), ("dead letters", self.dead_letter)]:
                if spec is None:
                    continue
                if spec["type"] != "kafka":
                    raise ConnectorError(
                        f"processing_guarantee='exactly_once' needs every output to be a Kafka topic; "
                        f"{name!r} is {spec['type']}: write it to kafka:// or use at_least_once")
                if kc.kafka_spec(spec).bootstrap_servers != self.base.bootstrap_servers:
                    raise ConnectorError(f"processing_guarantee='exactly_once' needs the outputs on "
                                         f"the input cluster; {name!r} is on another one")
        # run state
        self.channels: list[_Channel] = []
        self.kchan: dict[tuple[str, int], _Channel] = {}
        self.start_offsets: dict[tuple[str, int], int] = {}
        self.expected: set[tuple[str, int]] = set()
        self.assigned: set[tuple[str, int]] = set()
        self.stop: str | None = None
        self.failed = False  # the run is ending with an error: commit nothing more
        self.columnar = False  # consumed values go columnar (``_columnar_ok``)
        self.fed = 0
        self.dirty = False
        self.ended = False
        self.seq = 0
        self.run_id = uuid.uuid4().hex[:12]
        self.committed: _Committed | None = None
        self.producer_ok = True  # False: the transactional producer must be replaced
        self.broker_error: tuple[float, str] | None = None  # (when, what): the last "unreachable"
        self.failing_since: float | None = None  # when commits started to fail (None: they do not)
        self.assignment_changed = time.monotonic()  # when the group last gave or took partitions
        #: a shared group: the offsets this instance last committed, by (topic, partition)
        self.last_committed: dict[tuple[str, int], int] = {}
        # repartition topics: records handed to each partition by this run (``_cut``), those
        # whose delivery was reported, the first and last offset delivered
        self.r_sent: dict[tuple[str, int], int] = {}
        self.r_done: dict[tuple[str, int], int] = {}
        self.r_first: dict[tuple[str, int], int] = {}
        self.r_last: dict[tuple[str, int], int] = {}
        #: exactly_once: the transactions whose repartition records a downstream task takes
        #: (this run's committed ones, and those of the restored checkpoint); any other
        #: transaction's records were aborted (a broker may show them: see ``_head``)
        self.committed_txns: set[str] = set()
        self.restored_txns: set[str] = set()
        #: exactly_once: the last offset of each repartition partition written by each
        #: committed transaction of this run (``_live_txns``), and by the one committing now
        self.r_txn_offsets: dict[str, dict[tuple[str, int], int]] = {}
        self.r_txn_now: dict[tuple[str, int], int] = {}
        # at_least_once: how many records each upstream task has handed on (``SEQ_HEADER``),
        # and, for each repartition partition, the last number taken from each upstream task.
        # A task that stopped without a commit has its input read again by its next run,
        # which hands on the same records with the same numbers; those already taken are
        # passed over, so an aggregate downstream counts each once, as with the hand-off in
        # process. Both are checkpointed with their tasks.
        self.r_seq: dict[str, int] = {}
        self.r_seen: dict[tuple[str, int], dict[str, int]] = {}
        self._task_names: dict[tuple[str, int], str] = {}

    # ---- set-up ------------------------------------------------------------------------------------
    def _plan_repartitions(self, plan: Plan) -> None:
        """The repartition topics and the order sub-topologies are merged, fed and ended in."""
        import networkx as nx
        self.subs = sub_topologies(plan)
        self.sub_of = sub_topology_of(plan)
        #: repartition node -> its Kafka topic, and back
        self.rtopic = {n.name: repartition_topic(plan, n.name, self.group)
                       for n in plan.topological() if isinstance(n, Repartition)}
        self.rnode_of = {t: n for n, t in self.rtopic.items()}
        if len(self.rnode_of) < len(self.rtopic) or set(self.rnode_of) & set(self.source_of):
            raise ConnectorError(
                f"the repartition topics of group {self.group!r} ({', '.join(self.rtopic.values())}) "
                "collide with each other or with an input topic; rename the operators (name=) "
                "or use another group")
        g = nx.DiGraph()
        g.add_nodes_from(s.id for s in self.subs)
        for r in self.rtopic:
            for e in plan.out_edges(r):
                g.add_edge(self.sub_of[r], self.sub_of[e.dst])
        #: sub-topologies, upstream first (what a sub-topology reads is written before it)
        self.stages = list(nx.lexicographical_topological_sort(g))
        self.upstream_subs = {s: set(nx.ancestors(g, s)) for s in self.stages}
        rank = {s: i for i, s in enumerate(self.stages)}
        # The sub-topologies reading each channel's source (a source topic, or a repartition
        # node's topic); its records are taken by the first one's merge (and go on to all).
        readers: dict[str, set[int]] = {}
        for node in plan.sources():
            readers.setdefault(node.topic, set()).add(self.sub_of[node.name])
        for r in self.rtopic:
            readers[r] = {self.sub_of[e.dst] for e in plan.out_edges(r)}
        self.readers = readers
        self.reader_sub = {src: min(subs, key=rank.__getitem__) for src, subs in readers.items()}
        self.writer_sub = {r: self.sub_of[r] for r in self.rtopic}
        # A sub-topology whose tasks have several input partitions (it reads several topics),
        # or that writes a repartition (the order of its records between tasks is then the
        # order of that repartition topic), takes its records in one merge that waits for an
        # empty repartition partition whose records are still to come (``_at_end``); any
        # other takes each partition's records as they come.
        self.waits = {s: sum(1 for src, r in self.reader_sub.items() if r == s) > 1
                      or s in self.writer_sub.values() for s in self.stages}
        #: tie order of a repartition partition's channel, after every source's
        self.r_order = {r: len(self.order) + i for i, r in enumerate(self.rtopic)}

    def _spec(self, topic: str, **changes: Any) -> kc.KafkaSpec:
        from dataclasses import replace
        return replace(self.base, topic=topic, config=dict(self.config), **changes)

    def _consumer(self) -> Any:
        ck = kc._require_kafka()
        conf = self.base.client_config(**{
            "group.id": self.group, "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True,
            "isolation.level": "read_committed",
            # A short session: a member joins a group after up to about the session timeout
            # (librdkafka's default, 45 s, made the first run wait 23 s on the test broker);
            # 6 s is the smallest a Kafka broker accepts by default (group.min.session.timeout.ms).
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 3,
            # A partition at its end is known only when a fetch comes back empty; until then it
            # holds the merge back, so empty fetches must return soon.
            "fetch.wait.max.ms": 100,
            # librdkafka stops fetching a partition whose prefetch queue is full
            # (queued.min.messages) and waits fetch.queue.backoff.ms before it looks again:
            # with the default 1 s, a run that had taken the queue in 0.1 s waited 0.9 s
            # for the next fetch (1M records took 8 s to read with nothing else to do, 3.3 s
            # with 10 ms; see docs/performance.md "Kafka in and out").
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
            "error_cb": self._on_error})
        conf.update(self.config)
        if "session.timeout.ms" in self.config and "heartbeat.interval.ms" not in self.config:
            # a heartbeat must come well within the session, or the member keeps losing it
            conf["heartbeat.interval.ms"] = max(1, int(conf["session.timeout.ms"]) // 3)
        self.session_timeout = int(conf["session.timeout.ms"]) / 1000
        return ck.Consumer(conf)

    def _broker_down(self, since: float) -> bool:
        """Whether librdkafka said the broker was unreachable after ``since`` - a session."""
        return (self.broker_error is not None
                and self.broker_error[0] >= since - self.session_timeout)

    def _on_error(self, err: Any) -> None:
        """librdkafka's client-level errors (served by ``consume``): remember when the broker
        was last unreachable (for the bound on waiting for partitions, and the message)."""
        if err.code() in _UNREACHABLE:
            self.broker_error = (time.monotonic(), err.str())
        log.debug("kafka consumer: %s", err.str())

    def _main_producer(self) -> Any:
        """The producer of the input cluster (transactional under exactly_once). Delivery
        reports of records written are needed for the repartition topics only
        (``_r_delivered``); without them it reports failures only, not one Python callback per
        record."""
        extra: dict[str, Any] = {"transactional.id": self.transactional_id} if self.eos else {}
        return kc.make_producer(self._spec(self.base.topic), only_errors=not self.rtopic,
                                **extra)

    def _open_outputs(self) -> None:
        self.trackers: dict[str, kc.DeliveryTracker] = {}
        self.producers: dict[str, Any] = {}
        main = self.base.bootstrap_servers
        self.producers[main] = self._main_producer()
        self.trackers[main] = kc.DeliveryTracker()
        self.rwriter = _RepartitionWriter(self.producers[main], self._r_delivered)
        self.r_last_committed: dict[tuple[str, int], int] = {}
        self._txn_wrote_r = False
        self.sinks: dict[str, Any] = {}
        for topic, spec in self.outputs.items():
            if spec["type"] == "kafka":
                ks = kc.kafka_spec(spec)
                if ks.bootstrap_servers not in self.producers:
                    self.producers[ks.bootstrap_servers] = kc.make_producer(ks, only_errors=True)
                    self.trackers[ks.bootstrap_servers] = kc.DeliveryTracker()
                self.sinks[topic] = kc.KafkaSink(ks, producer=self.producers[ks.bootstrap_servers],
                                                 tracker=self.trackers[ks.bootstrap_servers])
            else:  # a file, written in place as a topic is: what a commit covered is in it
                self.sinks[topic] = open_sink(topic, spec, staged=False)
        self.dl = None
        if self.dead_letter is not None:
            if self.dead_letter["type"] == "kafka":
                ks = kc.kafka_spec(self.dead_letter)
                if ks.bootstrap_servers not in self.producers:
                    self.producers[ks.bootstrap_servers] = kc.make_producer(ks, only_errors=True)
                    self.trackers[ks.bootstrap_servers] = kc.DeliveryTracker()
                kafka_topics = {src: s.topic for src, s in self.kafka_in.items()}
                self.dl = kc.KafkaDeadLetterSink(ks, producer=self.producers[ks.bootstrap_servers],
                                                 tracker=self.trackers[ks.bootstrap_servers],
                                                 kafka_topics=kafka_topics)
            else:
                self.dl = open_dead_letter_sink(self.dead_letter, staged=False)

    def _discover(self) -> None:
        counts: dict[str, int] = {}
        for source, s in self.kafka_in.items():
            parts = kc.topic_partitions(s)
            if not parts:
                raise ConnectorError(f"Kafka topic {s.topic!r} (source {source!r}) does not exist at "
                                     f"{s.bootstrap_servers}; create it first")
            self.expected.update((s.topic, p) for p in parts)
            counts[source] = len(parts)
        self.partitions = _co_partitioned(self.plan, counts)
        self._ensure_repartition_topics()
        self.multi = len(self.expected) + len(self.other_in) > 1
        #: the sub-topology of each Kafka topic's partitions (their task's)
        self.topic_sub = {t: self.reader_sub[src] for t, src in self.source_of.items()}
        self.topic_sub.update({t: self.reader_sub[r] for t, r in self.rnode_of.items()})
        # Tasks can move between instances of the group when each is a set of partitions of
        # Kafka topics: no other input (each instance would read a file whole), each topic
        # read by one sub-topology (its partitions are its tasks'), and at_least_once (one
        # transactional producer per group). Such a run checkpoints each task apart, so a task
        # continues where it stopped wherever it goes; a repartition's records reach the
        # tasks of the sub-topology downstream through its topic, wherever they run.
        self.shareable = (not self.eos and not self.other_in
                          and all(len(subs) == 1 for subs in self.readers.values()))

    def _ensure_repartition_topics(self) -> None:
        """Create the repartition topics that are missing, with the run's partitions; one that
        exists must have them."""
        if not self.rtopic:
            return
        missing: dict[str, tuple[int, dict[str, str]]] = {}
        for node, topic in self.rtopic.items():
            parts = kc.topic_partitions(self._spec(topic))
            if not parts:
                missing[topic] = (self.partitions, {"cleanup.policy": "delete"})
            elif len(parts) != self.partitions:
                raise ConnectorError(
                    f"repartition topic {topic!r} (of {node!r}) has {len(parts)} partition(s), "
                    f"but the run's input topics have {self.partitions}: delete it, or run "
                    "with another group (?group=NEW)")
        if missing:
            kc.ensure_topics(self._spec(next(iter(missing))), missing)
            log.info("created repartition topic(s) %s", ", ".join(missing))
        for topic in self.rtopic.values():
            self.expected.update((topic, p) for p in range(self.partitions))

    # ---- checkpoints ---------------------------------------------------------------------------
    def _fingerprint(self) -> list[tuple[str, str]]:
        return [(n.name, n.kind) for n in self.plan.topological()]

    def _positions(self) -> dict[tuple[str, int], int]:
        return {k: ch.next_offset for k, ch in self.kchan.items() if ch.next_offset is not None}

    def _txn_id(self) -> str:
        return f"{self.run_id}-{self.seq}"

    def _consumed(self) -> dict[str, int]:
        return {ch.source: ch.consumed for ch in self.channels if ch.topic is None}

    def _state_bytes(self) -> bytes:
        try:
            return pickle.dumps(self.ex.snapshot(live=True), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            raise ConnectorError(f"cannot checkpoint the state of topology {self.plan.name!r}: "
                                 f"{type(e).__name__}: {e}; aggregate values must be picklable") from e

    def _checkpoint_bytes(self, state: bytes, positions: dict) -> bytes:
        # version 3: "state" is the executor's snapshot by task, pickled on its own so that
        # the same bytes serve a rewind (_Committed) without pickling twice (version 2: by
        # node, one partition; version 1: not pickled on its own)
        snap = {"version": 3, "topology": self.plan.name, "nodes": self._fingerprint(),
                "seq": self.seq, "positions": positions, "ended": self.ended,
                "consumed": self._consumed(), "state": state,
                "txn": self._txn_id() if self.eos else None,
                "parent": self.committed.txn if self.committed is not None else None,
                "r_txns": sorted(self._live_txns()) if self.eos and self.rtopic else [],
                "r_seq": dict(self.r_seq), "r_seen": copy.deepcopy(self.r_seen)}
        return pickle.dumps(snap, protocol=pickle.HIGHEST_PROTOCOL)

    def _ensure_checkpoint_topic(self) -> None:
        spec = self._spec(self.checkpoint_topic)
        if not kc.topic_partitions(spec):
            kc.ensure_topics(spec, {self.checkpoint_topic: (1, {"cleanup.policy": "compact"})})

    def _task_key(self, task: str) -> bytes:
        return f"{self.group}#{task}".encode()

    def _task_checkpoints(self, consumer: Any, tasks: set[str]) -> dict[str, dict]:
        """The latest checkpoint of each of ``tasks`` (key ``<group>#<task>``): the one whose
        offsets the group has committed (the last commit that got through), else the last."""
        ck = kc._require_kafka()
        spec = self._spec(self.checkpoint_topic)
        reader = ck.Consumer(spec.client_config(**{
            "group.id": self.group + "-checkpoint-reader", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 50,
            "enable.partition.eof": True, "isolation.level": "read_committed"}))
        try:
            msgs = kc.read_to_end(reader, self.checkpoint_topic,
                                  [ck.TopicPartition(self.checkpoint_topic, 0, 0)],
                                  kc._TIMEOUT)[0]
        finally:
            reader.close()
        wanted = {self._task_key(t): t for t in tasks}
        whole = self.group.encode()  # a checkpoint of every task (a run of one instance)
        cands: dict[str, list[dict]] = {}
        for m in msgs:
            task = wanted.get(m.key()) if m.key() != whole else ""
            if task is None or m.value() is None:
                continue
            try:
                cands.setdefault(task, []).append(pickle.loads(m.value()))
            except Exception as e:
                log.warning("skipping an unreadable checkpoint at offset %s: %s", m.offset(), e)
        olds = cands.pop("", [])
        tps = sorted({tp for cs in [*cands.values(), olds] for c in cs for tp in c["positions"]})
        committed = {}
        if tps:
            for tp in consumer.committed([ck.TopicPartition(t, p) for t, p in tps],
                                         timeout=kc._TIMEOUT):
                if tp.offset >= 0:
                    committed[(tp.topic, tp.partition)] = tp.offset
        chosen = {}
        for task, cs in cands.items():
            c = next((c for c in reversed(cs)
                      if all(committed.get(tp) == off for tp, off in c["positions"].items())),
                     cs[-1])
            if c["nodes"] != self._fingerprint():
                raise ConnectorError(
                    f"the checkpoint of task {task} in Kafka topic {self.checkpoint_topic!r} was "
                    f"written by a different topology ({plan_difference(c['nodes'], self._fingerprint())}); "
                    "run this one with another group (?group=NEW), or delete that topic to start "
                    "without state")
            chosen[task] = c
        missing = tasks - set(chosen)
        if missing and olds:
            chosen.update(self._from_whole(olds, committed, missing))
        return chosen

    def _from_whole(self, cands: list[dict], committed: dict, tasks: set[str]) -> dict[str, dict]:
        """Task checkpoints taken from a checkpoint of every task (written by a run that did
        not share its group: an earlier version, or one of a topology with a repartition
        before repartitions were topics): the one whose offsets the group has committed, else
        the last."""
        c = next((c for c in reversed(cands)
                  if all(committed.get(tp) == off for tp, off in c["positions"].items())),
                 cands[-1])
        if c["nodes"] != self._fingerprint():
            raise ConnectorError(
                f"the checkpoint in Kafka topic {self.checkpoint_topic!r} was written by a "
                f"different topology ({plan_difference(c['nodes'], self._fingerprint())}); run "
                "this one with another group (?group=NEW), or delete that topic to start without "
                "state")
        state = pickle.loads(c["state"]) if isinstance(c["state"], bytes) else c["state"]
        if c.get("version", 1) < 3:
            state = _by_task(state, self.ex.sub_topology)
        out = {}
        for task in tasks:
            mine = {tp: off for tp, off in c["positions"].items()
                    if tp[0] in self.topic_sub and self._task_of(tp) == task}
            out[task] = {"nodes": c["nodes"], "positions": mine,
                         "state": pickle.dumps(state.get(task, {}),
                                               protocol=pickle.HIGHEST_PROTOCOL),
                         "r_seq": c.get("r_seq", {}).get(task, 0),
                         "r_seen": {k: v for k, v in c.get("r_seen", {}).items() if k in mine}}
        log.info("group %s: task(s) %s from the checkpoint of the whole run", self.group,
                 ", ".join(sorted(tasks)))
        return out

    def _task_checkpoint_bytes(self, task: str, state: bytes, positions: dict) -> bytes:
        return pickle.dumps({"version": 4, "topology": self.plan.name, "task": task,
                             "nodes": self._fingerprint(), "seq": self.seq,
                             "positions": positions, "ended": self.ended, "state": state,
                             "r_seq": self.r_seq.get(task, 0),
                             "r_seen": {k: dict(self.r_seen[k]) for k in positions
                                        if k in self.r_seen}},
                            protocol=pickle.HIGHEST_PROTOCOL)

    def _write_task_checkpoints(self, positions: dict) -> None:
        """One checkpoint record per task this instance owns: its state and its partitions'
        next offsets."""
        tracker = self.trackers[self.base.bootstrap_servers]
        procs = self.ex.task_processors()
        owned: dict[str, list[tuple[str, int]]] = {}
        for key in self.assigned:
            owned.setdefault(self._task_of(key), []).append(key)
        for task in sorted(owned):
            state = pickle.dumps({n: proc.snapshot(live=True)
                                  for n, proc in procs.get(task, {}).items()},
                                 protocol=pickle.HIGHEST_PROTOCOL)
            mine = {tp: positions[tp] for tp in sorted(owned[task]) if tp in positions}
            kc.produce(self.main, self.checkpoint_topic, self._task_key(task),
                       self._task_checkpoint_bytes(task, state, mine), None, tracker,
                       partition=0)

    def _load_checkpoint(self, consumer: Any) -> dict | None:
        ck = kc._require_kafka()
        spec = self._spec(self.checkpoint_topic)
        if not kc.topic_partitions(spec):
            kc.ensure_topics(spec, {self.checkpoint_topic: (1, {"cleanup.policy": "compact"})})
            return None
        reader = ck.Consumer(spec.client_config(**{
            "group.id": self.group + "-checkpoint-reader", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 50,
            "enable.partition.eof": True, "isolation.level": "read_committed"}))
        try:
            msgs = kc.read_to_end(reader, self.checkpoint_topic,
                                  [ck.TopicPartition(self.checkpoint_topic, 0, 0)],
                                  kc._TIMEOUT)[0]
        finally:
            reader.close()
        key = self.group.encode()
        cands = []
        for m in msgs:
            if m.key() != key or m.value() is None:
                continue
            try:
                cands.append(pickle.loads(m.value()))
            except Exception as e:
                log.warning("skipping an unreadable checkpoint at offset %s: %s", m.offset(), e)
        if not cands:
            return None
        tps = sorted({tp for c in cands for tp in c["positions"]})
        committed = {}
        if tps:
            for tp in consumer.committed([ck.TopicPartition(t, p) for t, p in tps], timeout=kc._TIMEOUT):
                if tp.offset >= 0:
                    committed[(tp.topic, tp.partition)] = tp.offset
        # The committed offsets say which checkpoint the last successful commit wrote (a broker
        # that shows aborted transactions to read_committed readers could show a later one).
        chosen = next((c for c in reversed(cands)
                       if c["positions"] and all(committed.get(tp) == off
                                                 for tp, off in c["positions"].items())),
                      cands[-1])
        if chosen["nodes"] != self._fingerprint():
            raise ConnectorError(
                f"the checkpoint in Kafka topic {self.checkpoint_topic!r} was written by a different "
                f"topology ({plan_difference(chosen['nodes'], self._fingerprint())}); run this one "
                "with another group (?group=NEW), or delete that topic to start from the group's "
                "offsets without state")
        return chosen

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> Any:
        from streamdsl.backend import RunResult
        kc._require_kafka()
        self._discover()
        self._open_outputs()
        self.main = self.producers[self.base.bootstrap_servers]
        # exactly_once: outputs wait in memory until the commit writes them in its transaction.
        # A failure while processing then leaves nothing in the output topics at all (a broker
        # that shows aborted records to read_committed readers, such as Tansu, shows nothing).
        self.pending: list[tuple[Callable[[Any], None], Any]] = []
        # (a Kafka sink takes a batch's records in one call: ``KafkaSink.many``)
        writers = {t: s if not self.eos and isinstance(s, kc.KafkaSink) else self._writer(s.write)
                   for t, s in self.sinks.items()}
        # One task per partition, as Kafka Streams: a Kafka record's task is its partition's
        # (whatever partitioner wrote it); the other inputs' records go where their keys
        # (positions) say, over as many partitions.
        partitioner = Partitioner(self.partitions)

        def partition_of(rec: Any) -> int:
            pos = rec.origin[1]
            return pos[0] if type(pos) is tuple else partitioner(rec.key, pos)
        self.ex = ex = Executor(self.plan.with_partitions(self.partitions), on_error=self.on_error,
                                sink_writers=writers,
                                dead_letter_writer=self._writer(self.dl.write) if self.dl else None,
                                partition_of=partition_of, exact_tasks=True,
                                repartition_writer=self._cut if self.rtopic else None)
        # A checkpoint is needed for operator state, for the read positions of non-Kafka
        # inputs (a file is not read again from its start by the next run), and under
        # exactly_once for the transactions whose repartition records are still to be read.
        self.stateful = bool(self.other_in) or ex.stateful or (self.eos and bool(self.rtopic))
        consumer = self._consumer()
        self.consumer = consumer
        restore_sigint = self._install_sigint()
        try:
            if self.eos:  # fences an older instance, aborts its open transaction
                self._call("init_transactions", self.main.init_transactions, timeout=kc._TIMEOUT)
            skip: dict[str, int] = {}
            parent = None
            if self.stateful and self.shareable:
                self._ensure_checkpoint_topic()  # tasks are restored as they are assigned
            elif self.stateful:
                ckpt = self._load_checkpoint(consumer)
                if ckpt is not None:
                    state = ckpt["state"]
                    self._restore(pickle.loads(state) if isinstance(state, bytes) else state,
                                  ckpt.get("version", 1))
                    self.start_offsets = dict(ckpt["positions"])
                    skip = dict(ckpt.get("consumed", {}))
                    self.seq = ckpt["seq"]
                    parent = ckpt.get("txn")
                    self.restored_txns = set(ckpt.get("r_txns", ()))
                    self.committed_txns |= self.restored_txns
                    self.r_seq = dict(ckpt.get("r_seq", {}))
                    self.r_seen = copy.deepcopy(ckpt.get("r_seen", {}))
                    log.info("restored checkpoint %s of group %s", self.seq, self.group)
            self.ingest = {}
            self.plan_nodes_of: dict[str, list[str]] = {}
            for s in self.plan.sources():
                self.ingest.setdefault(s.topic, make_ingest(s))
                self.plan_nodes_of.setdefault(s.topic, []).append(s.name)
            self.by_rank: dict[int, _Channel] = {}
            self.node_of_rank: dict[int, str] = {}
            self.saw_raw = False
            self.single_source = len(self.plan_nodes_of) == 1
            self.only_node = next(iter(self.plan_nodes_of.values()))[0]
            #: consumed values kept in columns and fed columnar (``kafka_columns``)
            self.columnar = self._columnar_ok()
            self.channels.extend(self._open_other(source, skip.get(source, 0))
                                 for source in self.other_in)
            self._start_from_committed(consumer)
            self.committed = _Committed(self._state_bytes(), dict(self.start_offsets), skip,
                                        copy.deepcopy(ex.metrics), 0, False, parent)
            consumer.subscribe(self._topics(),
                               on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._wait_for_assignment()
            if self.eos:
                self.main.begin_transaction()
            while True:
                self._loop()
                if not self.stop and self.until_idle is not None and not self.ended:
                    self._end_wave()
                    if not self.ended:
                        # The sub-topologies downstream end once they have read what this
                        # wave wrote to their repartition topics (exactly_once writes it at
                        # the commit).
                        if self.eos:
                            self._commit()
                        continue
                if self._commit_final():
                    break
                # exactly_once: the transaction was aborted and the run went back to its last
                # commit; read and process from there again (a Ctrl-C stops here instead)
                if self.stop == "interrupt":
                    break
        except BaseException:
            # nothing more is committed (closing the consumer revokes its partitions, and a
            # shared group's revocation would commit what was processed, the failed chunk too)
            self.failed = True
            if self.eos and self.producer_ok:
                # Briefly: a transaction left open is aborted by the broker after
                # transaction.timeout.ms, or at once by the next run's init_transactions.
                try:
                    self._call("abort_transaction", self.main.abort_transaction, timeout=2.0)
                except Exception as e:  # the original error matters more
                    log.debug("could not abort the Kafka transaction: %s", e)
            raise
        finally:
            restore_sigint()
            try:
                consumer.close()
            finally:
                if not self.eos:
                    for p in self.producers.values():
                        p.flush(min(10.0, self.broker_timeout))
                for s in self.sinks.values():
                    if not isinstance(s, kc.KafkaSink):
                        s.close()
                if self.dl is not None and not isinstance(self.dl, kc.KafkaDeadLetterSink):
                    self.dl.close()
        if self.progress is not None:
            self.progress(ex.metrics)
        if self.stop == "interrupt":
            raise KeyboardInterrupt
        warn_drops(ex.plan, ex.metrics)
        return RunResult(ex.outputs, ex.dead_letters, ex.metrics)

    def _end_wave(self) -> None:
        """End the input of the sub-topologies whose upstream ones have all ended (the first
        ones first): their windows close, and what they emit goes on (to repartition topics
        too)."""
        ended = self.ex.ended_subs
        wave = [s for s in self.stages if s not in ended and self.upstream_subs[s] <= ended]
        self.ex.end(wave)
        self.ended = self.ex.ended
        self.dirty = True
        log.info("group %s: the input of sub-topolog%s %s ended", self.group,
                 "ies" if len(wave) > 1 else "y", ", ".join(map(str, wave)))

    def _cut(self, node: str, rec: Record, task_partition: int, partition: int) -> None:
        """The executor's repartition writer: ``rec``, from the task of ``task_partition``, to
        ``partition`` of ``node``'s topic (exactly_once: at the commit, in its transaction)."""
        topic = self.rtopic[node]
        try:
            key, value = kc.encode_repartition(rec)
        except Exception as e:
            raise ConnectorError(
                f"cannot write a record of repartition {node!r} to Kafka topic {topic!r}: "
                f"{type(e).__name__}: {e}; keys and values must be picklable") from e
        k = (topic, partition)
        self.r_sent[k] = self.r_sent.get(k, 0) + 1
        headers = None
        if not self.eos:
            task = self._task_names.get((node, task_partition))
            if task is None:
                task = self._task_names[(node, task_partition)] = \
                    f"{self.writer_sub[node]}_{task_partition}"
            n = self.r_seq[task] = self.r_seq.get(task, 0) + 1
            headers = [(SEQ_HEADER, f"{task}:{n}".encode())]
        item = (topic, partition, key, value, rec.ts, headers)
        if self.eos:
            self.pending.append((self.rwriter.write, item))
        else:
            self.rwriter.write(item)

    def _r_delivered(self, err: Any, msg: Any) -> None:
        """Delivery report of a repartition record."""
        key = (msg.topic(), msg.partition())
        self.r_done[key] = self.r_done.get(key, 0) + 1
        if err is not None:
            self.trackers[self.base.bootstrap_servers](err, msg)
            return
        off = msg.offset()
        if off > self.r_last.get(key, -1):
            self.r_last[key] = off
        self.r_first.setdefault(key, off)
        if off > self.r_txn_now.get(key, -1):
            self.r_txn_now[key] = off

    def _caught_up(self, ch: _Channel) -> bool:
        """Whether a repartition partition's channel has taken every record this run wrote
        to it."""
        key = (ch.topic, ch.partition)
        return (self.r_done.get(key, 0) >= self.r_sent.get(key, 0)
                and ch.next_offset is not None and ch.next_offset > self.r_last.get(key, -1))

    def _live_txns(self) -> set[str]:
        """exactly_once: the committed transactions whose repartition records may not all
        have been taken yet, which the next run must take (it skips any other transaction's):
        this run's, by the offsets they wrote; the restored checkpoint's, until this run's
        own records are reached in every partition; and the one committing now."""
        pos = self._positions()
        live: set[str] = set()
        for txn, ends in list(self.r_txn_offsets.items()):
            if any(off >= pos.get(k, 0) for k, off in ends.items()):
                live.add(txn)
            else:
                del self.r_txn_offsets[txn]
        if self.restored_txns:
            keys = [(t, p) for t in self.rnode_of for p in range(self.partitions)]
            if all(k in self.r_first and pos.get(k, 0) > self.r_first[k] for k in keys):
                self.restored_txns = set()
            live |= self.restored_txns
        if self._txn_wrote_r:
            live.add(self._txn_id())
        return live

    def _restore(self, state: dict, version: int) -> None:
        """Restore a checkpoint's state: by task (version 3), or one partition's state by node
        (versions 1 and 2, written before runs had one task per partition)."""
        if version < 3:
            subs = self.ex.sub_topology
            state = _by_task(state, subs)
        state = {task: nodes for task, nodes in state.items() if nodes}  # a task without state
        tasks = self.ex.task_processors()
        unknown = sorted(set(state) - set(tasks))
        if unknown:
            raise ConnectorError(
                f"the checkpoint in Kafka topic {self.checkpoint_topic!r} holds tasks "
                f"{', '.join(unknown)}, which a run over {self.partitions} partition(s) does not "
                "have (were partitions added to an input topic?); run with another group "
                "(?group=NEW) to start without that state")
        self.ex.restore(state)

    def _open_other(self, source: str, skip: int) -> _Channel:
        """The channel of a non-Kafka input, its first ``skip`` records already read."""
        ch = _Channel(source, self.order[source], sub=self.reader_sub[source])
        self._register(ch, kafka=False)
        ch.it = iter(open_source(source, self.other_in[source]))
        for _ in range(skip):
            if next(ch.it, None) is None:
                break
            ch.consumed += 1
        return ch

    def _call(self, what: str, fn: Callable[..., Any], *args: Any,
              timeout: float | None = None) -> Any:
        """A transactional call ``fn(*args, timeout)`` that returns or raises in bounded time:
        by default at most _CALL_TIMEOUT s, and not much past broker_timeout after the last
        commit."""
        if timeout is None:
            left = self._failing_since() + self.broker_timeout - time.monotonic()
            timeout = max(1.0, min(_CALL_TIMEOUT, left))
        return kc.call_with_deadline(fn, *args, timeout, timeout=timeout, what=what)

    def _writer(self, write: Callable[[Any], None]) -> Callable[[Any], None]:
        if not self.eos:
            return write
        pending = self.pending
        return lambda item: pending.append((write, item))

    def _start_from_committed(self, consumer: Any) -> None:
        """Explicit start offsets for every partition: the checkpoint's, else the group's
        committed offset, else 0 (= the beginning: auto.offset.reset is earliest)."""
        ck = kc._require_kafka()
        todo = sorted(tp for tp in self.expected if tp not in self.start_offsets)
        if not todo:
            return
        got = consumer.committed([ck.TopicPartition(t, p) for t, p in todo], timeout=kc._TIMEOUT)
        for tp in got:
            self.start_offsets[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else 0

    def _install_sigint(self) -> Callable[[], None]:
        """Ctrl-C sets a flag checked between records; a second Ctrl-C interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            self.stop = "interrupt"
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assignment_changed = time.monotonic()
        new = [(tp.topic, tp.partition) for tp in partitions
               if (tp.topic, tp.partition) not in self.assigned]
        if self.shareable and new:
            self._adopt(consumer, new)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            ch = self.kchan.get(key)
            if ch is None:
                ch = self._kafka_channel(tp.topic, tp.partition)
                self.kchan[key] = ch
                self.channels.append(ch)
                self.channels.sort(key=lambda c: (c.order, c.partition))
                ch.next_offset = self.start_offsets.get(key)
            ch.active = True
            if ch.next_offset is not None:
                tp.offset = ch.next_offset
            self.assigned.add(key)
        consumer.assign(partitions)

    def _topics(self) -> list[str]:
        """The Kafka topics the run reads: its inputs, then its repartition topics."""
        return sorted(self.source_of) + sorted(self.rnode_of)

    def _kafka_channel(self, topic: str, partition: int) -> _Channel:
        node = self.rnode_of.get(topic)
        if node is not None:
            ch = _Channel(node, self.r_order[node], topic, partition, internal=True,
                          sub=self.reader_sub[node])
            self._register_internal(ch)
            return ch
        source = self.source_of[topic]
        ch = _Channel(source, self.order[source], topic, partition, sub=self.reader_sub[source])
        self._register(ch, kafka=True)
        return ch

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        # A rebalance (or a session timeout) took partitions away: what is buffered from them
        # is dropped and fetched again from ``next_offset`` once they come back; until then the
        # merge waits for them (and commits wait, see ``_loop``). In a shared group the tasks
        # go to another instance: what they processed is committed first (their checkpoints
        # and offsets), and their state here is dropped.
        if partitions:
            self.assignment_changed = time.monotonic()
            log.info("group %s revoked %s", self.group,
                     ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        if self.shareable and partitions and self.dirty and not self.failed:
            self._commit()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self.assigned.discard(key)
            ch = self.kchan.get(key)
            if ch is not None:
                ch.buf.clear()
                ch.eof = False
                ch.paused = False
                ch.active = not self.shareable
        # (a revoked task's state stays until the partition comes back: see ``_adopt``)

    def _task_of(self, key: tuple[str, int]) -> str:
        """The task of a Kafka topic partition: its sub-topology's, on its partition number."""
        return f"{self.topic_sub[key[0]]}_{key[1]}"

    def _adopt(self, consumer: Any, keys: list[tuple[str, int]]) -> None:
        """Partitions given to this instance. A task whose partitions come back untouched (the
        group's committed offsets are still the ones this instance committed: no other
        instance went on with them) continues with its state and positions here, as a run
        that owns every partition does after a rebalance. Any other task starts from its
        latest checkpoint (its state as another instance, or an earlier run, left it) and its
        partitions from the checkpoint's offsets, else the group's committed ones, else 0."""
        ck = kc._require_kafka()
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(
            [ck.TopicPartition(t, p) for t, p in keys], timeout=kc._TIMEOUT)}
        by_task: dict[str, list[tuple[str, int]]] = {}
        for key in keys:
            by_task.setdefault(self._task_of(key), []).append(key)
        moved = {task for task, ks in by_task.items()
                 if any(k not in self.kchan or self.kchan[k].next_offset is None
                        or committed.get(k, -1) != self.last_committed.get(k, -1) for k in ks)}
        if not moved:
            return
        ckpts = self._task_checkpoints(consumer, moved) if self.stateful else {}
        self.ex.reset_tasks(moved)
        for task, ckpt in ckpts.items():
            self._restore({task: pickle.loads(ckpt["state"])}, 3)
        for task in moved:
            ckpt = ckpts.get(task)
            self.r_seq[task] = ckpt.get("r_seq", 0) if ckpt else 0
            for key in by_task[task]:
                if key[0] in self.rnode_of:
                    self.r_seen[key] = dict(ckpt.get("r_seen", {}).get(key, {})) if ckpt else {}
                offset = ckpt["positions"].get(key) if ckpt else None
                if offset is None:
                    offset = committed.get(key, -1)
                self.start_offsets[key] = offset if offset >= 0 else 0
                self.last_committed[key] = committed.get(key, -1)
                ch = self.kchan.get(key)
                if ch is not None:
                    ch.next_offset = self.start_offsets[key]
        if ckpts:
            log.info("group %s: restored task(s) %s", self.group, ", ".join(sorted(ckpts)))

    def _status(self, text: str) -> None:
        """Say what the run waits for (``progress.status``, when the callback has one: the
        CLI's progress line), while no record moves."""
        log.info("%s", text)
        status = getattr(self.progress, "status", None)
        if status is not None:
            status(text)

    def _complete(self) -> bool:
        """Whether the run owns what it needs to go on: every partition, or (a shared group)
        whatever the group gave it."""
        return self.shareable or self.assigned == self.expected

    def _wait_for_assignment(self, *, quiet: bool = False) -> None:
        if self.shareable:
            self._wait_for_share(quiet)
            return
        if not quiet and self.assigned != self.expected:
            self._status(f"joining consumer group {self.group!r} ({len(self.expected)} "
                         f"partition(s) of {', '.join(self._topics())}) ...")
        deadline = time.monotonic() + self.assignment_timeout
        while self.assigned != self.expected:
            if self.stop:
                return
            if time.monotonic() > deadline:
                got = sorted(self.assigned)
                raise ConnectorError(
                    f"consumer group {self.group!r} assigned {len(got)} of {len(self.expected)} "
                    f"partitions within {self.assignment_timeout:g} s ({got}); the local backend "
                    "runs one instance per group: is another run of this topology using the group?")
            self._receive(self.consumer.consume(1000, 0.1))

    def _settled(self, now: float) -> bool:
        """Whether the input may be idle: an instance owning every partition is; one owning
        part of them (a shared group) also needs its share unchanged for a session (a rebalance, a broker that was unreachable, gives
        partitions back after it), and some partition unless it has had none for
        ``assignment_timeout``."""
        if not self.shareable or self.assigned == self.expected:
            return True
        quiet_for = now - self.assignment_changed
        return quiet_for >= self.session_timeout and (
            bool(self.assigned) or quiet_for >= self.assignment_timeout)

    def _wait_for_share(self, quiet: bool) -> None:
        """A shared group: wait until the group has given this instance its partitions (its
        share no longer changes for a second), or at most ``assignment_timeout``."""
        if not quiet:
            self._status(f"joining consumer group {self.group!r} ({len(self.expected)} "
                         f"partition(s) of {', '.join(self._topics())}) ...")
        deadline = time.monotonic() + self.assignment_timeout
        last, since = set(self.assigned), time.monotonic()
        while not self.stop and time.monotonic() < deadline:
            self._receive(self.consumer.consume(1000, 0.1))
            if self.assigned != last:
                last, since = set(self.assigned), time.monotonic()
            elif self.assigned and time.monotonic() - since >= 1.0:
                return

    def _receive(self, msgs: list[Any], i: int = 0) -> bool:
        """Buffer consumed messages (from ``msgs[i]``) in their channels, each decoded and
        ingested once, as ``(event time, rank, Record)`` (``(_NEG_INF, rank, _Raw)`` for one
        that does not ingest: dead-lettered when the merge reaches it). ``consume`` gives a
        partition's messages in runs; each run is taken by its channel's ``take`` in one loop.
        A columnar run (``kafka_columns``) buffers columns instead."""
        if self.columnar:
            return self._receive_columns(msgs)
        ck = kc._require_kafka()
        got = False
        kchan = self.kchan
        n = len(msgs)
        while i < n:
            msg = msgs[i]
            err = msg.error()
            if err is not None:
                i += 1
                self._on_error_message(msg, err)
                continue
            ch = kchan.get((msg.topic(), msg.partition()))
            if ch is None:  # not ours any more
                i += 1
                continue
            i = ch.take(msgs, i, n)  # this message and those of its partition after it
            ch.eof = False
            got = True
            if not ch.paused and len(ch.buf) >= _PAUSE_AT:
                self.consumer.pause([ck.TopicPartition(ch.topic, ch.partition)])
                ch.paused = True
        return got

    def _on_error_message(self, msg: Any, err: Any) -> None:
        """A consumed event that is not a record: a partition's end, or an error."""
        ck = kc._require_kafka()
        if err.code() == ck.KafkaError._PARTITION_EOF:
            ch = self.kchan.get((msg.topic(), msg.partition()))
            if ch is not None:
                ch.eof = True
            return
        if err.fatal() or err.code() in kc._TOPIC_ERRORS:
            raise ConnectorError(f"Kafka consumer of group {self.group!r}: {err.str()}")
        log.warning("kafka: %s", err.str())

    def _consume(self, timeout: float) -> list[Any]:
        """What the consumer has (up to 10,000 messages) without waiting, else the first
        message within ``timeout`` s and what came with it: ``consume(n, t)`` alone waits for
        all ``n`` or the whole timeout."""
        consume = self.consumer.consume
        msgs = consume(10_000, 0)
        if not msgs:
            msgs = consume(1, timeout)
            if msgs:
                msgs += consume(10_000, 0)
        return msgs

    def _entry_maker(self, source: str, rank: int, kafka: bool) -> Callable[[Any], tuple]:
        """``message (or input event) -> buffer entry`` for a channel of ``source``: decoded
        (Kafka) and ingested by the kernel's rules, once. An event that does not ingest stays
        raw (the executor dead-letters it with its reason when the merge reaches it; its event
        time is unknown, so it goes first, as its place changes no result); so do the events
        of a topic that several source nodes read (each ingests it its own way)."""
        ingest = self.ingest[source]
        shared = len(self.plan_nodes_of[source]) > 1
        if kafka:
            spec = self.kafka_in[source]
            decode = kc.decode_message
            kf, vf, used = spec.key_format, spec.value_format, self.key_used[source]
            # a key the stream does not use is not decoded (its text is only for dead letters)
            fast = None if used else kc.value_decoder(source, vf)
        bad_record = BadRecord
        run = self

        def entry(item: Any) -> tuple:
            if not kafka:
                ev = item
            elif fast is not None:
                ev = fast(item)
                if ev is not None:
                    try:
                        rec = ingest(ev)
                    except bad_record:
                        pass
                    else:
                        if shared:
                            run.saw_raw = True
                            return (rec.ts, rank, _Raw(decode(source, item, kf, vf, key_used=used)))
                        return (rec.ts, rank, rec)
                ev = decode(source, item, kf, vf, key_used=used)
            else:
                ev = decode(source, item, kf, vf, key_used=used)
            try:
                rec = ingest(ev)
            except bad_record:
                run.saw_raw = True
                return (_NEG_INF, rank, _Raw(ev))
            if shared:
                run.saw_raw = True
                return (rec.ts, rank, _Raw(ev))
            return (rec.ts, rank, rec)
        return entry

    def _taker(self, ch: _Channel) -> Callable[[list, int, int], int]:
        """``ch.take`` of a Kafka partition's channel: the entries of the run of consumed
        messages of its partition that starts at ``msgs[i]``, appended to its buffer, as
        ``ch.entry`` makes them. For a source whose records are JSON objects whose key and
        event time are fields (and whose Kafka key is not used: ``key=`` is declared), each
        message is decoded and ingested in the loop itself, as ``value_decoder`` then the
        ingest's fast path do (any other value goes through ``ch.entry``)."""
        entry, buf, partition, topic = ch.entry, ch.buf, ch.partition, ch.topic
        append = buf.append
        check_topic = len(self.source_of) + len(self.rnode_of) > 1  # else one topic only
        node = None if ch.internal else next(s for s in self.plan.sources()
                                             if s.topic == ch.source)
        fused = (node is not None and not self.key_used[ch.source]
                 and len(self.plan_nodes_of[ch.source]) == 1
                 and self.kafka_in[ch.source].value_format == "json"
                 and field_name(node.key) is not None and field_name(node.timestamp) is not None)
        if not fused:
            def take(msgs: list, i: int, n: int) -> int:
                while i < n:
                    m = msgs[i]
                    if (m.error() is not None or m.partition() != partition
                            or (check_topic and m.topic() != topic)):
                        break
                    append(entry(m))
                    i += 1
                return i
            return take
        import orjson
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        key_field, ts_field = field_name(node.key), field_name(node.timestamp)
        source, rank, new, missing, top = node.topic, ch.rank, object.__new__, _MISSING, MAX_TIMESTAMP

        def take_fused(msgs: list, i: int, n: int) -> int:
            while i < n:
                m = msgs[i]
                if (m.error() is not None or m.partition() != partition
                        or (check_topic and m.topic() != topic)):
                    break
                i += 1
                try:
                    v = loads(m.value())  # (orjson checks the UTF-8 too; None raises)
                except (decode_error, TypeError):
                    append(entry(m))
                    continue
                if type(v) is dict:
                    k = v.get(key_field, missing)
                    ts = v.get(ts_field)
                    if k is not missing and type(ts) is int and 0 <= ts < top:
                        # make_ingest's Record, without its __init__ call
                        r = new(Record)
                        r.key = k
                        r.value = v
                        r.ts = ts
                        r.window = None
                        r.origin = (source, (partition, m.offset()))
                        append((ts, rank, r))
                        continue
                append(entry(m))
            return i
        return take_fused

    def _columnar_ok(self) -> bool:
        """Whether consumed values go columnar (``kafka_columns``): the run reads one Kafka
        topic and nothing else (no other input, no repartition topic), through one source node
        whose records are JSON objects with its key and event-time fields (its Kafka key
        unused: ``_taker``'s fused case; fields named like the memory connector's envelope
        excepted), into a plan whose source has a columnar run (``Executor.feed_columns``)."""
        if len(self.kafka_in) != 1 or self.other_in or self.rtopic or not self.ex.batchable:
            return False
        (source,) = self.kafka_in
        nodes = self.plan_nodes_of.get(source, [])
        if len(nodes) != 1 or self.key_used[source] or self.kafka_in[source].value_format != "json":
            return False
        node = self.plan.node(nodes[0])
        kf, tf = field_name(node.key), field_name(node.timestamp)
        if kf is None or tf is None or {kf, tf} <= {"key", "value", "timestamp"}:
            return False
        if self.ex.segments.segment(source) is None:
            return False
        import orjson
        ck = kc._require_kafka()
        self._c_source, self._c_topic = source, self.kafka_in[source].topic
        self._cols = (orjson.loads, orjson.JSONDecodeError, itemgetter(tf), kf,
                      ck.Message.value, ck.Message.offset)
        self._msg_partition, self._msg_error = ck.Message.partition, ck.Message.error
        return True

    def _receive_columns(self, msgs: list[Any]) -> bool:
        """``_receive`` of a columnar run: each run of a partition's messages decoded into its
        channel's columns (``_take_columns``); errors (ends of partitions) as ``_receive``
        takes them. A run that does not decode so turns the whole run to the record path
        (``_leave_columns``), from that run on."""
        ck = kc._require_kafka()
        got = False
        kchan, topic = self.kchan, self._c_topic
        oks = list(map(is_, map(self._msg_error, msgs), repeat(None)))
        i = 0
        for (p, ok), g in groupby(zip(map(self._msg_partition, msgs), oks)):
            j = i + len(list(g))
            if not ok:  # (end-of-partition events, errors): as the record path takes them
                for msg in msgs[i:j]:
                    self._on_error_message(msg, msg.error())
                i = j
                continue
            ch = kchan.get((topic, p))
            if ch is None:  # not ours any more
                i = j
                continue
            if not self._take_columns(ch, msgs[i:j]):
                self._leave_columns()
                return self._receive(msgs, i) or got
            ch.eof = False
            got = True
            if not ch.paused and len(ch.buf) >= _PAUSE_AT:
                self.consumer.pause([ck.TopicPartition(ch.topic, ch.partition)])
                ch.paused = True
            i = j
        return got

    def _take_columns(self, ch: _Channel, run: list[Any]) -> bool:
        """Decode a run of ``ch``'s messages into its columns: every value a JSON object with
        the key field and an int event time in range (what ``_taker``'s fused loop makes a
        ``Record`` of), else False and nothing buffered."""
        loads, decode_error, tget, kf, value_of, offset_of = self._cols
        try:
            vs = list(map(loads, map(value_of, run)))  # (None, a tombstone, raises TypeError)
        except (decode_error, TypeError):
            return False
        n = len(vs)
        if list(map(type, vs)).count(dict) != n or not all(map(contains, vs, repeat(kf))):
            return False
        try:
            tss = list(map(tget, vs))
        except KeyError:
            return False
        if list(map(type, tss)).count(int) != n or min(tss) < 0 or max(tss) >= MAX_TIMESTAMP:
            return False
        ch.buf.extend(vs, tss, list(map(offset_of, run)))  # type: ignore[attr-defined]
        return True

    def _leave_columns(self) -> None:
        """The record path from now on: each channel's columns become its buffer's entries
        ``(event time, rank, Record)``, as ``_taker``'s fused loop makes them."""
        self.columnar = False
        kf = self._cols[3]
        source = self._c_source
        for ch in self.channels:
            cb = ch.buf
            if type(cb) is not ColumnBuffer:
                continue
            h, rank, partition = cb.head, ch.rank, ch.partition
            ch.buf = deque((ts, rank, Record(v[kf], v, ts, None, (source, (partition, off))))
                           for v, ts, off in zip(cb.values[h:], cb.tss[h:], cb.offsets[h:]))
            ch.take = self._taker(ch)  # (appends to the new buffer)

    def _drain_columns(self, chans: list[_Channel], until: float) -> bool:
        """``_drain_sub`` of a columnar run: the merge of the channels' columns
        (``take_order``, the order ``heapq.merge`` gives the record path), fed in chunks
        (``Executor.feed_columns``), stops taking effect between chunks as there."""
        ck = kc._require_kafka()
        fed = False
        node = self.only_node
        while not self.stop:
            live: list[tuple[_Channel, bool]] = []
            for ch in chans:
                if not ch.active:
                    continue
                more = not ch.eof
                if ch.buf:
                    live.append((ch, more))
                elif more:
                    return fed  # a partition that may still deliver earlier records
            if not live:
                return fed
            ext_left = None if self.max_records is None else self.max_records - self.fed
            if ext_left is not None and ext_left <= 0:
                return fed
            bufs: list[ColumnBuffer] = [ch.buf for ch, _ in live]  # type: ignore[misc]
            counts, order = take_order([Head(*b.merge_keys(), more)
                                        for b, (_, more) in zip(bufs, live)], ext_left)
            total = len(order)
            if not total:
                return fed
            if len(live) == 1:
                b = bufs[0]
                vs = b.values[b.head:b.head + total]
                offs = b.offsets[b.head:b.head + total]
                parts = [live[0][0].partition] * total
            else:
                pick = [(b.head, b.head + k) for b, k in zip(bufs, counts)]
                vs = list(map(list(chain.from_iterable(
                    b.values[lo:hi] for b, (lo, hi) in zip(bufs, pick))).__getitem__, order))
                offs = list(map(list(chain.from_iterable(
                    b.offsets[lo:hi] for b, (lo, hi) in zip(bufs, pick))).__getitem__, order))
                parts = list(map(list(chain.from_iterable(
                    repeat(ch.partition, k) for (ch, _), k in zip(live, counts))).__getitem__,
                    order))
            done = 0
            while done < total:
                pv, pp = vs[done:done + _CHUNK], parts[done:done + _CHUNK]
                self.ex.feed_columns(node, pv, list(zip(pp, offs[done:done + _CHUNK])), pp)
                done += len(pv)
                self.fed += len(pv)
                self.dirty = True
                fed = True
                if self.stop or time.monotonic() >= until:
                    break
            if done < total:
                by_part = Counter(parts[:done])
                counts = [by_part.get(ch.partition, 0) for ch, _ in live]
            for (ch, _), b, k in zip(live, bufs, counts):
                if not k:
                    continue
                ch.next_offset = b.offsets[b.head + k - 1] + 1
                b.advance(k)
                if ch.paused and len(b) <= _RESUME_AT:
                    self.consumer.resume([ck.TopicPartition(ch.topic, ch.partition)])
                    ch.paused = False
            if done < total:
                return fed
        return fed

    def _register(self, ch: _Channel, *, kafka: bool) -> None:
        ch.entry = self._entry_maker(ch.source, ch.rank, kafka)
        if kafka:
            ch.take = self._taker(ch)
            if self.columnar:
                # (ties: the partition, the channels' rank order of one topic)
                ch.buf = ColumnBuffer(ch.partition, self.partitions)  # type: ignore[assignment]
        self.by_rank[ch.rank] = ch
        self.node_of_rank[ch.rank] = self.plan_nodes_of[ch.source][0]

    def _fill(self, ch: _Channel, n: int) -> None:
        """Read up to ``n`` more records of a non-Kafka input into its buffer."""
        buf, it, entry = ch.buf, ch.it, ch.entry
        while len(buf) < n:
            ev = next(it, None)
            if ev is None:
                ch.exhausted = True
                return
            buf.append(entry(ev))

    def _handoff_maker(self, ch: _Channel) -> Callable[[Any], tuple]:
        """``message -> buffer entry`` for a repartition partition's channel: ``(event time,
        rank, Handoff, offset, tag)``, the tag being the record's transaction (exactly_once)
        or ``(upstream task, number)`` (at_least_once). Ties with other channels go by the
        source the record came from, as they went when it was read (``rank``: that source's
        order, then this channel's)."""
        order, n_sources = self.order, len(self.order)
        node, partition, k = ch.source, ch.partition, ch.rank % 500_000
        eos = self.eos
        decode = kc.decode_repartition

        def entry(msg: Any) -> tuple:
            try:
                rec = decode(msg.value())
            except Exception as e:
                raise ConnectorError(f"cannot read the record at offset {msg.offset()} of "
                                     f"repartition topic {msg.topic()!r}[{msg.partition()}]: "
                                     f"{type(e).__name__}: {e}") from None
            tag: Any = None
            for key, v in msg.headers() or ():
                if key == TXN_HEADER and eos:
                    tag = v.decode()
                elif key == SEQ_HEADER and not eos:
                    task, _, n = v.decode().rpartition(":")
                    tag = (task, int(n))
            o = order.get(rec.origin[0], n_sources) if rec.origin else n_sources
            return (rec.ts, o * 1_000_000 + 500_000 + k, Handoff(node, partition, rec),
                    msg.offset(), tag)
        return entry

    def _register_internal(self, ch: _Channel) -> None:
        ch.rank = ch.order * 1_000_000 + ch.partition
        ch.sentinel = ((float("-inf"), ch.rank, None),)
        ch.entry = self._handoff_maker(ch)
        ch.take = self._taker(ch)
        k = ch.rank % 500_000
        for o in range(len(self.order) + 1):
            self.by_rank[o * 1_000_000 + 500_000 + k] = ch

    def _at_end(self, ch: _Channel, stalled: dict[int, bool]) -> bool:
        """Whether a channel with nothing buffered has nothing more to give for now: a
        partition at its end; a non-Kafka input read to its end; a repartition partition at
        its end that has taken all this run wrote to it while the sub-topology writing it
        could go no further (so a merge waiting for it is decided by what the inputs hold,
        not by timing)."""
        if ch.topic is None:
            return ch.exhausted
        if not ch.internal:
            return ch.eof
        return ch.eof and self._caught_up(ch) and stalled.get(self.writer_sub[ch.source], False)

    def _idle(self) -> bool:
        """Whether every channel is read to its end (and every repartition partition has
        taken what this run wrote to it)."""
        for ch in self.channels:
            if not ch.active:
                continue
            if ch.buf or not (ch.exhausted if ch.topic is None else ch.eof):
                return False
            if ch.internal and not self._caught_up(ch):
                return False
        return True

    def _r_pending(self) -> bool:
        """Whether some repartition record this run handed on is not delivered yet."""
        return any(self.r_done.get(k, 0) < n for k, n in self.r_sent.items())

    def _inputs_idle(self) -> bool:
        """Whether every input (not repartition) channel is read to its end."""
        return all(not ch.active or ch.internal or (not ch.buf and (
            ch.exhausted if ch.topic is None else ch.eof)) for ch in self.channels)

    def _drain(self, until: float) -> bool:
        """Feed records while the channels can say what comes next, until the monotonic time
        ``until`` (the next commit is due): each sub-topology's channels in one merge,
        upstream sub-topologies first. Whether anything was fed.

        The merge is ``heapq.merge`` of the channels' buffers by ``(event time, rank)``, the
        timestamp-synchronized order with ties by (source declaration order, partition): a
        channel that may still deliver records ends its buffer with a sentinel that sorts
        first, so the merge stops where that channel's next record is not known yet. Records
        are taken in chunks and fed with ``Executor.feed_ingested`` (the batched path the file
        runs use, which gives the results of record-at-a-time processing); stops (Ctrl-C,
        ``max_records``, ``until``) take effect between chunks.
        """
        stalled: dict[int, bool] = {}
        fed = False
        for sub in self.stages:
            chans = [ch for ch in self.channels if ch.sub == sub]
            fed = self._drain_sub(sub, chans, until, stalled) or fed
            if self.stop:
                break
            stalled[sub] = all(not ch.active or (not ch.buf and self._at_end(ch, stalled))
                               for ch in chans)
        if (self.max_records is not None and self.fed >= self.max_records and not fed
                and not self.stop and self._handed_on()):
            self.stop = "max_records"
        return fed

    def _handed_on(self) -> bool:
        """Whether the repartition partitions have taken what this run wrote to them, as far
        as their merges can go without another input record (``max_records``: the records
        read are then processed through every sub-topology before the run stops)."""
        return all(not ch.active or not ch.internal or ch.buf or (ch.eof and self._caught_up(ch))
                   for ch in self.channels)

    def _drain_sub(self, sub: int, chans: list[_Channel], until: float,
                   stalled: dict[int, bool]) -> bool:
        """Feed one sub-topology's records in merge order (see ``_drain``). A repartition
        partition holds the merge back only in a sub-topology that ``waits``, until it is at
        its end (``_at_end``). Once ``max_records`` input records are read, the merge goes on
        only while its next record comes from a repartition topic. Whether anything was
        taken."""
        if self.columnar:
            return self._drain_columns(chans, until)
        ck = kc._require_kafka()
        waits = self.waits[sub]
        fed = False
        while not self.stop and chans:
            ext_left = None if self.max_records is None else self.max_records - self.fed
            runs = []
            internal = False
            for ch in chans:
                if not ch.active:
                    continue
                if ch.topic is None:
                    if not ch.exhausted and len(ch.buf) < _CHUNK:
                        self._fill(ch, _CHUNK)
                    more = not ch.exhausted
                elif ch.internal:
                    internal = True
                    more = waits and not self._at_end(ch, stalled)
                else:
                    more = not ch.eof
                if ch.buf:
                    runs.append(chain(ch.buf, ch.sentinel) if more else ch.buf)
                elif more:
                    if ch.topic is None:
                        continue  # (cannot happen: a non-exhausted input was just read)
                    return fed  # a partition that may still deliver earlier records
            if not runs:
                return fed
            if not internal:
                limit = _CHUNK if ext_left is None else min(_CHUNK, ext_left)
                if limit <= 0:
                    return fed
                if len(runs) == 1:
                    taken = list(takewhile(_real, islice(runs[0], limit)))
                else:
                    taken = list(islice(takewhile(_real, heapq.merge(*runs)), limit))
                n_ext = len(taken)
            else:
                taken, n_ext = self._take(runs, ext_left)
            if not taken:
                return fed
            if internal:
                by_rank = self.by_rank
                counts = Counter(by_rank[e[1]] for e in taken)
            elif len(runs) > 1:  # (ranks counted in C, then their channels)
                by_rank = self.by_rank
                counts = {by_rank[r]: k for r, k in Counter(map(_RANK, taken)).items()}
            else:
                counts = {self.by_rank[taken[0][1]]: len(taken)}
            for ch, k in counts.items():
                buf = ch.buf
                if ch.internal:
                    ch.next_offset = buf[k - 1][3] + 1
                elif ch.topic is not None:
                    last = buf[k - 1][2]
                    ch.next_offset = (last.ev.position if type(last) is _Raw
                                      else last.origin[1])[1] + 1
                else:
                    ch.consumed += k
                if k == len(buf):
                    buf.clear()
                else:
                    for _ in range(k):
                        buf.popleft()
                if ch.paused and len(buf) <= _RESUME_AT:
                    self.consumer.resume([ck.TopicPartition(ch.topic, ch.partition)])
                    ch.paused = False
            self._feed(self._passed_over(taken) if internal else taken)
            fed = True
            self.fed += n_ext
            self.dirty = True
            if len(taken) < _CHUNK or time.monotonic() >= until:
                return fed
        return fed

    def _take(self, runs: list, ext_left: int | None) -> tuple[list[tuple], int]:
        """Up to a chunk of merged entries of runs that include repartition partitions, and how
        many of them are input records (at most ``ext_left``)."""
        merged = runs[0] if len(runs) == 1 else heapq.merge(*runs)
        taken: list[tuple] = []
        n_ext = 0
        for e in merged:
            if e[2] is None:  # a sentinel: what comes next is not known yet
                break
            if len(e) == 3:
                if ext_left is not None and n_ext >= ext_left:
                    break  # max_records: no more input records
                n_ext += 1
            taken.append(e)
            if len(taken) >= _CHUNK:
                break
        return taken, n_ext

    def _passed_over(self, taken: list[tuple]) -> list[tuple]:
        """The entries to feed, without the repartition records passed over: one of a
        transaction that did not commit (exactly_once: a broker that does not hide aborted
        records shows it), or one whose number a task has had already from its upstream task
        (at_least_once: written again after a stop without a commit)."""
        out = []
        committed, seen_of, rtopic = self.committed_txns, self.r_seen, self.rtopic
        for e in taken:
            if len(e) == 5 and e[4] is not None:
                tag = e[4]
                if type(tag) is str:
                    if tag not in committed:
                        continue
                else:
                    h = e[2]
                    seen = seen_of.get((rtopic[h.node], h.partition))
                    if seen is None:
                        seen = seen_of[(rtopic[h.node], h.partition)] = {}
                    if seen.get(tag[0], 0) >= tag[1]:
                        continue
                    seen[tag[0]] = tag[1]
            out.append(e)
        return out

    def _feed(self, taken: list[tuple]) -> None:
        """Hand merged entries to the executor in their order: stretches of ingested records in
        one call each; events left raw (``_Raw``: not ingestible, to be dead-lettered with
        their reason, or of a topic several source nodes read) through ``feed_many``, and so do
        records back from a repartition topic (``Handoff``)."""
        ex = self.ex
        if not self.saw_raw and not self.rtopic:
            self._feed_records(taken)
            return
        for kind, part in groupby(taken, _KIND):
            part = list(part)
            if kind is _Raw:
                ex.feed_many([e[2].ev for e in part])
            elif kind is Handoff:
                ex.feed_many([e[2] for e in part])
            else:
                self._feed_records(part)

    def _feed_records(self, part: list[tuple]) -> None:
        if self.single_source:
            self.ex.feed_ingested(self.only_node, list(map(_REC, part)))
        else:
            name_of = self.node_of_rank
            self.ex.feed_ingested_mixed([name_of[e[1]] for e in part], list(map(_REC, part)))

    def _loop(self) -> None:
        now = time.monotonic()
        last_arrival = last_commit = last_progress = last_gc = now
        partial_since: float | None = None
        while not self.stop:
            owns_all = self._complete()
            if owns_all:
                partial_since = None
            elif partial_since is None:
                partial_since = now
                self._status(f"waiting for consumer group {self.group!r} to assign "
                             f"{len(self.expected) - len(self.assigned)} partition(s) back ...")
            elif self._broker_down(partial_since):  # the partitions went with the broker
                if now - partial_since > self.broker_timeout:
                    raise ConnectorError(
                        f"Kafka at {self.base.bootstrap_servers} unreachable for "
                        f"{self.broker_timeout:g} s (group {self.group!r}; last error: "
                        f"{self.broker_error[1]}); everything up to the last commit is kept: "
                        "run again with the same group to continue")
            elif now - partial_since > self.assignment_timeout:
                raise ConnectorError(
                    f"consumer group {self.group!r} has given this run {len(self.assigned)} of "
                    f"{len(self.expected)} partitions for {self.assignment_timeout:g} s; the local "
                    "backend runs one instance per group: is another run of this topology using "
                    "the group?")
            busy = any(ch.buf for ch in self.channels)
            if self._receive(self._consume(0.02 if busy else 0.1)):
                last_arrival = time.monotonic()
            fed = self._drain(last_commit + self.commit_interval)
            now = time.monotonic()
            if self.stop:
                break
            if self.rtopic:
                self.main.poll(0)  # delivery reports of repartition records
            # Idle: every partition read to its end, nothing new for until_idle s (once some
            # sub-topologies have ended, an instance that owns every partition goes on as soon
            # as the ones downstream have read what those wrote; one of several waits again).
            quiet = (self.until_idle is not None
                     and (now - last_arrival >= self.until_idle
                          or (self.ex.ended_subs and self.assigned == self.expected))
                     and self._settled(now))
            if quiet and self._idle():
                break
            # exactly_once: repartition records are written at the commit; a run that waits
            # for them (to end, or to stop after max_records) commits at once.
            due = now - last_commit >= self.commit_interval
            if (self.eos and not due and not fed and self._r_pending()
                    and ((quiet and self._inputs_idle())
                         or (self.max_records is not None and self.fed >= self.max_records))):
                due = True
            if self.dirty and owns_all and due:
                self._commit()
                last_commit = now
            if self.progress is not None and now - last_progress >= self.progress_every:
                self.progress(self.ex.metrics)
                last_progress = now
            if now - last_gc >= _GC_EVERY:
                collect_frozen()
                last_gc = now

    # ---- commits -----------------------------------------------------------------------------
    # A broker error never ends a run at once: at_least_once retries the commit (the outputs it
    # covers are written already); exactly_once aborts the transaction and goes back to the last
    # commit (state, offsets and counters: ``_rewind``). Only when no commit was accepted for
    # broker_timeout seconds, or the error is fatal (a fenced producer), does the run stop, with
    # a ConnectorError: its last commit is intact and a new run continues from it.

    def _commit_final(self) -> bool:
        """The run's last commit; False when exactly_once went back to its last commit (the
        records since then must be processed again)."""
        while not self._commit(final=True):
            if self.eos:
                return False
            time.sleep(0.2)
            self._wait_for_assignment(quiet=True)  # a rebalance first gives the partitions back
        return True

    def _commit(self, *, final: bool = False) -> bool:
        """Commit what was processed so far; False if the broker did not accept it (see above)."""
        ck = kc._require_kafka()
        if not self.dirty:
            if self.eos and final:  # the open transaction holds nothing
                self._retry("abort_transaction", self._abort_once)
            return True
        if not self._complete():  # offsets of partitions not ours cannot be committed
            self._check_deadline("the group has not given back every partition"
                                 + (f"; {self.broker_error[1]}"
                                    if self._broker_down(self._failing_since()) else ""))
            return False
        self.seq += 1
        positions = self._positions()
        if self.shareable:
            positions = {k: off for k, off in positions.items() if k in self.assigned}
        state = self._state_bytes() if (self.stateful and not self.shareable) or self.eos else b""
        try:
            if self.eos:
                self._commit_transaction(state, positions)
            else:
                self._commit_offsets(state, positions)
        except (ck.KafkaException, kc.BrokerStall) as e:
            return self._commit_failed(e, state, positions, final)
        self._committed_now(state, positions, final)
        return True

    def _committed_now(self, state: bytes, positions: dict, final: bool) -> None:
        self.dirty = False
        self.last_committed.update(positions)
        self.failing_since = None
        if self.eos:
            self.committed = _Committed(state, positions, self._consumed(),
                                        copy.deepcopy(self.ex.metrics), self.fed, self.ended,
                                        self._txn_id(), frozenset(self.ex.ended_subs))
            txn = self._txn_id()
            self.committed_txns.add(txn)
            self.main.poll(0)  # delivery reports of the repartition records not served yet
            if self.r_txn_now:
                self.r_txn_offsets[txn] = self.r_txn_now
            self.r_txn_now = {}
            self.r_last_committed = dict(self.r_last)
            if not final:
                self.main.begin_transaction()
        log.debug("committed %s (%d records so far)", self.seq, self.fed)

    def _offsets(self, positions: dict) -> list[Any]:
        ck = kc._require_kafka()
        return [ck.TopicPartition(t, p, off) for (t, p), off in sorted(positions.items())]

    def _kafka_writers(self) -> list[Any]:
        return [w for w in [*self.sinks.values(), self.dl, self.rwriter]
                if isinstance(w, (kc.KafkaSink, kc.KafkaDeadLetterSink, _RepartitionWriter))]

    def _commit_transaction(self, state: bytes, positions: dict) -> None:
        headers = [(TXN_HEADER, self._txn_id().encode())]
        for w in self._kafka_writers():
            w.headers = headers
        self.r_txn_now = {}
        self._txn_wrote_r = any(write == self.rwriter.write for write, _ in self.pending)
        for write, item in self.pending:
            write(item)
        self.pending.clear()
        tracker = self.trackers[self.base.bootstrap_servers]
        if self.stateful:
            kc.produce(self.main, self.checkpoint_topic, self.group.encode(),
                       self._checkpoint_bytes(state, positions), None, tracker, partition=0,
                       headers=headers)
        offsets = self._offsets(positions)
        if offsets:
            self._call("send_offsets_to_transaction", self.main.send_offsets_to_transaction,
                       offsets, self.consumer.consumer_group_metadata())
        self._call("commit_transaction", self.main.commit_transaction)
        tracker.check()

    def _commit_offsets(self, state: bytes, positions: dict) -> None:
        for bs, p in self.producers.items():
            left = p.flush(self.broker_timeout)
            if left:
                raise ConnectorError(f"{left} record(s) not delivered to Kafka at {bs} within "
                                     f"{self.broker_timeout:g} s; offsets not committed")
            self.trackers[bs].check()
        for s in [*self.sinks.values(), self.dl]:
            flush = getattr(s, "flush", None)
            if flush is not None and not isinstance(s, (kc.KafkaSink, kc.KafkaDeadLetterSink)):
                flush()
        if self.stateful:
            tracker = self.trackers[self.base.bootstrap_servers]
            if self.shareable:
                self._write_task_checkpoints(positions)
            else:
                kc.produce(self.main, self.checkpoint_topic, self.group.encode(),
                           self._checkpoint_bytes(state, positions), None, tracker, partition=0)
            if self.main.flush(self.broker_timeout):
                raise ConnectorError(f"the checkpoint was not written to Kafka at "
                                     f"{self.base.bootstrap_servers} within "
                                     f"{self.broker_timeout:g} s; offsets not committed")
            tracker.check()
        offsets = self._offsets(positions)
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)

    def _commit_failed(self, e: BaseException, state: bytes, positions: dict, final: bool) -> bool:
        self._check_retriable(e)
        if not self.eos:
            log.warning("commit %s of group %s failed (%s); retrying", self.seq, self.group,
                        _reason(e))
            return False
        log.warning("the transaction of commit %s of group %s failed (%s); aborting it",
                    self.seq, self.group, _reason(e))
        if isinstance(e, kc.BrokerStall):
            self.producer_ok = False  # still blocked in its call: never used again
        self._retry("abort_transaction", self._abort_once)
        # A commit that timed out may have reached the broker all the same; the group's
        # committed offsets tell (they move with the transaction, and only if it commits).
        if positions != self.committed.positions and self._retry(
                "committed", lambda: self._offsets_committed(positions)):
            self._committed_now(state, positions, final)
            return True
        self._rewind()
        self.main.begin_transaction()
        return False

    def _check_retriable(self, e: BaseException) -> None:
        """Raise ConnectorError if ``e`` is fatal or commits have failed for broker_timeout s."""
        err = e.args[0] if e.args and hasattr(e.args[0], "fatal") else None
        if err is not None and err.fatal():
            fenced = "fenced" in err.str().lower() or err.code() in _FENCED
            raise ConnectorError(
                f"Kafka at {self.base.bootstrap_servers} (group {self.group!r}): {err.str()}"
                + (f"; another run with transactional_id {self.transactional_id!r} took over"
                   if fenced else "")) from None
        self._check_deadline(_reason(e))

    def _failing_since(self) -> float:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        return self.failing_since

    def _check_deadline(self, reason: str) -> None:
        if time.monotonic() - self._failing_since() > self.broker_timeout:
            raise ConnectorError(
                f"Kafka at {self.base.bootstrap_servers} (group {self.group!r}) accepted no "
                f"commit for {self.broker_timeout:g} s (last error: {reason}); everything up to "
                "the last commit is kept: run again with the same group to continue") from None

    def _retry(self, what: str, once: Callable[[], Any]) -> Any:
        """``once()`` until it succeeds, within broker_timeout of the last commit."""
        ck = kc._require_kafka()
        while True:
            try:
                return once()
            except (ck.KafkaException, kc.BrokerStall) as e:
                self._check_retriable(e)
                if isinstance(e, kc.BrokerStall):
                    self.producer_ok = False
                log.debug("%s failed (%s); retrying", what, _reason(e))
                time.sleep(0.5)

    def _abort_once(self) -> None:
        """Abort the open transaction; a producer that cannot is replaced by a new one with the
        same transactional.id, whose ``init_transactions`` fences it and aborts its transaction."""
        if self.producer_ok:
            try:
                self._call("abort_transaction", self.main.abort_transaction)
            except Exception:
                self.producer_ok = False
                raise
            self.main.poll(0)  # the delivery reports of the purged records: not failures of ours
            for t in self.trackers.values():
                t.errors.clear()
            return
        old = self.main
        self.main = self._main_producer()
        self.producers[self.base.bootstrap_servers] = self.main
        for w in self._kafka_writers():
            if w.producer is old:
                w.producer = self.main
        self._call("init_transactions", self.main.init_transactions)
        self.producer_ok = True

    def _offsets_committed(self, positions: dict) -> bool:
        got = self.consumer.committed(self._offsets(positions), timeout=_CALL_TIMEOUT)
        return all(tp.offset == positions[(tp.topic, tp.partition)] for tp in got)

    def _rewind(self) -> None:
        """Go back to the last commit: operator state, counters, input positions."""
        ck = kc._require_kafka()
        c = self.committed
        self.ex.restore(pickle.loads(c.state))
        self.ex.metrics.__dict__.update(copy.deepcopy(c.metrics).__dict__)
        self.fed, self.ended = c.fed, c.ended
        self.ex.ended_subs = set(c.ended_subs)
        self.pending.clear()
        # records of the aborted transaction: never to be read (a broker that hides aborted
        # records never shows them; one that shows them has them skipped, see ``_head``)
        self.r_sent = dict(self.r_done)
        self.r_last = dict(self.r_last_committed)
        self.r_txn_now = {}
        self.dirty = False
        if self.stop == "max_records":
            self.stop = None
        for key, ch in self.kchan.items():
            ch.next_offset = c.positions.get(key, self.start_offsets.get(key, 0))
            ch.buf.clear()
            ch.eof = False
            tp = ck.TopicPartition(key[0], key[1], ch.next_offset)
            if ch.paused:
                self.consumer.resume([tp])
                ch.paused = False
            if key in self.assigned:
                self.consumer.seek(tp)
        self.channels = [ch for ch in self.channels if ch.topic is not None]
        self.channels.extend(self._open_other(src, c.consumed.get(src, 0)) for src in self.other_in)
        self.channels.sort(key=lambda ch: (ch.order, ch.partition))
        log.info("group %s went back to commit %s", self.group, c.txn)


def _by_task(state: dict, sub_of: dict[str, int]) -> dict:
    """A one-partition state by node (checkpoint versions 1 and 2) by task."""
    out: dict = {}
    for node, snap in state.items():
        out.setdefault(f"{sub_of[node]}_0", {})[node] = snap
    return out


def _co_partitioned(plan: Plan, counts: dict[str, int]) -> int:
    """The partitions of a run over Kafka topics with ``counts`` partitions (by source): the
    tasks of each sub-topology are its topics' partitions, so the topics a sub-topology reads
    (joined, merged) must have as many partitions each, as Kafka Streams requires at start-up.
    The run has as many partitions as its largest topic."""
    from streamdsl.ir.tasks import sub_topologies
    for sub in sub_topologies(plan):
        mine = [(t, counts[t]) for t in sub.topics if t in counts]
        if len({c for _, c in mine}) > 1:
            (a, na), (b, nb) = next((x, y) for x in mine for y in mine if x[1] != y[1])
            raise ConnectorError(
                f"Kafka inputs {a!r} ({na} partitions) and {b!r} ({nb} partitions) feed one "
                f"sub-topology (a join or merge of them) but are not co-partitioned: give both "
                "topics the same number of partitions (and the same key), or repartition one "
                "first (key_by/group_by after reading it)")
    return max(counts.values()) if counts else 1


def _reason(e: BaseException) -> str:
    err = e.args[0] if e.args else None
    return err.str() if hasattr(err, "str") else str(e)


def _fenced_codes() -> frozenset[int]:
    try:
        from confluent_kafka import KafkaError
    except ImportError:  # pragma: no cover
        return frozenset()
    return frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                      KafkaError.INVALID_PRODUCER_EPOCH})


_FENCED = _fenced_codes()


def _unreachable_codes() -> frozenset[int]:
    try:
        from confluent_kafka import KafkaError
    except ImportError:  # pragma: no cover
        return frozenset()
    return frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT})


_UNREACHABLE = _unreachable_codes()
