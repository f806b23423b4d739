"""One error hierarchy for the whole library.

Every message says what failed, where (node name and the user's file:line when known) and
how to fix it.
"""

from __future__ import annotations

__all__ = [
    "StreamDSLError",
    "TopologyError",
    "ValidationError",
    "UnsupportedNodeError",
    "BackendNotFoundError",
    "RecordError",
    "ConnectorError",
    "OutputClosed",
    "OptionError",
    "StopRun",
    "SQLError",
]


class StreamDSLError(Exception):
    """Base class of every error raised by streamdsl."""


class TopologyError(StreamDSLError):
    """A topology is built wrongly (raised by the DSL at the offending call).

    Args:
        message: what is wrong and how to fix it.
        site: the user's ``file:line`` of the offending DSL call, if known.
        node: the operator name, if known.
    """

    def __init__(self, message: str, *, site: str | None = None, node: str | None = None):
        self.reason = message
        self.site = site
        self.node = node
        where = []
        if site:
            where.append(site)
        if node:
            where.append(f"at node {node!r}")
        prefix = (" ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class ValidationError(TopologyError):
    """A whole-plan check failed (cycle, unknown upstream, bad join, ...)."""


class UnsupportedNodeError(TopologyError):
    """A backend cannot run one node kind; raised at compile time, never at run time."""

    def __init__(self, backend: str, node_kind: str, *, node: str | None = None,
                 site: str | None = None, hint: str = ""):
        self.backend = backend
        self.node_kind = node_kind
        msg = f"{node_kind} is not implemented on backend {backend!r}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg, site=site, node=node)


class BackendNotFoundError(StreamDSLError):
    """No backend of that name is installed (the message names the pip extra)."""


class RecordError(StreamDSLError):
    """A record could not be processed and the run was configured with ``on_error="fail"``.

    Attributes:
        operator: name of the node that failed.
        source: source name of the record, ``position`` its position there (line, offset).
    """

    def __init__(self, message: str, *, operator: str | None = None, source: str | None = None,
                 position: object = None, key: object = None, value: object = None):
        self.operator = operator
        self.source = source
        self.position = position
        self.key = key
        self.value = value
        where = []
        if operator:
            where.append(f"operator {operator!r}")
        if source is not None:
            where.append(f"record {source}@{position}" if position is not None else f"source {source}")
        prefix = ("in " + ", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class ConnectorError(StreamDSLError):
    """A connector cannot be opened or is misconfigured."""


class OutputClosed(ConnectorError):
    """An output's reader went away (stdout closed: ``streamdsl run ... | head -1``): the run
    stops, and ``streamdsl run`` ends quietly."""


class StopRun(Exception):
    """Raised by a sink's writer to end a run early and successfully (a push query that has
    printed its LIMIT rows): the backend stops reading, keeps what was written (file outputs
    are renamed into place) and lets it propagate to the caller."""


class OptionError(StreamDSLError, TypeError):
    """A backend option that the backend does not declare, of the wrong type, or that does not
    apply to the run's inputs."""


class SQLError(StreamDSLError):
    """A SQL text cannot be parsed or compiled; the message points at line:column
    (``path:line:column`` when the text came from a file)."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 excerpt: str = "", path: str | None = None):
        self.reason = message
        self.line = line
        self.column = column
        self.excerpt = excerpt
        self.path = path
        if line is None:
            loc = f"{path}: " if path else ""
        elif path:
            loc = f"{path}:{line}:{column}: "
        else:
            loc = f"line {line}:{column}: "
        full = loc + message
        if excerpt:
            full += "\n" + excerpt
        super().__init__(full)
