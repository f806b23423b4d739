"""The kernel: one definition of every operator rule, shared by every backend.

Each IR node kind has a processor here (``build.make_processor``: a small state machine over
records, its state in ``store`` objects, its rule written once as one loop with several entry
points), with ingest (``ingest``), the input order (``ordering``), how a node is driven and its
failures routed (``drive``, ``failures``). Backends schedule these; what one adds for speed
lives in its own folder and is tested equal to the rule here.
"""

from __future__ import annotations

from .records import DeadLetter, InputEvent, OutputRecord, Record

__all__ = ["Record", "OutputRecord", "DeadLetter", "InputEvent"]
