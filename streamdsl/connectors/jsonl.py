"""JSON lines: one JSON value per line (orjson)."""

from __future__ import annotations

import sys
from typing import IO, Any, Iterator

import orjson

from ..runtime.records import DeadLetter, InputEvent, OutputRecord

__all__ = ["read_jsonl", "read_jsonl_stream", "JsonlSink", "StdoutSink", "DeadLetterJsonlSink",
           "dumps_output"]


def read_jsonl(topic: str, path: str, *, envelope: bool = False,
               key_field: str | None = None) -> Iterator[InputEvent]:
    """Events of a JSON-lines file; ``position`` is the 1-based line number.

    A line that is not valid JSON becomes an event with ``error`` set (dead-lettered or
    failing the run, as the topology chose); blank lines are skipped.
    With ``envelope=True`` each line is ``{"key": ..., "value": ..., "timestamp": ...}``;
    with ``key_field`` each event's key is that field of the value (None when it is missing).
    """
    with open(path, "rb") as f:
        yield from read_jsonl_stream(topic, f, path, envelope=envelope, key_field=key_field)


def read_jsonl_stream(topic: str, stream: IO, name: str, *, envelope: bool = False,
                      key_field: str | None = None) -> Iterator[InputEvent]:
    for lineno, line in enumerate(stream, 1):
        if isinstance(line, str):
            line = line.encode()
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            yield InputEvent(topic, None, text, None, f"{name}:{lineno}", f"invalid JSON: {e}")
            continue
        if envelope:
            if not isinstance(value, dict) or "value" not in value:
                yield InputEvent(topic, None, value, None, f"{name}:{lineno}",
                                 "envelope line needs 'key', 'value', 'timestamp' fields")
                continue
            yield InputEvent(topic, value.get("key"), value.get("value"), value.get("timestamp"),
                             f"{name}:{lineno}")
        else:
            key = value.get(key_field) if key_field is not None and isinstance(value, dict) else None
            yield InputEvent(topic, key, value, None, f"{name}:{lineno}")


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    return repr(o)


_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps_output(rec: OutputRecord) -> bytes:
    return orjson.dumps(rec.to_json_dict(), default=_default, option=_OPTS)


class JsonlSink:
    """Writes ``{"key", "value", "timestamp"[, "window": {"start", "end"}]}`` per line."""

    def __init__(self, path: str):
        self.path = path
        self._f = open(path, "wb")

    def write(self, rec: OutputRecord) -> None:
        self._f.write(dumps_output(rec) + b"\n")

    def close(self) -> None:
        self._f.close()


class StdoutSink:
    def __init__(self, topic: str):
        self.topic = topic

    def write(self, rec: OutputRecord) -> None:
        sys.stdout.buffer.write(dumps_output(rec) + b"\n")

    def close(self) -> None:
        sys.stdout.flush()


class DeadLetterJsonlSink:
    def __init__(self, path: str | None):
        self._f = open(path, "wb") if path else None

    def write(self, dl: DeadLetter) -> None:
        line = orjson.dumps(dl.to_json_dict(), default=_default, option=_OPTS) + b"\n"
        if self._f is None:
            sys.stderr.buffer.write(line)
        else:
            self._f.write(line)

    __call__ = write

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
