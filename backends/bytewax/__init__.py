"""The ``bytewax`` backend: topologies compiled into Bytewax dataflows (bytewax 0.21).

Same records as the ``local`` backend, on one worker or many: every operator's semantics come
from the shared processors in ``streamdsl.runtime``, and every stateful step restores the
defined record order itself (positions and frontiers, see :mod:`.inbox`), so no result
depends on how Bytewax schedules, batches or routes items between workers.

>>> import streamdsl as sd
>>> from streamdsl.testing import TestDriver
>>> topo = sd.Topology("bw-demo")
>>> topo.stream("in").group_by_key().count().to_stream().to("out")
>>> with TestDriver(topo, backend="bytewax", workers=2) as d:
...     d.send_many("in", [("a", 1, 10), ("b", 1, 20), ("a", 1, 30)])
...     [(r.key, r.value) for r in d.output("out")]
[('a', 1), ('b', 1), ('a', 2)]
"""

from __future__ import annotations

import glob
import itertools
import os
from datetime import timedelta
from typing import Any, Callable, Iterable

from streamdsl.backend import (Backend, BackendOption, ReplaySession, RunResult, check_options,
                               check_paths, prepared_plan, resolve_io)
from streamdsl.connectors import open_source, parse_uri
from streamdsl.connectors.files import commit, discard, file_paths
from streamdsl.connectors.kafka import is_kafka
from streamdsl.errors import ConnectorError, StreamDSLError
from streamdsl.ir.plan import Plan
from streamdsl.runtime.drops import warn_drops
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import InputEvent

from .cluster import ClusterError, execute_flow, root_cause, sink_failed
from .compiler import FlowCompiler, supported_kinds
from .io import (CollectSink, ConnectorSink, DeadLetterFileSink, EventSource, FileShares,
                 ShardedFileSource, memory_items, merge_ingested, merge_memory)
from .layout import Layout, step_id
from .logic import RunState

__all__ = ["BytewaxBackend", "Layout", "ClusterError"]

_OPTIONS = (
    BackendOption("partitions", "partitions of file and in-memory inputs (default: the "
                  "topology's); each stateful operator that is not per key runs one task per "
                  "partition", "int", minimum=1),
    BackendOption("workers", "worker threads per process (default 1)", "int", minimum=1),
    BackendOption("processes", "processes in the cluster, forked on free localhost ports "
                  "(default 1)", "int", minimum=1),
    BackendOption("batch_size", "input events per Bytewax batch (default 1000)", "int", minimum=1),
    BackendOption("recovery_dir", "directory of Bytewax's SQLite recovery store: snapshots are "
                  "written there and a rerun resumes from the last one (run only)", "str"),
    BackendOption("snapshot_interval", "seconds between snapshots with recovery_dir (default "
                  "1.0; also Bytewax's epoch length)", "float", minimum=0),
    BackendOption("recovery_partitions", "recovery partitions created in a new recovery_dir "
                  "(default: workers x processes)", "int", minimum=1),
    BackendOption("timeout", "seconds to wait for a multi-process run before failing "
                  "(default: none)", "float", minimum=0),
    BackendOption("key_groups", "tasks of each per-key operator (non-windowed aggregation, "
                  "stream-table and table-table join), spread over the workers (default: "
                  "workers x processes; kept in the recovery_dir); never changes results",
                  "int", minimum=1),
)
_OPTIONS_HELP = {o.name: o.help for o in _OPTIONS}
_LAYOUT_FILE = "streamdsl-bytewax.json"


