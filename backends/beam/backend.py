"""``BeamBackend``: compile a plan into an Apache Beam pipeline and run it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import weakref
from operator import itemgetter
from typing import Any, Callable, Iterator

from streamdsl.backend import (Backend, BackendOption, ReplaySession, RunResult, check_paths,
                               prepared_plan, resolve_io)
from streamdsl.backend import check_options as check_declared
from streamdsl.connectors import (close_all, open_dead_letter_sink, open_sink, open_source,
                                  parse_uri)
from streamdsl.connectors.files import commit, discard, file_paths
from streamdsl.errors import ConnectorError, StreamDSLError
from streamdsl.ir.nodes import NODE_KINDS
from streamdsl.ir.plan import Plan
from streamdsl.runtime.collector import collector_for_a_run
from streamdsl.runtime.drops import warn_drops
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import InputEvent

from .ordering import input_key
from .runstate import RunState, register, release

__all__ = ["BeamBackend", "BeamJob", "DIRECT_RUNNERS"]

#: Runner names run by Beam's FnApiRunner, the engine of Beam's Python DirectRunner.
DIRECT_RUNNERS = ("DirectRunner", "FnApiRunner", "direct")
#: Connector types read or written inside the pipeline (by workers).
FILE_TYPES = ("jsonl", "csv")


class BeamJob:
    """A compiled pipeline, ready to run once.

    Attributes:
        pipeline: the ``beam.Pipeline`` (its top-level transforms are labelled with the plan's
            node names).
    """

    def __init__(self, backend: "BeamBackend", plan: Plan, pipeline: Any, run: RunState, *,
                 on_error: str, collected_sinks: list[str], in_process: bool):
        self.backend = backend
        self.plan = plan
        self.pipeline = pipeline
        self.state = run
        self.on_error = on_error
        self.collected_sinks = collected_sinks
        self.in_process = in_process
        self.written: dict[str, Any] = {}
        self.collected: dict[str, Any] = {}
        #: Beam's ``PipelineResult`` once the job has run (its metrics, its state).
        self.result: Any = None
        self._done = False
        # A job dropped without running still frees its shared state.
        self._release = weakref.finalize(self, release, run)

    def labels(self) -> list[str]:
        """Labels of the pipeline's top-level transforms, in the order they were applied."""
        return [t.full_label for t in self.pipeline.transforms_stack[0].parts]

    def discard(self) -> None:
        """Forget a job that will not run (frees what its DoFns would have shared)."""
        self._done = True
        self._release()

    def run(self) -> RunResult:
        """Run the pipeline to completion and gather outputs, dead letters and metrics.

        Raises:
            RecordError: a record failed with ``on_error="fail"`` (the first failure in the
                defined input order, as the local backend reports it).
        """
        if self._done:
            raise StreamDSLError("a compiled Beam pipeline runs once; compile the plan again")
        self._done = True
        from .dofns import DEAD, DEAD_LETTERS, FATAL, sink_channel
        from .metrics import read_metrics
        try:
            with _worker_path(not self.in_process), \
                    (collector_for_a_run() if self.in_process else contextlib.nullcontext()):
                result = self.result = self.pipeline.run()
                result.wait_until_finish()
            gathered = self.state.gather()
        finally:
            self._release()
        dls = _in_order(gathered.get(DEAD_LETTERS, []))
        for _lkey, kind, err in dls:
            if kind == FATAL:
                raise err
        outputs: dict[str, list] = {t: [] for t in self.plan.sink_topics()}
        for topic in self.collected_sinks:
            outputs[topic] = [rec for _lkey, rec in _in_order(gathered.get(sink_channel(topic), []))]
        dead = [dl for _lkey, kind, dl in dls if kind == DEAD]
        return RunResult(outputs, dead, read_metrics(result))


def _in_order(items: list) -> list:
    """Items sorted by lineage key, one per key (a retried bundle may deliver twice)."""
    items.sort(key=itemgetter(0))
    return [x for i, x in enumerate(items) if i == 0 or x[0] != items[i - 1][0]]


