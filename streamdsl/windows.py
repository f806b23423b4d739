"""Window definitions: small immutable value objects with a pure ``assign``.

Windows are aligned to the epoch. ``assign(ts)`` returns the ``(start, end)`` pairs (end
exclusive) of every time window a record with timestamp ``ts`` falls into. Session and sliding
windows are data-driven, so their assignment lives in the operators; the objects carry the
configuration.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Iterator

from . import timeutil
from .callsite import user_site
from .errors import TopologyError
from .timeutil import Duration, to_millis

__all__ = [
    "Window",
    "TumblingWindow",
    "HoppingWindow",
    "SlidingWindow",
    "SessionWindow",
    "tumbling",
    "hopping",
    "sliding",
    "session",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Base class; ``grace`` is in ms."""

    kind: ClassVar[str] = "window"
    grace: int = 0

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        for f in self.__dataclass_fields__:
            d[f] = getattr(self, f)
        return d

    @staticmethod
    def from_dict(d: dict) -> "Window":
        d = dict(d)
        kind = d.pop("kind")
        cls = {c.kind: c for c in (TumblingWindow, HoppingWindow, SlidingWindow, SessionWindow)}[kind]
        return cls(**d)


@dataclass(frozen=True, slots=True, kw_only=True)
class TumblingWindow(Window):
    """Fixed-size, non-overlapping windows ``[k*size, (k+1)*size)``.

    >>> TumblingWindow(size=10).assign(25)
    [(20, 30)]
    """

    kind: ClassVar[str] = "tumbling"
    size: int

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"tumbling window size must be positive, got {self.size} ms")

    def assign(self, ts: int) -> list[tuple[int, int]]:
        start = ts - ts % self.size
        return [(start, start + self.size)]

    def starts(self, ts: int) -> range:
        """The start of ``assign(ts)``'s window, as a range (``HoppingWindow.starts``)."""
        start = ts - ts % self.size
        return range(start, start + 1)

    @property
    def advance(self) -> int:
        return self.size

    def describe(self) -> str:
        return f"tumbling(size={_fmt(self.size)}, grace={_fmt(self.grace)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class HoppingWindow(Window):
    """Overlapping windows of ``size`` every ``advance``; never a negative start.

    >>> HoppingWindow(size=10, advance=5).assign(12)
    [(5, 15), (10, 20)]
    >>> HoppingWindow(size=10, advance=5).assign(3)
    [(0, 10)]
    """

    kind: ClassVar[str] = "hopping"
    size: int
    advance: int

    def __post_init__(self) -> None:
        if self.size <= 0 or self.advance <= 0:
            raise ValueError("hopping window size and advance must be positive")
        if self.advance > self.size:
            raise ValueError(
                f"hopping advance ({self.advance} ms) must not exceed size ({self.size} ms)")

    def assign(self, ts: int) -> list[tuple[int, int]]:
        size = self.size
        return [(start, start + size) for start in self.starts(ts)]

    def starts(self, ts: int) -> range:
        """The starts of ``assign(ts)``'s windows, in increasing order: Kafka's
        ``TimeWindows.windowsFor``, every multiple of advance in (ts - size, ts], never
        negative. (``TimeWindowAggregate._run`` computes the same in place.)

        >>> list(HoppingWindow(size=10, advance=4).starts(13))
        [4, 8, 12]
        """
        advance = self.advance
        first = ts - self.size + 1
        if first < 0:
            first = 0
        first += -first % advance  # up to a multiple of advance
        return range(first, ts - ts % advance + 1, advance)

    def describe(self) -> str:
        return (f"hopping(size={_fmt(self.size)}, advance={_fmt(self.advance)}, "
                f"grace={_fmt(self.grace)})")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlidingWindow(Window):
    """Kafka Streams sliding windows: ``[t - size, t]`` inclusive, defined by the records."""

    kind: ClassVar[str] = "sliding"
    size: int

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError("sliding window size must be positive")

    def describe(self) -> str:
        return f"sliding(size={_fmt(self.size)}, grace={_fmt(self.grace)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionWindow(Window):
    """Session windows: records within ``gap`` (inclusive) of each other share a session."""

    kind: ClassVar[str] = "session"
    gap: int

    def __post_init__(self) -> None:
        if self.gap <= 0:
            raise ValueError("session gap must be positive")

    def describe(self) -> str:
        return f"session(gap={_fmt(self.gap)}, grace={_fmt(self.grace)})"


def _fmt(v: int) -> str:
    for unit, n in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if v and v % n == 0:
            return f"{v // n}{unit}"
    return f"{v}ms"


def _size(size: Duration | None, ms: int | None, seconds: float | None, minutes: float | None,
          hours: float | None, days: float | None, what: str) -> int:
    total = 0
    given = False
    if size is not None:
        total += to_millis(size, what=what)
        given = True
    for n, unit in ((ms, "ms"), (seconds, "seconds"), (minutes, "minutes"), (hours, "hours"),
                    (days, "days")):
        if n is not None:
            total += _UNITS[unit](n)
            given = True
    if not given:
        raise TypeError(f"{what} is required (e.g. minutes=5 or a timedelta)")
    return total


_UNITS = {"ms": timeutil.ms, "seconds": timeutil.seconds, "minutes": timeutil.minutes,
          "hours": timeutil.hours, "days": timeutil.days}


@contextmanager
def _declared(what: str, site: str | None) -> Iterator[None]:
    """A bad window argument is a ``TopologyError`` at the user's call ``site`` (``what``: the
    factory)."""
    try:
        yield
    except (TypeError, ValueError) as e:
        raise TopologyError(f"{what}: {e}", site=site) from None


def tumbling(size: Duration | None = None, *, ms: int | None = None, seconds: float | None = None,
             minutes: float | None = None, hours: float | None = None, days: float | None = None,
             grace: Duration = 0) -> TumblingWindow:
    """Tumbling windows.

    >>> tumbling(minutes=5, grace=60_000)
    TumblingWindow(grace=60000, size=300000)

    Raises:
        TopologyError: a size or grace that is not a duration, or not positive (at the call).
    """
    with _declared("sd.tumbling", user_site()):
        return TumblingWindow(size=_size(size, ms, seconds, minutes, hours, days, "window size"),
                              grace=to_millis(grace, what="grace"))


def hopping(size: Duration, advance: Duration, *, grace: Duration = 0) -> HoppingWindow:
    """Hopping windows of ``size`` starting every ``advance``.

    >>> hopping(10_000, 5_000).assign(12_000)
    [(5000, 15000), (10000, 20000)]
    """
    with _declared("sd.hopping", user_site()):
        return HoppingWindow(size=to_millis(size, what="window size"),
                             advance=to_millis(advance, what="advance"),
                             grace=to_millis(grace, what="grace"))


def sliding(size: Duration, *, grace: Duration = 0) -> SlidingWindow:
    """Sliding windows (Kafka ``SlidingWindows.ofTimeDifferenceAndGrace``)."""
    with _declared("sd.sliding", user_site()):
        return SlidingWindow(size=to_millis(size, what="window size"),
                             grace=to_millis(grace, what="grace"))


def session(gap: Duration, *, grace: Duration = 0) -> SessionWindow:
    """Session windows with inactivity ``gap``."""
    with _declared("sd.session", user_site()):
        return SessionWindow(gap=to_millis(gap, what="gap"), grace=to_millis(grace, what="grace"))
