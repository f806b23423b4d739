"""``TestDriver``: drive a topology record by record on any backend (like Kafka Streams'
``TopologyTestDriver``).

>>> import streamdsl as sd
>>> from streamdsl.testing import TestDriver
>>> topo = sd.Topology("t")
>>> topo.stream("in").filter(sd.col("n") > 1).to("out")
>>> with TestDriver(topo) as d:
...     d.send("in", key="a", value={"n": 2}, timestamp=1)
...     d.send("in", key="b", value={"n": 0}, timestamp=2)
...     [r.key for r in d.output("out")]
['a']
"""

from __future__ import annotations

from typing import Any, Iterable

from .backend import Backend, get_backend
from .dsl.topology import Topology
from .errors import StreamDSLError
from .ir.plan import Plan
from .runtime.metrics import Metrics
from .runtime.records import DeadLetter, InputEvent, OutputRecord

__all__ = ["TestDriver", "OutputRecord", "DeadLetter", "Metrics"]


class TestDriver:
    """Feed records into a topology and read its sinks.

    Args:
        topology: a ``Topology`` (or a ``Plan``).
        backend: backend name (``"local"``, ``"bytewax"``, ``"beam"``) or instance.
        optimize: run the optimizer passes first (default True).
        on_error: override the topology's ``on_error``.
        partitions: partitions of every source (default: the topology's): a keyed record goes
            to its key's partition (Kafka's default partitioner), a keyless one to
            ``send count % partitions``; each task keeps its own state and stream time.
        **options: backend options (e.g. ``workers=2`` on bytewax).

    Each ``send`` is processed at once, in send order across sources, as Kafka Streams'
    ``TopologyTestDriver.pipeInput`` does (DESIGN.md, "Determinism"): a test ported from Kafka
    Streams that pipes a table update between two stream records, or feeds a join out of
    timestamp order across topics, gets the same records. (Runs over files, in-memory inputs
    and Kafka take their sources in timestamp-synchronized order instead:
    ``streamdsl.runtime.ordering.merge_inputs``.) ``output(name)`` closes the input (end of
    stream: every window closes) and returns everything the sink received;
    ``output(name, flush=False)`` returns what was emitted so far and keeps the input open.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, topology: Topology | Plan, backend: str | Backend = "local", *,
                 optimize: bool = True, on_error: str | None = None,
                 partitions: int | None = None, **options: Any):
        plan = topology.plan() if isinstance(topology, Topology) else topology
        if optimize:
            from .optimize import optimize as run_passes
            plan = run_passes(plan)
        self.plan = plan.with_partitions(partitions)
        self.backend = get_backend(backend)
        if partitions is not None:
            options["partitions"] = partitions
        self._session = self.backend.session(self.plan, on_error=on_error, **options)
        self._positions: dict[str, int] = {}
        self._closed = False

    def send(self, source: str, value: Any = None, *, key: Any = None, timestamp: Any = None) -> None:
        """Send one record to ``source`` (``value=None`` is a tombstone on a table)."""
        if self._closed:
            raise StreamDSLError("the input is closed: output() with flush=True ended it; "
                                 "use output(name, flush=False) to read without closing")
        if source not in self.plan.source_topics():
            raise StreamDSLError(f"unknown source {source!r}; sources: {', '.join(self.plan.source_topics())}")
        pos = self._positions.get(source, 0)
        self._positions[source] = pos + 1
        self._session.send(InputEvent(source, key, value, timestamp, pos))

    def send_many(self, source: str, records: Iterable[Any]) -> None:
        """Send ``(key, value, timestamp)`` tuples (or dicts with those fields)."""
        for r in records:
            if isinstance(r, dict) and "value" in r:
                self.send(source, r["value"], key=r.get("key"), timestamp=r.get("timestamp"))
            else:
                k, v, t = r
                self.send(source, v, key=k, timestamp=t)

    def output(self, sink: str, flush: bool = True) -> list[OutputRecord]:
        """Records the sink ``sink`` has received (see class docs for ``flush``)."""
        if sink not in self.plan.sink_topics():
            raise StreamDSLError(f"unknown sink {sink!r}; sinks: {', '.join(self.plan.sink_topics())}")
        if flush:
            self._closed = True
        return self._session.output(sink, flush or self._closed)

    def dead_letters(self) -> list[DeadLetter]:
        """Records sent to the dead-letter output so far."""
        return self._session.dead_letters()

    def metrics(self) -> Metrics:
        """Counters: records in/out, late, dead-lettered, skipped."""
        return self._session.metrics()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "TestDriver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
