"""What the steps of a compiled dataflow send each other (named tuples: they cross worker
threads and processes by pickle, and the hot loops unpack them)."""

from __future__ import annotations

import pickle
import threading
from typing import Any, NamedTuple

from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import OutputRecord, Record

__all__ = ["InputBatch", "Message", "HeadOutput", "OutputBatch", "Lines"]


class InputBatch(NamedTuple):
    """A batch of input events from the ``input`` step to the input stage."""

    #: the source's batch number
    counter: int
    #: the position below which no more input comes (``inbox.CLOSED`` at the end)
    frontier: int
    #: the position of the first event
    start: int
    #: the events, as ``io.merge_ingested`` gives them
    items: list
    #: the input share that read them (``io.ShardedFileSource``; 0 for the one reader): the
    #: input stage sends them on channel ``(0, share)``
    share: int = 0


_NO_ORIGIN = "\0no origin"


def _pack(items: list) -> tuple:
    """``items`` in columns for pickling (``Message.__reduce__``): ``(pos, (port, Record))``
    or ``(pos, Record)`` items as one list per field, which pickles and unpickles several
    times faster than a ``Record`` object each (a message crosses processes by pickle)."""
    if not items:
        return ("p", items)
    first = items[0][1]
    kind = "c" if type(first) is tuple else "r"
    try:
        pos = [p for p, _ in items]
        if kind == "c":
            ports = [x[0] for _, x in items]
            recs = [x[1] for _, x in items]
        else:
            ports = []
            recs = [x for _, x in items]
    except (TypeError, ValueError):  # not those shapes
        return ("p", items)
    for r in recs:
        if type(r) is not Record:
            return ("p", items)
    origins = [r.origin for r in recs]
    topics = [None if o is None else o[0] for o in origins]
    where = [_NO_ORIGIN if o is None else o[1] for o in origins]
    return (kind, (pos, ports, [r.key for r in recs], [r.value for r in recs],
                   [r.ts for r in recs], [r.window for r in recs], topics, where))


def _unpack(packed: tuple) -> list:
    kind, data = packed
    if kind == "p":
        return data
    pos, ports, keys, values, ts, windows, topics, where = data
    new = object.__new__
    recs = []
    add = recs.append
    for k, v, t, w, a, b in zip(keys, values, ts, windows, topics, where):
        r = new(Record)
        r.key = k
        r.value = v
        r.ts = t
        r.window = w
        r.origin = None if a is None and b == _NO_ORIGIN else (a, b)
        add(r)
    if kind == "c":
        return list(zip(pos, zip(ports, recs)))
    return list(zip(pos, recs))


def _message(dest: str, group: int, channel: tuple, counter: int, frontier: int,
             packed: tuple, metrics: Any, report: Any) -> "Message":
    return Message(dest, group, channel, counter, frontier, _unpack(packed), metrics, report)


#: The last item each thread pickled, and what it pickled to. Bytewax pickles an item that
#: crosses processes once to learn its size and once to write it (timely asks bincode for
#: the size first, and Bytewax's serializer calls ``pickle.dumps``): the second call for the
#: same object gets the first one's bytes instead of packing and pickling it again.
_LAST = threading.local()


def _once(obj: Any, make: Any) -> tuple:
    """``(_unpickled, (bytes,))`` for ``obj``: ``make(obj)`` (a ``__reduce__`` tuple) pickled
    once, the bytes reused if the same object is pickled again next (see ``_LAST``)."""
    last = getattr(_LAST, "item", None)
    if last is not None and last[0] is obj:
        return last[1]
    reduced = (_unpickled, (pickle.dumps(make(obj), pickle.HIGHEST_PROTOCOL),))
    _LAST.item = (obj, reduced)  # holds ``obj``, so its id is not reused meanwhile
    return reduced


def _unpickled(data: bytes) -> Any:
    return pickle.loads(data)


class _Reduced:
    """What ``_once`` pickles for an item: its own reduce tuple, called back on unpickling."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Any, args: tuple):
        self.fn = fn
        self.args = args

    def __reduce__(self) -> tuple:
        return (self.fn, self.args)


class OutputBatch(list):
    """The ``OutputRecord`` s a sink task releases from one batch (``logic.OutputLogic``): on
    their way to the sink's writer (often another process) they pickle as four columns, not
    as a named tuple each (whose pickling calls Python code per record)."""

    __slots__ = ()

    def __reduce__(self) -> tuple:
        return _once(self, _output_columns)


def _output_columns(batch: "OutputBatch") -> _Reduced:
    return _Reduced(_output_batch, ([r[0] for r in batch], [r[1] for r in batch],
                                    [r[2] for r in batch], [r[3] for r in batch]))


def _output_batch(keys: list, values: list, ts: list, windows: list) -> OutputBatch:
    new = tuple.__new__
    return OutputBatch([new(OutputRecord, r) for r in zip(keys, values, ts, windows)])


class Message(NamedTuple):
    """What a stage sends one task (an operator's key group, a sink, the errors hub)."""

    #: the destination (``op:<node>``, ``sink:<topic>``, ``errors``)
    dest: str
    #: the destination's key group (0 for a single-task destination)
    group: int
    #: the sending channel: ``(sub-topology id, key group of the sender)``
    channel: tuple[int, int]
    #: the sender's message number on this channel
    counter: int
    #: the position below which the sender has nothing more to send
    frontier: int
    #: ``(position, payload)`` items in position order
    items: list
    #: the sender's counts since its last message (to the errors hub only)
    metrics: Metrics | None
    #: a stateful task's metrics at end of input (to the errors hub only)
    report: Metrics | None

    def __reduce__(self) -> tuple:
        # across processes: the records in columns (``_pack``), pickled once (``_once``)
        return _once(self, _message_columns)


def _message_columns(m: Message) -> _Reduced:
    return _Reduced(_message, (m.dest, m.group, m.channel, m.counter, m.frontier,
                               _pack(m.items), m.metrics, m.report))


class Lines(NamedTuple):
    """Records of a sink written to a JSON-lines file, encoded by the stage that made them
    (in the process of their task, ``StageRunner._messages``): ``count`` records as the bytes
    ``JsonlSink.write`` would write for them. They cross processes and are merged by the sink
    as bytes, and its writer writes them as they are."""

    count: int
    data: bytes


class HeadOutput(NamedTuple):
    """What a stateful task emits to the stage after it."""

    channel: tuple[int, int]
    counter: int
    frontier: int
    #: ``(position, Record)`` outputs (or ``(position, Block)``)
    outs: list
    #: ``(position, errors-hub payload)``
    errors: list
    report: Any
