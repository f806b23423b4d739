"""Opening sources and sinks: dispatch of a connector spec to its format module."""

from __future__ import annotations

from typing import Any, Iterator, Protocol
from ..errors import ConnectorError
from ..runtime.records import InputEvent, OutputRecord
from .uri import parse_uri

__all__ = ["parse_uri", "open_source", "open_sink", "open_dead_letter_sink", "SinkHandle",
           "close_all"]


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
        return read_csv(topic, spec["path"], infer=spec.get("infer", True), key_field=spec.get("key"),
                        types=spec.get("types"))
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


def open_sink(topic: str, spec: dict | str, *, resume: Any = None,
              staged: bool = True) -> SinkHandle:
    """A writer of ``spec``. A file (JSON lines, CSV) is written to its partial file beside
    it (``staged``), which the backend renames over it when the run has succeeded
    (``files.commit``) or deletes when it failed (``files.discard``); ``resume``: a writer's
    ``snapshot()`` to go on from."""
    spec = parse_uri(spec)
    t = spec["type"]
    if t == "jsonl":
        from .jsonl import JsonlSink
        return JsonlSink(spec["path"], resume=resume, staged=staged)
    if t == "csv":
        from .csvfile import CsvSink
        return CsvSink(spec["path"], name=topic, columns=spec.get("columns"), resume=resume,
                       staged=staged)
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


def open_dead_letter_sink(spec: dict | str, *, resume: Any = None, staged: bool = True) -> Any:
    """A writer of ``DeadLetter`` records (JSON lines; a file is written as ``open_sink``
    writes one)."""
    spec = parse_uri(spec)
    if spec["type"] in ("jsonl", "stdio"):
        from .jsonl import DeadLetterJsonlSink
        return DeadLetterJsonlSink(spec.get("path"), resume=resume, staged=staged)
    if spec["type"] == "kafka":
        from .kafka import KafkaDeadLetterSink  # type: ignore[import-not-found]
        return KafkaDeadLetterSink(spec)
    raise ConnectorError("the dead-letter output must be a .jsonl file, '-' or a kafka:// topic")





def close_all(handles: Any, ok: bool) -> None:
    """Close each writer (``ok``: the run succeeded) or abort it (``abort()`` where it has one),
    every one even if one raises. After a success the first error is raised; after a failure
    none is (the run's own error is the one to report)."""
    first: BaseException | None = None
    for h in handles:
        try:
            if ok:
                h.close()
            else:
                getattr(h, "abort", h.close)()
        except BaseException as e:  # noqa: BLE001 - closing the others first
            if first is None:
                first = e
    if first is not None and ok:
        raise first
