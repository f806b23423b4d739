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

__all__ = ["Failure", "failure", "input_failure", "record_failure", "bad_input"]

_HINT = "; pass on_error='dead-letter' to send bad records to the dead-letter output instead"


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
    inside a fused chain is attributed to the stage that raised."""
    if isinstance(exc, RecordError):
        return Failure(None, exc)
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
