"""Connectors: where records come from and go to.

A connector is declared as plain data (``{"type": "jsonl", "path": "in.jsonl"}``) so that
every backend can map it to its own I/O; this package gives the reference readers and
writers (used by the local backend, and by engines where they have nothing better).

URIs accepted on the command line (``--input NAME=URI``):

* ``path.jsonl`` / ``path.json`` / ``path.ndjson``: JSON lines, one value per line;
* ``path.csv``: CSV with a header row;
* ``-``: JSON lines on stdin (input) / stdout (output);
* ``kafka://host:port/topic?group=g``: a Kafka topic (needs ``streamdsl[kafka]``).
"""

from __future__ import annotations

from .base import SinkHandle, close_all, open_dead_letter_sink, open_sink, open_source, parse_uri

__all__ = ["parse_uri", "open_source", "open_sink", "open_dead_letter_sink", "SinkHandle", "close_all"]
