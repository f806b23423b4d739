"""In-memory lists (tests, notebooks)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..runtime.records import InputEvent, OutputRecord

__all__ = ["read_memory", "MemorySink", "to_event"]


def to_event(topic: str, item: Any, position: int) -> InputEvent:
    """An item is a ``(key, value, timestamp)`` tuple, a ``{"key", "value", "timestamp"}`` dict,
    or a bare value (key and timestamp then come from the stream declaration)."""
    if type(item) is dict and not ("value" in item and set(item) <= {"key", "value", "timestamp"}):
        return InputEvent(topic, None, item, None, position)
    if isinstance(item, InputEvent):
        return item
    if isinstance(item, tuple) and len(item) == 3:
        return InputEvent(topic, item[0], item[1], item[2], position)
    if isinstance(item, dict) and set(item) <= {"key", "value", "timestamp"} and "value" in item:
        return InputEvent(topic, item.get("key"), item["value"], item.get("timestamp"), position)
    return InputEvent(topic, None, item, None, position)


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