class BytewaxBackend(Backend):
    """Runs plans as Bytewax dataflows.

    Args:
        **defaults: default options for every run of this instance (``workers``,
            ``processes``, ``batch_size``, ...; see ``options_help``). Options passed to
            ``execute``/``run``/``TestDriver`` override them.

    ``BytewaxBackend(workers=2)`` is a backend whose runs use two worker threads; pass it as
    ``TestDriver(topo, backend=BytewaxBackend(workers=2))``.
    """

    name = "bytewax"
    capabilities = supported_kinds()
    options = _OPTIONS
    options_help = _OPTIONS_HELP

    def __init__(self, **defaults: Any):
        self.defaults = self._options(defaults, {})

    @property
    def version(self) -> str:
        from importlib.metadata import version
        return version("bytewax")

    # ---- options ----------------------------------------------------------------------------------
    def _options(self, given: dict, base: dict | None = None) -> dict:
        check_options(self, given)  # OptionError (a TypeError) for a name it does not declare
        opts = dict(self.defaults if base is None else base)
        for k, v in given.items():
            if v is None:
                continue
            if k in ("workers", "processes", "batch_size", "recovery_partitions", "key_groups",
                     "partitions"):
                v = int(v)
                if v < 1:
                    raise ValueError(f"bytewax option {k} must be >= 1, got {v}")
            elif k in ("snapshot_interval", "timeout"):
                v = float(v)
            elif k == "recovery_dir":
                v = os.fspath(v)
            opts[k] = v
        return opts

    # ---- compile ----------------------------------------------------------------------------------
    def compile(self, plan: Plan, **options: Any):
        """The ``bytewax.dataflow.Dataflow`` of ``plan`` (over an empty input, its results
        collected), e.g. for ``bytewax.visualize.to_mermaid``.

        Raises:
            UnsupportedNodeError: a node kind this backend does not run.
        """
        opts = self._options(options)
        self.check(plan)
        plan = plan.with_partitions(opts.get("partitions"))
        return _BoundedFlow(self, plan, None, _key_groups(opts), _spread(opts)).flow

    # ---- bounded runs (TestDriver) -----------------------------------------------------------------
    def execute(self, plan: Plan, events: list[InputEvent], *, flush: bool = True,
                on_error: str | None = None, **options: Any) -> RunResult:
        """Run ``events`` (already in the defined input order) to completion.

        ``flush=False`` stops at the end of the events without closing windows: the result is
        what the topology had emitted by then (``TestDriver.output(flush=False)``).
        """
        opts = self._bounded_options(options)
        self.check(plan)
        plan = plan.with_partitions(opts.get("partitions"))
        return _BoundedFlow(self, plan, on_error, _key_groups(opts), _spread(opts)).execute(
            list(events), flush, opts)

    def session(self, plan: Plan, *, on_error: str | None = None, **options: Any) -> ReplaySession:
        """A ``TestDriver`` session: the dataflow is compiled once, and each read replays the
        events sent so far through it (see ``ReplaySession``)."""
        opts = self._bounded_options(options)
        self.check(plan)
        return _Session(self, plan.with_partitions(opts.get("partitions")), on_error, opts)

    def _bounded_options(self, options: dict) -> dict:
        opts = self._options(options)
        if "recovery_dir" in opts:
            raise TypeError("recovery_dir applies to run(), not to execute()/TestDriver")
        opts.setdefault("timeout", 300.0)  # a test never waits forever on a lost process
        return opts

    def _execute(self, flow, store: list, run: RunState, opts: dict, **kw: Any) -> list:
        """Run ``flow``; a failure is re-raised as what caused it (a record's ``RecordError``,
        an input's own exception), not as Bytewax's wrapper around it."""
        try:
            return execute_flow(flow, store, workers=opts.get("workers", 1),
                                processes=opts.get("processes", 1), run_state=run,
                                timeout=opts.get("timeout"), **kw)
        except (StreamDSLError, ClusterError):
            raise
        except BaseException as e:
            if run.fatal is not None:  # a recoverable run crashed on purpose (FatalAbort)
                raise run.fatal from None
            cause = root_cause(e)
            if cause is not e and isinstance(cause, Exception):
                raise cause from e
            raise

    # ---- runs over connectors (streamdsl run) --------------------------------------------------------
    def run(self, plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
            on_error: str | None = None, dead_letter: Any = None,
            progress: Callable[[Metrics], None] | None = None, optimize: bool = True,
            **options: Any) -> RunResult:
        """Read ``inputs`` ({source: connector spec or URI}), write ``outputs`` ({sink: spec});
        sinks without a spec are collected in the result (as on the local backend). The plan
        runs after the optimizer's passes (``optimize=False``: as it is).

        With ``recovery_dir``, Bytewax snapshots the run every ``snapshot_interval`` seconds;
        running again with the same directory resumes from the last snapshot (see
        docs/backends.md for what is guaranteed about duplicates).
        """
        opts = self._options(options)
        plan = prepared_plan(plan, optimize)
        self.check(plan)
        plan = plan.with_partitions(opts.get("partitions"))
        inputs, outputs = resolve_io(plan, inputs, outputs)
        missing = [t for t in plan.source_topics() if t not in inputs]
        if missing:
            raise ConnectorError(f"no input given for source(s) {', '.join(missing)}")
        unknown = [t for t in inputs if t not in plan.source_topics()]
        if unknown:
            raise ConnectorError(f"input(s) {', '.join(unknown)} are not sources of this "
                                 f"topology (sources: {', '.join(plan.source_topics())})")
        outputs = {t: spec for t, spec in outputs.items() if t in plan.sink_topics()}
        check_paths(inputs, outputs, dead_letter)
        recovery_dir = opts.get("recovery_dir")
        workers, processes = opts.get("workers", 1), opts.get("processes", 1)
        key_groups = _key_groups(opts)
        memory = memory_items(plan, inputs)
        kafka_topics = frozenset(t for t, spec in inputs.items() if is_kafka(spec))
        parallel = memory is None and _parallel_file(inputs)
        shares = workers * processes if parallel else 1
        spread = workers * processes  # the tasks' keys spread them over this many workers
        if recovery_dir is not None:  # the numbers the directory was started with
            key_groups, shares, spread = _recovery_layout(
                recovery_dir, key_groups, "key_groups" in opts, shares, spread)
            shares = shares if parallel else 1
        run = RunState(Layout(plan, key_groups, shares, spread), on_error or plan.on_error,
                       recovery=recovery_dir is not None)

        def open_events(read: dict | None = None) -> Iterable[Any]:
            """The merged inputs; ``read`` (runs with Kafka inputs): where each starts."""
            if memory is not None:  # in-memory inputs: no InputEvent per item
                return merge_memory(plan, memory)
            return merge_ingested(plan, {t: _open_input(plan, t, spec, (read or {}).get(t))
                                         for t, spec in inputs.items()})

        stop = lambda: run.fatal is not None or sink_failed()  # noqa: E731
        if shares > 1:  # one JSON-lines file, read by every worker (a share each)
            (topic, spec), = inputs.items()
            source: Any = ShardedFileSource(FileShares(topic, parse_uri(spec), shares),
                                            batch_size=opts.get("batch_size", 1000),
                                            progress=progress if processes <= 1 else None,
                                            stop=stop)
        else:
            source = EventSource(open_events, flush=True, batch_size=opts.get("batch_size", 1000),
                                 progress=progress if processes <= 1 else None, stop=stop,
                                 ingested=True, kafka_topics=kafka_topics)
        kw: dict = {}
        resuming = False
        if recovery_dir is not None:
            from bytewax.recovery import RecoveryConfig, init_db_dir
            os.makedirs(recovery_dir, exist_ok=True)
            resuming = bool(glob.glob(os.path.join(recovery_dir, "part-*.sqlite3")))
            if not resuming:
                init_db_dir(recovery_dir, opts.get("recovery_partitions", workers * processes))
            kw["recovery_config"] = RecoveryConfig(recovery_dir)
            kw["epoch_interval"] = timedelta(seconds=opts.get("snapshot_interval", 1.0))
        # file outputs go to partial files, renamed into place once the run has succeeded
        # (a resumed run cuts them back to the last snapshot and goes on writing them)
        paths = file_paths([parse_uri(spec) for spec in outputs.values()]
                           + ([parse_uri(dead_letter)] if dead_letter is not None else []))
        store: list = []

        layout = run.layout
        # JSON-lines files: their records are encoded by the stages that make them, in the
        # processes of their tasks, rather than all by the sink's writer (``messages.Lines``)
        layout.line_sinks = frozenset("sink:" + t for t, spec in outputs.items()
                                      if parse_uri(spec).get("type") == "jsonl")

        def attach(flow, outs) -> None:
            import bytewax.operators as op
            # each writer on the worker of the task releasing its records (Layout.worker_of)
            parts = layout.spread
            for topic, spec in outputs.items():
                dest = "sink:" + topic
                recs = op.filter_map(f"select_{step_id(topic)}", outs,
                                     lambda kv, dest=dest: (dest, kv[1][2])
                                     if kv[0] == dest and kv[1][0] in ("recs", "lines")
                                     else None)
                op.output(f"write_{step_id(topic)}", recs,
                          ConnectorSink(topic, spec, layout.worker_of.get(dest, 0), parts))
            written = {"sink:" + t for t in outputs}
            if dead_letter is not None:
                dls = op.filter_map("select_dead_letters", outs,
                                    lambda kv: ("dl", kv[1][2]) if kv[1][0] == "dl" else None)
                op.output("write_dead_letters", dls,
                          DeadLetterFileSink(dead_letter, layout.worker_of.get("errors", 0),
                                             parts))
                rest = op.filter("select_collected", outs,
                                 lambda kv: kv[1][0] not in ("recs", "lines", "dl") or
                                 (kv[1][0] == "recs" and kv[0] not in written))
            else:
                rest = op.filter("select_collected", outs,
                                 lambda kv: kv[1][0] not in ("recs", "lines") or
                                 kv[0] not in written)
            op.output("collect", rest, CollectSink(store))

        flow = FlowCompiler(self.name, run, source, attach).compile()
        ok = False
        try:
            items = self._execute(flow, store, run, opts, **kw)
            result, fatal = _gather(plan, items, collect_dead_letters=dead_letter is None)
            if fatal is not None:
                raise fatal.to_error()
            commit(paths, keep_missing=resuming)
            ok = True
        finally:
            # a failed run without recovery leaves no partial file; with recovery_dir the
            # partial files stay for the run that resumes it
            if not ok and recovery_dir is None:
                discard(paths)
        if progress is not None:
            progress(result.metrics)
        warn_drops(plan, result.metrics)
        return result


