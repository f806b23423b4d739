"""Operator semantics shared by every backend: one implementation, several executors.

Each IR node kind has a processor here (a small state machine over records, with its state in
``store`` objects). The local backend pushes records through them directly; engine backends
call the same processors from their own operators, so Kafka Streams semantics are written once.
"""

from __future__ import annotations

from .records import DeadLetter, InputEvent, OutputRecord, Record

__all__ = ["Record", "OutputRecord", "DeadLetter", "InputEvent"]
