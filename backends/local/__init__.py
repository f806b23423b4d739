"""The embedded ``local`` backend: pure Python, single process, no services.

It runs the kernel's processors (``streamdsl.runtime``) with the results of pushing records
one at a time, depth first, as a Kafka Streams task does: ``TestDriver`` sessions record at
a time, ``run`` in batches, columnar runs and fused loops that give the same results
(``executor.py`` and the modules it names; docs/internals/local.md). Kafka inputs run in the
committing loop of ``kafka_run.py``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Iterator

from streamdsl.backend import (Backend, BackendOption, RunResult, check_options, check_paths,
                               prepared_plan, resolve_io)
from streamdsl.connectors import (close_all, open_dead_letter_sink, open_sink, open_source,
                                  parse_uri)
from streamdsl.connectors.files import commit, discard, file_paths
from streamdsl.errors import ConnectorError, StopRun
from streamdsl.ir.nodes import NODE_KINDS
from streamdsl.ir.plan import Plan
from streamdsl.runtime.collector import collector_for_a_run
from streamdsl.runtime.drops import warn_drops
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import DeadLetter, InputEvent, OutputRecord

from .executor import Executor

#: ``processing_guarantee`` values (``kafka_run.GUARANTEES``; named here so that importing the
#: backend does not import its Kafka loop)
_GUARANTEES = ("at_least_once", "exactly_once", "exactly_once_v2")

__all__ = ["LocalBackend", "LocalSession", "BatchedSession"]


class LocalSession:
    """An incremental run: each ``send`` is processed at once (like TopologyTestDriver)."""

    def __init__(self, plan: Plan, on_error: str | None):
        # record at a time through the kernel's processors as they are: the reference the
        # batched paths are tested against
        self.executor = Executor(plan, on_error=on_error, compile_aggs=False)

    def send(self, event: InputEvent) -> None:
        if self.executor.ended:
            raise RuntimeError("the input is closed (output() with flush=True ended it)")
        self.executor.feed(event)

    def output(self, topic: str, flush: bool) -> list[OutputRecord]:
        if flush:
            self.executor.end()
        return list(self.executor.outputs[topic])

    def dead_letters(self) -> list[DeadLetter]:
        return list(self.executor.dead_letters)

    def metrics(self) -> Metrics:
        return self.executor.metrics

    def state_sizes(self) -> dict[str, int]:
        return self.executor.state_sizes()

    def close(self) -> None:
        pass


class BatchedSession:
    """A ``TestDriver`` session run the way ``LocalBackend.run`` runs in-memory inputs.

    Each read replays the sends so far through a fresh executor's ``feed_items`` (batches,
    columnar ingest, fused tails: what ``streamdsl run`` uses), in send order: consecutive
    sends to one topic go in as one run of items (the records of several topics interleave
    only as the sends did, as ``TestDriver`` defines). Results equal ``LocalSession``'s; this
    is how the conformance suite checks the batched paths against its hand-worked cases.
    """

    def __init__(self, plan: Plan, on_error: str | None):
        self.plan = plan
        self.on_error = on_error
        self.events: list[InputEvent] = []
        self._cache: tuple[int, bool, Executor] | None = None

    def send(self, event: InputEvent) -> None:
        self.events.append(event)

    def _run(self, flush: bool) -> Executor:
        key = (len(self.events), flush)
        if self._cache is not None and self._cache[:2] == key:
            return self._cache[2]
        ex = Executor(self.plan, on_error=self.on_error)
        if not ex.can_feed_items(self.plan.source_topics()):
            ex.feed_many(self.events)
        else:
            with collector_for_a_run():
                for topic, run in itertools.groupby(self.events, key=lambda ev: ev.topic):
                    run = list(run)
                    ex.feed_items({topic: [_item(ev) for ev in run]},
                                  first_positions={topic: run[0].position})
        if flush:
            ex.end()
        self._cache = (key[0], flush, ex)
        return ex

    def output(self, topic: str, flush: bool) -> list[OutputRecord]:
        return list(self._run(flush).outputs[topic])

    def dead_letters(self) -> list[DeadLetter]:
        return list(self._run(self._cache[1] if self._cache else False).dead_letters)

    def metrics(self) -> Metrics:
        return self._run(self._cache[1] if self._cache else False).metrics

    def close(self) -> None:
        self._cache = None


def _item(ev: InputEvent) -> Any:
    """``ev`` as an in-memory item: a bare dict value when it carries nothing else (as a user's
    list of dicts does; the columnar ingest takes those), else ``(key, value, timestamp)``."""
    v = ev.value
    if ev.key is None and ev.timestamp is None and type(v) is dict and "value" not in v:
        return v
    return (ev.key, v, ev.timestamp)


class LocalBackend(Backend):
    """Runs every node kind, in this process.

    Args:
        batched: ``TestDriver`` sessions replay the sends through the batched path of ``run``
            (``BatchedSession``) instead of processing each at once (``LocalSession``); the
            records are the same.
        partitions: partitions of this instance's runs and sessions when they give none
            (default: the plan's).

    Every task of the plan (``<sub-topology>_<partition>``) runs in this process, each with its
    own processors and stream time.
    """

    name = "local"
    capabilities = frozenset(NODE_KINDS)
    options = (
        BackendOption("partitions", "partitions of file and in-memory inputs (default: the "
                      "topology's); each sub-topology runs as that many tasks", "int", minimum=1),
        BackendOption("processing_guarantee", "Kafka runs: at_least_once (default) or "
                      "exactly_once (outputs, state and offsets in one transaction)",
                      _GUARANTEES, kafka_only=True),
        BackendOption("until_idle", "Kafka runs: end the input (closing every window) and stop "
                      "once the topics are read and no record came for this many seconds",
                      "float", minimum=0, kafka_only=True),
        BackendOption("max_records", "Kafka runs: stop after this many input records (windows "
                      "stay open in the checkpoint)", "int", minimum=1, kafka_only=True),
        BackendOption("commit_interval", "Kafka runs: seconds between commits (default 1)",
                      "float", minimum=0, kafka_only=True),
        BackendOption("assignment_timeout", "Kafka runs: seconds to wait for the group to "
                      "assign every partition (default 60)", "float", minimum=0, kafka_only=True),
        BackendOption("broker_timeout", "Kafka runs: seconds to keep retrying commits the "
                      "broker does not accept before stopping (default 60)", "float", minimum=0,
                      kafka_only=True),
    )
    options_help = {o.name: o.help for o in options}

    def __init__(self, *, batched: bool = False, partitions: int | None = None):
        self.batched = batched
        self.partitions = partitions

    def _plan(self, plan: Plan, partitions: int | None) -> Plan:
        """``plan`` with the run's partitions (given, else this instance's, else its own)."""
        self.compile(plan)
        return plan.with_partitions(partitions if partitions is not None else self.partitions)

    @property
    def version(self) -> str:
        from streamdsl import __version__
        return __version__

    def explain(self, plan: Plan) -> list[str]:
        """How this backend runs ``plan`` over in-memory and file inputs: batched or record at
        a time, columnar ingest, fused tails, and the fast paths used."""
        self.check(plan)
        return Executor(plan).execution_notes()

    def session(self, plan: Plan, *, on_error: str | None = None, partitions: int | None = None,
                **options: Any) -> LocalSession | BatchedSession:
        plan = self._plan(plan, partitions)
        if options:
            raise TypeError(f"the local backend takes no options, got {sorted(options)}")
        return BatchedSession(plan, on_error) if self.batched else LocalSession(plan, on_error)

    def execute(self, plan: Plan, events: list[InputEvent], *, flush: bool = True,
                on_error: str | None = None, partitions: int | None = None,
                **options: Any) -> RunResult:
        ex = Executor(self._plan(plan, partitions), on_error=on_error)
        ex.feed_many(events)
        if flush:
            ex.end()
        return RunResult(ex.outputs, ex.dead_letters, ex.metrics)

    def run(self, plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
            on_error: str | None = None, dead_letter: Any = None,
            progress: Callable[[Metrics], None] | None = None, progress_every: float = 0.5,
            partitions: int | None = None, optimize: bool = True, **options: Any) -> RunResult:
        """Read ``inputs`` ({source: connector spec or URI}), write ``outputs`` ({sink: spec});
        sinks without a spec are collected in the result. ``partitions``: partitions of the
        file and in-memory inputs (default: the plan's). The plan runs after the optimizer's
        passes, as ``streamdsl run`` and ``TestDriver`` run it (``optimize=False``: as it is).
        ``options``: those of ``options`` (Kafka runs: ``until_idle``, ``max_records``, ...).

        Raises:
            OptionError: an option this backend does not take, or one for Kafka runs when no
                input is a Kafka topic.
            ConnectorError: an input, output or dead-letter path that cannot be used.
        """
        plan = self._plan(prepared_plan(plan, optimize), partitions)
        inputs, outputs = resolve_io(plan, inputs, outputs)
        missing = [t for t in plan.source_topics() if t not in inputs]
        if missing:
            raise ConnectorError(f"no input given for source(s) {', '.join(missing)}")
        options = check_options(self, options, inputs)
        check_paths(inputs, outputs, dead_letter)
        if any(parse_uri(spec)["type"] == "kafka" for spec in inputs.values()):
            # Kafka inputs: an incremental, committing run loop (options: processing_guarantee,
            # until_idle, max_records, commit_interval); see kafka_run.py.
            from .kafka_run import run_kafka
            return run_kafka(plan, inputs, outputs, on_error=on_error, dead_letter=dead_letter,
                             progress=progress, progress_every=progress_every, **options)
        # file outputs are written to partial files, renamed into place once the run has
        # succeeded (connectors.files): a failed run leaves the previous files as they were
        paths = file_paths([parse_uri(spec) for spec in outputs.values()]
                           + ([parse_uri(dead_letter)] if dead_letter is not None else []))
        handles: list[Any] = []
        ok = False
        try:
            sinks = {}
            for t, spec in outputs.items():
                sinks[t] = open_sink(t, spec)
                handles.append(sinks[t])
            dl = open_dead_letter_sink(dead_letter) if dead_letter is not None else None
            if dl is not None:
                handles.append(dl)
            ex = Executor(plan, on_error=on_error,
                          sink_writers={t: s.write for t, s in sinks.items()},
                          dead_letter_writer=dl.write if dl is not None else None)
            specs = {t: parse_uri(spec) for t, spec in inputs.items()}
            items = ({t: spec.get("records", []) for t, spec in specs.items()}
                     if all(spec["type"] == "memory" for spec in specs.values())
                     and ex.can_feed_items(specs) else None)
            events = (iter(ex.merged({t: open_source(t, spec) for t, spec in specs.items()}))
                      if items is None else iter(()))
            try:
                with collector_for_a_run():
                    _feed(ex, items, events, progress, progress_every)
                    ex.end()
            except StopRun:  # a sink ended the run early, successfully: keep what it wrote
                close_all(handles, ok=True)
                commit(paths)
                ok = True
                raise
            close_all(handles, ok=True)
            commit(paths)
            ok = True
        finally:
            if not ok:
                try:
                    close_all(handles, ok=False)
                finally:
                    discard(paths)
        warn_drops(plan, ex.metrics)
        if progress is not None:
            progress(ex.metrics)
        return RunResult(ex.outputs, ex.dead_letters, ex.metrics)


def _feed(ex: Executor, items: dict[str, Any] | None, events: Iterator[InputEvent],
          progress: Callable[[Metrics], None] | None, progress_every: float) -> None:
    """Run ``ex`` over in-memory ``items`` (batched, no InputEvents) or else ``events``,
    reporting ``progress`` at most every ``progress_every`` seconds."""
    if items is not None:
        last = [time.monotonic()]

        def tick() -> None:
            now = time.monotonic()
            if now - last[0] >= progress_every:
                progress(ex.metrics)
                last[0] = now
        ex.feed_items(items, tick if progress is not None else None)
    elif progress is None:
        ex.feed_many(events)
    else:
        last_report = time.monotonic()
        while True:
            chunk = list(itertools.islice(events, 4096))
            if not chunk:
                break
            ex.feed_many(chunk)
            now = time.monotonic()
            if now - last_report >= progress_every:
                progress(ex.metrics)
                last_report = now
