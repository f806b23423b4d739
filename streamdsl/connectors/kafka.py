"""Kafka topics as sources and sinks, on ``confluent-kafka`` (``pip install 'streamdsl[kafka]'``).

A Kafka connector is declared as ``kafka://HOST:PORT/TOPIC?group=G`` on the command line or as a
spec dict (``{"type": "kafka", "bootstrap_servers": ..., "topic": ..., "group": ...}``). Options
(query parameters or dict keys):

* ``group``: the consumer group (default: the topology name); offsets are committed to it;
* ``key_format`` / ``value_format``: ``json``, ``string`` or ``bytes`` (defaults: ``string``
  keys, ``json`` values);
* ``partitions``: partitions of a sink topic created because it does not exist (default 1);
* any option with a dot (``session.timeout.ms=3000``) is passed to librdkafka as it is.

Each record read carries its position ``(partition, offset)``, its Kafka key, its value and its
Kafka record timestamp (used when the stream declares no ``timestamp=``). A value that cannot be
decoded (invalid JSON, invalid UTF-8) becomes an error event: dead-lettered with its position
and the reason when the topology says ``on_error="dead-letter"``.

Sinks write the key (a windowed key as the JSON object ``{"key", "window_start",
"window_end"}``), the value (``None`` as a tombstone) and the record timestamp.

This module gives the building blocks and the *bounded* reader used through ``open_source``
(a snapshot of the topic from the group's committed offsets to the end; nothing committed).
The local backend's continuous, committing run loop is in ``kafka_run.py``.
"""

from __future__ import annotations

import os

import logging
import pickle
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..errors import ConnectorError
from ..runtime.ordering import merge_by_timestamp
from ..runtime.partitioning import key_bytes
from ..runtime.records import DeadLetter, InputEvent, OutputRecord, Record
from .uri import parse_uri

__all__ = [
    "FORMATS", "KafkaSpec", "kafka_spec", "is_kafka", "read_kafka", "read_kafka_partition",
    "topic_partitions", "ensure_topics", "read_to_end", "KafkaSink", "KafkaDeadLetterSink", "decode_message",
    "uses_kafka_key",
    "encode_key", "encode_value", "dead_letter_json", "encode_repartition", "decode_repartition",
    "REPARTITION_FORMAT",
]

log = logging.getLogger("streamdsl.kafka")

FORMATS = ("json", "string", "bytes")
_KNOWN = {"type", "bootstrap_servers", "topic", "group", "key_format", "value_format",
          "partitions", "config", "checkpoint_topic", "transactional_id"}
_TIMEOUT = 30.0


def _require_kafka() -> Any:
    try:
        import confluent_kafka
    except ImportError as e:  # pragma: no cover - installed with the [kafka] extra
        raise ConnectorError("Kafka connectors need confluent-kafka: "
                             "pip install 'streamdsl[kafka]'") from e
    return confluent_kafka


@dataclass(frozen=True)
class KafkaSpec:
    """A validated Kafka connector declaration."""

    bootstrap_servers: str
    topic: str
    group: str | None = None
    key_format: str = "string"
    value_format: str = "json"
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)
    checkpoint_topic: str | None = None
    transactional_id: str | None = None

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka configuration: our defaults, then ``extra``, then the user's options."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers,
                                "logger": logging.getLogger("streamdsl.kafka.librdkafka"),
                                # librdkafka's default ("rebootstrap") forgets the brokers once
                                # all are unreachable; a transaction open at that moment then
                                # waited forever in send_offsets_to_transaction after the
                                # broker came back (a 4 s outage, librdkafka 2.x). Without it
                                # the client reconnects to the brokers it knows.
                                "metadata.recovery.strategy": "none"}
        conf.update(extra)
        conf.update(self.config)
        return conf


def is_kafka(spec: Any) -> bool:
    """Whether a connector spec or URI is a Kafka topic."""
    if isinstance(spec, str):
        return spec.startswith("kafka://")
    return isinstance(spec, dict) and spec.get("type") == "kafka"


