"""Where the ``streamdsl sql`` shell keeps its topics: files in a folder, or a Kafka cluster.

A topic of the files store is ``DIR/<topic>.jsonl``, one record per line as a sink writes it
(``{"key", "value", "timestamp"}``), read back as an envelope; a topic of the Kafka store is a
Kafka topic. Each gives the connector specs a query reads and writes a topic with.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Iterator

from streamdsl.runtime.records import InputEvent

__all__ = ["FileStore", "KafkaStore"]


class FileStore:
    """Topics as JSON-lines files in ``folder``."""

    kind = "files"

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        os.makedirs(self.folder, exist_ok=True)

    def describe(self) -> str:
        return f"files in {self.folder}"

    def path(self, topic: str) -> str:
        return os.path.join(self.folder, f"{topic}.jsonl")

    def source(self, topic: str, query_id: str) -> dict:
        path = self.path(topic)
        if not os.path.exists(path):
            open(path, "ab").close()  # an empty topic until something writes it
        return {"type": "jsonl", "path": path, "envelope": True}

    def sink(self, topic: str) -> dict:
        return {"type": "jsonl", "path": self.path(topic)}

    def read(self, topic: str, wait: bool = False) -> Iterator[InputEvent]:
        """The topic's records (files are bounded: the read ends at the end of the file)."""
        from streamdsl.connectors import open_source
        if not os.path.exists(self.path(topic)):
            return iter(())
        return open_source(topic, self.source(topic, ""))

    def delete(self, topic: str) -> None:
        if os.path.exists(self.path(topic)):
            os.remove(self.path(topic))


class KafkaStore:
    """Topics in the Kafka cluster at ``bootstrap`` (a query reads with a group of its own, so
    each one reads its topics from the beginning)."""

    kind = "kafka"

    def __init__(self, bootstrap: str, options: str = ""):
        self.bootstrap = bootstrap
        self.options = options  # extra URI query parameters (consumer settings)

    def describe(self) -> str:
        return f"Kafka at {self.bootstrap}"

    def _uri(self, topic: str, group: str | None) -> str:
        q = [f"group={group}"] if group else []
        if self.options:
            q.append(self.options)
        return f"kafka://{self.bootstrap}/{topic}" + ("?" + "&".join(q) if q else "")

    def source(self, topic: str, query_id: str) -> Any:
        from streamdsl.connectors import parse_uri
        return parse_uri(self._uri(topic, f"streamdsl-{query_id}-{uuid.uuid4().hex[:8]}"))

    def sink(self, topic: str) -> Any:
        from streamdsl.connectors import parse_uri
        return parse_uri(self._uri(topic, None))

    def read(self, topic: str, wait: bool = False, poll: float = 0.2) -> Iterator[InputEvent]:
        """The topic's records from its beginning, then each new one as it arrives: the
        caller stops (PRINT's LIMIT, Ctrl-C), as the ksql CLI's PRINT does. A topic that does
        not exist is an error, unless ``wait`` (a running query is about to create it)."""
        from streamdsl.connectors import open_source
        from streamdsl.connectors.kafka import KafkaSpec, kafka_spec, topic_partitions
        spec = self.source(topic, "print")
        ks = spec if isinstance(spec, KafkaSpec) else kafka_spec(spec)
        while wait and not topic_partitions(ks):
            time.sleep(poll)
        seen: set = set()
        while True:
            new = [ev for ev in open_source(topic, spec) if ev.position not in seen]
            for ev in new:
                seen.add(ev.position)  # (partition, offset)
                yield ev
            if not new:
                time.sleep(poll)

    def delete(self, topic: str) -> None:
        from confluent_kafka.admin import AdminClient
        for fut in AdminClient({"bootstrap.servers": self.bootstrap}).delete_topics([topic]).values():
            fut.result(10)
