"""What a run's DoFns share with the process that launched it.

A DoFn is serialized into the pipeline when the run starts. When the runner executes it in
this very process (FnApiRunner ``in_memory`` / ``multi_threading``), the DoFn pickles only a
token and finds the plan's nodes, its inputs and its collection lists here again: nothing
heavy is pickled, and user callables stay the objects the user wrote (a ``peek`` appending to
a list of the caller's sees that list). In worker processes (``multi_processing``, remote
runners) the DoFn carries its node itself, and collected records go to files in a directory.
"""

from __future__ import annotations

import glob
import os
import pickle
import shutil
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

    def add(self, channel: str, items: list) -> None:
        """Collect ``items`` (from a DoFn running in this process)."""
        with _LOCK:
            self.collected.setdefault(channel, []).extend(items)

    def gather(self) -> dict[str, list]:
        """Everything collected, in-process and spooled by worker processes (unordered)."""
        out = {k: list(v) for k, v in self.collected.items()}
        if self.spool is not None:
            for path in sorted(glob.glob(os.path.join(self.spool, "*.pkl"))):
                with open(path, "rb") as f:
                    channel, items = pickle.load(f)
                out.setdefault(channel, []).extend(items)
        return out


def register(in_process: bool) -> RunState:
    state = RunState(uuid.uuid4().hex, in_process)
    if not in_process:
        state.spool = tempfile.mkdtemp(prefix="streamdsl-beam-")
    with _LOCK:
        _RUNS[state.token] = state
    return state


def lookup(token: str) -> RunState | None:
    return _RUNS.get(token)


def release(state: RunState) -> None:
    with _LOCK:
        _RUNS.pop(state.token, None)
    if state.spool is not None:
        shutil.rmtree(state.spool, ignore_errors=True)


def spool_write(spool: str, channel: str, items: list) -> None:
    """Write one bundle's collected items (from a worker process) for the driver to read."""
    base = os.path.join(spool, uuid.uuid4().hex)
    with open(base + ".tmp", "wb") as f:
        pickle.dump((channel, items), f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(base + ".tmp", base + ".pkl")  # readers never see a half-written file
