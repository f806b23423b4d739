"""Durations and timestamps: integers in milliseconds, as in Kafka."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Union

__all__ = ["Duration", "to_millis", "to_timestamp", "MAX_TIMESTAMP", "ms", "seconds", "minutes",
           "hours", "days"]

Duration = Union[int, _dt.timedelta]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _scaled(n: object, mult: int, unit: str) -> int:
    """``n`` units of ``mult`` ms, rounded to whole ms; a clear error for what is not a number."""
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        raise TypeError(f"{unit} takes a number, got {type(n).__name__} {n!r}"
                        + (f" (write {n.strip()}, not {n!r})" if isinstance(n, str)
                           and n.strip().lstrip("-").replace(".", "", 1).isdigit() else ""))
    if isinstance(n, float) and not math.isfinite(n):
        raise ValueError(f"{unit} takes a finite number, got {n!r}")
    return int(round(n * mult))


def ms(n: float) -> int:
    """``n`` milliseconds as int ms.

    >>> ms(5)
    5
    """
    return _scaled(n, 1, "ms")


def seconds(n: float) -> int:
    """``n`` seconds in ms.

    >>> seconds(2)
    2000
    """
    return _scaled(n, 1000, "seconds")


def minutes(n: float) -> int:
    """``n`` minutes in ms.

    >>> minutes(5)
    300000
    >>> minutes("5")
    Traceback (most recent call last):
    ...
    TypeError: minutes takes a number, got str '5' (write 5, not '5')
    """
    return _scaled(n, 60_000, "minutes")


def hours(n: float) -> int:
    """``n`` hours in ms.

    >>> hours(1)
    3600000
    """
    return _scaled(n, 3_600_000, "hours")


def days(n: float) -> int:
    """``n`` days in ms."""
    return _scaled(n, 86_400_000, "days")


def to_millis(d: Duration | None, *, what: str = "duration") -> int:
    """Normalise a duration (int ms or timedelta) to int ms.

    >>> to_millis(_dt.timedelta(seconds=1.5))
    1500

    Raises:
        TypeError / ValueError: for other types or negative values.
    """
    if d is None:
        return 0
    if isinstance(d, bool):
        raise TypeError(f"{what} must be an int (ms) or a timedelta, not bool")
    if isinstance(d, _dt.timedelta):
        value = d // _dt.timedelta(milliseconds=1)
    elif isinstance(d, int):
        value = d
    elif isinstance(d, float) and d.is_integer():
        value = int(d)
    else:
        raise TypeError(f"{what} must be an int (ms), a timedelta or sd.seconds/minutes/hours(n), "
                        f"got {type(d).__name__} {d!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value} ms")
    return value


#: Event times are integer milliseconds in ``[0, MAX_TIMESTAMP)``: from the epoch up to the end
#: of year 9999 UTC (``10000-01-01T00:00:00Z``, excluded), the instants ``datetime`` and
#: ISO-8601 can name. A timestamp outside is a bad record (docs/semantics.md, "Event times").
MAX_TIMESTAMP = 253_402_300_800_000


def to_timestamp(t: object) -> int:
    """Convert an event time to int ms since the epoch, by the rules of docs/semantics.md
    ("Event times"); raise ``ValueError`` / ``TypeError`` saying why when it is not one.

    * an ``int`` is milliseconds; a ``float`` too, when it is a whole number (``1000.0``):
      one with a fraction (``1000.5``), or not finite (``inf``, ``nan``), is refused, never
      truncated;
    * a ``datetime`` (naive = UTC) or an ISO-8601 string is the instant it names, in whole
      milliseconds (sub-millisecond digits are dropped, as Java's ``Instant.toEpochMilli``
      does); a string of digits is milliseconds;
    * the result must be in ``[0, MAX_TIMESTAMP)`` (1970 to the end of 9999, UTC).

    >>> to_timestamp(_dt.datetime(1970, 1, 1, 0, 0, 1))
    1000
    >>> to_timestamp("1970-01-01T00:00:02Z"), to_timestamp("3000"), to_timestamp(4000.0)
    (2000, 3000, 4000)
    >>> to_timestamp(1e30)
    Traceback (most recent call last):
    ...
    ValueError: timestamp 1e+30 is out of range: event times are ms from 0 (1970-01-01) up to 253402300800000 (10000-01-01T00:00:00Z, excluded)
    >>> to_timestamp(1.5)
    Traceback (most recent call last):
    ...
    ValueError: timestamp 1.5 is not a whole number of milliseconds (convert it in timestamp=...: int(v * 1000) for seconds)
    """
    if isinstance(t, bool):
        raise TypeError("a timestamp cannot be a bool")
    if isinstance(t, int):
        return _in_range(t, t)
    if isinstance(t, float):
        if not math.isfinite(t):
            raise ValueError(f"timestamp {t!r} is not a finite number")
        if not t.is_integer():
            raise ValueError(f"timestamp {t!r} is not a whole number of milliseconds (convert "
                             "it in timestamp=...: int(v * 1000) for seconds)")
        if not 0 <= t < MAX_TIMESTAMP:
            _out_of_range(t)
        return int(t)
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return _in_range((t - _EPOCH) // _dt.timedelta(milliseconds=1), t.isoformat())
    if isinstance(t, str):
        s = t.strip()
        if s.isdigit():
            return _in_range(int(s), t)
        if s.startswith("-") and s[1:].isdigit():
            _out_of_range(t)
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            d = _dt.datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(f"cannot read a timestamp from {t!r} (expected epoch "
                             "milliseconds or an ISO-8601 date-time)") from None
        return to_timestamp(d)
    import numbers
    if isinstance(t, numbers.Integral):
        return to_timestamp(int(t))
    if isinstance(t, numbers.Real):
        return to_timestamp(float(t))
    raise TypeError(f"cannot read a timestamp from a {type(t).__name__}: {t!r}")


def _in_range(ms: int, given: object) -> int:
    if 0 <= ms < MAX_TIMESTAMP:
        return ms
    _out_of_range(given)
    raise AssertionError  # unreachable


def _out_of_range(given: object) -> None:
    what = given if isinstance(given, str) else repr(given)
    raise ValueError(f"timestamp {what} is out of range: event times are ms from 0 "
                     f"(1970-01-01) up to {MAX_TIMESTAMP} (10000-01-01T00:00:00Z, excluded)")