def kafka_spec(spec: dict | str) -> KafkaSpec:
    """Validate a Kafka spec (as ``parse_uri`` gives it).

    >>> kafka_spec("kafka://127.0.0.1:9092/payments?group=g&session.timeout.ms=3000").config
    {'session.timeout.ms': '3000'}
    """
    d = parse_uri(spec)
    where = f"kafka connector {d.get('topic') or spec!r}"
    if not d.get("bootstrap_servers"):  # kafka:///TOPIC: the configured brokers
        d["bootstrap_servers"] = os.environ.get("STREAMDSL_BOOTSTRAP_SERVERS", "")
    if not d.get("bootstrap_servers"):
        raise ConnectorError(f"{where} needs bootstrap servers: kafka://HOST:PORT/TOPIC, or "
                             "kafka:///TOPIC with STREAMDSL_BOOTSTRAP_SERVERS set")
    if not d.get("topic"):
        raise ConnectorError(f"{where} needs a topic: kafka://HOST:PORT/TOPIC")
    config = {str(k): str(v) for k, v in (d.get("config") or {}).items()}
    unknown = []
    for k, v in d.items():
        if k in _KNOWN:
            continue
        if "." in k:
            config[k] = str(v)
        else:
            unknown.append(k)
    if unknown:
        raise ConnectorError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(_KNOWN - {'type', 'config'}))}, or librdkafka "
                             "options with a dot (session.timeout.ms=3000)")
    for opt in ("key_format", "value_format"):
        if d.get(opt, None) is not None and d[opt] not in FORMATS:
            raise ConnectorError(f"{where}: {opt} must be one of {', '.join(FORMATS)}, got {d[opt]!r}")
    try:
        partitions = int(d.get("partitions", 1))
    except (TypeError, ValueError):
        raise ConnectorError(f"{where}: partitions must be an integer, got {d['partitions']!r}") from None
    return KafkaSpec(bootstrap_servers=str(d["bootstrap_servers"]), topic=str(d["topic"]),
                     group=d.get("group") or None, key_format=d.get("key_format") or "string",
                     value_format=d.get("value_format") or "json", partitions=partitions,
                     config=config, checkpoint_topic=d.get("checkpoint_topic") or None,
                     transactional_id=d.get("transactional_id") or None)


# ---- serialization --------------------------------------------------------------------------------

class _DecodeError(Exception):
    pass


def _decode(data: bytes | None, fmt: str, what: str) -> Any:
    if data is None:
        return None
    if fmt == "bytes":
        return bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _DecodeError(f"invalid UTF-8 {what}: {e}") from None
    if fmt == "string":
        return text
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise _DecodeError(f"invalid JSON {what}: {e}") from None


def decode_message(source: str, msg: Any, key_format: str, value_format: str, *,
                   key_used: bool = True) -> InputEvent:
    """A consumed ``confluent_kafka.Message`` as an input event of ``source``.

    ``position`` is ``(partition, offset)``; ``timestamp`` is the Kafka record timestamp (None if
    the record has none). An undecodable key or value gives an event with ``error`` set and the
    raw text as value. With ``key_used=False`` (the source takes its key from the value, see
    ``uses_kafka_key``) the key is not decoded: the event carries its text (undecodable bytes
    replaced), for dead letters only, and a key in another encoding fails nothing.
    """
    ts_type, ts = msg.timestamp()
    timestamp = ts if ts_type != 0 and ts is not None and ts >= 0 else None
    position = (msg.partition(), msg.offset())
    raw_key, raw_value = msg.key(), msg.value()
    if not key_used:
        key = _text(raw_key)
    else:
        try:
            key = _decode(raw_key, key_format, "key")
        except _DecodeError as e:
            return InputEvent(source, None, _text(raw_value), timestamp, position, str(e))
    try:
        value = _decode(raw_value, value_format, "value")
    except _DecodeError as e:
        return InputEvent(source, key, _text(raw_value), timestamp, position, str(e))
    return InputEvent(source, key, value, timestamp, position)


