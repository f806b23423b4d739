"""The Kafka loop's columnar hand-over (``kafka-columns``): consumed JSON values kept in columns
per partition, merged by one stable sort, handed to the executor's columnar run.

For a run that reads one Kafka topic (JSON objects carrying the stream's ``key=`` and
``timestamp=`` fields, its Kafka key unused) through a plan whose source has a columnar run
(``columnar.Segment``), each consumed run of a partition's messages is decoded by C-level
``map`` calls into its channel's ``ColumnBuffer`` (values, event times, offsets): no ``Record``
per message. ``take_order`` gives the timestamp-synchronized merge of the buffers (what
``heapq.merge`` of ``(event time, rank, record)`` entries with a sentinel ending each buffer
that may still grow gives) as one sort, and ``Executor.feed_columns`` runs the merged columns
with each record's task (its partition). A consumed message that is not such a value (an
error, bad JSON, a missing field) turns the run back to its record path for good
(``KafkaRun._leave_columns``); results are the same either way.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate, chain, repeat
from operator import add, le, mul
from typing import Any, NamedTuple

__all__ = ["ColumnBuffer", "Head", "merge_keys", "take_order"]


class ColumnBuffer:
    """A partition's consumed records not yet fed, as columns (``values``: the decoded JSON
    objects; ``tss``: their event times; ``offsets``), from index ``head`` on. ``len`` and
    truth are those of the records buffered, as for the record path's deque.

    While the buffered event times are in order (``ordered``), ``keys`` holds each record's
    merge key (``merge_keys``: its event time, then the channel's ``index`` among ``width``),
    made once as records arrive: from any record on, the running maximum is the event time."""

    __slots__ = ("values", "tss", "offsets", "head", "keys", "ordered", "index", "width")

    def __init__(self, index: int, width: int) -> None:
        self.index = index
        self.width = width
        self.clear()

    def __len__(self) -> int:
        return len(self.tss) - self.head

    def extend(self, values: list, tss: list[int], offsets: list[int]) -> None:
        h = self.head
        if h:  # drop what was fed before growing
            del self.values[:h], self.tss[:h], self.offsets[:h]
            if self.ordered:
                del self.keys[:h]
            self.head = 0
        if self.ordered:
            if all(map(le, tss, tss[1:])) and (not self.tss or self.tss[-1] <= tss[0]):
                self.keys += merge_keys(tss, self.index, self.width)
            else:
                self.ordered = False
                self.keys = []
        self.values += values
        self.tss += tss
        self.offsets += offsets

    def merge_keys(self) -> tuple[list[int], int]:
        """The buffered records' merge keys (``take_order``) and where they start."""
        if self.ordered:
            return self.keys, self.head
        return merge_keys(self.tss[self.head:], self.index, self.width), 0

    def advance(self, k: int) -> None:
        """The first ``k`` buffered records were fed."""
        self.head += k
        if self.head >= len(self.tss):
            self.clear()

    def clear(self) -> None:
        self.values: list[Any] = []
        self.tss: list[int] = []
        self.offsets: list[int] = []
        self.keys: list[int] = []
        self.head = 0
        self.ordered = True


def merge_keys(tss: list[int], index: int, width: int) -> list[int]:
    """The merge keys of a channel's records from some record on (``take_order``): the running
    maximum of their event times from there (``merge.running_max``), then the channel's tie
    ``index`` (``0 <= index < width``), as one int: ``running max * width + index``."""
    rm = tss if all(map(le, tss, tss[1:])) else list(accumulate(tss, max))
    return list(map(add, map(mul, rm, repeat(width)), repeat(index)))


class Head(NamedTuple):
    """A channel's part in one merge: the merge keys of its buffered records (``merge_keys``)
    from index ``lo`` on, and whether it may still deliver records (not at its end)."""

    keys: list[int]
    lo: int
    more: bool


def take_order(heads: list[Head], limit: int | None = None) -> tuple[list[int], list[int]]:
    """The timestamp-synchronized merge of channels' buffers: ``(counts, order)``,
    ``counts[c]`` how many of ``heads[c]``'s first records the merge takes and ``order``
    their merged order, as indexes into the concatenation of those prefixes (``heads[0]``'s
    first).

    The merge takes the head with the smallest (event time, channel rank) next and stops
    where a channel that may still deliver records has nothing more buffered (its next record
    is not known yet), or after ``limit`` records. That is a stable sort by (running maximum
    of the channel's event times, rank), the running maximum taken from the first buffered
    record (``merge.running_max``: a head-by-head merge keeps no state but the heads, so it
    may start at any point), up to the last record of the channel with more to come whose key
    is smallest: the keys of ``merge_keys``, one int each. Checked against ``heapq.merge`` in
    tests/backends/local/test_kafka_columns.py.
    """
    cut: int | None = None
    for keys, lo, more in heads:
        if more:
            if len(keys) <= lo:  # its next record may come first
                return [0] * len(heads), []
            if cut is None or keys[-1] < cut:
                cut = keys[-1]
    counts = [len(keys) - lo if cut is None else bisect_right(keys, cut, lo) - lo
              for keys, lo, _ in heads]
    n = total = sum(counts)
    if limit is not None and limit < n:
        n = limit
    if sum(1 for x in counts if x) <= 1:  # one channel: its own order
        order = list(range(n))
    else:
        flat = list(chain.from_iterable(keys[lo:lo + x] for (keys, lo, _), x in zip(heads, counts)))
        order = sorted(range(total), key=flat.__getitem__)[:n]
    if n < total:  # the limit: what each channel gives to the first n
        r = len(heads)
        starts = list(accumulate(counts, initial=0))
        ch_of = list(chain.from_iterable(repeat(c, x) for c, x in enumerate(counts)))
        got = [0] * r
        for c in map(ch_of.__getitem__, order):
            got[c] += 1
        # (order indexes the full prefixes; re-indexed into the prefixes now taken)
        shift = [starts[c] - sum(got[:c]) for c in range(r)]
        order = [i - shift[ch_of[i]] for i in order]
        counts = got
    return counts, order
