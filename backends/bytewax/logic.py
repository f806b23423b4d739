"""Bytewax ``stateful_batch`` logics: one per stateful operator, one per sink, the errors hub.

Each logic owns exactly one Bytewax key (its task: an operator, one key group of a per-key
operator, a sink topic, the errors hub), so it runs on one worker, and processes its records
strictly in position order (:class:`.inbox.Inbox`), whatever order Bytewax delivers them in. Operator semantics come from the shared processors
(``streamdsl.runtime``); nothing here uses Bytewax's clocks, windows or EOF to decide results.
Bytewax's ``on_eof`` is only used to report metrics.
"""

from __future__ import annotations

import copy
from operator import itemgetter
from typing import Any

from bytewax.operators import StatefulBatchLogic

from streamdsl.runtime.exprsource import compile_agg
from streamdsl.runtime.drive import PROCESS, drive, node_step
from streamdsl.runtime.failures import LateRecord
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import OutputRecord

from .inbox import CLOSED, END, NONE_YET, Block, InBlock, Inbox, OrderingError
from .layout import ERRORS, Layout
from .messages import HeadOutput, Lines, OutputBatch
from .stage import record_failure

__all__ = ["OperatorLogic", "OutputLogic", "FatalAbort", "RunState"]

_second = itemgetter(1)


class FatalAbort(Exception):
    """Raised inside Bytewax to crash a recoverable run at its first fatal record, so that no
    end-of-input snapshot is taken and a rerun processes that record again (``RunState.fatal``
    holds the ``RecordError`` the driver raises)."""


class RunState:
    """Settings shared by the logics of a compiled dataflow, and the state of its current
    execution (a dataflow compiled for a ``TestDriver`` session is executed once per replay:
    ``new_execution`` resets it)."""

    def __init__(self, layout: Layout, on_error: str, *, recovery: bool):
        self.layout = layout
        self.on_error = on_error
        self.recovery = recovery
        #: the run's first fatal error; once set, the input stops reading (in this process)
        self.fatal: Any = None
        self.execution = 0

    def new_execution(self) -> None:
        self.fatal = None
        self.execution += 1


def late_position(pos: tuple, seen: dict) -> tuple:
    """The position of a late record's ``k``-th dead letter at one operator (a hopping record
    can be late for several windows): ``pos + (-1, k)``, after the record's own position and
    before anything its outputs lead to (``pos + (j, ...)``, ``j >= 0``), so several letters
    of one record keep distinct positions, in the order they were met."""
    k = seen.get(pos, 0)
    seen[pos] = k + 1
    return pos + (-1, k)


def _check_drained(inbox: Inbox, name: str) -> None:
    """A closed input leaves nothing held back (an input stopped at a fatal error may)."""
    if inbox.frontier == CLOSED and inbox.pending:
        raise OrderingError(f"{name}: {inbox.pending} records still held back at the end of "
                            "the input")