def value_decoder(source: str, value_format: str) -> Callable[[Any], InputEvent | None]:
    """A fast ``decode_message`` for a topic whose key is not used (``uses_kafka_key`` is
    False): ``message -> InputEvent`` with the key left out (None), or None when the value
    does not decode. For records that ingest; one that does not (or None) is decoded again with
    ``decode_message``, whose event carries the key's text and the reason for its dead letter.
    """
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError

    def decode(msg: Any) -> InputEvent | None:
        raw = msg.value()
        if raw is None:
            value = None
        elif value_format == "json":
            try:
                value = loads(raw)  # (orjson checks the UTF-8 too)
            except decode_error:
                return None
        else:
            try:
                value = _decode(raw, value_format, "value")
            except _DecodeError:
                return None
        ts_type, ts = msg.timestamp()
        return InputEvent(source, None, value,
                          ts if ts_type != 0 and ts is not None and ts >= 0 else None,
                          (msg.partition(), msg.offset()))
    return decode


def uses_kafka_key(sources: Iterable[Any]) -> bool:
    """Whether records of a topic read by these ``Source`` nodes need their Kafka key: a stream
    that declares ``key=`` takes it from the value (a table still keys its tombstones by it)."""
    return any(s.table or s.key is None for s in sources)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    if isinstance(o, tuple):
        return list(o)
    return repr(o)


_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _json(v: Any) -> bytes:
    return orjson.dumps(v, default=_default, option=_OPTS)


