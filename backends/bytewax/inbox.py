"""Restoring the defined record order inside a Bytewax step.

Bytewax gives no order between items that reach a step from different workers or different
upstream steps (and batches them as it likes), so no step relies on arrival order. Instead:

* Every record carries its **position**: a tuple of ints that is its place in the local
  backend's depth-first processing order. ``(seq, i)`` is the ``seq``-th input event (after the
  timestamp-synchronized merge of the sources) entering the ``i``-th source node of its topic;
  each hop appends ``(j, e)``: ``j`` = index of the record among the outputs of the node that
  emitted it, ``e`` = index of the edge it travels on. Lexicographic order on positions *is*
  depth-first preorder, so it is exactly the defined order (depth first, docs/semantics.md) in which a task processes the
  records, at one node and across nodes. Records emitted at end of input (windows closing)
  have positions ``(END, topological index of the operator, j, ...)``.
* Steps exchange **messages**, one per processed batch, on logical **channels** (one per
  upstream sub-topology). A message carries a per-channel counter (so messages are put back in
  sending order even if the transport reorders them), the records it holds, and a
  **frontier** ``f``: the sender will never again send a record whose ``pos[0] <= f``.
* The receiver (:class:`Inbox`) keeps the records of each channel in position order and
  releases a record only once every input channel's frontier has reached its ``pos[0]``: by
  then every record that comes before it in the defined order has arrived.

A step that processed everything up to frontier ``f`` forwards frontier ``f``: the records it
emits from an input at ``(s, ...)`` have positions ``(s, ...)`` too. ``CLOSED`` is the frontier
of a finished, flushed input: it releases the end-of-input records, then the operator closes
its own windows.
"""

from __future__ import annotations

import bisect
import heapq
from itertools import islice
from operator import itemgetter, lt
from typing import Any, Iterable

__all__ = ["END", "CLOSED", "NONE_YET", "Inbox", "OrderingError", "Block", "InBlock"]

#: ``pos[0]`` of records emitted at end of input (after every input event).
END = 1 << 62
#: Frontier of a channel whose sender has flushed: nothing more will come.
CLOSED = 1 << 63
#: Frontier before anything was sent.
NONE_YET = -1


class Block(list):
    """The outputs of one batch of an operator that numbers them by batch
    (``Layout.batch_positions``): they travel to the sink as one item, at ``(last input seq,
    0)``."""

    __slots__ = ()


class InBlock:
    """The ``(port, record)`` pairs one input batch sends to an operator that processes
    batches in one call, as one item at ``(seqs[0], 0)``; record ``k`` is at ``(seqs[k], 0)``.
    Used where that operator's only channel is the input's and its records all come straight
    from source nodes (so nothing needs their positions one by one, see
    ``StageRunner._direct_target``)."""

    __slots__ = ("pairs", "seqs")

    def __init__(self, pairs: list, seqs: list[int]):
        self.pairs = pairs
        self.seqs = seqs


class OrderingError(RuntimeError):
    """An internal invariant of the ordering protocol broke (a bug, never a user error)."""


def _pos(item: tuple) -> tuple:
    return item[0]


_first = itemgetter(0)


def _seq(item: tuple) -> int:
    return item[0][0]


