"""Durations and timestamps: integers in milliseconds, as in Kafka."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Union

__all__ = ["Duration", "to_millis", "to_timestamp", "ms", "seconds", "minutes", "hours", "days"]

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


def to_timestamp(t: object) -> int:
    """Convert an event time (int ms, float ms, datetime, ISO-8601 string) to int ms.

    Naive datetimes are taken as UTC.

    >>> to_timestamp(_dt.datetime(1970, 1, 1, 0, 0, 1))
    1000
    >>> to_timestamp("1970-01-01T00:00:02Z")
    2000
    """
    if isinstance(t, bool):
        raise TypeError("a timestamp cannot be a bool")
    if isinstance(t, int):
        return t
    if isinstance(t, float):
        return int(t)
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return (t - _EPOCH) // _dt.timedelta(milliseconds=1)
    if isinstance(t, str):
        s = t.strip()
        try:
            return int(s)
        except ValueError:
            pass
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            return to_timestamp(_dt.datetime.fromisoformat(s))
        except ValueError:
            raise ValueError(f"cannot read a timestamp from {t!r}") from None
    raise TypeError(f"cannot read a timestamp from a {type(t).__name__}: {t!r}")