def _encode(v: Any, fmt: str, what: str) -> bytes | None:
    if v is None:
        return None
    if fmt == "json":
        return _json(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8")
    if fmt == "bytes":
        raise ConnectorError(f"the bytes format needs bytes or str {what}s, got {type(v).__name__}; "
                             f"use {what}_format=json")
    return _json(v)  # string format: numbers and structures as their JSON text


def encode_key(rec: OutputRecord, fmt: str = "string") -> bytes | None:
    """The Kafka key of an output record; a windowed key is a JSON object.

    >>> encode_key(OutputRecord("c1", 4, 10, (0, 300000)))
    b'{"key":"c1","window_start":0,"window_end":300000}'
    >>> encode_key(OutputRecord("c1", 4, 10)), encode_key(OutputRecord(7, 4, 10), "json")
    (b'c1', b'7')
    """
    if rec.window is not None:
        return _json({"key": rec.key, "window_start": rec.window[0], "window_end": rec.window[1]})
    return _encode(rec.key, fmt, "key")


def encode_value(value: Any, fmt: str = "json") -> bytes | None:
    """The Kafka value; ``None`` stays ``None`` (a tombstone)."""
    return _encode(value, fmt, "value")


def dead_letter_json(dl: DeadLetter, kafka_topic: str | None = None) -> bytes:
    """A dead letter as JSON; a Kafka position gives ``partition`` and ``offset`` fields."""
    d = dl.to_json_dict()
    pos = dl.position
    if isinstance(pos, tuple) and len(pos) == 2 and all(isinstance(x, int) for x in pos):
        d["partition"], d["offset"] = pos
        d["topic"] = kafka_topic
    return _json(d)


# ---- internal repartition topics -------------------------------------------------------------------

#: The first item of a repartition record's pickled value: the format's version.
REPARTITION_FORMAT = 1


def encode_repartition(rec: Record) -> tuple[bytes | None, bytes]:
    """The Kafka key and value of a record written to an internal repartition topic.

    The key is the record's key as the sink writes keys (``runtime.partitioning.key_bytes``:
    Kafka's default partitioner then puts it in the partition ours does); the value is the
    record itself, pickled: its key and value objects, timestamp, window and origin (the input
    record it derives from, for dead letters), so the task reading it gets the record the
    upstream task handed on, whatever the types (a table's ``Change`` pairs included). The
    topic is internal: only the application should write it (reading it unpickles).

    >>> key, value = encode_repartition(Record("c1", {"n": 1}, 5, None, ("in", (0, 7))))
    >>> key, decode_repartition(value)
    (b'c1', Record(key='c1', value={'n': 1}, ts=5))
    """
    value = pickle.dumps((REPARTITION_FORMAT, rec.key, rec.value, rec.ts, rec.window, rec.origin),
                         protocol=pickle.HIGHEST_PROTOCOL)
    return key_bytes(rec.key), value


def decode_repartition(value: bytes) -> Record:
    """The record of a repartition topic's value (``encode_repartition``)."""
    fmt, key, v, ts, window, origin = pickle.loads(value)
    if fmt != REPARTITION_FORMAT:
        raise ConnectorError(f"a repartition record in format {fmt!r}, not "
                             f"{REPARTITION_FORMAT}: written by another version of streamdsl")
    return Record(key, v, ts, window, origin)


# ---- calls that must not hang ------------------------------------------------------------------

class BrokerStall(ConnectorError):
    """A librdkafka call did not return within its deadline."""


def call_with_deadline(fn: Callable[..., Any], *args: Any, timeout: float, what: str) -> Any:
    """``fn(*args)`` (a blocking librdkafka call given ``timeout`` itself), waited for at most
    ``timeout`` + 2 s: transactional calls have blocked far past their own timeout (see
    ``metadata.recovery.strategy`` above). A call still blocked then is left to its (daemon)
    thread, with its client, and ``BrokerStall`` is raised; the caller must not use that
    client again."""
    box: list[tuple[bool, Any]] = []

    def call() -> None:
        try:
            box.append((True, fn(*args)))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box.append((False, e))
    t = threading.Thread(target=call, name=f"streamdsl-kafka-{what}", daemon=True)
    t.start()
    t.join(timeout + 2)
    if not box:
        raise BrokerStall(f"Kafka {what} did not return within {timeout + 2:g} s")
    ok, value = box[0]
    if ok:
        return value
    raise value


# ---- admin ----------------------------------------------------------------------------------------

def topic_partitions(spec: KafkaSpec, topic: str | None = None, *, timeout: float = _TIMEOUT) -> list[int]:
    """Partition numbers of ``topic`` (default: the spec's), or [] when it does not exist."""
    ck = _require_kafka()
    topic = topic or spec.topic
    from confluent_kafka.admin import AdminClient
    admin = AdminClient(spec.client_config())
    try:
        # All topics: asking for one by name lets a broker with auto-creation create it.
        md = admin.list_topics(timeout=timeout)
    except ck.KafkaException as e:
        raise ConnectorError(f"cannot reach Kafka at {spec.bootstrap_servers}: {e}") from e
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        return []
    return sorted(t.partitions)


def ensure_topics(spec: KafkaSpec, topics: dict[str, tuple[int, dict[str, str]]], *,
                  timeout: float = _TIMEOUT) -> None:
    """Create the topics of ``{name: (partitions, config)}`` that do not exist yet."""
    ck = _require_kafka()
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(spec.client_config())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except ck.KafkaException as e:
        raise ConnectorError(f"cannot reach Kafka at {spec.bootstrap_servers}: {e}") from e
    new = [NewTopic(t, n, 1, config=dict(c)) for t, (n, c) in topics.items() if t not in existing]
    if not new:
        return
    for name, fut in admin.create_topics(new, request_timeout=timeout).items():
        try:
            fut.result()
        except ck.KafkaException as e:
            if e.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConnectorError(f"cannot create Kafka topic {name!r}: {e}") from e


# ---- bounded reads (open_source, batch engines) --------------------------------------------------

def _reader(spec: KafkaSpec) -> Any:
    ck = _require_kafka()
    return ck.Consumer(spec.client_config(**{
        "group.id": spec.group or "streamdsl-reader", "enable.auto.commit": False,
        "enable.partition.eof": True, "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "fetch.wait.max.ms": 50,
        "queued.max.messages.kbytes": 8192,  # librdkafka's prefetch queue: 8 MB, not 64
        # a full prefetch queue is looked at again after 10 ms, not librdkafka's 1 s (a
        # reader that had taken the queue then waited for the next fetch)
        "fetch.queue.backoff.ms": 10}))


def _start_offsets(consumer: Any, spec: KafkaSpec, partitions: list[int]) -> list[Any]:
    # Offset 0 rather than OFFSET_BEGINNING: the same with auto.offset.reset=earliest (an offset
    # before the log start resets to it), and one broker round trip less.
    ck = _require_kafka()
    tps = [ck.TopicPartition(spec.topic, p, 0) for p in partitions]
    if spec.group is None:
        return tps
    committed = consumer.committed([ck.TopicPartition(spec.topic, p) for p in partitions],
                                   timeout=_TIMEOUT)
    for tp, c in zip(tps, committed):
        if c.offset >= 0:
            tp.offset = c.offset
    return tps


def read_to_end(consumer: Any, topic: str, tps: list[Any], timeout: float) -> dict[int, list[Any]]:
    """Raw messages of every partition in ``tps`` (with start offsets), up to the end of each
    partition at the time of reading (librdkafka's partition-EOF event)."""
    ck = _require_kafka()
    out: dict[int, list[Any]] = {tp.partition: [] for tp in tps}
    pending = set(out)
    consumer.assign(tps)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise ConnectorError(f"reading Kafka topic {topic!r}: partitions {sorted(pending)} "
                                 f"did not reach their end within {timeout:g} s")
        for msg in consumer.consume(1000, 0.2):
            err = msg.error()
            if err is not None:
                if err.code() == ck.KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                if err.fatal() or err.code() in _TOPIC_ERRORS:
                    raise ConnectorError(f"reading Kafka topic {topic!r}: {err.str()}")
                log.warning("kafka: %s", err.str())
                continue
            out[msg.partition()].append(msg)
            deadline = time.monotonic() + timeout
    return out


class _Partitions:
    """A bounded, streamed read of some partitions of one topic, each from its start offset up
    to its end (librdkafka's partition-EOF event, when the read catches up with the partition;
    not the high watermark, which Tansu 0.6 reports wrong), as one iterator per partition.

    One consumer reads them all; a partition with ``_PAUSE_AT`` records buffered that nobody
    takes is paused until it is down to ``_RESUME_AT``, so memory stays bounded whatever the
    topic's size (the consumer's own prefetch is capped by ``queued.max.messages.kbytes``).
    """

    def __init__(self, source: str, spec: KafkaSpec, partitions: list[int],
                 start: dict[int, int] | None, *, key_used: bool, timeout: float):
        self.source, self.spec, self.key_used, self.timeout = source, spec, key_used, timeout
        self.consumer = _reader(spec)
        tps = _start_offsets(self.consumer, spec, partitions)
        for tp in tps:
            if start and tp.partition in start:
                tp.offset = start[tp.partition]
        self.buf: dict[int, deque[InputEvent]] = {tp.partition: deque() for tp in tps}
        self.done: set[int] = set()
        self.paused: set[int] = set()
        self.consumer.assign(tps)

    def events(self, partition: int) -> Iterator[InputEvent]:
        buf = self.buf[partition]
        while True:
            while buf:
                yield buf.popleft()
                if partition in self.paused and len(buf) <= _RESUME_AT:
                    self._toggle(partition, pause=False)
            if partition in self.done:
                return
            self._fetch(partition)

    def _toggle(self, partition: int, *, pause: bool) -> None:
        tp = [_require_kafka().TopicPartition(self.spec.topic, partition)]
        if pause:
            self.consumer.pause(tp)
            self.paused.add(partition)
        else:
            self.consumer.resume(tp)
            self.paused.discard(partition)

    def _fetch(self, wanted: int) -> None:
        ck = _require_kafka()
        deadline = time.monotonic() + self.timeout
        while not self.buf[wanted] and wanted not in self.done:
            if time.monotonic() > deadline:
                raise ConnectorError(f"reading Kafka topic {self.spec.topic!r}: partition {wanted} "
                                     f"did not reach its end within {self.timeout:g} s")
            for msg in self.consumer.consume(1000, 0.2):
                err = msg.error()
                p = msg.partition()
                if err is not None:
                    if err.code() == ck.KafkaError._PARTITION_EOF:
                        self.done.add(p)
                        continue
                    if err.fatal() or err.code() in _TOPIC_ERRORS:
                        raise ConnectorError(f"reading Kafka topic {self.spec.topic!r}: {err.str()}")
                    log.warning("kafka: %s", err.str())
                    continue
                if p in self.done:  # written after this read reached the partition's end
                    continue
                buf = self.buf[p]
                buf.append(decode_message(self.source, msg, self.spec.key_format,
                                          self.spec.value_format, key_used=self.key_used))
                if p != wanted and p not in self.paused and len(buf) >= _PAUSE_AT:
                    self._toggle(p, pause=True)

    def close(self) -> None:
        self.consumer.close()


_PAUSE_AT = 5_000  # records of a partition buffered while another one is read
_RESUME_AT = 1_000


def read_kafka_partition(source: str, spec: dict | str | KafkaSpec, partition: int, *,
                         timeout: float = _TIMEOUT, key_used: bool = True) -> list[InputEvent]:
    """The events of one partition, from the group's committed offset (else the beginning) to
    the end at the time of reading: the bounded offset range a batch engine reads per partition."""
    ks = spec if isinstance(spec, KafkaSpec) else kafka_spec(spec)
    reader = _Partitions(source, ks, [partition], None, key_used=key_used, timeout=timeout)
    try:
        return list(reader.events(partition))
    finally:
        reader.close()


def read_kafka(topic: str, spec: dict | str | KafkaSpec, *,
               timestamp_of: Callable[[InputEvent], int] | None = None,
               timeout: float = _TIMEOUT, start: dict[int, int] | None = None,
               key_used: bool = True) -> Iterator[InputEvent]:
    """A bounded read of a Kafka topic as the input events of source ``topic``, streamed.

    Reads every partition from ``start[partition]`` if given, else the group's committed offset
    (the beginning without a group or commit), up to its end when the read starts; commits
    nothing; yields the partitions merged in timestamp-synchronized order
    (``timestamp_of(event)``, default the Kafka record timestamp; ties by partition), the order
    the local backend's Kafka run uses too. Records are read as they are taken, a bounded
    number ahead (see ``_Partitions``), never the whole topic at once. ``key_used=False``: see
    ``decode_message``.
    """
    ks = spec if isinstance(spec, KafkaSpec) else kafka_spec(spec)
    partitions = topic_partitions(ks)
    if not partitions:
        raise ConnectorError(f"Kafka topic {ks.topic!r} does not exist at {ks.bootstrap_servers}")
    reader = _Partitions(topic, ks, partitions, start, key_used=key_used, timeout=timeout)
    try:
        yield from merge_by_timestamp([reader.events(p) for p in partitions],
                                      timestamp_of or _kafka_ts)
    finally:
        reader.close()


def _kafka_ts(ev: InputEvent) -> int:
    return ev.timestamp if isinstance(ev.timestamp, int) else -(1 << 62)


def _topic_errors() -> frozenset[int]:
    try:
        from confluent_kafka import KafkaError
    except ImportError:  # pragma: no cover
        return frozenset()
    return frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED,
                      KafkaError.GROUP_AUTHORIZATION_FAILED})