class BeamBackend(Backend):
    """Runs plans as Apache Beam pipelines (DirectRunner here; Flink, Spark, Dataflow by options).

    Every node kind is supported, with the local backend's results: Beam keeps no order, so
    each element carries its lineage key (``streamdsl.backends.beam.ordering``) and each
    stateful node runs the shared processors over its task's records sorted by it.

    Args:
        **default_options: pipeline options applied to every run (``runner=``,
            ``pipeline_args=[...]``, or any Beam option as a keyword, e.g.
            ``direct_running_mode="multi_processing", direct_num_workers=2``).

    >>> import streamdsl as sd
    >>> from streamdsl.backend import get_backend
    >>> topo = sd.Topology("t")
    >>> topo.stream("in").filter(sd.col("n") > 1).to("out")
    >>> res = get_backend("beam").run(topo.plan(), {"in": {"type": "memory", "records": [
    ...     ("a", {"n": 2}, 1), ("b", {"n": 0}, 2)]}}, {})
    >>> [(r.key, r.value) for r in res.outputs["out"]]
    [('a', {'n': 2})]
    """

    name = "beam"
    capabilities = frozenset(NODE_KINDS)
    options = (
        BackendOption("partitions", "partitions of file and in-memory inputs (default: the "
                      "topology's); each stateful operator that is not per key groups its "
                      "records by partition", "int", minimum=1),
        BackendOption("runner", "Beam runner: DirectRunner (default; Beam's FnApiRunner), "
                      "FlinkRunner, SparkRunner, DataflowRunner, PrismRunner...", "str"),
        BackendOption("pipeline_args", "Beam pipeline options as command-line flags, e.g. "
                      "['--direct_running_mode=multi_processing', '--direct_num_workers=2'] or "
                      "['--runner=FlinkRunner', '--flink_master=host:8081']", "json",
                      engine_args=True),
        BackendOption("direct_running_mode", "DirectRunner: in_memory (default), "
                      "multi_threading or multi_processing",
                      ("in_memory", "multi_threading", "multi_processing")),
        BackendOption("direct_num_workers", "DirectRunner: number of workers (threads or "
                      "processes)", "int", minimum=1),
    )
    options_help = {o.name: o.help for o in options}
    open_options = True  # any Beam pipeline option by keyword (check_options checks them)

    def __init__(self, **default_options: Any):
        self.default_options = default_options

    @property
    def version(self) -> str:
        import apache_beam
        return apache_beam.__version__

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.default_options.items())
        return f"BeamBackend({opts})"

    # ---- compiling ---------------------------------------------------------------------------
    def compile(self, plan: Plan, events: list[InputEvent] | None = None, *, flush: bool = True,
                on_error: str | None = None, **options: Any) -> BeamJob:
        """Build the pipeline of ``plan`` over ``events`` (the input, in the defined order).

        Raises:
            UnsupportedNodeError: a node kind this backend does not run (before anything runs).
        """
        self.check(plan)
        plan, options = self._partitioned(plan, options)
        inputs: dict[str, list] = {t: [] for t in plan.source_topics()}
        for p, ev in enumerate(events or ()):
            if ev.topic not in inputs:
                raise KeyError(f"unknown source {ev.topic!r}; sources: {', '.join(inputs)}")
            inputs[ev.topic].append((input_key(p), ev))
        return self._build(plan, inputs, {}, {}, flush=flush, on_error=on_error, options=options)

    def _build(self, plan: Plan, events: dict[str, list], files: dict[str, dict],
               sinks: dict[str, Any], *, flush: bool, on_error: str | None,
               options: dict, raw: dict[str, list] | None = None) -> BeamJob:
        """``events``: per topic, ``(lineage key, event)`` pairs in the defined input order;
        ``raw``: per topic, one source's events in its own order (keyed by the source DoFn);
        ``files``: per topic, a file connector spec read by the source DoFn."""
        import apache_beam as beam

        from .compiler import PipelineBuilder
        from apache_beam.options.pipeline_options import GoogleCloudOptions
        runner, pipeline_options, in_process = self._runner(options)
        run = register(in_process, pipeline_options.view_as(GoogleCloudOptions).temp_location)
        try:
            readers: dict[str, tuple] = {}
            for topic, evs in events.items():
                if in_process:
                    run.events[topic] = evs
                    readers[topic] = ("events", None)
                else:
                    readers[topic] = ("events", evs)
            topics = plan.source_topics()
            readable = [("file", topic, spec) for topic, spec in files.items()]
            for topic, evs in (raw or {}).items():
                if in_process:
                    run.events[topic] = evs
                readable.append(("memory", topic, None if in_process else evs))
            for kind, topic, what in readable:
                first = next(s for s in plan.sources() if s.topic == topic)
                shares = (_shares(what, pipeline_options, runner)
                          if kind == "file" and not in_process and len(topics) == 1 else None)
                if shares is not None:  # read in parallel by the workers (``shares``)
                    readers[topic] = ("shares", what, topics.index(topic), shares)
                else:
                    readers[topic] = (kind, what, topics.index(topic),
                                      first if len(topics) > 1 else None)
            builder = PipelineBuilder(self.name, plan, run, readers=readers, sinks=sinks,
                                      flush=flush, on_error=on_error or plan.on_error)
            pipeline = beam.Pipeline(runner=runner, options=pipeline_options)
            builder.build(pipeline)
            if not in_process:
                _pickle_by_value(plan)
        except BaseException:
            release(run)
            raise
        return BeamJob(self, plan, pipeline, run, on_error=on_error or plan.on_error,
                       collected_sinks=[t for t in plan.sink_topics() if sinks.get(t) is None],
                       in_process=in_process)

    def _partitioned(self, plan: Plan, options: dict) -> tuple[Plan, dict]:
        """``plan`` with the run's ``partitions`` (an option, or this instance's default), and
        the other options (Beam's own)."""
        options = dict(options)
        partitions = options.pop("partitions", self.default_options.get("partitions"))
        return plan.with_partitions(partitions), options

    def _runner(self, options: dict) -> tuple[Any, Any, bool]:
        from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions,
                                                          StandardOptions, TypeOptions)
        opts = {**self.default_options, **options}
        opts.pop("partitions", None)
        runner = opts.pop("runner", None)
        args = list(opts.pop("pipeline_args", None) or [])
        po = PipelineOptions(args, **opts)
        name = runner or po.view_as(StandardOptions).runner or "DirectRunner"
        # Our transforms carry no type hints; checking them only costs construction time.
        po.view_as(TypeOptions).pipeline_type_check = False
        if isinstance(name, str) and name in DIRECT_RUNNERS:
            # DirectRunner would try Prism first (downloading a binary); FnApiRunner is what it
            # falls back to, and the engine whose running modes we test.
            from apache_beam.runners.portability.fn_api_runner import FnApiRunner
            mode = po.view_as(DirectOptions).direct_running_mode or "in_memory"
            return FnApiRunner(), po, mode != "multi_processing"
        po.view_as(StandardOptions).runner = name
        return name, po, False

    def check_options(self, options: dict) -> None:
        """Fail early on options Beam does not know (a ``TypeError`` naming them)."""
        from apache_beam.options.pipeline_options import PipelineOptions
        opts = check_declared(self, {**self.default_options, **options})
        opts.pop("runner", None)
        opts.pop("partitions", None)
        args = opts.pop("pipeline_args", None) or []
        if not isinstance(args, (list, tuple)):
            raise TypeError("pipeline_args must be a list of command-line flags")
        known = set(PipelineOptions(list(args)).get_all_options(retain_unknown_options=True))
        unknown = sorted(k for k in opts if k not in known)
        if unknown:
            raise TypeError(f"unknown Beam pipeline option(s) {', '.join(unknown)}; give Beam "
                            "option names (direct_num_workers=2, temp_location=...) or command-"
                            "line flags in pipeline_args=[...] (reference: apache_beam.options."
                            "pipeline_options)")

    # ---- running -----------------------------------------------------------------------------
    def session(self, plan: Plan, *, on_error: str | None = None, **options: Any) -> ReplaySession:
        self.check(plan)
        self.check_options(options)
        return ReplaySession(self, plan, on_error=on_error, options=options)

    def execute(self, plan: Plan, events: list[InputEvent], *, flush: bool = True,
                on_error: str | None = None, **options: Any) -> RunResult:
        """Run ``plan`` over ``events`` (in the defined input order): what ``TestDriver`` uses.

        With ``flush=False`` no window is closed: the result is what was emitted before the
        end of the input.
        """
        return self.compile(plan, events, flush=flush, on_error=on_error, **options).run()

    def compile_run(self, plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
                    on_error: str | None = None, runner: str | None = None,
                    pipeline_args: list[str] | None = None, **options: Any) -> BeamJob:
        """Build the pipeline ``run`` runs (same arguments), without running it.

        JSON-lines and CSV inputs are read by the pipeline's workers, line by line (the paths
        must be visible to them); other inputs (memory, stdin) are read here. JSON-lines and
        CSV outputs are written by the pipeline; others (stdout, memory, none) are collected.
        """
        self.check(plan)
        plan, options = self._partitioned(plan, options)
        inputs, outputs = resolve_io(plan, inputs, outputs)
        topics = plan.source_topics()
        missing = [t for t in topics if t not in inputs]
        if missing:
            raise ConnectorError(f"no input given for source(s) {', '.join(missing)}")
        unknown = sorted(set(inputs) - set(topics))
        if unknown:
            raise ConnectorError(f"unknown source(s) {', '.join(unknown)}; sources: "
                                 f"{', '.join(topics)}")
        files: dict[str, dict] = {}
        events: dict[str, list] = {}
        for topic in topics:
            spec = parse_uri(inputs[topic])
            if spec["type"] in FILE_TYPES:
                files[topic] = spec
            else:
                # memory, stdin and Kafka are read here, in the launching process: for Kafka a
                # bounded snapshot, from the group's committed offsets to the end of each
                # partition (no commits), in the connector's partition-merge order. Streaming
                # from Kafka needs Beam's KafkaIO (Java expansion service): see docs/kafka.md.
                # The source's DoFn places them in the merge order (``merge_keys``).
                events[topic] = list(open_source(topic, spec))
        written: dict[str, Any] = {}
        collected: dict[str, Any] = {}
        for topic, spec in outputs.items():
            spec = parse_uri(spec)
            if spec["type"] in FILE_TYPES:
                written[topic] = spec
            else:  # stdout, memory, Kafka: written here, in order, after the pipeline ran
                collected[topic] = spec
        options = dict(options)
        if runner is not None:
            options["runner"] = runner
        if pipeline_args:
            options["pipeline_args"] = list(pipeline_args)
        self.check_options(options)
        job = self._build(plan, {}, files, written, flush=True, on_error=on_error,
                          options=options, raw=events)
        job.written = written
        job.collected = collected
        return job

    def run(self, plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
            on_error: str | None = None, dead_letter: Any = None,
            progress: Callable[[Metrics], None] | None = None, runner: str | None = None,
            pipeline_args: list[str] | None = None, optimize: bool = True,
            **options: Any) -> RunResult:
        """Read ``inputs`` ({source: connector spec or URI}), write ``outputs`` ({sink: spec});
        connectors declared in the topology apply where none is given.

        Files are read and written by the pipeline (see ``compile_run``); other outputs and
        the dead letters (``dead_letter``: a .jsonl path or ``-``) are written here, in order,
        when the pipeline has finished. Sinks without a spec are collected in the result.
        ``progress`` is called once, with the final metrics, at the end. The plan runs after
        the optimizer's passes (``optimize=False``: as it is).
        """
        plan = prepared_plan(plan, optimize)
        job = self.compile_run(plan, inputs, outputs, on_error=on_error, runner=runner,
                               pipeline_args=pipeline_args, **options)
        try:
            check_paths(*resolve_io(plan, inputs, outputs), dead_letter)
        except BaseException:
            job.discard()
            raise
        # file outputs are written (by the pipeline, and here) to partial files, renamed into
        # place once the run has succeeded: a failed run leaves the previous files as they were
        paths = file_paths(list(job.written.values()) + [parse_uri(s) for s in job.collected.values()]
                           + ([parse_uri(dead_letter)] if dead_letter is not None else []))
        ok = False
        try:
            result = job.run()
            handles = []
            try:
                for topic, spec in job.collected.items():
                    sink = open_sink(topic, spec)
                    handles.append(sink)
                    for rec in result.outputs[topic]:
                        sink.write(rec)
                    result.outputs[topic] = []
                if dead_letter is not None:  # dead letters are few: written here, in order
                    dl = open_dead_letter_sink(dead_letter)
                    handles.append(dl)
                    for d in result.dead_letters:
                        dl.write(d)
                    result.dead_letters = []
            except BaseException:
                close_all(handles, ok=False)
                raise
            close_all(handles, ok=True)
            commit(paths)
            ok = True
        finally:
            if not ok:
                job.discard()
                discard(paths)
        if progress is not None:
            progress(result.metrics)
        warn_drops(plan, result.metrics)
        return result


