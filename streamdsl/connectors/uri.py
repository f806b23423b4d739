"""Connector specs: command-line URIs (``data/in.jsonl``, ``kafka://HOST:PORT/topic``, ``-``)
turned into spec dicts."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlparse

from ..errors import ConnectorError

__all__ = ["parse_uri"]

_EXT = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def parse_uri(uri: str | dict) -> dict:
    """Turn a command-line URI (or an existing spec) into a connector spec.

    >>> parse_uri("data/in.jsonl")
    {'type': 'jsonl', 'path': 'data/in.jsonl'}
    >>> parse_uri("kafka://127.0.0.1:9092/payments?group=g1")["topic"]
    'payments'
    """
    if isinstance(uri, dict):
        if "type" not in uri:
            raise ConnectorError(f"connector spec needs a 'type': {uri!r}")
        return dict(uri)
    if not isinstance(uri, str) or not uri:
        raise ConnectorError(f"not a connector URI: {uri!r}")
    if uri == "-":
        return {"type": "stdio"}
    if uri.startswith("kafka://"):
        u = urlparse(uri)
        opts = dict(parse_qsl(u.query))
        topic = u.path.lstrip("/")
        if not topic:
            raise ConnectorError(f"kafka URI needs a topic: {uri}")
        return {"type": "kafka", "bootstrap_servers": u.netloc, "topic": topic, **opts}
    if uri.startswith("memory:"):
        return {"type": "memory", "name": uri[len("memory:"):]}
    ext = os.path.splitext(uri)[1].lower()
    fmt = _EXT.get(ext)
    if fmt is None:
        raise ConnectorError(f"cannot tell the format of {uri!r} from its extension; use .jsonl or .csv")
    return {"type": fmt, "path": uri}
