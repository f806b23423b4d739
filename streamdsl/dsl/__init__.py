"""The fluent Python DSL."""

from __future__ import annotations

from .grouped import GroupedStream, GroupedTable, WindowedStream
from .stream import Stream
from .table import Table
from .topology import Topology

__all__ = ["Topology", "Stream", "Table", "GroupedStream", "WindowedStream", "GroupedTable"]
