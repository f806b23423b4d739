"""SQL types as data, ``CAST``, and the JSON coercion a ksqlDB source applies to its columns.

A type is written as SQL text (``"INT"``, ``"ARRAY<VARCHAR>"``, ``"STRUCT<A INT, B VARCHAR>"``,
``"DECIMAL(4, 1)"``) and parsed once into nested tuples: ``("INT",)``, ``("ARRAY", elem)``,
``("MAP", key, value)``, ``("STRUCT", ((name, type), ...))``, ``("DECIMAL", p, s)``.

``coerce`` is what reading a JSON value as a declared column does (ksqlDB's JSON deserializer):
``"2"`` read as an INT is ``2``, ``1`` read as a DOUBLE is ``1.0``, a number read as a STRING is
its text, struct fields are matched case-insensitively and named as declared; a value that
cannot be read as the type raises ``ValueError``. ``cast`` is SQL ``CAST``: a value that cannot
be converted gives ``None``.

>>> coerce({"a": "1", "b": [1, 2]}, parse_type("STRUCT<A INT, B ARRAY<DOUBLE>>"))
{'A': 1, 'B': [1.0, 2.0]}
>>> FUNCTIONS["cast"]("12", "BIGINT"), FUNCTIONS["cast"](2.7, "INT"), FUNCTIONS["cast"]("x", "INT")
(12, 2, None)
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .numbers import is_integer
from .strings import to_text

__all__ = ["FUNCTIONS", "parse_type", "coerce", "cast", "format_type", "INTEGER_TYPES"]

INTEGER_TYPES = ("INT", "INTEGER", "BIGINT")
_ALIASES = {"INTEGER": "INT", "VARCHAR": "STRING"}
_TYPE_TOKEN = re.compile(r"\s*(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_]*|\d+|[<>(),])")


@functools.lru_cache(maxsize=512)
def parse_type(text: str) -> tuple:
    """A type's SQL text as nested tuples (names upper-cased; field names as written, unquoted
    names upper-cased as SQL does)."""
    tokens = _TYPE_TOKEN.findall(text)
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"incomplete type {text!r}")
        pos += 1
        return tokens[pos - 1]

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def one() -> tuple:
        name = take().upper()
        name = _ALIASES.get(name, name)
        if name == "ARRAY":
            take()  # <
            elem = one()
            take()  # >
            return ("ARRAY", elem)
        if name == "MAP":
            take()
            k = one()
            take()  # ,
            v = one()
            take()
            return ("MAP", k, v)
        if name == "STRUCT":
            take()
            fields = []
            while peek() != ">":
                fname = take()
                fname = fname[1:-1].replace("``", "`") if fname.startswith("`") else fname.upper()
                fields.append((fname, one()))
                if peek() == ",":
                    take()
            take()
            return ("STRUCT", tuple(fields))
        if peek() == "(":
            take()
            params = []
            while peek() != ")":
                params.append(int(take()))
                if peek() == ",":
                    take()
            take()
            return (name, *params)
        return (name,)

    t = one()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r} in type {text!r}")
    return t


def format_type(t: tuple) -> str:
    """The SQL text of a parsed type (``DESCRIBE`` shows it)."""
    if t[0] == "ARRAY":
        return f"ARRAY<{format_type(t[1])}>"
    if t[0] == "MAP":
        return f"MAP<{format_type(t[1])}, {format_type(t[2])}>"
    if t[0] == "STRUCT":
        return "STRUCT<" + ", ".join(f"{n} {format_type(ft)}" for n, ft in t[1]) + ">"
    if len(t) > 1:
        return f"{t[0]}({', '.join(map(str, t[1:]))})"
    return {"INT": "INTEGER", "STRING": "STRING"}.get(t[0], t[0])


def _decimal(x: Any, scale: int) -> float:
    d = Decimal(x if isinstance(x, str) else repr(x) if isinstance(x, float) else x)
    return float(d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP))


_EPOCH_DATE = dt.date(1970, 1, 1)


def _iso_timestamp(s: str) -> int:
    d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return (d - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)


def _iso_time(s: str) -> int:
    t = dt.time.fromisoformat(s)
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def coerce(v: Any, t: tuple) -> Any:
    """``v`` read as type ``t`` (JSON coercion); ``ValueError`` when it cannot be."""
    if v is None:
        return None
    name = t[0]
    if name in ("INT", "BIGINT"):
        if is_integer(v):
            return v
        if isinstance(v, float) and math.isfinite(v):
            return int(v)  # a JSON number with a fraction read as an integer is truncated
        if isinstance(v, str):
            return int(v.strip())
        raise ValueError(f"cannot read {v!r} as {name}")
    if name in ("DOUBLE", "DECIMAL"):
        if isinstance(v, bool):
            raise ValueError(f"cannot read {v!r} as {name}")
        x = float(v) if not isinstance(v, str) else float(v.strip())
        return _decimal(x, t[2]) if name == "DECIMAL" and len(t) > 2 and math.isfinite(x) else x
    if name == "STRING":
        if isinstance(v, (dict, list)):
            import json
            return json.dumps(v, separators=(",", ":"))
        return v if isinstance(v, str) else to_text(v)
    if name == "BOOLEAN":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValueError(f"cannot read {v!r} as BOOLEAN")
    if name == "TIMESTAMP":
        return v if is_integer(v) else _iso_timestamp(v) if isinstance(v, str) else _bad(v, name)
    if name == "DATE":
        if is_integer(v):
            return v
        return (dt.date.fromisoformat(v) - _EPOCH_DATE).days if isinstance(v, str) else _bad(v, name)
    if name == "TIME":
        return v if is_integer(v) else _iso_time(v) if isinstance(v, str) else _bad(v, name)
    if name == "BYTES":
        if isinstance(v, str):
            base64.b64decode(v, validate=True)
            return v
        raise ValueError(f"cannot read {v!r} as BYTES (base64 text)")
    if name == "ARRAY":
        if not isinstance(v, list):
            raise ValueError(f"cannot read {v!r} as an ARRAY")
        return [coerce(x, t[1]) for x in v]
    if name == "MAP":
        if not isinstance(v, dict):
            raise ValueError(f"cannot read {v!r} as a MAP")
        return {coerce(k, t[1]): coerce(x, t[2]) for k, x in v.items()}
    if name == "STRUCT":
        if not isinstance(v, dict):
            raise ValueError(f"cannot read {v!r} as a STRUCT")
        return {fname: coerce(get_ci(v, fname), ft) for fname, ft in t[1]}
    return v


def _bad(v: Any, name: str) -> Any:
    raise ValueError(f"cannot read {v!r} as {name}")


def get_ci(d: dict, name: str) -> Any:
    """``d[name]``, else the value of the key equal to ``name`` ignoring case, else None."""
    if name in d:
        return d[name]
    low = name.lower()
    for k, x in d.items():
        if isinstance(k, str) and k.lower() == low:
            return x
    return None


def cast(v: Any, type_text: str) -> Any:
    """SQL ``CAST(v AS type)``: ``None`` when ``v`` cannot be converted."""
    if v is None:
        return None
    try:
        return _cast(v, parse_type(type_text))
    except (ValueError, TypeError, ArithmeticError, InvalidOperation, OverflowError):
        return None


def _cast(v: Any, t: tuple) -> Any:
    name = t[0]
    if name == "STRING":
        return v if isinstance(v, str) else to_text(v)
    if name in ("INT", "BIGINT"):
        if isinstance(v, bool):
            raise ValueError("no cast from BOOLEAN to a number")
        if isinstance(v, float):
            return int(v)  # truncation toward zero, as Java's (int) cast
        return int(v.strip()) if isinstance(v, str) else int(v)
    if name == "BOOLEAN":
        if isinstance(v, str):
            return v.strip().lower() == "true"
        if isinstance(v, bool):
            return v
        raise ValueError("no cast to BOOLEAN from a number")
    if name == "DATE" and is_integer(v):
        return v // 86_400_000  # a TIMESTAMP's date
    if name == "TIME" and is_integer(v):
        return v % 86_400_000
    if name == "ARRAY":
        return [None if x is None else _cast(x, t[1]) for x in v]
    if name == "MAP":
        return {_cast(k, t[1]): None if x is None else _cast(x, t[2]) for k, x in v.items()}
    if name == "STRUCT":
        # fields present in the target type are copied (names matched exactly), others NULL
        return {fname: None if v.get(fname) is None else _cast(v[fname], ft) for fname, ft in t[1]}
    return coerce(v, t)


def _in_values(x: Any, *values: Any) -> Any:
    # SQL IN: NULL when x is NULL, or when x is not found and the list holds a NULL
    if x is None:
        return None
    if x in [v for v in values if v is not None]:
        return True
    return None if any(v is None for v in values) else False


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if escape and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def _like(s: Any, pattern: Any, escape: Any = None) -> Any:
    if s is None or pattern is None:
        return None
    return _like_regex(pattern, escape).match(s) is not None


FUNCTIONS = {
    "cast": cast,
    "in_values": _in_values,
    "like": _like,
    "is_distinct": lambda a, b: not (a == b if a is not None and b is not None else a is b),
    "nullif": lambda a, b: None if a is not None and a == b else a,
}