class OperatorLogic(StatefulBatchLogic):
    """One task of a stateful operator (aggregation, join): the operator itself, or one key
    group of a per-key operator (learnt from the first message, since Bytewax builds a logic
    without telling it its key)."""

    def __init__(self, run: RunState, name: str, resume: dict | None):
        layout = run.layout
        self.run = run
        self.name = name
        self.dest = layout.dest_of[name]
        self.end_pos = (END, layout.topo_index[name])
        self.metrics = Metrics()
        self.step = node_step(layout.plan.node(name), self.metrics)
        self.proc = self.step.processor
        # an agg(...) of count/sum/min/max/avg/first/last: its operations generated (the
        # kernel's compile_agg, equal to its AggOps; local's agg-inline fast path)
        agg = getattr(layout.plan.node(name), "aggregator", None)
        ops = compile_agg(agg) if agg is not None else None
        if ops is not None:
            self.proc.ops = ops
        self.batched = layout.batch_positions(name)
        self.inbox = Inbox(layout.channels[self.dest])
        self.group = 0
        self.counter = 0
        self.sent = NONE_YET
        self.ended = False
        if resume is not None:
            self.inbox = Inbox.from_state(resume["inbox"])
            self.group = resume["group"]
            self.counter = resume["counter"]
            self.sent = resume["sent"]
            self.ended = resume["ended"]
            self.metrics.merge(resume["metrics"])
            self.proc.restore(resume["proc"])
        self._channel = (layout.sub_of_head[name].id, self.group)

    def on_batch(self, values: list) -> tuple[list, bool]:
        inbox = self.inbox
        if self._channel[1] != values[0].group:  # first batch: which key group this task is
            self.group = values[0].group
            self._channel = (self._channel[0], self.group)
        for _dest, _group, chan, counter, frontier, items, _delta, _report in values:
            inbox.add(chan, counter, frontier, items)
        errors: list = []
        ready = inbox.pop_ready()
        if not ready:
            outs: list = []
        elif self.batched:
            outs = self._run_batch(ready, errors)
        else:
            outs = []
            run, name = self.run, self.name
            late: dict = {}

            def fail(pos: tuple, rec: Any, exc: Exception) -> None:
                if isinstance(exc, LateRecord):
                    pos = late_position(pos, late)
                errors.append((pos, record_failure(run.layout, run.on_error, name, rec, exc)))
            if self.step.kind is PROCESS:
                self._run_records(ready, fail, outs)
            else:
                for pos, res, _ in drive(self.step, ((pos, port, rec)
                                                     for pos, (port, rec) in ready), fail):
                    outs.extend((pos + (j,), out) for j, out in enumerate(res))
        frontier = inbox.frontier
        if frontier == CLOSED and not self.ended:
            # End of input, flushed: stream time goes to infinity, every window closes.
            self.ended = True
            try:
                res = self.proc.on_end()
            except Exception as e:
                errors.append((self.end_pos, record_failure(self.run.layout, self.run.on_error,
                                                            self.name, None, e)))
                res = []
            base = self.end_pos
            outs.extend((base + (j,), out) for j, out in enumerate(res))
        return self._send(outs, errors, frontier, None), False

    def _run_records(self, ready: list, fail: Any, outs: list) -> None:
        """``drive`` over ``ready`` in one loop: each record's outputs at its position
        ``+ (j,)``; a record that raises, and the late records ``process`` met, to
        ``fail``."""
        if self.proc.run_marks:
            self._run_marked(ready, fail, outs)
            return
        call = self.step.call
        ctx = self.proc.ctx
        deferred = ctx.deferred
        add = outs.append
        for pos, (port, rec) in ready:
            try:
                res = call(port, rec)
            except Exception as e:
                if deferred:
                    ctx.drain(lambda r, x, pos=pos: fail(pos, r, x))
                fail(pos, rec, e)
                continue
            if deferred:
                ctx.drain(lambda r, x, pos=pos: fail(pos, r, x))
            if res:
                j = 0
                for out in res:
                    add((pos + (j,), out))
                    j += 1

    def _run_marked(self, ready: list, fail: Any, outs: list) -> None:
        """``_run_records`` in one ``_run`` call, for a processor that marks where each
        record's outputs start (``Processor.run_marks``): the outputs of record ``i`` are
        ``res[marks[i]:marks[i + 1]]``, and a failure belongs to the record being processed,
        the last one marked."""
        marks: list[int] = []

        def failed(rec: Any, exc: Exception) -> None:
            fail(ready[len(marks) - 1][0], rec, exc)
        res = self.proc._run(map(_second, ready), failed, marks)
        if not res:
            return
        marks.append(len(res))
        add = outs.append
        a = 0
        for i, item in enumerate(ready, 1):
            b = marks[i]
            if b != a:
                pos = item[0]
                for j in range(b - a):
                    add((pos + (j,), res[a + j]))
                a = b

    def _run_batch(self, ready: list, errors: list) -> list:
        """``ready`` in one ``process_mixed`` call; the outputs travel as one ``Block`` at
        ``(last input seq, 0)`` (see ``Layout.batch_positions``), failures at their record's
        own position."""
        where: dict[int, tuple] = {}
        run = self.run
        name = self.name
        late: dict = {}

        def fail(rec: Any, exc: Exception) -> None:
            if not where:
                for pos, item in ready:
                    if type(item) is InBlock:
                        where.update((id(r), (s, 0)) for s, (_, r) in zip(item.seqs, item.pairs))
                    else:
                        where[id(item[1])] = pos
            pos = where[id(rec)]
            if isinstance(exc, LateRecord):
                pos = late_position(pos, late)
            errors.append((pos, record_failure(run.layout, run.on_error, name, rec, exc)))

        if len(ready) == 1 and type(ready[0][1]) is InBlock:
            pairs = ready[0][1].pairs
        else:
            pairs = []
            for _, item in ready:
                if type(item) is InBlock:
                    pairs += item.pairs
                else:
                    pairs.append(item)
        res = self.proc.process_mixed(pairs, fail)
        return [((ready[-1][0][0], 0), Block(res))] if res else []

    def _send(self, outs: list, errors: list, frontier: int, report: Metrics | None) -> list:
        if not outs and not errors and report is None and frontier == self.sent:
            return []
        msg = HeadOutput(self._channel, self.counter, frontier, outs, errors, report)
        self.counter += 1
        self.sent = frontier
        return [msg]

    def on_eof(self) -> tuple[list, bool]:
        _check_drained(self.inbox, self.name)
        return self._send([], [], self.sent, copy.deepcopy(self.metrics)), False

    def snapshot(self) -> Any:
        if not self.run.recovery:
            return None
        return copy.deepcopy({"inbox": self.inbox.state(), "group": self.group,
                              "counter": self.counter, "sent": self.sent, "ended": self.ended,
                              "metrics": self.metrics, "proc": self.proc.snapshot()})