_TOPIC_ERRORS = _topic_errors()


# ---- sinks ---------------------------------------------------------------------------------------

class DeliveryTracker:
    """Collects delivery failures of a producer (librdkafka reports them asynchronously, when
    the producer is polled or flushed; a producer made with ``only_errors=True`` reports
    nothing else)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err.str() if hasattr(err, 'str') else err}")

    def check(self) -> None:
        if self.errors:
            first, n = self.errors[0], len(self.errors)
            self.errors.clear()
            raise ConnectorError(f"{n} record(s) could not be written to Kafka (first: {first})")


# librdkafka options that only consumers take: an input URI's options also configure the run's
# producer, which would warn about each of these.
_CONSUMER_ONLY = ("group.", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
                  "auto.offset.reset", "enable.auto.", "auto.commit.", "fetch.", "isolation.level",
                  "partition.assignment.strategy", "enable.partition.eof", "queued.",
                  "check.crcs", "allow.auto.create.topics", "coordinator.query.interval.ms")


#: Our producer defaults (options with a dot in a connector's URI override them).
#: murmur2: the partitioner of Kafka's Java clients, so keys land where Kafka Streams (and any
#: Java consumer that co-partitions) expects them. linger.ms: how long librdkafka waits to
#: fill a batch before sending it, librdkafka's 5 ms. 100 ms (Kafka Streams' default) cut the
#: broker's CPU by a third on the fraud workload, but delays what other processes see of the
#: outputs by up to 0.1 s (tests/kafka's shared-group test, which starts a second instance
#: once the first one's outputs show, then failed 1 run in 3 on a loaded machine); a URI can
#: set it (``linger.ms=100``). See docs/performance.md, "Kafka in and out".
PRODUCER_DEFAULTS: dict[str, Any] = {"enable.idempotence": True, "linger.ms": 5,
                                     "partitioner": "murmur2_random"}


def make_producer(spec: KafkaSpec, *, only_errors: bool = False, **extra: Any) -> Any:
    """A producer for ``spec``'s cluster: ``PRODUCER_DEFAULTS``, then ``extra``, then the
    spec's options (consumer-only ones left out). ``only_errors``: librdkafka reports failed
    deliveries only (``delivery.report.only.error``), not one callback per record written;
    for a producer whose writers need no delivered offsets (``DeliveryTracker`` only looks at
    failures)."""
    ck = _require_kafka()
    from dataclasses import replace
    spec = replace(spec, config={k: v for k, v in spec.config.items()
                                 if not k.startswith(_CONSUMER_ONLY)})
    conf = dict(PRODUCER_DEFAULTS)
    if only_errors:
        conf["delivery.report.only.error"] = True
    conf.update(extra)
    return ck.Producer(spec.client_config(**conf))


def produce(producer: Any, topic: str, key: bytes | None, value: bytes | None,
            timestamp: int | None, on_delivery: Callable[[Any, Any], None], *,
            partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
    """``producer.produce`` that waits for room when librdkafka's local queue is full."""
    kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": on_delivery}
    if timestamp is not None:
        kwargs["timestamp"] = timestamp
    if partition is not None:
        kwargs["partition"] = partition
    if headers:
        kwargs["headers"] = headers
    while True:
        try:
            producer.produce(topic, **kwargs)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


