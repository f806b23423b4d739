"""Where records enter and leave a SQL topology: reading a source's columns from its values
(JSON fields matched case-insensitively, DELIMITED text, bare KAFKA values) and writing a
sink's values and keys in its formats.

These are small callables rather than expressions because what they read is not known in
advance (the case of a JSON field, the position of a delimited field); each names what it does
in ``streamdsl graph`` / ``explain`` and pickles for multi-process backends.

>>> r = SourceReader((("ID", ("INT",)), ("NAME", ("STRING",))), "JSON", True)
>>> r({"id": "7", "Name": "ann", "extra": 1})
{'ID': 7, 'NAME': 'ann'}
>>> SourceReader((("ID", ("INT",)), ("NAME", ("STRING",))), "DELIMITED", True)("7,ann")
{'ID': 7, 'NAME': 'ann'}
>>> ValueWriter(("SUM", "N"), "DELIMITED", True)({"SUM": 1.5, "N": None})
'1.5,'
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ..functions.conversions import coerce, format_type, get_ci
from ..functions.strings import to_text
from ..functions.times import java_parse

__all__ = ["SourceReader", "TimestampReader", "ValueWriter", "KeyWriter", "KeepLeft"]


def _split_delimited(text: str, delimiter: str = ",") -> list[str]:
    return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])


def _quoted(text: str, first: bool, delimiter: str = ",") -> str:
    # Apache Commons CSV's minimal quoting, which ksqlDB's DELIMITED format writes with: a field
    # holding a comma, quote or line break, a first field not starting with a letter or digit,
    # a field starting below '#' or ending in a space or control character
    if not text:
        return '""' if first else text
    c = text[0]
    if (first and not c.isascii() or first and not c.isalnum()) or c <= "#" \
            or any(x in text for x in delimiter + '"\r\n') or text[-1] <= " ":
        return '"' + text.replace('"', '""') + '"'
    return text


def _join_delimited(values: list[Any], delimiter: str = ",") -> str:
    return delimiter.join("" if v is None else _quoted(to_text(v), i == 0, delimiter)
                          for i, v in enumerate(values))


class SourceReader:
    """A source's value as the dict of its declared value columns (ksqlDB's deserializers).

    JSON: fields matched by name ignoring case (a missing one is NULL), each read as its
    column's type (``"7"`` as an INT is ``7``); a bare value is the single column's. DELIMITED:
    comma-separated text, fields by position, an empty field NULL. KAFKA or an unwrapped value
    (``WRAP_SINGLE_VALUE=false``): the value is the single column's. A value that does not fit
    raises ``ValueError`` (the record is dead-lettered, as ksqlDB logs and skips it).
    """

    def __init__(self, columns: tuple[tuple[str, tuple], ...], value_format: str, wrap: bool,
                 delimiter: str = ","):
        self.columns = tuple(columns)
        self.value_format = value_format
        self.wrap = wrap
        self.delimiter = delimiter
        cols = ", ".join(f"{n} {format_type(t)}" for n, t in self.columns)
        self.__qualname__ = f"read {value_format} value ({cols})"

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        cols = self.columns
        if self.value_format == "DELIMITED" and isinstance(value, str):
            fields = _split_delimited(value, self.delimiter) if value else [""]
            if len(fields) != len(cols):
                raise ValueError(f"expected {len(cols)} delimited fields, got {len(fields)}: "
                                 f"{value!r}")
            return {n: None if f == "" else coerce(f, t) for (n, t), f in zip(cols, fields)}
        if isinstance(value, dict) and (self.wrap or len(cols) != 1):
            return {n: coerce(get_ci(value, n), t) for n, t in cols}
        if len(cols) == 1:
            n, t = cols[0]
            return {n: coerce(value, t)}
        raise ValueError(f"expected a JSON object with the fields {', '.join(n for n, _ in cols)}, "
                         f"got {value!r}")

    def __getstate__(self) -> dict:
        return {"columns": self.columns, "value_format": self.value_format, "wrap": self.wrap,
                "delimiter": self.delimiter}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["columns"], state["value_format"], state["wrap"], state["delimiter"])


class TimestampReader:
    """Event time from a value column (SQL ``TIMESTAMP='col'``), read as the source reads it;
    with ``TIMESTAMP_FORMAT`` a string parsed with that ``DateTimeFormatter`` pattern (UTC)."""

    def __init__(self, reader: SourceReader, column: str, fmt: str | None = None):
        self.reader = reader
        self.column = column
        self.fmt = fmt
        self.__qualname__ = column if fmt is None else f"{column} as {fmt!r}"

    def __call__(self, value: Any) -> Any:
        ts = self.reader(value)[self.column]
        if self.fmt is not None and isinstance(ts, str):
            return _epoch_ms(java_parse(ts, self.fmt))
        return ts

    def __getstate__(self) -> dict:
        return {"reader": self.reader, "column": self.column, "fmt": self.fmt}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["reader"], state["column"], state.get("fmt"))


def _epoch_ms(d: Any) -> int:
    import datetime as dt
    return (d - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)


class ValueWriter:
    """A sink's value in its format: JSON (the dict, or its single column bare when not
    wrapped), DELIMITED (comma-separated text) or KAFKA (the single column bare)."""

    def __init__(self, names: tuple[str, ...], value_format: str, wrap: bool,
                 delimiter: str = ","):
        self.names = tuple(names)
        self.value_format = value_format
        self.wrap = wrap
        self.delimiter = delimiter
        self.__qualname__ = f"write {value_format} value ({', '.join(self.names)})"

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if self.value_format == "DELIMITED":
            return _join_delimited([value.get(n) for n in self.names], self.delimiter)
        if not self.wrap and len(self.names) == 1:
            return value.get(self.names[0])
        return value

    def __getstate__(self) -> dict:
        return {"names": self.names, "value_format": self.value_format, "wrap": self.wrap,
                "delimiter": self.delimiter}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["names"], state["value_format"], state["wrap"], state["delimiter"])


class KeyWriter:
    """A sink's key in a DELIMITED key format: several key columns as comma-separated text."""

    def __init__(self, names: tuple[str, ...]):
        self.names = tuple(names)
        self.__qualname__ = f"write DELIMITED key ({', '.join(self.names)})"

    def __call__(self, key: Any, value: Any) -> tuple[Any, Any]:
        if isinstance(key, dict):
            key = _join_delimited([key.get(n) for n in self.names])
        return key, value

    def __getstate__(self) -> dict:
        return {"names": self.names}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["names"])


class KeepLeft:
    """The joiner of a table joined to nothing: the left row (see ``changes.only_changes``)."""

    def __init__(self) -> None:
        self.__qualname__ = "keep the left row"

    def __call__(self, left: Any, right: Any) -> Any:
        return left