class OutputLogic(StatefulBatchLogic):
    """A sink (``sink:<topic>``) or the errors hub (``errors``); the role is learnt from the
    first message, since one Bytewax step hosts them all (one key each).

    Emits ``(kind, position, payload)``: ``("recs", pos, [OutputRecord, ...])`` (the records
    released by one batch, ``pos`` the first one's position), ``("dl", pos,
    DeadLetter)``, ``("fatal", pos, Fatal)`` and, at Bytewax's end of input, ``("metrics",
    None, Metrics)``.
    """

    def __init__(self, run: RunState, resume: dict | None):
        self.run = run
        self.metrics = Metrics()
        if resume is None:
            self.dest: str | None = None
            self.inbox: Inbox | None = None
            self.reports: dict[int, Metrics] = {}
            self.failed = False
        else:
            self.dest = resume["dest"]
            self.inbox = Inbox.from_state(resume["inbox"]) if resume["inbox"] else None
            self.reports = resume["reports"]
            self.failed = resume["failed"]
            self.metrics.merge(resume["metrics"])

    def on_batch(self, values: list) -> tuple[list, bool]:
        if self.inbox is None:
            self.dest = values[0].dest
            self.inbox = Inbox(self.run.layout.channels[self.dest])
        inbox = self.inbox
        for _dest, _group, chan, counter, frontier, items, delta, report in values:
            if inbox.add(chan, counter, frontier, items):
                if delta is not None:
                    self.metrics.merge(delta)
                if report is not None:
                    self.reports[chan] = report
        if self.dest == ERRORS:
            return self._errors(), False
        ready = inbox.pop_ready()
        if not ready:
            return [], False
        out: list = []
        run: list = []  # the current run of records (or of encoded lines)
        lines = False
        for pos, rec in ready:
            enc = type(rec) is Lines or type(rec) is bytes
            if run and enc is not lines:
                out.append(self._released(run_pos, run, lines))
                run = []
            if not run:
                run_pos, lines = pos, enc
            if enc or type(rec) is not Block:
                run.append(rec)
            else:
                run.extend(rec)
        out.append(self._released(run_pos, run, lines))
        return out, False

    def _released(self, pos: tuple, run: list, lines: bool) -> tuple:
        """``("recs", pos, OutputBatch)`` for records, ``("lines", pos, Lines)`` for records
        the stages encoded (``messages.Lines``, or ``bytes`` for one record), counted in the
        metrics."""
        m = self.metrics
        if lines:  # ``Lines`` of blocks, ``bytes`` of single records
            n = sum([1 if type(x) is bytes else x.count for x in run])
            data = b"".join([x if type(x) is bytes else x.data for x in run])
        else:
            n = len(run)
        m.records_out += n
        m.out_by_sink[self.dest[len("sink:"):]] += n
        if lines:
            return ("lines", pos, Lines(n, data))
        new = tuple.__new__
        return ("recs", pos, OutputBatch([new(OutputRecord, (r.key, r.value, r.ts, r.window))
                                          for r in run]))

    def _errors(self) -> list:
        out = []
        for pos, (kind, payload) in self.inbox.pop_ready():
            if kind == "dl":
                self.metrics.dead_lettered += 1
                out.append(("dl", pos, payload))
            elif not self.failed:
                # The first fatal record in the defined order is the one the run fails with.
                self.failed = True
                out.append(("fatal", pos, payload))
                self.run.fatal = payload.to_error()
                if self.run.recovery:
                    raise FatalAbort(str(self.run.fatal))
        return out

    def on_eof(self) -> tuple[list, bool]:
        if self.inbox is not None:
            _check_drained(self.inbox, self.dest)
        total = Metrics()
        total.merge(self.metrics)
        for m in self.reports.values():
            total.merge(m)
        return [("metrics", None, total)], False

    def snapshot(self) -> Any:
        if not self.run.recovery:
            return None
        return copy.deepcopy({"dest": self.dest, "inbox": self.inbox.state() if self.inbox else None,
                              "reports": self.reports, "failed": self.failed,
                              "metrics": self.metrics})
