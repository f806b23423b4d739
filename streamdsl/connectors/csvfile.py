"""CSV files with a header row.

Reading: each row is a dict of its cells. A column with a declared type (``schema={"zip":
str}`` on ``topo.stream``/``topo.table``; a SQL stream's VARCHAR columns) is read as that type;
any other cell is read as a number (``"12"``, ``"2.5"``, ``"1e3"``, ``"inf"``) or a boolean
(``"true"``, ``"false"``), except a number with a leading zero (``"01234"``, a code that would
lose its zeros), which stays text as every other cell does; an empty cell is None.

Writing: the columns are ``key, timestamp, window_start, window_end`` and the value's: the
sink's declared columns (``to(..., columns=[...])``, a SQL sink's columns), else the fields of
the first record whose value is not None (sorted), or one ``value`` column when that value is
not a mapping. Records before that one (tombstones) wait for it; a tombstone's value cells are
empty. Nothing is dropped: a field the header has not (or a value that is not a mapping under
a header of fields) stops the run with an error naming the field, as a new column cannot be
added to rows already written; nested values (lists, mappings) are written as JSON text, and
booleans as ``true``/``false`` (what the reader reads back).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterator

import orjson

from ..errors import ConnectorError
from ..ir.nodes import COLUMN_TYPES
from ..runtime.records import InputEvent, OutputRecord
from .files import open_partial

__all__ = ["read_csv", "CsvSink", "CsvRows", "infer_value", "read_typed", "COLUMN_TYPES"]


def infer_value(s: str) -> Any:
    """A cell as a number or a boolean, else its text ('' is None). A number whose integer part
    has a leading zero stays text: a code (a ZIP code, an account number) would lose its zeros.

    >>> [infer_value(x) for x in ["", "3", "-3", "+3", "2.5", "1.50", "1e3", "inf", "true"]]
    [None, 3, -3, 3, 2.5, 1.5, 1000.0, inf, True]
    >>> [infer_value(x) for x in ["01234", "-007", "00.5", "0", "0.5", "True", " 3", "abc"]]
    ['01234', '-007', '00.5', 0, 0.5, 'True', ' 3', 'abc']
    """
    if s == "":
        return None
    if s == "true":
        return True
    if s == "false":
        return False
    if s != s.strip() or _LEADING_ZERO.match(s):
        return s
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


_LEADING_ZERO = re.compile(r"[+-]?0[0-9_]")


def read_typed(s: str, kind: str) -> Any:
    """A cell read as its declared type (``kind`` in ``COLUMN_TYPES``); '' is None.

    Raises:
        ValueError: the text is not of that type (the row is a bad record).

    >>> read_typed("01234", "str"), read_typed("01234", "int"), read_typed("TRUE", "bool")
    ('01234', 1234, True)
    """
    if s == "":
        return None
    if kind == "str":
        return s
    if kind == "int":
        return int(s)
    if kind == "float":
        return float(s)
    if kind == "bool":
        low = s.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise ValueError(f"not a boolean: {s!r}")
    raise ValueError(f"unknown column type {kind!r}")


def read_csv(topic: str, path: str, *, infer: bool = True, key_field: str | None = None,
             types: dict[str, str] | None = None) -> Iterator[InputEvent]:
    """Events of a CSV file: each row a dict; ``position`` is ``path:line``.

    A row with more or fewer fields than the header, or a cell that is not of its column's
    declared type (``types``: column -> one of ``COLUMN_TYPES``; names match ignoring case),
    becomes an error event. With ``key_field`` each event's key is that column of the row.
    """
    from .progress import tracked
    with open(path, "rb") as raw:
        f = io.TextIOWrapper(tracked(raw, path), newline="", encoding="utf-8")
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        declared = {k.lower(): v for k, v in (types or {}).items()}
        kinds = [declared.get(h.lower()) for h in header]
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                yield InputEvent(topic, None, ",".join(row), None, f"{path}:{line}",
                                 f"expected {len(header)} fields, got {len(row)}")
                continue
            try:
                value = {h: (read_typed(c, k) if k is not None else
                             infer_value(c) if infer else c)
                         for h, c, k in zip(header, row, kinds)}
            except ValueError:
                bad = next(h for h, c, k in zip(header, row, kinds)
                           if k is not None and not _fits(c, k))
                kind = declared[bad.lower()]
                yield InputEvent(topic, None, ",".join(row), None, f"{path}:{line}",
                                 f"column {bad!r} is declared {kind}, got "
                                 f"{row[header.index(bad)]!r}")
                continue
            key = value.get(key_field) if key_field is not None else None
            yield InputEvent(topic, key, value, None, f"{path}:{line}")


def _fits(cell: str, kind: str) -> bool:
    try:
        read_typed(cell, kind)
        return True
    except ValueError:
        return False


# ---- writing ------------------------------------------------------------------------------------

_FRONT = ["key", "timestamp", "window_start", "window_end"]


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (dict, list, tuple, set, frozenset)):
        return orjson.dumps(v if not isinstance(v, (set, frozenset)) else sorted(v, key=repr),
                            default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    return v


class CsvRows:
    """The rows of one CSV output (header first), whatever records come (module doc).

    ``add(rec)`` returns the rows ready to write (none while only tombstones have come and the
    columns are not known); ``finish()`` the rows still held at the end. ``state()`` and
    ``CsvRows(**state)`` carry it over a snapshot.

    >>> rows = CsvRows(name="out")
    >>> rows.add(OutputRecord("a", None, 1))            # a tombstone first: held
    []
    >>> for row in rows.add(OutputRecord("b", {"n": 2, "tags": ["x"]}, 2)):
    ...     print(row)
    ['key', 'timestamp', 'window_start', 'window_end', 'n', 'tags']
    ['a', 1, '', '', '', '']
    ['b', 2, '', '', 2, '["x"]']
    >>> rows.add(OutputRecord("c", {"m": 1}, 3))
    Traceback (most recent call last):
    ...
    streamdsl.errors.ConnectorError: CSV output 'out': the record with key 'c' at 3 has field 'm', which is not a column (columns: n, tags); declare the sink's columns with to(..., columns=[...]) or write JSON lines (.jsonl)
    """

    def __init__(self, *, name: str = "?", columns: list[str] | None = None,
                 scalar: bool = False, pending: list[list] | None = None,
                 header_written: bool = False):
        self.name = name
        self.fields: list[str] | None = list(columns) if columns else None
        self.scalar = scalar
        self.pending: list[list] = list(pending or [])
        self.header_written = header_written
        self._fields = frozenset(self.fields or ())

    def state(self) -> dict:
        return {"name": self.name, "columns": self.fields, "scalar": self.scalar,
                "pending": list(self.pending), "header_written": self.header_written}

    def _start(self) -> list[list]:
        """The header and the held tombstones."""
        self.header_written = True
        width = 1 if self.scalar else len(self.fields or ())
        out = [_FRONT + (["value"] if self.scalar else list(self.fields or ()))]
        out += [row + [""] * width for row in self.pending]
        self.pending = []
        return out

    def add(self, rec: OutputRecord) -> list[list]:
        v = rec.value
        ws, we = rec.window if rec.window else ("", "")
        front = [_cell(rec.key), rec.timestamp, ws, we]
        if self.fields is None and not self.scalar:
            if v is None:
                self.pending.append(front)
                return []
            if isinstance(v, dict):
                self.fields = sorted(str(k) for k in v)
                self._fields = frozenset(self.fields)
            else:
                self.scalar = True
        out = [] if self.header_written else self._start()
        out.append(front + self._values(v, rec))
        return out

    def _values(self, v: Any, rec: OutputRecord) -> list:
        if self.scalar:
            return [_cell(v)]
        fields = self.fields or []
        if v is None:
            return [""] * len(fields)
        if not isinstance(v, dict):
            raise ConnectorError(
                f"CSV output {self.name!r}: the value of the record with key {rec.key!r} at "
                f"{rec.timestamp} is not a mapping ({v!r}), but the columns are fields "
                f"({', '.join(fields)}); write JSON lines (.jsonl)")
        known = self._fields
        for k in v:
            if k not in known:
                raise ConnectorError(
                    f"CSV output {self.name!r}: the record with key {rec.key!r} at "
                    f"{rec.timestamp} has field {str(k)!r}, which is not a column (columns: "
                    f"{', '.join(fields)}); declare the sink's columns with "
                    "to(..., columns=[...]) or write JSON lines (.jsonl)")
        return [_cell(v.get(f)) for f in fields]

    def finish(self) -> list[list]:
        """Rows still to write at the end: the header (and the tombstones, under one ``value``
        column, when no record had a value) if nothing was written."""
        if self.header_written:
            return []
        if self.fields is None:
            self.scalar = True
        return self._start()


class CsvSink:
    """Writes the rows of ``CsvRows`` to the partial file of ``path`` (see ``files``).

    Args:
        name: the sink's name (in error messages).
        columns: the declared value columns (else the first non-null value's fields).
        resume: a snapshot of this sink (``snapshot()``) to go on from (Bytewax recovery).
        staged: write the partial file (renamed by ``files.commit``), else ``path`` itself.
    """

    def __init__(self, path: str, *, name: str = "?", columns: list[str] | None = None,
                 resume: dict | None = None, staged: bool = True):
        self.path = path
        if resume is not None:
            self.rows = CsvRows(**resume["rows"])
            self._f = open_partial(path, resume["offset"])
        else:
            self.rows = CsvRows(name=name, columns=columns)
            self._f = open_partial(path) if staged else _open_in_place(path)
        self._buf = io.StringIO(newline="")
        self._w = csv.writer(self._buf)

    def _put(self, rows: list[list]) -> None:
        if rows:
            self._w.writerows(rows)
            self._f.write(self._buf.getvalue().encode("utf-8"))
            self._buf.seek(0)
            self._buf.truncate()

    def write(self, rec: OutputRecord) -> None:
        self._put(self.rows.add(rec))

    def snapshot(self) -> dict:
        self._f.flush()
        return {"offset": self._f.tell(), "rows": self.rows.state()}

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._put(self.rows.finish())
            self._f.close()

    def abort(self) -> None:
        self._f.close()


def _open_in_place(path: str):
    from .files import os_error_line
    try:
        return open(path, "wb")
    except OSError as e:
        raise ConnectorError(os_error_line(e, path)) from None
