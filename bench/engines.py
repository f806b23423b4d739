"""What the native Bytewax and Beam programs share: running them the idiomatic way, but
deterministically and without the network.

* Bytewax: one worker (``run_main``), ``TestingSource`` batches of 1000. Event-time windows use
  ``EventClock`` with a *fixed* ``now_getter`` and no wake-ups (``to_system_utc`` -> None):
  with the default wall clock the watermark of historical data depends on how fast the run
  goes, so records are dropped as late nondeterministically, and ``to_system_utc`` of old
  timestamps asks for a notification of every key at every activation (quadratic work). Both
  are documented knobs of ``EventClock``; with them the watermark is max event time - wait.
* Beam: ``FnApiRunner`` in memory, pinned (the default DirectRunner tries Prism first, which
  downloads a binary). Output is collected by a module-level function, which Beam pickles by
  reference, so the in-process worker appends to this module's list.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

__all__ = ["EPOCH", "BATCH", "ms_to_dt", "dt_to_ms", "event_clock", "run_bytewax", "run_beam",
           "read_memory", "collect"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Items per TestingSource batch (what the issue's reference figures used).
BATCH = 1000
_FIXED_NOW = datetime(2000, 1, 1, tzinfo=timezone.utc)


def ms_to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def dt_to_ms(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(milliseconds=1)


def _fixed_now() -> datetime:
    return _FIXED_NOW


def _no_wakeup(_ts: datetime) -> None:
    return None


def event_clock(ts_getter: Callable[[Any], datetime], wait: timedelta) -> Any:
    """A deterministic ``EventClock``: watermark = largest event time seen - ``wait``."""
    from bytewax.operators.windowing import EventClock
    return EventClock(ts_getter, wait_for_system_duration=wait, now_getter=_fixed_now,
                      to_system_utc=_no_wakeup)


def run_bytewax(build: Callable[[list], Any]) -> list:
    """Build a flow with ``build(out)`` (it writes to ``TestingSink(out)``) and run it on one
    worker; returns ``out``."""
    from bytewax.testing import run_main
    out: list = []
    run_main(build(out))
    return out


_COLLECTED: list = []


def collect(item: Any) -> None:
    """A Beam sink for the in-memory runner (see the module docstring)."""
    _COLLECTED.append(item)


def read_memory(events: list) -> Any:
    """A root transform giving the items of an in-memory list: ``Impulse`` then a ``FlatMap``
    over the list (pickled once with the pipeline), as a custom source would; what our beam
    backend does too. ``beam.Create(list)`` is not used: it runs type inference over every
    element (twice), which for dicts costs more than the whole rest of the pipeline."""
    import apache_beam as beam

    class ReadMemory(beam.PTransform):
        def expand(self, pbegin: Any) -> Any:
            return (pbegin | "Impulse" >> beam.Impulse()
                    | "Items" >> beam.FlatMap(lambda _, items=events: items))
    return ReadMemory()


def run_beam(build: Callable[[Any], Any]) -> list:
    """Run ``build(pipeline)`` on FnApiRunner (in memory) and return what reached ``collect``."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    _COLLECTED.clear()
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        build(p)
    out = list(_COLLECTED)
    _COLLECTED.clear()
    return out
