"""What a failing record becomes: a dead letter, or the ``RecordError`` that fails the run.

Every backend routes failures through these (``runtime/drive.py``), so a failure is reported
the same way everywhere: the same operator (the stage that raised, inside a fused chain), the
same origin, the same reason.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import RecordError
from ..ir.nodes import Node
from .records import DeadLetter, InputEvent, Record
from .stateless import unwrap_error

__all__ = ["Failure", "failure", "input_failure", "record_failure", "bad_input", "LateRecord",
           "late_window"]

_HINT = "; pass on_error='dead-letter' to send bad records to the dead-letter output instead"


class LateRecord(Exception):
    """Not an error: a record too late for ``window`` (``(start, end)``) at ``stream_time``,
    handed to ``fail`` by an operator whose ``late`` is ``"dead-letter"``. ``failure`` makes
    it a dead letter whatever ``on_error`` says (the record was dropped by the rules, not
    failed); ``reason`` says why."""

    def __init__(self, reason: str, window: tuple[int, int], stream_time: int):
        super().__init__(reason)
        self.reason = reason
        self.window = window
        self.stream_time = stream_time


def late_window(start: int, end: int, stream_time: int, grace: int,
                what: str = "window") -> LateRecord:
    """The ``LateRecord`` of a time window ``[start, end)`` closed at ``stream_time``.

    >>> late_window(0, 5000, 9000, 1000).reason
    'late: window [0, 5000) closed at stream time 9000 (its end 5000 + grace 1000 <= 9000)'
    """
    return LateRecord(f"late: {what} [{start}, {end}) closed at stream time {stream_time} "
                      f"(its end {end} + grace {grace} <= {stream_time})", (start, end),
                      stream_time)


class Failure(NamedTuple):
    """A classified failure: exactly one of the two is set."""

    dead_letter: DeadLetter | None
    error: RecordError | None

    def raise_or_dead_letter(self) -> DeadLetter:
        """The dead letter; raises the run's ``RecordError`` when there is one."""
        if self.error is not None:
            raise self.error
        return self.dead_letter  # type: ignore[return-value]


def failure(node: Node, rec: Record | None, exc: Exception, on_error: str) -> Failure:
    """``exc``, raised by ``node`` processing ``rec`` (None: while closing windows at end of
    input): a dead letter under ``on_error="dead-letter"``, else the ``RecordError`` (chained
    to ``exc``). A ``RecordError`` raised by the operator itself stays as it is. A failure
    inside a fused chain is attributed to the stage that raised. A ``LateRecord`` is always a
    dead letter, with its window and stream time."""
    if isinstance(exc, RecordError):
        return Failure(None, exc)
    if isinstance(exc, LateRecord):
        source, position = (rec.origin if rec is not None and rec.origin else (None, None))
        return Failure(DeadLetter(source, position, node.name, exc.reason,
                                  rec.key if rec is not None else None,
                                  rec.value if rec is not None else None,
                                  rec.ts if rec is not None else None, exc.window,
                                  exc.stream_time), None)
    node, rec, exc = unwrap_error(node, rec, exc)  # type: ignore[assignment]
    reason = f"{type(exc).__name__}: {exc}"
    source, position = (rec.origin if rec is not None and rec.origin else (None, None))
    key = rec.key if rec is not None else None
    value = rec.value if rec is not None else None
    if on_error != "dead-letter":
        where = f" (defined at {node.site})" if node.site else ""
        err = RecordError(f"{reason}{where}{_HINT}", operator=node.name, source=source,
                          position=position, key=key, value=value)
        err.__cause__ = exc
        return Failure(None, err)
    return Failure(DeadLetter(source, position, node.name, reason, key, value,
                              rec.ts if rec is not None else None), None)


def input_failure(source_node: str, reason: str, ev: InputEvent, on_error: str) -> Failure:
    """An input event that source node ``source_node`` cannot ingest (``reason``)."""
    if on_error != "dead-letter":
        return Failure(None, RecordError(reason + _HINT, operator=source_node, source=ev.topic,
                                         position=ev.position, key=ev.key, value=ev.value))
    return Failure(DeadLetter(ev.topic, ev.position, source_node, reason, ev.key, ev.value,
                              None), None)


def record_failure(node: Node, rec: Record | None, exc: Exception, on_error: str) -> DeadLetter:
    """``failure(...)``'s dead letter; raises its ``RecordError`` (``on_error="fail"``)."""
    return failure(node, rec, exc, on_error).raise_or_dead_letter()


def bad_input(source_node: str, reason: str, ev: InputEvent, on_error: str) -> DeadLetter:
    """``input_failure(...)``'s dead letter; raises its ``RecordError``."""
    return input_failure(source_node, reason, ev, on_error).raise_or_dead_letter()
