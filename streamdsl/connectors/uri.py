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

    A file path may end in ``?key=FIELD`` (each record's key is the value's ``FIELD``, as a
    Kafka record carries its key beside the value) or, for JSON lines, ``?envelope=true`` (each
    line is ``{"key": ..., "value": ..., "timestamp": ...}``):

    >>> parse_uri("data/in.jsonl?key=card")
    {'type': 'jsonl', 'path': 'data/in.jsonl', 'key': 'card'}
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
    path, _, query = uri.partition("?")
    ext = os.path.splitext(path)[1].lower()
    fmt = _EXT.get(ext)
    if fmt is None:
        raise ConnectorError(f"cannot tell the format of {uri!r} from its extension; use .jsonl or .csv")
    return {"type": fmt, "path": path, **_file_options(uri, fmt, query)}


def _file_options(uri: str, fmt: str, query: str) -> dict:
    """The ``?key=FIELD`` / ``?envelope=true`` options of a file URI, checked."""
    known = ("key", "envelope") if fmt == "jsonl" else ("key",)
    out: dict = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in known:
            raise ConnectorError(f"unknown option {name!r} in {uri!r}; a {fmt} file takes "
                                 + " and ".join(f"?{k}=..." for k in known))
        if name == "envelope":
            if value.lower() not in ("true", "false"):
                raise ConnectorError(f"envelope takes true or false, got {value!r} in {uri!r}")
            out[name] = value.lower() == "true"
        elif not value:
            raise ConnectorError(f"key takes a field name, e.g. {uri.partition('?')[0]}?key=id")
        else:
            out[name] = value
    if out.get("envelope") and "key" in out:
        raise ConnectorError(f"{uri!r}: an envelope line carries its own key; drop ?key=")
    return out
