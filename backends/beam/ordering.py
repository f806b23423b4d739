"""Order keys: how the Beam backend restores the defined record order (depth first).

Beam promises no order between elements, so every element carries a *lineage key*, a tuple
of ints that sorts exactly as depth-first processing handles the records
(docs/semantics.md, "Input order"):

* an input event gets ``(0, *position)``: its place in the defined input order
  (DESIGN.md "Determinism": the timestamp-synchronized merge of the sources);
* a source node ``s`` reading the event appends its index among the nodes reading that topic;
* a node forwarding its ``i``-th output record of one call along its ``j``-th out edge
  appends ``(i, j)``;
* records a stateful node emits when the input ends get ``(1, t, g)`` (``t``: the node's
  topological index, ``g``: its task) instead of an input position, then ``(i, j)`` per hop
  as above.

Depth-first processing pushes each record: a node's outputs in order, each along
the out edges in order, before the next input record. That is a pre-order walk of the call
tree whose children are numbered ``(i, j)``, so sorting records by lineage key (tuples compare
lexicographically) gives the order in which depth-first processing handles them, at any node and at
the sinks. Keys are unique: ``j`` names the receiving node, so no two records share a key.
At end of input operators are closed in topological order, pushing each one's
results downstream before closing the next: ``(1, t, g)`` sorts after every input record and
in that order.
"""

from __future__ import annotations

import numbers
import zlib
from typing import Any, Callable, Iterable, Iterator

from streamdsl.ir.nodes import Node
from streamdsl.ir.tasks import keys_only
from streamdsl.runtime.partitioning import Partitioner
from streamdsl.runtime.records import InputEvent

__all__ = ["NEG_INF", "KEY_GROUPS", "input_key", "end_key", "merge_keys", "keys_only",
           "task_router", "KeyGroupRoute", "PartitionRoute", "stable_hash"]

#: The timestamp ``merge_inputs`` gives an undecodable event (it goes first).
NEG_INF = -(1 << 62)


def input_key(*position: int) -> tuple:
    """Lineage key of an input event at ``position`` in the defined input order."""
    return (0, *position)


def end_key(topo_index: int, task: int = 0) -> tuple:
    """Lineage key prefix of what a node's task emits when the input ends (operators in
    topological order, each one's tasks in order: what the local backend does)."""
    return (1, topo_index, task)


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


#: Groups a per-key operator's records are spread over (see ``task_of``).
KEY_GROUPS = 16



class KeyGroupRoute:
    """``key -> group`` for an operator whose results per key depend on that key's records
    only (``keys_only``): any split by key gives the same results, so its records are spread
    over ``groups`` groups by a hash of the key that equal keys share in every process."""

    def __init__(self, groups: int):
        self.groups = groups

    def __call__(self, key: Any) -> int:
        return stable_hash(key) % self.groups


class PartitionRoute:
    """``key -> task`` for any other stateful operator: the key's partition of ``n``
    (``streamdsl.runtime.partitioning``). A Kafka Streams task owns a partition's keys and keeps
    one stream time across them, so lateness, window closing and join expiry of one key depend
    on the other keys of its partition: the records of a task meet, sorted, in one place. (At a
    stateful operator a record's key gives its partition: sources partition by key, and a key
    change before a stateful operator is followed by a repartition.) A null key goes to task
    0: the operator skips it."""

    def __init__(self, n: int):
        self.partitioner = Partitioner(n)

    def __call__(self, key: Any) -> int:
        return 0 if key is None else self.partitioner(key, 0)


def task_router(node: Node, partitions: int) -> tuple[int, Any]:
    """``(task groups, route)`` of a stateful node's ``GroupByKey``: ``KEY_GROUPS`` key groups
    for a per-key operator, one task per partition for any other (``route`` None: one task)."""
    if keys_only(node):
        return KEY_GROUPS, KeyGroupRoute(KEY_GROUPS)
    if partitions > 1:
        return partitions, PartitionRoute(partitions)
    return 1, None


def stable_hash(key: Any) -> int:
    """A hash equal for equal keys, in every process (``hash`` of a str is salted per process).

    >>> stable_hash(1) == stable_hash(1.0) == stable_hash(True), stable_hash("a") == stable_hash("a")
    (True, True)
    """
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if isinstance(key, bytes):
        return zlib.crc32(key)
    if isinstance(key, tuple):
        h = 7
        for k in key:
            h = (h * 31 + stable_hash(k)) & 0xFFFFFFFF
        return h
    if isinstance(key, numbers.Number):  # 2 == 2.0 == Decimal(2) == numpy.int64(2)
        try:
            if key == int(key):  # type: ignore[call-overload]
                return int(key) & 0xFFFFFFFF  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError):
            pass
    return 1  # None, other numbers, other types: one group (equal values may hash apart)
