"""JSON lines: one JSON value per line (orjson)."""

from __future__ import annotations

import sys
from typing import IO, Any, Iterable, Iterator

import orjson

from ..errors import ConnectorError, OutputClosed
from ..runtime.records import DeadLetter, InputEvent, OutputRecord
from .files import open_partial, os_error_line

__all__ = ["read_jsonl", "read_jsonl_stream", "read_jsonl_lines", "JsonlSink", "StdoutSink", "DeadLetterJsonlSink",
           "dumps_output"]


def read_jsonl(topic: str, path: str, *, envelope: bool = False,
               key_field: str | None = None) -> Iterator[InputEvent]:
    """Events of a JSON-lines file; ``position`` is the 1-based line number.

    A line that is not valid JSON becomes an event with ``error`` set (dead-lettered or
    failing the run, as the topology chose); blank lines are skipped.
    With ``envelope=True`` each line is ``{"key": ..., "value": ..., "timestamp": ...}``;
    with ``key_field`` each event's key is that field of the value (None when it is missing).
    """
    from .progress import tracked
    with open(path, "rb") as f:
        tracked(f, path)
        yield from read_jsonl_stream(topic, f, path, envelope=envelope, key_field=key_field)


def read_jsonl_stream(topic: str, stream: IO, name: str, *, envelope: bool = False,
                      key_field: str | None = None) -> Iterator[InputEvent]:
    return read_jsonl_lines(topic, enumerate(stream, 1), name, envelope=envelope,
                            key_field=key_field)


def read_jsonl_lines(topic: str, lines: Iterable[tuple[int, bytes | str]], name: str, *,
                     envelope: bool = False, key_field: str | None = None
                     ) -> Iterator[InputEvent]:
    """``read_jsonl_stream`` over ``(line number, line)`` pairs (a share of a file read in
    parallel, e.g. by the bytewax backend: its events are those of the whole file's lines)."""
    for lineno, line in lines:
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


def encode_record(r: Any) -> bytes:
    """The line ``JsonlSink.write`` writes for one in-flight ``Record`` (its
    ``OutputRecord``'s)."""
    return dumps_output(tuple.__new__(OutputRecord, (r.key, r.value, r.ts, r.window))) + b"\n"


def encode_records(recs: Any) -> bytes:
    """The lines ``JsonlSink.write`` writes for the in-flight ``Record`` s ``recs`` (their
    ``OutputRecord`` s'), in order: what a backend that encodes records where they are made
    hands ``JsonlSink.write_lines``."""
    return b"".join(map(encode_record, recs))


def _open(path: str, resume: dict | None, staged: bool):
    if resume is not None:
        return open_partial(path, resume["offset"])
    if staged:
        return open_partial(path)
    try:
        return open(path, "wb")
    except OSError as e:
        raise ConnectorError(os_error_line(e, path)) from None


class _FileWriter:
    """A file output's bytes, written to its partial file (``files``: renamed over ``path`` by
    the backend once the run has succeeded) or, with ``staged=False``, to ``path`` itself.
    ``snapshot()`` is the byte offset a resumed run (``resume=``) cuts the file back to."""

    def __init__(self, path: str, *, resume: dict | None = None, staged: bool = True):
        self.path = path
        self._f = _open(path, resume, staged)

    def snapshot(self) -> dict:
        self._f.flush()
        return {"offset": self._f.tell()}

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    abort = close


class JsonlSink(_FileWriter):
    """Writes ``{"key", "value", "timestamp"[, "window": {"start", "end"}]}`` per line."""

    def __init__(self, path: str, *, resume: dict | None = None, staged: bool = True):
        super().__init__(path, resume=resume, staged=staged)

    def write(self, rec: OutputRecord) -> None:
        self._f.write(dumps_output(rec) + b"\n")

    def write_lines(self, data: bytes) -> None:
        """Write records already encoded (``dumps_output`` and a newline each)."""
        self._f.write(data)


def _stdout_write(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
    except BrokenPipeError:
        raise OutputClosed("stdout was closed by its reader") from None
    except ValueError:  # stdout closed in this process
        raise OutputClosed("stdout is closed") from None


class StdoutSink:
    """JSON lines on stdout, as they are written. A closed stdout (``... | head -1``) raises
    ``OutputClosed``."""

    def __init__(self, topic: str):
        self.topic = topic

    def write(self, rec: OutputRecord) -> None:
        _stdout_write(dumps_output(rec) + b"\n")

    def close(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise OutputClosed("stdout was closed by its reader") from None

    abort = close


class DeadLetterJsonlSink:
    """Dead letters as JSON lines: to a file (``path``: written like ``JsonlSink``) or, with
    ``path`` None, to stderr."""

    def __init__(self, path: str | None, *, resume: dict | None = None, staged: bool = True):
        self.path = path
        self._file = _FileWriter(path, resume=resume, staged=staged) if path else None

    def write(self, dl: DeadLetter) -> None:
        line = orjson.dumps(dl.to_json_dict(), default=_default, option=_OPTS) + b"\n"
        if self._file is None:
            sys.stderr.buffer.write(line)
        else:
            self._file._f.write(line)

    __call__ = write

    def snapshot(self) -> dict | None:
        return self._file.snapshot() if self._file is not None else None

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    abort = close
