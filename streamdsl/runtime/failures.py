"""What a failing record becomes: a dead letter, or the ``RecordError`` of ``on_error="fail"``.

Every executor (the local one, and the engines' DoFns and stateful steps) calls these, so a
failure is reported the same way on every backend.
"""

from __future__ import annotations

from typing import Any

from ..errors import RecordError
from ..ir.nodes import Node
from .fused import StageError, unwrap_error
from .records import DeadLetter, Record

__all__ = ["record_failure", "bad_input"]

_HINT = "; pass on_error='dead-letter' to send bad records to the dead-letter output instead"


def record_failure(node: Node, rec: Record | None, exc: Exception, on_error: str) -> DeadLetter:
    """The dead letter for ``exc``, raised by ``node`` processing ``rec`` (None: while closing
    windows at end of input).

    A failure inside a fused chain is attributed to the stage that raised.

    Raises:
        RecordError: unless ``on_error == "dead-letter"`` (chained to ``exc``); a
            ``RecordError`` raised by the operator itself is re-raised as it is.
    """
    if isinstance(exc, RecordError):
        raise exc
    if isinstance(exc, StageError):
        node, rec, exc = unwrap_error(node, rec, exc)
    reason = f"{type(exc).__name__}: {exc}"
    source, position = (rec.origin if rec is not None and rec.origin else (None, None))
    if on_error != "dead-letter":
        where = f" (defined at {node.site})" if node.site else ""
        raise RecordError(f"{reason}{where}{_HINT}", operator=node.name, source=source,
                          position=position, key=rec.key if rec else None,
                          value=rec.value if rec else None) from exc
    return DeadLetter(source, position, node.name, reason, rec.key if rec else None,
                      rec.value if rec else None, rec.ts if rec else None)


def bad_input(name: str, reason: str, source: str, position: Any, key: Any, value: Any,
              ts: int | None, on_error: str) -> DeadLetter:
    """The dead letter for an input record source ``name`` cannot ingest (``reason``).

    Raises:
        RecordError: unless ``on_error == "dead-letter"``.
    """
    if on_error != "dead-letter":
        raise RecordError(reason + _HINT, operator=name, source=source, position=position,
                          key=key, value=value)
    return DeadLetter(source, position, name, reason, key, value, ts)