class Inbox:
    """Per-channel reassembly plus a position-ordered release of records.

    Each channel delivers its records in position order (senders emit in the order they
    process, and every record of a later message lies beyond the earlier frontier), so the
    inbox keeps one sorted run per channel and releases a k-way merge of their ready prefixes.

    Args:
        channels: the ids of the channels feeding this step.

    >>> box = Inbox([0, 1])
    >>> box.add(1, 0, 5, [((4, 0), "b")])
    True
    >>> box.add(0, 0, 3, [((2, 0), "a"), ((5, 0), "c")])
    True
    >>> [item for _, item in box.pop_ready()]       # frontier min(3, 5) = 3
    ['a']
    >>> box.add(0, 1, 9, [])
    True
    >>> [item for _, item in box.pop_ready()]       # frontier 5
    ['b', 'c']
    """

    __slots__ = ("expected", "early", "fronts", "queues", "last")

    def __init__(self, channels: Iterable[int]):
        self.expected: dict[int, int] = {c: 0 for c in channels}
        self.early: dict[tuple[int, int], tuple[int, list]] = {}
        self.fronts: dict[int, int] = {c: NONE_YET for c in self.expected}
        self.queues: dict[int, list[tuple[tuple, Any]]] = {c: [] for c in self.expected}
        self.last: dict[int, tuple] = {c: () for c in self.expected}

    def add(self, channel: int, counter: int, frontier: int, items: list) -> bool:
        """Accept one message; returns False for a duplicate (already accepted) message.

        ``items`` are ``(position, payload)`` pairs in position order.
        """
        nxt = self.expected.get(channel)
        if nxt is None:
            raise OrderingError(f"message on unexpected channel {channel} "
                                f"(expected {sorted(self.expected)})")
        if counter < nxt:
            return False
        if counter > nxt:
            self.early[(channel, counter)] = (frontier, items)
            return True
        self._accept(channel, frontier, items)
        nxt += 1
        while (channel, nxt) in self.early:
            f, its = self.early.pop((channel, nxt))
            self._accept(channel, f, its)
            nxt += 1
        self.expected[channel] = nxt
        return True

    def _accept(self, channel: int, frontier: int, items: list) -> None:
        front = self.fronts[channel]
        if items:
            last = self.last[channel]
            first = items[0][0]
            # increasing positions (one C-level pass) past ``last`` and the frontier: their
            # first members do not decrease, so the first record's is enough
            if first <= last or first[0] <= front or (
                    len(items) > 1 and not all(map(lt, map(_first, items), map(_first, islice(items, 1, None))))):
                for pos, _ in items:
                    if pos <= last or pos[0] <= front:
                        raise OrderingError(
                            f"record at {pos} arrived on channel {channel} out of order (after "
                            f"{last}, frontier {front})")
                    last = pos
            self.last[channel] = items[-1][0]
            self.queues[channel].extend(items)
        if frontier < front:
            raise OrderingError(f"frontier of channel {channel} went back from {front} to {frontier}")
        self.fronts[channel] = frontier

    @property
    def frontier(self) -> int:
        """Everything with ``pos[0] <=`` this has arrived on every channel."""
        return min(self.fronts.values()) if self.fronts else CLOSED

    def pop_ready(self) -> list[tuple[tuple, Any]]:
        """Remove and return, in position order, every record the frontier allows."""
        f = self.frontier
        runs = []
        for q in self.queues.values():
            if not q or q[0][0][0] > f:
                continue
            if q[-1][0][0] <= f:
                runs.append(q[:])
                q.clear()
            else:
                n = bisect.bisect_right(q, f, key=_seq)
                runs.append(q[:n])
                del q[:n]
        if not runs:
            return []
        if len(runs) == 1:
            return runs[0]
        return list(heapq.merge(*runs, key=_pos))

    @property
    def pending(self) -> int:
        """Records held back (waiting for a frontier) plus messages waiting for a predecessor."""
        return sum(len(q) for q in self.queues.values()) + len(self.early)

    def state(self) -> dict:
        """A snapshot (plain data; the caller deep-copies it if needed)."""
        return {"expected": dict(self.expected), "early": dict(self.early),
                "fronts": dict(self.fronts), "queues": {c: list(q) for c, q in self.queues.items()},
                "last": dict(self.last)}

    @classmethod
    def from_state(cls, state: dict) -> "Inbox":
        box = cls(state["expected"])
        box.expected = dict(state["expected"])
        box.early = dict(state["early"])
        box.fronts = dict(state["fronts"])
        box.queues = {c: list(q) for c, q in state["queues"].items()}
        box.last = dict(state["last"])
        return box
