"""CSV files with a header row."""

from __future__ import annotations

import csv
from typing import Any, Iterator

from ..runtime.records import InputEvent, OutputRecord

__all__ = ["read_csv", "CsvSink", "infer_value"]


def infer_value(s: str) -> Any:
    """'' -> None, integers and floats as numbers, 'true'/'false' as bools, else the text.

    >>> [infer_value(x) for x in ["", "3", "2.5", "true", "abc"]]
    [None, 3, 2.5, True, 'abc']
    """
    if s == "":
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        pass
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    return s


def read_csv(topic: str, path: str, *, infer: bool = True,
             key_field: str | None = None) -> Iterator[InputEvent]:
    """Events of a CSV file: each row a dict; ``position`` is ``path:line``.

    A row with more or fewer fields than the header becomes an error event. With ``key_field``
    each event's key is that column of the row.
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                yield InputEvent(topic, None, ",".join(row), None, f"{path}:{line}",
                                 f"expected {len(header)} fields, got {len(row)}")
                continue
            value = {h: (infer_value(c) if infer else c) for h, c in zip(header, row)}
            key = value.get(key_field) if key_field is not None else None
            yield InputEvent(topic, key, value, None, f"{path}:{line}")


class CsvSink:
    """Writes key, timestamp, window_start, window_end and the value's fields (or ``value``)."""

    def __init__(self, path: str):
        self._f = open(path, "w", newline="")
        self._w = csv.writer(self._f)
        self._fields: list[str] | None = None

    def write(self, rec: OutputRecord) -> None:
        v = rec.value
        if self._fields is None:
            self._fields = sorted(v) if isinstance(v, dict) else ["value"]
            self._w.writerow(["key", "timestamp", "window_start", "window_end", *self._fields])
        ws, we = rec.window if rec.window else ("", "")
        if isinstance(v, dict):
            vals = [v.get(f, "") for f in self._fields]
        else:
            vals = ["" if v is None else v]
        self._w.writerow([rec.key, rec.timestamp, ws, we, *vals])

    def close(self) -> None:
        self._f.close()
