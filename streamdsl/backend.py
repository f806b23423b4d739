"""The backend protocol and the registry (entry-point group ``streamdsl.backends``).

A backend sees only the IR. It declares which node kinds it runs (``capabilities``); compiling
a plan with any other kind raises ``UnsupportedNodeError`` naming the node, before anything runs.
Backends are found by short name and imported lazily; a missing dependency names the pip extra.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from .errors import BackendNotFoundError, ConnectorError, OptionError, UnsupportedNodeError
from .ir.nodes import Fused, Node
from .ir.plan import Plan
from .runtime.metrics import Metrics
from .runtime.records import DeadLetter, InputEvent, OutputRecord

__all__ = ["Backend", "Session", "RunResult", "ReplaySession", "get_backend", "available_backends",
           "check_capabilities", "resolve_io", "ENTRY_POINT_GROUP", "EXTRAS", "BackendOption",
           "declared_options", "check_options", "kafka_inputs", "prepared_plan", "check_paths"]

ENTRY_POINT_GROUP = "streamdsl.backends"
# Backends we ship, with the extra that installs their engine.
EXTRAS = {"local": None, "bytewax": "bytewax", "beam": "beam"}


@dataclass
class RunResult:
    """What a finished run produced."""

    outputs: dict[str, list[OutputRecord]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)


@runtime_checkable
class Session(Protocol):
    """An open run fed record by record (what ``TestDriver`` drives)."""

    def send(self, event: InputEvent) -> None: ...
    def output(self, topic: str, flush: bool) -> list[OutputRecord]: ...
    def dead_letters(self) -> list[DeadLetter]: ...
    def metrics(self) -> Metrics: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendOption:
    """An option a backend's ``run`` takes (``Backend.options``): ``streamdsl run`` makes a
    command-line option of each (``--until-idle 2``), with its type, help and environment
    variable (``STREAMDSL_UNTIL_IDLE``).

    Attributes:
        name: the keyword argument (``until_idle``).
        help: one line for ``--help`` and ``streamdsl backends``.
        type: ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"json"`` (a JSON value, or else
            the text), or a tuple of the values allowed.
        minimum: the least value of an ``int`` or ``float`` option.
        kafka_only: the option applies only to runs that read a Kafka topic; given for a
            run without one, it is refused (``check_options``).
        engine_args: the option receives the command-line arguments after ``--``.
    """

    name: str
    help: str
    type: Any = "json"
    minimum: float | None = None
    kafka_only: bool = False
    engine_args: bool = False

    def convert(self, value: Any) -> Any:
        """``value`` as this option's type (text from a command line or a file is read too).

        Raises:
            OptionError: it is not of the type, below ``minimum``, or not an allowed value.
        """
        t = self.type
        try:
            if isinstance(t, tuple):
                if value not in t:
                    raise ValueError(f"must be one of {', '.join(map(str, t))}")
                return value
            if t == "int":
                if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                    raise ValueError("must be an integer")
                value = int(value)
            elif t == "float":
                if isinstance(value, bool):
                    raise ValueError("must be a number")
                value = float(value)
            elif t == "str":
                value = str(value)
            elif t == "bool":
                if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                    value = value.lower() in ("true", "1")
                elif not isinstance(value, bool):
                    raise ValueError("must be true or false")
        except (TypeError, ValueError) as e:
            reason = str(e) if "must" in str(e) else f"must be {_TYPE_WORDS.get(t, t)}"
            raise OptionError(f"option {self.name} {reason}, got {value!r}") from None
        if self.minimum is not None and value < self.minimum:
            raise OptionError(f"option {self.name} must be >= {self.minimum:g}, got {value!r}")
        return value


_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "text", "bool": "true or false"}


def declared_options(backend: "Backend") -> dict[str, BackendOption]:
    """The options ``backend`` declares: its ``options``, or for a backend that only names
    them in ``options_help`` (``{name: help}``), options taking any JSON value."""
    opts = {o.name: o for o in getattr(backend, "options", ()) or ()}
    for name, text in (getattr(backend, "options_help", None) or {}).items():
        opts.setdefault(name, BackendOption(name, text))
    return opts


def kafka_inputs(inputs: dict[str, Any]) -> list[str]:
    """The sources among ``inputs`` ({source: spec}) that read a Kafka topic."""
    from .connectors.uri import parse_uri
    out = []
    for topic, spec in inputs.items():
        try:
            if parse_uri(spec)["type"] == "kafka":
                out.append(topic)
        except ConnectorError:
            pass
    return out


def check_options(backend: "Backend", options: dict[str, Any],
                  inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``options`` checked against what ``backend`` declares and converted to their types.

    Raises:
        OptionError: an option the backend does not declare (with the closest name it does),
            a value of the wrong type, or an option for Kafka runs (``until_idle``,
            ``max_records``, ...) when no input is a Kafka topic.
    """
    import difflib
    declared = declared_options(backend)
    out: dict[str, Any] = {}
    for name, value in options.items():
        opt = declared.get(name)
        if opt is None:
            if getattr(backend, "open_options", False):
                out[name] = value  # the engine checks the rest (Beam's pipeline options)
                continue
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listed = f" (its options: {', '.join(declared)})" if declared else " (it takes none)"
            raise OptionError(f"backend {backend.name!r} has no option {name!r}{hint}{listed}")
        out[name] = value if value is None else opt.convert(value)
    if inputs is not None:
        given = [n for n, v in out.items() if v is not None and n in declared
                 and declared[n].kafka_only]
        if given and not kafka_inputs(inputs):
            raise OptionError(f"option {given[0]} applies to runs that read a Kafka topic; "
                              f"this run reads none (inputs: {', '.join(inputs) or 'none'})")
    return out