def _open_input(plan: Plan, topic: str, spec: Any, start: Any) -> Iterable[InputEvent]:
    """One input's events: a Kafka topic streamed from ``start`` ({partition: offset}; else the
    group's committed offsets), its key decoded only if the topic's sources use it; any other
    input from its beginning, the first ``start`` events skipped."""
    if is_kafka(spec):
        from streamdsl.connectors.kafka import read_kafka, uses_kafka_key
        return read_kafka(topic, spec, start=start,
                          key_used=uses_kafka_key(s for s in plan.sources() if s.topic == topic))
    events = open_source(topic, spec)
    return itertools.islice(events, start, None) if start else events


def _spread(opts: dict) -> int:
    return opts.get("workers", 1) * opts.get("processes", 1)


def _key_groups(opts: dict) -> int:
    return opts.get("key_groups") or opts.get("workers", 1) * opts.get("processes", 1)


def _parallel_file(inputs: dict[str, Any]) -> bool:
    """Whether the run's input is read in parallel (``io.ShardedFileSource``): one input, a
    JSON-lines file. Several inputs are merged in timestamp order, which needs every event's
    timestamp in one place (and a CSV file's lines depend on its header): one reader."""
    if len(inputs) != 1:
        return False
    (spec,) = inputs.values()
    if is_kafka(spec):
        return False
    spec = parse_uri(spec)
    return spec.get("type") == "jsonl" and os.path.isfile(spec.get("path", ""))


