"""What the steps of a compiled dataflow send each other (named tuples: they cross worker
threads and processes by pickle, and the hot loops unpack them)."""

from __future__ import annotations

from typing import Any, NamedTuple

from streamdsl.runtime.metrics import Metrics

__all__ = ["InputBatch", "Message", "HeadOutput"]


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