def prepared_plan(plan: Plan, optimize: bool) -> Plan:
    """``plan`` after the default optimizer passes (what ``streamdsl run`` and ``TestDriver``
    run), or as it is with ``optimize=False``."""
    if not optimize:
        return plan
    import warnings

    from .optimize import OptimizerWarning
    from .optimize import optimize as run_passes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizerWarning)
        return run_passes(plan)


def check_paths(inputs: dict[str, Any], outputs: dict[str, Any], dead_letter: Any = None) -> None:
    """Fail before a run starts, in one line, on a file input that cannot be read or a file
    output (or dead-letter file) that cannot be written.

    Raises:
        ConnectorError: ``PATH: what is wrong`` (missing, a directory, no permission, ...).
    """
    import os

    from .connectors.files import check_writable
    from .connectors.uri import parse_uri
    for topic, spec in inputs.items():
        d = parse_uri(spec)
        path = d.get("path") if d["type"] in ("jsonl", "csv") else None
        if path is None:
            continue
        if os.path.isdir(path):
            raise ConnectorError(f"input {topic}: {path}: is a directory")
        if not os.path.exists(path):
            raise ConnectorError(f"input {topic}: {path}: no such file")
        if not os.access(path, os.R_OK):
            raise ConnectorError(f"input {topic}: {path}: permission denied")
    named = [(f"output {t}", s) for t, s in outputs.items()]
    if dead_letter is not None:
        named.append(("dead-letter output", dead_letter))
    for what, spec in named:
        d = parse_uri(spec)
        if d["type"] in ("jsonl", "csv") and d.get("path"):
            why = check_writable(d["path"])
            if why is not None:
                raise ConnectorError(f"{what}: {why}")


class Backend:
    """Base class of backends.

    Subclasses set ``name`` and ``capabilities`` and implement ``execute`` (a bounded run over
    an ordered list of input events) and ``run`` (a run over connectors). ``session`` has a
    generic implementation that replays the input so far (engines whose runs are batch jobs);
    a backend that can run incrementally overrides it.
    """

    name: str = "?"
    capabilities: frozenset[str] = frozenset()
    #: the options ``run`` takes (``streamdsl run`` makes command-line options of them)
    options: tuple[BackendOption, ...] = ()
    #: ``{name: help}`` of ``options`` (a third-party backend may set only this)
    options_help: dict[str, str] = {}
    #: ``run`` also takes options it does not declare, checked by its engine (Beam)
    open_options: bool = False

    @property
    def version(self) -> str:
        return "?"

    def check(self, plan: Plan) -> None:
        """Raise ``UnsupportedNodeError`` for the first node this backend cannot run."""
        check_capabilities(self.name, self.capabilities, plan)

    def compile(self, plan: Plan, **options: Any) -> Any:
        self.check(plan)
        return plan

    def explain(self, plan: Plan) -> list[str]:
        """Lines saying how this backend runs ``plan`` (``streamdsl explain`` prints them
        under "On the <name> backend"); none by default."""
        self.check(plan)
        return []

    def execute(self, plan: Plan, events: list[InputEvent], *, flush: bool = True,
                on_error: str | None = None, **options: Any) -> RunResult:
        raise NotImplementedError

    def run(self, plan: Plan, inputs: dict[str, Any], outputs: dict[str, Any], *,
            on_error: str | None = None, dead_letter: Any = None,
            progress: Callable[[Metrics], None] | None = None, **options: Any) -> RunResult:
        raise NotImplementedError

    def session(self, plan: Plan, *, on_error: str | None = None, **options: Any) -> Session:
        self.compile(plan, **options)
        return ReplaySession(self, plan, on_error=on_error, options=options)