class _KafkaWriter:
    """A producer on one topic (created if missing): its own, flushed on ``close``, or a shared
    (possibly transactional) one passed in by the local backend's Kafka run.

    Records are handed to librdkafka one ``produce`` call each (it batches them by partition,
    ``linger.ms``); the producer is polled (delivery reports served) every ``POLL_EVERY``
    records, and whenever its local queue is full, rather than after each record; a flush
    serves the rest (a commit flushes first, ``close`` too)."""

    _what = "record(s)"
    POLL_EVERY = 1000

    def __init__(self, spec: dict | str | KafkaSpec, *, producer: Any = None,
                 tracker: DeliveryTracker | None = None, create: bool = True):
        self.spec = spec if isinstance(spec, KafkaSpec) else kafka_spec(spec)
        if create:
            ensure_topics(self.spec, {self.spec.topic: (self.spec.partitions, {})})
        self._own = producer is None
        self.producer = (producer if producer is not None
                         else make_producer(self.spec, only_errors=True))
        self.tracker = tracker if tracker is not None else DeliveryTracker()
        #: headers of every record written (the local run's exactly_once sets the transaction's)
        self.headers: list[tuple[str, bytes]] | None = None
        self._unpolled = 0

    def _send(self, key: bytes | None, value: bytes | None, timestamp: int | None) -> None:
        try:
            # (timestamp 0: librdkafka's "now", what leaving it out gives)
            self.producer.produce(self.spec.topic, value=value, key=key,
                                  on_delivery=self.tracker, timestamp=timestamp or 0,
                                  headers=self.headers)
        except BufferError:  # the local queue is full: wait for room
            produce(self.producer, self.spec.topic, key, value, timestamp, self.tracker,
                    headers=self.headers)
            self._unpolled = 0
            return
        self._unpolled += 1
        if self._unpolled >= self.POLL_EVERY:
            self.producer.poll(0)
            self._unpolled = 0

    def flush(self, timeout: float = _TIMEOUT) -> None:
        left = self.producer.flush(timeout)
        if left:
            raise ConnectorError(f"{left} {self._what} still not delivered to Kafka topic "
                                 f"{self.spec.topic!r} after {timeout:g} s")
        self.tracker.check()

    def close(self) -> None:
        if self._own:
            self.flush()


