"""Push queries (``SELECT ... EMIT CHANGES [LIMIT n]``): their rows printed as they come.

On the local backend a push query's sink is a callback (``{"type": "callback"}``): each row is
printed when it is written, and the run stops at the query's LIMIT. The other backends run a
whole bounded input before any output is seen: their rows are printed when the run ends.
"""

from __future__ import annotations

from typing import Any, Callable

from streamdsl.errors import StopRun
from streamdsl.runtime.records import OutputRecord

__all__ = ["LimitReached", "RowPrinter", "push_queries", "streams_rows"]


class LimitReached(StopRun):
    """A push query printed the rows its LIMIT asked for: the run ends, successfully (its file
    outputs are kept)."""


class RowPrinter:
    """Prints each row with ``emit`` and stops the run after ``limit`` rows."""

    def __init__(self, limit: int | None, emit: Callable[[OutputRecord], None]):
        self.limit = limit
        self.emit = emit
        self.count = 0

    def __call__(self, rec: OutputRecord) -> None:
        if self.limit is not None and self.count >= self.limit:
            raise LimitReached
        self.emit(rec)
        self.count += 1
        if self.limit is not None and self.count >= self.limit:
            raise LimitReached


def push_queries(target: str) -> dict[str, Any]:
    """The push queries of a ``.sql`` FILE, by sink name (none for other files)."""
    path = target.rsplit(":", 1)[0] if not target.endswith(".sql") else target
    if not path.endswith(".sql"):
        return {}
    from streamdsl.sql import load_script
    return {pq.sink: pq for pq in load_script(path).push_queries}


def streams_rows(backend_name: str) -> bool:
    """Whether the backend hands rows over as it writes them (the callback sink runs in this
    process only on the local backend)."""
    return backend_name == "local"