def resolve_io(plan: Plan, inputs: dict[str, Any] | None,
               outputs: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs and outputs of a run: connectors declared in the topology
    (``stream(..., connector=...)``, ``to(..., connector=...)``), overridden by those given."""
    ins = {s.topic: s.connector for s in plan.sources() if s.connector}
    ins.update(inputs or {})
    outs = {s.topic: s.connector for s in plan.sinks() if s.connector}
    outs.update(outputs or {})
    # declared columns: how a CSV input reads its cells, a CSV output's header
    from .connectors.uri import parse_uri
    for s in plan.sources():
        if s.columns and s.topic in ins:
            spec = parse_uri(ins[s.topic])
            if spec["type"] == "csv" and "types" not in spec:
                ins[s.topic] = {**spec, "types": dict(s.columns)}
    for k in plan.sinks():
        if k.columns and k.topic in outs:
            spec = parse_uri(outs[k.topic])
            if spec["type"] == "csv" and "columns" not in spec:
                outs[k.topic] = {**spec, "columns": list(k.columns)}
    return ins, outs


def check_capabilities(backend: str, capabilities: frozenset[str], plan: Plan) -> None:
    for node in plan.topological():
        nodes: list[Node] = list(node.stages) if isinstance(node, Fused) else [node]
        for n in nodes:
            if n.kind not in capabilities:
                raise UnsupportedNodeError(backend, n.kind, node=n.name, site=n.site,
                                           hint="see `streamdsl backends` for what each backend runs")


class ReplaySession:
    """A session for batch engines: each ``output`` replays every event sent so far.

    Because results are deterministic, replaying the prefix without the final flush yields
    exactly what an incremental run would have emitted so far.
    """

    def __init__(self, backend: Backend, plan: Plan, *, on_error: str | None, options: dict):
        self.backend = backend
        self.plan = plan
        self.on_error = on_error
        self.options = options
        self.events: list[InputEvent] = []
        self._cache: tuple[int, bool, RunResult] | None = None

    def send(self, event: InputEvent) -> None:
        self.events.append(event)

    def _result(self, flush: bool) -> RunResult:
        key = (len(self.events), flush)
        if self._cache is None or self._cache[:2] != key:
            res = self.backend.execute(self.plan, list(self.events), flush=flush,
                                       on_error=self.on_error, **self.options)
            self._cache = (key[0], key[1], res)
        return self._cache[2]

    def output(self, topic: str, flush: bool) -> list[OutputRecord]:
        return list(self._result(flush).outputs.get(topic, []))

    def dead_letters(self) -> list[DeadLetter]:
        return list(self._result(self._cache[1] if self._cache else False).dead_letters)

    def metrics(self) -> Metrics:
        return self._result(self._cache[1] if self._cache else False).metrics

    def close(self) -> None:
        self._cache = None


def _entry_points() -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Names of the installed backends (entry points), ``local`` first."""
    names = sorted(_entry_points())
    return sorted(names, key=lambda n: (n != "local", n))


_CACHE: dict[str, Backend] = {}


def get_backend(name: str | Backend) -> Backend:
    """The backend called ``name``, imported on first use.

    Raises:
        BackendNotFoundError: unknown name, or its engine is not installed (names the extra).
    """
    if isinstance(name, Backend):
        return name
    if name in _CACHE:
        return _CACHE[name]
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        extra = EXTRAS.get(name)
        hint = f"; install it with: pip install 'streamdsl[{extra}]'" if extra else ""
        raise BackendNotFoundError(
            f"no backend named {name!r} is installed (installed: {', '.join(sorted(eps)) or 'none'})"
            + hint)
    try:
        cls = ep.load()
    except ImportError as e:
        extra = EXTRAS.get(name) or name
        raise BackendNotFoundError(
            f"backend {name!r} needs a package that is not installed ({e.name or e}); "
            f"install it with: pip install 'streamdsl[{extra}]'") from e
    backend = cls() if isinstance(cls, type) else cls
    _CACHE[name] = backend
    return backend