class KafkaSink(_KafkaWriter):
    """Writes output records to a Kafka topic (created if missing, with ``partitions``).

    With its own producer (``open_sink``), ``close`` flushes and raises if a record could not be
    written. The local backend's Kafka run passes one shared (possibly transactional) producer.
    """

    def __init__(self, spec: dict | str | KafkaSpec, *, producer: Any = None,
                 tracker: DeliveryTracker | None = None, create: bool = True):
        super().__init__(spec, producer=producer, tracker=tracker, create=create)
        self.written = 0

    def write(self, rec: OutputRecord) -> None:
        key, value, ts, window = rec
        if window is not None:  # encode_key's windowed key
            k = _json({"key": key, "window_start": window[0], "window_end": window[1]})
        else:
            k = _encode(key, self.spec.key_format, "key")
        self._send(k, None if value is None else _encode(value, self.spec.value_format, "value"),
                   ts)
        self.written += 1

    __call__ = write

    def many(self, recs: list[OutputRecord]) -> None:
        """``write`` of each record, in order, in one loop (the local run's sinks hand over
        what a batch gives them at once): librdkafka still gets one ``produce`` call each
        (``produce_batch`` takes no timestamps)."""
        kf, vf = self.spec.key_format, self.spec.value_format
        topic, tracker, headers = self.spec.topic, self.tracker, self.headers
        send = self.producer.produce
        json_values = vf == "json"
        left = self.POLL_EVERY - self._unpolled
        n = 0
        try:
            for key, value, ts, window in recs:
                k = (_json({"key": key, "window_start": window[0], "window_end": window[1]})
                     if window is not None else _encode(key, kf, "key"))
                v = (None if value is None else _json(value) if json_values
                     else _encode(value, vf, "value"))
                try:
                    send(topic, value=v, key=k, on_delivery=tracker, timestamp=ts or 0,
                         headers=headers)
                except BufferError:  # the local queue is full: wait for room
                    produce(self.producer, topic, k, v, ts, tracker, headers=headers)
                    n += 1
                    left = self.POLL_EVERY
                    continue
                n += 1
                left -= 1
                if left <= 0:
                    self.producer.poll(0)
                    left = self.POLL_EVERY
        finally:  # (as ``write`` counts them, should a record fail)
            self._unpolled = self.POLL_EVERY - left
            self.written += n


class KafkaDeadLetterSink(_KafkaWriter):
    """Writes ``DeadLetter`` records as JSON (with ``partition``, ``offset`` and ``reason``) to a
    Kafka topic. ``kafka_topics`` maps source names to the Kafka topics they read."""

    _what = "dead letter(s)"

    def __init__(self, spec: dict | str | KafkaSpec, *, producer: Any = None,
                 tracker: DeliveryTracker | None = None, kafka_topics: dict[str, str] | None = None,
                 create: bool = True):
        super().__init__(spec, producer=producer, tracker=tracker, create=create)
        self.kafka_topics = dict(kafka_topics or {})

    def write(self, dl: DeadLetter) -> None:
        self._send(None, dead_letter_json(dl, self.kafka_topics.get(dl.source or "")), None)

    __call__ = write
