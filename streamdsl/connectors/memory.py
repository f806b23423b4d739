"""In-memory lists (tests, notebooks)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..runtime.ingest import to_event
from ..runtime.records import InputEvent, OutputRecord

__all__ = ["read_memory", "MemorySink", "CallbackSink", "to_event"]


def read_memory(topic: str, records: Iterable[Any]) -> Iterator[InputEvent]:
    for i, item in enumerate(records):
        yield to_event(topic, item, i)


class MemorySink:
    def __init__(self) -> None:
        self.records: list[OutputRecord] = []

    def write(self, rec: OutputRecord) -> None:
        self.records.append(rec)

    def close(self) -> None:
        pass


class CallbackSink:
    """Hands each record to ``write(record)`` as it is written, in the running process
    (``{"type": "callback", "write": fn}``: how ``streamdsl run`` and the ``streamdsl sql``
    shell print a push query's rows as they come; an exception from ``write`` ends the run)."""

    def __init__(self, write: Any) -> None:
        self.write = write

    def close(self) -> None:
        pass
