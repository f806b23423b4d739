"""Restoring the defined record order inside a Bytewax step.

Bytewax gives no order between items that reach a step from different workers or different
upstream steps (and batches them as it likes), so no step relies on arrival order. Instead:

* Every record carries its **position**: a tuple of ints that is its place in the local
  backend's depth-first processing order. ``(seq, i)`` is the ``seq``-th input event (after the
  timestamp-synchronized merge of the sources) entering the ``i``-th source node of its topic;
  each hop appends ``(j, e)``: ``j`` = index of the record among the outputs of the node that
  emitted it, ``e`` = index of the edge it travels on. Lexicographic order on positions *is*
  depth-first preorder, so it is exactly the order in which the local executor processes the
  records, at one node and across nodes. Records emitted at end of input (windows closing)
  have positions ``(END, topological index of the operator, j, ...)``.
* Steps exchange **messages**, one per processed batch, on logical **channels** (one per
  upstream sub-topology). A message carries a per-channel counter (so messages are put back in
  sending order even if the transport reorders them), the records it holds, and a
  **frontier** ``f``: the sender will never again send a record whose ``pos[0] <= f``.
* The receiver (:class:`Inbox`) keeps the records in a heap by position and releases a record
  only once every input channel's frontier has reached its ``pos[0]``: by then every record
  that comes before it in the defined order has arrived.

A step that processed everything up to frontier ``f`` forwards frontier ``f``: the records it
emits from an input at ``(s, ...)`` have positions ``(s, ...)`` too. ``CLOSED`` is the frontier
of a finished, flushed input: it releases the end-of-input records, then the operator closes
its own windows.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable, Iterator

__all__ = ["END", "CLOSED", "NONE_YET", "Inbox", "OrderingError"]

#: ``pos[0]`` of records emitted at end of input (after every input event).
END = 1 << 62
#: Frontier of a channel whose sender has flushed: nothing more will come.
CLOSED = 1 << 63
#: Frontier before anything was sent.
NONE_YET = -1


class OrderingError(RuntimeError):
    """An internal invariant of the ordering protocol broke (a bug, never a user error)."""


class Inbox:
    """Per-channel reassembly plus a position-ordered release of records.

    Args:
        channels: the ids of the channels feeding this step.

    >>> box = Inbox([0, 1])
    >>> box.add(1, 0, 5, [((4, 0), "b")])
    >>> box.add(0, 0, 3, [((2, 0), "a"), ((5, 0), "c")])
    >>> [item for _, item in box.pop_ready()]       # frontier min(3, 5) = 3
    ['a']
    >>> box.add(0, 1, 9, [])
    >>> [item for _, item in box.pop_ready()]       # frontier 5
    ['b', 'c']
    """

    __slots__ = ("expected", "early", "fronts", "heap", "_tie")

    def __init__(self, channels: Iterable[int]):
        self.expected: dict[int, int] = {c: 0 for c in channels}
        self.early: dict[tuple[int, int], tuple[int, list]] = {}
        self.fronts: dict[int, int] = {c: NONE_YET for c in self.expected}
        self.heap: list[tuple[tuple, int, Any]] = []
        self._tie = 0

    def add(self, channel: int, counter: int, frontier: int, items: list) -> bool:
        """Accept one message; returns False for a duplicate (already accepted) message.

        ``items`` are ``(position, payload)`` pairs in any order.
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
        heap = self.heap
        for pos, payload in items:
            if pos[0] <= front:
                raise OrderingError(f"record at {pos} arrived on channel {channel} after its "
                                    f"frontier {front}")
            self._tie += 1
            heapq.heappush(heap, (pos, self._tie, payload))
        if frontier < front:
            raise OrderingError(f"frontier of channel {channel} went back from {front} to {frontier}")
        self.fronts[channel] = frontier

    @property
    def frontier(self) -> int:
        """Everything with ``pos[0] <=`` this has arrived on every channel."""
        return min(self.fronts.values()) if self.fronts else CLOSED

    def pop_ready(self) -> Iterator[tuple[tuple, Any]]:
        """Release, in position order, every record the frontier allows."""
        f = self.frontier
        heap = self.heap
        while heap and heap[0][0][0] <= f:
            pos, _, payload = heapq.heappop(heap)
            yield pos, payload

    @property
    def pending(self) -> int:
        """Records held back (waiting for a frontier) plus messages waiting for a predecessor."""
        return len(self.heap) + len(self.early)

    def state(self) -> dict:
        """A snapshot (plain data; the caller deep-copies it if needed)."""
        return {"expected": dict(self.expected), "early": dict(self.early),
                "fronts": dict(self.fronts), "heap": list(self.heap), "tie": self._tie}

    @classmethod
    def from_state(cls, state: dict) -> "Inbox":
        box = cls(state["expected"])
        box.expected = dict(state["expected"])
        box.early = dict(state["early"])
        box.fronts = dict(state["fronts"])
        box.heap = list(state["heap"])
        heapq.heapify(box.heap)
        box._tie = state["tie"]
        return box