def _recovery_layout(recovery_dir: str, key_groups: int, explicit: bool,
                     shares: int = 1, spread: int = 1) -> tuple[int, int, int]:
    """The key groups, input shares and task spread (``Layout(workers=)``) a recovery
    directory was started with (state is kept per group, per share and per task key, so a
    resumed run must use the same numbers; workers may change)."""
    import json

    path = os.path.join(recovery_dir, _LAYOUT_FILE)
    if os.path.exists(path):
        with open(path) as f:
            layout = json.load(f)
        kept = int(layout["key_groups"])
        if explicit and kept != key_groups:
            raise ConnectorError(f"{recovery_dir} holds a run with key_groups={kept}; resume it "
                                 f"with the same key_groups (or start over in a new directory)")
        return kept, int(layout.get("input_shares", 1)), int(layout.get("spread", 1))
    os.makedirs(recovery_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"key_groups": key_groups, **({"input_shares": shares} if shares > 1 else {}),
                   **({"spread": spread} if spread > 1 else {})}, f)
    return key_groups, shares, spread


class _BoundedFlow:
    """``plan``'s dataflow compiled once for bounded runs over in-memory events."""

    def __init__(self, backend: BytewaxBackend, plan: Plan, on_error: str | None, key_groups: int,
                 spread: int = 1):
        self.backend = backend
        self.plan = plan
        self.run = RunState(Layout(plan, key_groups, workers=spread), on_error or plan.on_error,
                            recovery=False)
        self.events: list[InputEvent] = []
        self.source = EventSource(lambda: iter(self.events), stop=self._failed)
        self.sink = CollectSink([])

        def attach(flow, outs) -> None:
            import bytewax.operators as op
            op.output("collect", outs, self.sink)
        self.flow = FlowCompiler(backend.name, self.run, self.source, attach).compile()

    def _failed(self) -> bool:
        return self.run.fatal is not None

    def execute(self, events: list[InputEvent], flush: bool, opts: dict) -> RunResult:
        self.run.new_execution()
        self.events = events
        self.source.flush = flush
        self.source.batch_size = opts.get("batch_size", 1000)
        store = self.sink.store = []
        items = self.backend._execute(self.flow, store, self.run, opts)
        result, fatal = _gather(self.plan, items, collect_dead_letters=True)
        if fatal is not None:
            raise fatal.to_error()
        return result


