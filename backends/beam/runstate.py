"""What a run's DoFns share with the process that launched it (the driver).

A DoFn is serialized into the pipeline when the run starts. When the runner executes it in
the driver's own process (FnApiRunner ``in_memory`` / ``multi_threading``), the DoFn pickles
only a token and finds the plan's nodes, the input events and the collection lists here
again: nothing heavy is pickled, and user callables stay the objects the user wrote (a
``peek`` appending to a list of the caller's sees that list). In worker processes
(``multi_processing``, Flink, Spark, Dataflow) a DoFn carries its node itself, and what it
collects for the driver is written, one file per bundle, to a spool directory (Beam
``FileSystems``: a local directory, or under ``--temp_location`` on a shared store).
"""

from __future__ import annotations

import pickle
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunState", "register", "lookup", "release", "spool_write"]

_RUNS: dict[str, "RunState"] = {}
_LOCK = threading.Lock()


@dataclass
class RunState:
    """One run: nodes by name, source events, and what was collected for the driver."""

    token: str
    in_process: bool
    nodes: dict[str, Any] = field(default_factory=dict)
    events: dict[str, list] = field(default_factory=dict)
    collected: dict[str, list] = field(default_factory=dict)
    spool: str | None = None
    own_spool: bool = False

    def add(self, channel: str, items: list) -> None:
        """Collect ``items`` (from a DoFn running in this process)."""
        with _LOCK:
            self.collected.setdefault(channel, []).extend(items)

    def gather(self) -> dict[str, list]:
        """Everything collected, in this process and spooled by workers (unordered)."""
        out = {k: list(v) for k, v in self.collected.items()}
        if self.spool is not None:
            from apache_beam.io.filesystems import FileSystems
            pattern = FileSystems.join(self.spool, "*.pkl")
            for match in FileSystems.match([pattern])[0].metadata_list:
                with FileSystems.open(match.path, compression_type="uncompressed") as f:
                    channel, items = pickle.loads(f.read())
                out.setdefault(channel, []).extend(items)
        return out


def register(in_process: bool, temp_location: str | None = None) -> RunState:
    state = RunState(uuid.uuid4().hex, in_process)
    if not in_process:
        if temp_location:
            from apache_beam.io.filesystems import FileSystems
            state.spool = FileSystems.join(temp_location, f"streamdsl-{state.token}")
        else:
            state.spool = tempfile.mkdtemp(prefix="streamdsl-beam-")
            state.own_spool = True
    with _LOCK:
        _RUNS[state.token] = state
    return state


def lookup(token: str) -> RunState | None:
    return _RUNS.get(token)


def release(state: RunState) -> None:
    with _LOCK:
        _RUNS.pop(state.token, None)
    if state.spool is not None:
        from apache_beam.io.filesystems import FileSystems
        try:
            if state.own_spool or FileSystems.exists(state.spool):
                FileSystems.delete([state.spool])
        except Exception:  # a spool left behind is harmless
            pass


def spool_write(spool: str, channel: str, items: list) -> None:
    """Write one bundle's collected items (from a worker) for the driver to read.

    A retried bundle may write its items twice; they carry the same lineage keys, and the
    driver keeps one item per key.
    """
    from apache_beam.io.filesystems import FileSystems
    data = pickle.dumps((channel, items), protocol=pickle.HIGHEST_PROTOCOL)
    path = FileSystems.join(spool, uuid.uuid4().hex + ".pkl")
    with FileSystems.create(path, compression_type="uncompressed") as f:
        f.write(data)
