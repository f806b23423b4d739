"""Order keys: how the Beam backend restores the local executor's record order.

Beam promises no order between elements, so every element carries a *lineage key*, a tuple
of ints that sorts exactly as the local executor would have handled the records:

* an input event gets ``(0, *position)``: its place in the defined input order
  (DESIGN.md "Determinism": the timestamp-synchronized merge of the sources);
* a source node ``s`` reading the event appends its index among the nodes reading that topic;
* a node forwarding its ``i``-th output record of one call along its ``j``-th out edge
  appends ``(i, j)``;
* records a stateful node emits when the input ends get ``(1, t)`` (``t``: the node's
  topological index) instead of an input position, then ``(i, j)`` per hop as above.

The local executor pushes each record depth first: a node's outputs in order, each along
the out edges in order, before the next input record. That is a pre-order walk of the call
tree whose children are numbered ``(i, j)``, so sorting records by lineage key (tuples compare
lexicographically) gives the order in which the executor handles them, at any node and at
the sinks. Keys are unique: ``j`` names the receiving node, so no two records share a key.
At end of input the executor closes operators in topological order, pushing each one's
results downstream before closing the next: ``(1, t)`` sorts after every input record and in
that order.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from streamdsl.runtime.records import InputEvent

__all__ = ["NEG_INF", "input_key", "end_key", "merge_keys", "task_of"]

#: The timestamp ``merge_inputs`` gives an undecodable event (it goes first).
NEG_INF = -(1 << 62)


def input_key(*position: int) -> tuple:
    """Lineage key of an input event at ``position`` in the defined input order."""
    return (0, *position)


def end_key(topo_index: int) -> tuple:
    """Lineage key prefix of what a node emits when the input ends."""
    return (1, topo_index)


def merge_keys(events: Iterable[InputEvent], source_index: int,
               ts_of: Callable[[InputEvent], int] | None) -> Iterator[tuple[tuple, InputEvent]]:
    """Sort keys placing one source's events in the timestamp-synchronized merge.

    The merge (``streamdsl.runtime.ordering.merge_by_timestamp``) takes the input head with the
    smallest timestamp, ties to the earlier input. Sorting by ``(running max of the source's
    timestamps, source index, position)`` gives the same sequence: an event leaves only after
    everything before it in its own source, and while a larger timestamp heads a source, that
    source waits for every other head below it. Each source is thus keyed on its own, in one
    sequential pass, and files can be read in parallel.

    ``ts_of`` gives an event's timestamp (``NEG_INF`` when it cannot be read); None means a
    single source, whose order is its own.

    >>> evs = [InputEvent("a", None, None, t, i) for i, t in enumerate([5, 1])]
    >>> [k for k, _ in merge_keys(evs, 0, lambda e: e.timestamp)]
    [(5, 0, 0), (5, 0, 1)]
    """
    high = NEG_INF
    for seq, ev in enumerate(events):
        if ts_of is not None:
            high = max(high, ts_of(ev))
        yield (high, source_index, seq), ev


def task_of(rec: Any) -> int:
    """The Kafka Streams task a record belongs to at a stateful operator.

    A task owns a partition's keys and keeps one stream time across them, so lateness, window
    closing and join expiry of one key depend on the other keys' records. Every source has one
    partition (DESIGN.md), hence one task per operator: all its records meet, sorted, in one
    place. With several partitions this becomes the partition of the record's key.
    """
    return 0