class _Session(ReplaySession):
    """``ReplaySession`` over a dataflow compiled once for the session."""

    def __init__(self, backend: BytewaxBackend, plan: Plan, on_error: str | None, opts: dict):
        super().__init__(backend, plan, on_error=on_error, options=opts)
        self._bounded = _BoundedFlow(backend, plan, on_error, _key_groups(opts), _spread(opts))

    def _result(self, flush: bool) -> RunResult:
        key = (len(self.events), flush)
        if self._cache is None or self._cache[:2] != key:
            res = self._bounded.execute(list(self.events), flush, self.options)
            self._cache = (key[0], key[1], res)
        return self._cache[2]


def _gather(plan: Plan, items: list, *, collect_dead_letters: bool):
    """Outputs (in the defined order), dead letters, metrics and the first fatal error."""
    outputs: dict[str, list[tuple]] = {t: [] for t in plan.sink_topics()}
    dead: list[tuple] = []
    fatal: list[tuple] = []
    metrics = Metrics()
    for dest, (kind, pos, payload) in items:
        if kind == "recs":  # a batch of records
            outputs[dest[len("sink:"):]].append((pos, payload))
        elif kind == "dl":
            dead.append((pos, payload))
        elif kind == "fatal":
            fatal.append((pos, payload))
        elif kind == "metrics":
            metrics.merge(payload)
    result = RunResult(
        {t: [r for _, batch in sorted(batches, key=_first) for r in batch]
         for t, batches in outputs.items()},
        [d for _, d in sorted(dead, key=_first)] if collect_dead_letters else [],
        metrics)
    first = min(fatal, key=_first)[1] if fatal else None
    return result, first


def _first(pair: tuple) -> tuple:
    return pair[0]
