"""Record types that flow through processors and out of runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["Record", "OutputRecord", "DeadLetter", "InputEvent"]


class Record:
    """A record in flight: key, value, event time (int ms), window (``(start, end)`` or None).

    ``origin`` is ``(source, position)`` of the input record it derives from (for dead letters).
    """

    __slots__ = ("key", "value", "ts", "window", "origin")

    def __init__(self, key: Any, value: Any, ts: int, window: tuple[int, int] | None = None,
                 origin: tuple[str, Any] | None = None):
        self.key = key
        self.value = value
        self.ts = ts
        self.window = window
        self.origin = origin

    def __repr__(self) -> str:
        w = f", window={self.window}" if self.window is not None else ""
        return f"Record(key={self.key!r}, value={self.value!r}, ts={self.ts}{w})"


class OutputRecord(NamedTuple):
    """A record as a sink receives it (what ``TestDriver.output`` returns).

    Immutable. A named tuple rather than a frozen dataclass because sinks build one per
    output record: ``tuple.__new__(OutputRecord, (key, value, timestamp, window))`` (what the
    executors' hot paths do) costs a quarter of a frozen dataclass's ``__init__``.
    """

    key: Any
    value: Any
    timestamp: int
    window: tuple[int, int] | None = None

    def as_tuple(self) -> tuple:
        return (self.key, self.value, self.timestamp, self.window)

    def to_json_dict(self) -> dict:
        d = {"key": self.key, "value": self.value, "timestamp": self.timestamp}
        if self.window is not None:
            d["window"] = {"start": self.window[0], "end": self.window[1]}
        return d


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be processed, with why and where it came from.

    A late record (an operator's ``late="dead-letter"``) also carries the ``window`` it was
    too late for (``(start, end)``, as windowed results carry it) and the operator's
    ``stream_time`` when it arrived.
    """

    source: str | None
    position: Any
    operator: str | None
    reason: str
    key: Any = None
    value: Any = None
    timestamp: int | None = None
    window: tuple[int, int] | None = None
    stream_time: int | None = None

    def to_json_dict(self) -> dict:
        d = {"source": self.source, "position": self.position, "operator": self.operator,
             "reason": self.reason, "key": self.key, "value": self.value,
             "timestamp": self.timestamp}
        if self.window is not None:
            d["window"] = {"start": self.window[0], "end": self.window[1]}
            d["stream_time"] = self.stream_time
        return d


@dataclass(slots=True)
class InputEvent:
    """A raw input record as a connector delivers it, before key/timestamp extraction.

    ``error`` is set (and ``value`` holds the raw text) when the connector could not decode it.
    """

    topic: str
    key: Any
    value: Any
    timestamp: Any
    position: Any
    error: str | None = None
