"""The backend protocol and the registry (entry-point group ``streamdsl.backends``).

A backend sees only the IR. It declares which node kinds it runs (``capabilities``); compiling
a plan with any other kind raises ``UnsupportedNodeError`` naming the node, before anything runs.
Backends are found by short name and imported lazily; a missing dependency names the pip extra.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from .errors import BackendNotFoundError, UnsupportedNodeError
from .ir.nodes import Fused, Node
from .ir.plan import Plan
from .runtime.metrics import Metrics
from .runtime.records import DeadLetter, InputEvent, OutputRecord

__all__ = ["Backend", "Session", "RunResult", "ReplaySession", "get_backend", "available_backends",
           "check_capabilities", "resolve_io", "ENTRY_POINT_GROUP", "EXTRAS"]

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


class Backend:
    """Base class of backends.

    Subclasses set ``name`` and ``capabilities`` and implement ``execute`` (a bounded run over
    an ordered list of input events) and ``run`` (a run over connectors). ``session`` has a
    generic implementation that replays the input so far (engines whose runs are batch jobs);
    a backend that can run incrementally overrides it.
    """

    name: str = "?"
    capabilities: frozenset[str] = frozenset()
    options_help: dict[str, str] = {}

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



