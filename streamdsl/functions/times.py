"""Date and time functions: TIMESTAMP is epoch milliseconds, DATE days since the epoch, TIME
milliseconds since midnight (how ksqlDB's JSON format carries them).

Formats are ``java.time.format.DateTimeFormatter`` patterns (``yyyy-MM-dd HH:mm:ss.SSS``,
``'T'`` for a literal, ``X`` for an offset); time zones are ``java.util.TimeZone`` IDs, read
with ``zoneinfo`` (``UTC`` when none is given: ksqlDB's deprecated ``TIMESTAMPTOSTRING`` and
``STRINGTOTIMESTAMP`` use the server's zone instead, which would make results depend on the
machine).

>>> FUNCTIONS["format_timestamp"](1_500_000_000_123, "yyyy-MM-dd'T'HH:mm:ss.SSSX")
'2017-07-14T02:40:00.123Z'
>>> FUNCTIONS["parse_timestamp"]("2017-07-14 02:40:00", "yyyy-MM-dd HH:mm:ss", "UTC")
1500000000000
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from zoneinfo import ZoneInfo

from ._null import safe

__all__ = ["FUNCTIONS", "java_format", "java_parse"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_DAY_MS = 86_400_000
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)


# Java's short zone IDs (java.time.ZoneId.SHORT_IDS, and the abbreviations its 'z' parser
# reads): a region, so that daylight saving applies as Java applies it
_SHORT_IDS = {"PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
              "MST": "America/Denver", "MDT": "America/Denver", "CST": "America/Chicago",
              "CDT": "America/Chicago", "EST": "America/New_York", "EDT": "America/New_York",
              "BST": "Europe/London", "CET": "Europe/Paris", "CEST": "Europe/Paris",
              "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "AET": "Australia/Sydney"}


def _zone(tz: str | None) -> dt.tzinfo:
    if tz is None or tz.upper() in ("UTC", "GMT", "Z"):
        return dt.timezone.utc
    if tz.upper() in _SHORT_IDS:
        return ZoneInfo(_SHORT_IDS[tz.upper()])
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?", tz)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    return ZoneInfo(tz)


@functools.lru_cache(maxsize=256)
def _tokens(pattern: str) -> tuple[str, ...]:
    return tuple(m.group(0) for m in _TOKEN.finditer(pattern))


def _offset(d: dt.datetime, n: int, z_for_zero: bool) -> str:
    off = d.utcoffset() or dt.timedelta(0)
    if z_for_zero and off == dt.timedelta(0):
        return "Z"
    total = int(off.total_seconds()) // 60
    sign = "+" if total >= 0 else "-"
    h, m = divmod(abs(total), 60)
    if n == 1:
        return f"{sign}{h:02d}" + (f"{m:02d}" if m else "")
    if n in (2, 4):
        return f"{sign}{h:02d}{m:02d}"
    return f"{sign}{h:02d}:{m:02d}"


def java_format(d: dt.datetime, pattern: str) -> str:
    """``d`` written with a ``DateTimeFormatter`` pattern (the common letters)."""
    out = []
    for tok in _tokens(pattern):
        c, n = tok[0], len(tok)
        if c == "'":
            out.append("'" if tok == "''" else tok[1:-1].replace("''", "'"))
        elif c in "yu":
            out.append(f"{d.year % 100:02d}" if n == 2 else f"{d.year:0{n}d}")
        elif c in "ML":
            out.append(_MONTHS[d.month - 1][:3] if n == 3 else _MONTHS[d.month - 1] if n >= 4
                       else f"{d.month:0{n}d}")
        elif c == "d":
            out.append(f"{d.day:0{n}d}")
        elif c == "D":
            out.append(f"{d.timetuple().tm_yday:0{n}d}")
        elif c == "H":
            out.append(f"{d.hour:0{n}d}")
        elif c == "k":
            out.append(f"{d.hour or 24:0{n}d}")
        elif c == "h":
            out.append(f"{(d.hour % 12) or 12:0{n}d}")
        elif c == "K":
            out.append(f"{d.hour % 12:0{n}d}")
        elif c == "m":
            out.append(f"{d.minute:0{n}d}")
        elif c == "s":
            out.append(f"{d.second:0{n}d}")
        elif c == "S":
            out.append(f"{d.microsecond:06d}000"[:n])
        elif c == "n":
            out.append(str(d.microsecond * 1000))
        elif c == "a":
            out.append("AM" if d.hour < 12 else "PM")
        elif c == "E":
            out.append(_DAYS[d.weekday()] if n >= 4 else _DAYS[d.weekday()][:3])
        elif c == "X":
            out.append(_offset(d, n, True))
        elif c == "x":
            out.append(_offset(d, n, False))
        elif c == "Z":
            out.append(_offset(d, 5 if n >= 4 else 2, n >= 5))
        elif c == "z":
            out.append(d.tzname() or "UTC")
        elif c == "V":
            out.append(str(getattr(d.tzinfo, "key", None) or d.tzname() or "UTC"))
        elif c.isalpha():
            raise ValueError(f"unsupported pattern letter {c!r}")
        else:
            out.append(tok)
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _parser(pattern: str) -> tuple[re.Pattern, tuple[str, ...]]:
    parts, fields = [], []
    for tok in _tokens(pattern):
        c, n = tok[0], len(tok)
        if c == "'":
            parts.append(re.escape("'" if tok == "''" else tok[1:-1].replace("''", "'")))
            continue
        if not c.isalpha():
            parts.append(re.escape(tok))
            continue
        if c in "ML" and n >= 3:
            rx = "|".join(m if n >= 4 else m[:3] for m in _MONTHS)
        elif c == "E":
            rx = "|".join(x if n >= 4 else x[:3] for x in _DAYS)
        elif c == "a":
            rx = "AM|PM|am|pm"
        elif c in "Xx":
            rx = r"Z|[+-]\d{2}(?::?\d{2})?"
        elif c == "Z":
            rx = r"Z|[+-]\d{2}:?\d{2}"
        elif c in "zV":
            rx = r"[A-Za-z_/+\-0-9]+"
        elif c == "S":
            rx = rf"\d{{{n}}}"
        elif c in "yu" and n != 2:
            rx = r"[+-]?\d{4,9}"
        elif c in "yMLdDHkhKmsu":
            rx = rf"\d{{{n}}}" if n >= 2 else r"\d{1,2}" if c != "D" else r"\d{1,3}"
        else:
            raise ValueError(f"unsupported pattern letter {c!r}")
        parts.append(f"({rx})")
        fields.append(c + ("T" if (c in "ML" and n >= 3) else ""))
    # ksqlDB's timestamp parser is case-insensitive (a "z" offset reads as "Z")
    return re.compile("".join(parts) + r"\Z", re.I), tuple(fields)


def java_parse(text: str, pattern: str, tz: str | None = None) -> dt.datetime:
    """Parse ``text`` with a ``DateTimeFormatter`` pattern; fields it lacks default as
    ksqlDB's parser does (1970-01-01, midnight); a zone in the text wins over ``tz``.

    Raises:
        ValueError: the text does not match the pattern.
    """
    rx, fields = _parser(pattern)
    m = rx.match(text)
    if m is None:
        raise ValueError(f"{text!r} does not match {pattern!r}")
    v = {"y": 1970, "M": 1, "d": 1, "H": 0, "m": 0, "s": 0, "us": 0}
    pm = None
    hour12 = None
    doy = None
    zone: dt.tzinfo = _zone(tz)
    for f, g in zip(fields, m.groups()):
        if f in ("y", "u"):
            v["y"] = int(g)
        elif f in ("MT", "LT"):
            v["M"] = next(i for i, name in enumerate(_MONTHS, 1) if name.lower().startswith(g.lower()))
        elif f in ("M", "L"):
            v["M"] = int(g)
        elif f == "d":
            v["d"] = int(g)
        elif f == "D":
            doy = int(g)
        elif f in ("H", "k"):
            v["H"] = int(g) % 24
        elif f in ("h", "K"):
            hour12 = int(g) % 12
        elif f == "m":
            v["m"] = int(g)
        elif f == "s":
            v["s"] = int(g)
        elif f == "S":
            v["us"] = int((g + "000000")[:6])
        elif f == "a":
            pm = g.upper() == "PM"
        elif f in ("X", "x", "Z"):
            zone = _zone(None if g.upper() == "Z" else g)
        elif f in ("z", "V"):
            zone = _zone(g)
    if hour12 is not None:
        v["H"] = hour12 + (12 if pm else 0)
    d = dt.datetime(v["y"], v["M"], v["d"], v["H"], v["m"], v["s"], v["us"])
    if doy is not None:
        d = d.replace(month=1, day=1) + dt.timedelta(days=doy - 1)
    return d.replace(tzinfo=zone)


def _ms(d: dt.datetime) -> int:
    return (d - _EPOCH) // dt.timedelta(milliseconds=1)


def _at(ms: int, tz: str | None) -> dt.datetime:
    return (_EPOCH + dt.timedelta(milliseconds=ms)).astimezone(_zone(tz))


@safe
def _format_timestamp(ms: int, pattern: str, tz: str | None = None) -> str:
    return java_format(_at(ms, tz), pattern)


@safe
def _parse_timestamp(text: str, pattern: str, tz: str | None = None) -> int:
    return _ms(java_parse(text, pattern, tz))


@safe
def _format_date(days: int, pattern: str) -> str:
    return java_format(_at(days * _DAY_MS, None), pattern)


@safe
def _parse_date(text: str, pattern: str) -> int:
    return _ms(java_parse(text, pattern).replace(tzinfo=dt.timezone.utc)) // _DAY_MS


@safe
def _format_time(ms: int, pattern: str) -> str:
    return java_format(_at(ms % _DAY_MS, None), pattern)


@safe
def _parse_time(text: str, pattern: str) -> int:
    d = java_parse(text, pattern)
    return ((d.hour * 60 + d.minute) * 60 + d.second) * 1000 + d.microsecond // 1000


_UNIT_MS = {"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000,
            "DAY": _DAY_MS, "WEEK": 7 * _DAY_MS}


def unit_ms(unit: str) -> int:
    """Milliseconds in a SQL time unit (``SECONDS``, ``MINUTE`` ...)."""
    u = unit.upper()
    if u.endswith("S"):
        u = u[:-1]
    return _UNIT_MS[u]


@safe
def _timestamp_add(unit: str, n: int, ms: int) -> int:
    return ms + n * unit_ms(unit)


@safe
def _date_add(unit: str, n: int, days: int) -> int:
    step = unit_ms(unit)
    if step < _DAY_MS:
        raise ValueError("DATEADD takes DAY or WEEK units")
    return days + n * step // _DAY_MS


@safe
def _time_add(unit: str, n: int, ms: int) -> int:
    return (ms + n * unit_ms(unit)) % _DAY_MS


@safe
def _convert_tz(ms: int, from_tz: str, to_tz: str) -> int:
    # ksqlDB: ts + offset(to_tz) - offset(from_tz), both offsets taken at the instant ts
    def offset(tz: str) -> int:
        return int(_at(ms, tz).utcoffset().total_seconds() * 1000)
    return ms + offset(to_tz) - offset(from_tz)


FUNCTIONS = {
    "from_unixtime": safe(lambda ms: int(ms)),
    "unix_timestamp": safe(lambda ms: int(ms)),
    "format_timestamp": _format_timestamp,
    "parse_timestamp": _parse_timestamp,
    "timestamptostring": _format_timestamp,
    "stringtotimestamp": _parse_timestamp,
    "format_date": _format_date,
    "parse_date": _parse_date,
    "datetostring": _format_date,
    "stringtodate": _parse_date,
    "format_time": _format_time,
    "parse_time": _parse_time,
    "from_days": safe(lambda days: int(days)),
    "unix_date": safe(lambda days: int(days)),
    "timestampadd": _timestamp_add,
    "timestampsub": safe(lambda unit, n, ms: _timestamp_add(unit, -n, ms)),
    "dateadd": _date_add,
    "datesub": safe(lambda unit, n, days: _date_add(unit, -n, days)),
    "timeadd": _time_add,
    "timesub": safe(lambda unit, n, ms: _time_add(unit, -n, ms)),
    "convert_tz": _convert_tz,
}
