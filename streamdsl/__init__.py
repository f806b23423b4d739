"""streamdsl: Kafka Streams / ksqlDB-style topologies in Python, on local, Bytewax or Beam.

>>> import streamdsl as sd
>>> topo = sd.Topology("fraud-detection")
>>> (topo.stream("authorization_attempts", key="card_number", timestamp="ts")
...     .group_by("card_number")
...     .window(sd.tumbling(minutes=5), emit="final")
...     .count()
...     .filter(lambda n: n > 3)
...     .to_stream()
...     .to("possible_fraud"))
"""

from __future__ import annotations

__version__ = "0.1.0"

from .dsl import GroupedStream, GroupedTable, Stream, Table, Topology, WindowedStream
from .dsl.aggs import (avg, collect, collect_set, count, count_distinct, first, histogram, last, max,
                       min, sum, top_k)
from .errors import StreamDSLError, TopologyError, ValidationError
from .expr import col, func, key, lit, when
from .timeutil import MAX_TIMESTAMP, days, hours, minutes, ms, seconds
from .windows import hopping, session, sliding, tumbling

__all__ = [
    "__version__",
    "Topology", "Stream", "Table", "GroupedStream", "WindowedStream", "GroupedTable",
    "tumbling", "hopping", "sliding", "session",
    "ms", "seconds", "minutes", "hours", "days", "MAX_TIMESTAMP",
    "col", "lit", "key", "when", "func",
    "count", "sum", "min", "max", "avg", "collect", "first", "last", "count_distinct",
    "collect_set", "histogram", "top_k",
    "StreamDSLError", "TopologyError", "ValidationError",
]
