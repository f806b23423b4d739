"""Opening sources and sinks: dispatch of a connector spec to its format module."""

from __future__ import annotations

from typing import Any, Iterator, Protocol
from ..errors import ConnectorError
from ..runtime.records import InputEvent, OutputRecord
from .uri import parse_uri

__all__ = ["parse_uri", "open_source", "open_sink", "open_dead_letter_sink", "SinkHandle"]


def open_source(topic: str, spec: dict | str) -> Iterator[InputEvent]:
    """Iterate the input events of ``spec`` (records carry their position: line, row, offset)."""
    spec = parse_uri(spec)
    t = spec["type"]
    if t == "jsonl":
        from .jsonl import read_jsonl
        return read_jsonl(topic, spec["path"], envelope=bool(spec.get("envelope", False)),
                          key_field=spec.get("key"))
    if t == "csv":
        from .csvfile import read_csv
        return read_csv(topic, spec["path"], infer=spec.get("infer", True), key_field=spec.get("key"))
    if t == "stdio":
        from .jsonl import read_jsonl_stream
        import sys
        return read_jsonl_stream(topic, sys.stdin, "stdin", envelope=bool(spec.get("envelope", False)))
    if t == "memory":
        from .memory import read_memory
        return read_memory(topic, spec.get("records", []))
    if t == "kafka":
        from .kafka import read_kafka  # type: ignore[import-not-found]
        return read_kafka(topic, spec)
    raise ConnectorError(f"unknown source connector type {t!r}")


class SinkHandle(Protocol):
    def write(self, rec: OutputRecord) -> None: ...
    def close(self) -> None: ...


def open_sink(topic: str, spec: dict | str) -> SinkHandle:
    spec = parse_uri(spec)
    t = spec["type"]
    if t == "jsonl":
        from .jsonl import JsonlSink
        return JsonlSink(spec["path"])
    if t == "csv":
        from .csvfile import CsvSink
        return CsvSink(spec["path"])
    if t == "stdio":
        from .jsonl import StdoutSink
        return StdoutSink(topic)
    if t == "memory":
        from .memory import MemorySink
        return MemorySink()
    if t == "callback":
        from .memory import CallbackSink
        return CallbackSink(spec["write"])
    if t == "kafka":
        from .kafka import KafkaSink  # type: ignore[import-not-found]
        return KafkaSink(spec)
    raise ConnectorError(f"unknown sink connector type {t!r}")


def open_dead_letter_sink(spec: dict | str) -> Any:
    """A writer of ``DeadLetter`` records (JSON lines)."""
    spec = parse_uri(spec)
    if spec["type"] in ("jsonl", "stdio"):
        from .jsonl import DeadLetterJsonlSink
        return DeadLetterJsonlSink(spec.get("path"))
    if spec["type"] == "kafka":
        from .kafka import KafkaDeadLetterSink  # type: ignore[import-not-found]
        return KafkaDeadLetterSink(spec)
    raise ConnectorError("the dead-letter output must be a .jsonl file, '-' or a kafka:// topic")



