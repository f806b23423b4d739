"""The cyclic garbage collector's settings while a backend runs a topology in this process.

A run allocates millions of small containers: records, batches, window state, the output
records a sink collects. Reference counting frees them; the cyclic collector only finds
reference cycles, which our operators never make, and it costs a lot: at CPython's settings
every object that survives a young collection is scanned again by each older one (an
in-memory run collecting 1M output records spent a fifth of its CPU time in the collector).
So, for the duration of a run:

* objects that exist before it (the caller's input, the plan) are moved out of the
  collector's reach (``gc.freeze``);
* whatever survives a collection is frozen too: it is alive (window state, collected
  outputs) and no later collection scans it again;
* the collector runs as often as it pays: the youngest generation is collected after 50,000
  net allocations (CPython's default is 700) until three collections in a row have found no
  garbage; then it waits for 5,000,000, and the first collection that finds garbage brings
  it back to 50,000. A topology whose user code makes reference cycles has them collected
  young; one that makes none (our operators make none) is not scanned for nothing, which on
  a run that collects 1M output records is a fifth of its CPU time. The price is a bound:
  cycles that start late in a run wait for at most 5,000,000 allocations.

Afterwards the thresholds are restored and every object the run left alive is handed back
to the collector in the oldest generation (``gc.freeze`` then ``gc.unfreeze``), where
long-lived objects such as a run's results belong; left in the youngest, up to 5,000,000 of
them would be scanned by the first allocation after the run. If the caller had frozen
objects before the run (``gc.get_freeze_count() > 0``), nothing is unfrozen: theirs stay
frozen, and the run's survivors with them.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator

__all__ = ["YOUNG_THRESHOLD", "MAX_YOUNG_THRESHOLD", "QUIET_COLLECTIONS", "collector_for_a_run",
           "collect_frozen"]

#: Net allocations of tracked objects between two young collections while they find garbage.
YOUNG_THRESHOLD = 50_000
#: ... and once ``QUIET_COLLECTIONS`` collections in a row have found none.
MAX_YOUNG_THRESHOLD = 5_000_000
QUIET_COLLECTIONS = 3


class _AfterCollection:
    """The ``gc.callbacks`` entry of a run: freezes the survivors of each collection and sets
    the next young threshold from what the last ones found."""

    def __init__(self, base: int, cap: int, older: tuple[int, ...]):
        self.base, self.cap, self.older = base, cap, older
        self.quiet = 0  # collections in a row that found no garbage
        self.collections = 0
        self.caller_froze = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop":
            return
        self.collections += 1
        gc.freeze()
        if info.get("collected", 0) or info.get("uncollectable", 0):
            self.quiet = 0
        else:
            self.quiet += 1
        gc.set_threshold(self.cap if self.quiet >= QUIET_COLLECTIONS else self.base, *self.older)


@contextlib.contextmanager
def collector_for_a_run(young_threshold: int = YOUNG_THRESHOLD,
                        max_young_threshold: int = MAX_YOUNG_THRESHOLD) -> Iterator[None]:
    """Set the collector up for a run (see the module's docstring); restored on exit.

    A run inside a run (a backend calling another) keeps the outer run's settings."""
    if any(isinstance(cb, _AfterCollection) for cb in gc.callbacks):
        yield
        return
    thresholds = gc.get_threshold()
    # Objects the caller froze (a pre-fork server, say) must stay frozen: then so do the
    # run's survivors, since gc cannot unfreeze some objects and not others.
    caller_froze = gc.get_freeze_count() > 0
    base = max(thresholds[0], young_threshold)
    policy = _AfterCollection(base, max(base, max_young_threshold), thresholds[1:])
    policy.caller_froze = caller_froze
    gc.freeze()
    gc.set_threshold(base, *thresholds[1:])
    gc.callbacks.append(policy)
    try:
        yield
    finally:
        gc.callbacks.remove(policy)
        gc.freeze()  # what was allocated since the last collection, too: no young collection of
        gc.set_threshold(*thresholds)  # the run's results as soon as the thresholds are back
        if not caller_froze:
            gc.unfreeze()


def collect_frozen() -> None:
    """For a run that does not end (a Kafka run): hand what the run froze back to the collector
    and collect every generation once, so that reference cycles user code left behind since the
    last call are freed rather than kept frozen for the whole run. The Kafka loop calls it every
    minute or so (a full collection costs about a millisecond per 50,000 live objects). Nothing
    happens outside a run, or when the caller had frozen objects itself (see
    ``collector_for_a_run``)."""
    policy = next((cb for cb in gc.callbacks if isinstance(cb, _AfterCollection)), None)
    if policy is None or policy.caller_froze:
        return
    gc.unfreeze()
    gc.collect()
