"""What a pass did, in words (private).

Passes stay pure ``Plan -> Plan`` functions; while ``streamdsl explain`` runs them it collects
the sentences they ``note`` here (a context variable, so nothing leaks between runs).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

__all__ = ["note", "collect_notes", "OptimizerWarning"]

_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("optimizer_notes",
                                                                          default=None)


class OptimizerWarning(UserWarning):
    """A pass changed the plan in a way the user should know about (e.g. removed operators)."""


def note(message: str) -> None:
    """Record what the running pass changed and why (kept only while collecting)."""
    notes = _NOTES.get()
    if notes is not None:
        notes.append(message)


@contextlib.contextmanager
def collect_notes() -> Iterator[list[str]]:
    """Collect the notes of the passes run inside the ``with`` block."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)
