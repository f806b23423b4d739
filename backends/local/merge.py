"""The ``ordered-run-merge`` fast path: in-memory topics merged in the input order
(``runtime.ordering.merge_inputs``: by record timestamp, ties to the topic declared first)
run by run, without an ``InputEvent`` per item.

Each topic is ingested in runs; when every topic's current run is in timestamp order, the
records up to the end of the run that ends first are merged in one step (a bisection per
topic, one stable C-level sort), else record by record.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate, repeat
from operator import add, attrgetter
from typing import Callable

from streamdsl.runtime.records import Record

__all__ = ["Head", "merge_runs", "merge_ordered_runs", "running_max"]

#: ``next_run(j)``: topic ``j``'s next ingested run, and its timestamps if they are in order
NextRun = Callable[[int], "tuple[list[Record], list[int] | None] | None"]
#: ``(records, sequence numbers)`` collected per topic for the next batch
Parts = list[tuple[list[Record], list[int]]]


class Head:
    """A topic's place in the merge: its current run and the next record in it."""

    __slots__ = ("ts", "index", "recs", "next", "run_ts")

    def __init__(self, index: int):
        self.index = index          # topic index (declaration order: wins ties)
        self.ts = 0                 # timestamp of the next record
        self.recs: list[Record] = []  # the current run's records
        self.next = 0               # index of the next record in ``recs``
        self.run_ts: list[int] | None = []  # the run's timestamps when in order, else None


_index = attrgetter("index")


def merge_ordered_runs(heads: list[Head], parts: Parts, seq: int) -> int:
    """One step when every head's run is in timestamp order: the records that come before the
    end of the run that ends first.

    Merging sorted runs by (timestamp, topic index) takes, from each topic, the records up to
    that run's last one (a lower topic index wins a tie) and no record of a run not yet
    loaded (every other run ends later). Their merged order is a stable sort of their
    timestamps concatenated in topic order; each record's sequence number is ``seq`` plus
    its place in it. The heads move past what was taken; returns the next sequence number.
    """
    e = min(heads, key=lambda h: (h.run_ts[-1], h.index))
    bound, ej = e.run_ts[-1], e.index
    segs = []
    all_ts: list[int] = []
    for h in sorted(heads, key=_index):
        j, i, tss = h.index, h.next, h.run_ts
        hi = len(tss) if h is e else (bisect_right if j < ej else bisect_left)(tss, bound, i)
        if hi > i:
            segs.append((h, i, hi))
            all_ts += tss[i:hi]
    m = len(all_ts)
    order = sorted(range(m), key=all_ts.__getitem__)
    place = sorted(range(m), key=order.__getitem__)  # the inverse permutation
    off = 0
    for h, i, hi in segs:
        recs, pseq = parts[h.index]
        recs += h.recs[i:hi]
        pseq += map(add, place[off:off + hi - i], repeat(seq))
        off += hi - i
        h.next = hi
        if hi < len(h.recs):
            h.ts = h.recs[hi].ts  # the head's timestamp (its merge key may be larger)
    return seq + m


def running_max(tss: list[int], carry: int) -> list[int]:
    """The merge keys of a run whose timestamps may be out of order: each record's key is the
    largest timestamp of its topic up to it (``carry``: the largest before the run).

    The timestamp-synchronized merge (the head with the smallest timestamp next, ties to the
    topic declared first) takes the topics' records in the order of a stable sort by (running
    maximum, topic index): a record below its topic's running maximum comes right after the
    one before it, as the head-by-head merge takes it. (By induction on the merge: every
    record taken from a topic was at most each other topic's head then, so a topic's running
    maximum before its head is at most every other's running maximum at its head; taking
    head ``a`` (``a <= b`` for every other head ``b``, ties to the lower index) is then
    taking the smallest running maximum, and not taking it means some ``b < a``, which the
    running maxima keep.) The keys of every run are then in order, so every step takes
    ``merge_ordered_runs``' one sort (tests/backends/local/test_fast_paths.py,
    ``ordered-run-merge``, checks it against ``merge_by_timestamp``)."""
    return list(accumulate(tss, max, initial=carry))[1:]


def merge_runs(n_topics: int, next_run: NextRun, size: int,
               flush: Callable[[Parts], None]) -> tuple[int, list[Record]] | None:
    """Merge topics ``0..n_topics-1`` until one is left: ``flush(parts)`` gets each batch of
    about ``size`` records (per topic, with their sequence numbers in the merged order).
    Returns the last topic's index and its records not yet merged (the caller feeds the rest
    of that topic alone), or None when every topic ran out together."""
    heads = [Head(j) for j in range(n_topics)]
    parts: Parts = [([], []) for _ in range(n_topics)]

    def refill(h: Head) -> None:
        """Head ``h`` has no records left: its topic's next run, or no head."""
        run = next_run(h.index)
        if run:
            h.recs, h.run_ts = run
            h.ts, h.next = h.recs[0].ts, 0
        else:
            heads.remove(h)

    def emit() -> None:
        flush(parts)
        for j in range(n_topics):
            if parts[j][0]:
                parts[j] = ([], [])

    for h in list(heads):
        refill(h)
    seq = 0
    while len(heads) > 1:
        if all(h.run_ts is not None for h in heads):
            seq = merge_ordered_runs(heads, parts, seq)
            if seq >= size:
                emit()
                seq = 0
            for h in [h for h in heads if h.next == len(h.recs)]:
                refill(h)
            continue
        h = min(heads, key=_order)
        j, recs, i = h.index, h.recs, h.next
        # Take this topic's records while they stay first (ties go to the lower index).
        lo = min((o for o in heads if o is not h), key=_order)
        lo_ts, lo_j = lo.ts, lo.index
        prs, pseq = parts[j]
        n = len(recs)
        while i < n:
            r = recs[i]
            if r.ts > lo_ts or (r.ts == lo_ts and lo_j < j):
                break
            prs.append(r)
            pseq.append(seq)
            seq += 1
            i += 1
            if seq >= size:
                emit()
                seq = 0
                prs, pseq = parts[j]
        h.next = i
        if i < n:
            h.ts = recs[i].ts
        else:
            refill(h)
    if seq:
        emit()
    if not heads:
        return None
    h = heads[0]
    return h.index, h.recs[h.next:]


def _order(h: Head) -> tuple[int, int]:
    return (h.ts, h.index)