#: Shares per worker of a file read in parallel (DirectRunner: ``direct_num_workers``).
SHARES_PER_WORKER = 2
#: Workers assumed on a runner whose number of workers is not an option read here.
REMOTE_WORKERS = 8


def _shares(spec: dict, options: Any, runner: Any) -> list | None:
    """The shares of a JSON-lines input read in parallel by the workers (``shares``), or None
    to read it in one piece (another format; a file the launching process cannot read: the
    worker reading it reports why)."""
    if spec.get("type") != "jsonl" or not spec.get("path"):
        return None
    from apache_beam.options.pipeline_options import DirectOptions

    from .shares import line_shares
    direct = not isinstance(runner, str)  # the FnApiRunner instance ``_runner`` made
    workers = (options.view_as(DirectOptions).direct_num_workers or 1) if direct \
        else REMOTE_WORKERS
    try:
        return [tuple(s) for s in line_shares(spec["path"], SHARES_PER_WORKER * workers)]
    except OSError:
        return None


@contextlib.contextmanager
def _worker_path(enabled: bool) -> Iterator[None]:
    """Let worker processes import what this process imports (user modules, tests)."""
    if not enabled:
        yield
        return
    old = os.environ.get("PYTHONPATH")
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _pickle_by_value(plan: Plan) -> None:
    """Ship the plan's user functions by value to workers when their module is the user's own
    (a topology file, a test module): workers may not be able to import it by name."""
    from apache_beam.internal.cloudpickle import cloudpickle
    for name in sorted(_modules(plan)):
        mod = sys.modules.get(name)
        if mod is None or name == "__main__" or name.split(".")[0] in _INSTALLED:
            continue
        path = getattr(mod, "__file__", None) or ""
        if "site-packages" in path or path.startswith(sys.base_prefix):
            continue
        cloudpickle.register_pickle_by_value(mod)


_INSTALLED = frozenset({"streamdsl", "apache_beam", "builtins", "operator", "functools"})


def _modules(obj: Any, seen: set[int] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return set()
    seen.add(id(obj))
    if isinstance(obj, Plan):
        out: set[str] = set()
        for node in obj.nodes():
            out |= _modules(node, seen)
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = set()
        for f in dataclasses.fields(obj):
            out |= _modules(getattr(obj, f.name), seen)
        return out
    if isinstance(obj, (tuple, list)):
        out = set()
        for x in obj:
            out |= _modules(x, seen)
        return out
    if callable(obj):
        mod = getattr(obj, "__module__", None)
        return {mod} if isinstance(mod, str) else set()
    return set()
