"""Running the stateless part of a sub-topology, record by record, with positions.

Nodes are driven as every backend drives them (``streamdsl.runtime.drive``: the kernel's
processors, failures classified by ``runtime.failures``), one node at a time over a batch as
the local executor's batches do, for the nodes of one sub-topology; every record is tagged
with its position (see :mod:`.inbox`). Records that reach a boundary are collected per
destination; failures become dead letters or fatal errors addressed to the errors hub, at the
position where depth-first processing meets them.

Records that need no node of the sub-topology skip the node-by-node run: a source node's
records go straight to its one destination (an operator that processes batches in one call
gets them as one ``InBlock`` per batch), and a stateful head's outputs to its one destination.
"""

from __future__ import annotations

import pickle
from functools import partial
from itertools import count, repeat
from operator import itemgetter
from typing import Any, Callable, NamedTuple

from streamdsl.connectors.jsonl import encode_record, encode_records
from streamdsl.errors import RecordError
from streamdsl.ir.nodes import Sink, Source, TableFilter, TableMap
from streamdsl.runtime.drive import BRANCH, FN, PROCESS, NodeStep, drive, node_step
from streamdsl.runtime.failures import Failure, failure, input_failure
from streamdsl.runtime.ingest import BadRecord, make_ingest
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import InputEvent, Record
from streamdsl.runtime.stateless import _identity

from .inbox import Block, InBlock
from .messages import Lines, Message
from .prefilter import Dropped
from .layout import ERRORS, Layout, SubTopology

__all__ = ["Fatal", "StageRunner", "record_failure", "bad_input", "hub_payload", "Target"]


class Fatal:
    """A record that fails the run (``on_error="fail"``): the ``RecordError`` it raises.

    It travels to the errors hub like a dead letter, so that the run fails with the first
    failure in the defined order, whichever worker meets one first.
    """

    __slots__ = ("error", "cause")

    def __init__(self, error: RecordError):
        self.error = error
        self.cause = error.__cause__

    def to_error(self) -> RecordError:
        if self.error.__cause__ is None and self.cause is not None:
            self.error.__cause__ = self.cause
        return self.error

    def __getstate__(self) -> dict:
        # Crossing processes: exceptions pickle without their __cause__; keep it if it can.
        cause = self.cause
        try:
            pickle.loads(pickle.dumps(cause))
        except Exception:
            cause = None
        return {"error": self.error, "cause": cause}

    def __setstate__(self, state: dict) -> None:
        self.error = state["error"]
        self.cause = state["cause"]


def hub_payload(f: Failure) -> tuple[str, Any]:
    """The errors-hub payload of a classified failure: ``("dl", DeadLetter)`` or
    ``("fatal", Fatal)``."""
    return ("fatal", Fatal(f.error)) if f.error is not None else ("dl", f.dead_letter)


def record_failure(layout: Layout, on_error: str, name: str, rec: Record | None,
                   exc: Exception) -> tuple[str, Any]:
    """The errors-hub payload for ``exc`` raised at node ``name``."""
    return hub_payload(failure(layout.plan.node(name), rec, exc, on_error))


def bad_input(on_error: str, name: str, reason: str, ev: InputEvent) -> tuple[str, Any]:
    """The errors-hub payload for an input event that cannot be ingested."""
    return hub_payload(input_failure(name, reason, ev, on_error))


class Target(NamedTuple):
    """Where a member node's output goes: along out edge ``edge`` (its index) to input
    ``port``, for records routed to ``out`` (a branch's output port, or None); either to
    ``member`` (a node of this sub-topology) or to destination ``dest`` (an index into
    ``SubTopology.dests``, ``sink`` when that is a sink)."""

    edge: int
    port: str
    out: str | None
    member: str | None
    dest: int | None
    sink: bool


class _Step(NamedTuple):
    """A member node, compiled: how it is driven, and where its outputs go."""

    step: NodeStep
    targets: list[Target]
    #: several out edges: the edge index is part of the position
    multi: bool
    #: a stateless node (at most one output per record) with one out edge, taken by every
    #: output: ``(member, dest index, port)`` (member None: to the destination, port None
    #: for a sink), for ``_run_straight``
    straight: tuple[str | None, int | None, str | None] | None = None


class StageRunner:
    """Runs one sub-topology's stateless nodes; one instance per worker thread.

    A batch of records goes through the nodes one node at a time (in topological order), as
    the local executor's batched runs do, each record carrying its position; records that
    reach a destination by several paths are put back in position order before they are sent.

    ``run_head(channel, counter, frontier, outputs, errors, report)`` takes what a task of the
    head emitted (records with their positions) and returns one message per destination task,
    as ``(bytewax_key, (dest, group, channel, counter, frontier, items, metrics_delta,
    report))`` (a ``messages.Message``); the messages of one call all carry the same counter
    and frontier.
    """

    def __init__(self, layout: Layout, sub: SubTopology, on_error: str):
        self.layout = layout
        self.sub = sub
        self.on_error = on_error
        self.plan = layout.plan
        self.metrics = Metrics()
        self._ctxs: list = []
        self._buf: list[tuple[int, Any]] = []
        self._dest_index = {d: i for i, d in enumerate(sub.dests)}
        self._groups = [layout.groups_of(d) for d in sub.dests]
        self._routes = [layout.router(d) for d in sub.dests]
        self._tasks = [layout.tasks[d] for d in sub.dests]
        self._errors_index = self._dest_index[ERRORS]
        self._lines = [i for i, d in enumerate(sub.dests) if d in layout.line_sinks]
        self._members = list(sub.members)
        self._steps = {name: self._compile(name) for name in self._members}
        self._chains: dict[str, tuple] = {}
        self._sorted = self._single_path_dests()
        #: per destination, records sent straight to it (see ``_direct_target``)
        self._direct: list[list] = [[] for _ in sub.dests]
        #: destination index -> (pairs, seqs) of the ``InBlock`` it gets from this batch
        self._blocks: dict[int, tuple[list, list[int]]] = {}
        if sub.head is not None:
            targets = self._targets(sub.head)
            #: only the head's targets: its task (``logic.OperatorLogic``) drives it
            self._head = _Step(None, targets, len(targets) > 1)  # type: ignore[arg-type]
            #: the head's one destination, if it has one edge and it leads straight there
            self._head_direct: tuple[list, str | None] | None = None
            if len(targets) == 1 and targets[0].member is None and targets[0].out is None:
                t = targets[0]
                self._head_direct = (self._direct[t.dest], None if t.sink else t.port)
            #: the head's one member node (and port), if its one edge leads to one
            self._head_member: tuple[str, str] | None = None
            if len(targets) == 1 and targets[0].member is not None and targets[0].out is None:
                self._head_member = (targets[0].member, targets[0].port)
        else:
            # topic -> [(ingest, source node, direct target or None, (node, port) its records
            # arrive at)], in feeding order
            self._ingest: dict[str, list[tuple[Callable[[InputEvent], Record], str, Any,
                                               tuple[str, str]]]] = {}
            for topic, names in layout.sources.items():
                self._ingest[topic] = [(make_ingest(self.plan.node(n)), n, self._direct_target(n),
                                        self._entry(n)) for n in names]
            #: ``(topic, node, port)`` when the input is one topic read by one source node
            #: whose records enter member ``node`` (run_input's fast path)
            self._one_entry: tuple[str, str, str] | None = None
            if len(self._ingest) == 1:
                (topic, entries), = self._ingest.items()
                if len(entries) == 1 and entries[0][2] is None:
                    self._one_entry = (topic, *entries[0][3])

    # ---- compiling ---------------------------------------------------------------------------------
    def _targets(self, name: str) -> list[Target]:
        out = []
        for i, e in enumerate(self.plan.out_edges(name)):
            dest = self.layout.dest_of.get(e.dst)
            if dest is None:
                out.append(Target(i, e.port, e.out, e.dst, None, False))
            else:
                out.append(Target(i, e.port, e.out, None, self._dest_index[dest],
                                  isinstance(self.plan.node(e.dst), Sink)))
        return out

    def _compile(self, name: str) -> _Step:
        step = node_step(self.plan.node(name), self.metrics)
        self._ctxs.append(step.processor.ctx)
        ins = self.plan.in_edges(name)
        if step.kind is PROCESS and isinstance(step.node, (TableMap, TableFilter)) \
                and len(ins) == 1:
            # a table's map or filter is stateless, one output per row: driven as a
            # function of the record, its one input port bound, it can run straight
            step = step._replace(kind=FN, call=partial(step.call, ins[0].port))
        targets = self._targets(name)
        straight = None
        if step.kind is FN and step.one_output and len(targets) == 1 and targets[0].out is None:
            t = targets[0]
            straight = (t.member, t.dest, None if t.sink else t.port)
        return _Step(step, targets, len(targets) > 1, straight)

    def _direct_target(self, name: str) -> tuple[list, str | None, list | None] | None:
        """For a stream source node whose only out edge leads to a destination: where its
        records go, ``(list, port, seqs)``. Such a source passes every record on unchanged (its
        processor is ``[rec]``), so its records skip the node-by-node run and go to the
        destination at their input position: ``(pos, (port, rec))`` (``(pos, rec)`` for a
        sink, port None) appended to the destination's list, or, for an operator that takes
        ``InBlock`` s (``_takes_blocks``), ``(port, rec)`` to the block's pairs and the input
        sequence number to ``seqs``."""
        node = self.plan.node(name)
        edges = self.plan.out_edges(name)
        if node.table or len(edges) != 1:
            return None
        (i, port, out, member, dest, sink), = self._targets(name)
        if member is not None or out is not None:
            return None
        if self._takes_blocks(self.sub.dests[dest]):
            block = self._blocks.get(dest)
            if block is None:
                block = self._blocks[dest] = ([], [])
            return (block[0], port, block[1])
        return (self._direct[dest], None if sink else port, None)

    def _entry(self, name: str) -> tuple[str, str]:
        """Where a source node's records arrive in the node-by-node run: at the source node
        (port ``in``), or, for a stream source whose one out edge leads to a member node fed
        by it alone, at that node (its processor passes every record on unchanged, at the
        same position)."""
        node = self.plan.node(name)
        edges = self.plan.out_edges(name)
        if not node.table and len(edges) == 1:
            (_, port, out, member, _, _), = self._targets(name)
            if member is not None and out is None and len(self.plan.in_edges(member)) == 1:
                return member, port
        return name, "in"

    def _takes_blocks(self, dest: str) -> bool:
        """Whether the input sends ``dest`` its records as one ``InBlock`` per batch: an
        operator that processes batches in one call (``Layout.batch_positions``), fed by the
        input only, every record straight from a stream source node that is the only one of its
        topic and has no other edge (so each record sits at ``(seq, 0)`` and arrives once)."""
        layout = self.layout
        if not dest.startswith("op:") or any(c[0] != 0 for c in layout.channels[dest]):
            return False  # (several input shares: each batch holds one chunk's events, so
            # the blocks of different shares never interleave)
        name = dest[3:]
        if not layout.batch_positions(name):
            return False
        for e in self.plan.in_edges(name):
            src = self.plan.node(e.src)
            if not isinstance(src, Source) or src.table or len(self.plan.out_edges(e.src)) != 1 \
                    or layout.sources[src.topic] != [e.src]:
                return False
        return True

    def _single_path_dests(self) -> list[bool]:
        """Per destination: do its records arrive by one path only (then they come out of a
        batch already in position order)?"""
        return [c <= 1 for c in self.layout.paths_to_dests(self.sub)]

    # ---- running -----------------------------------------------------------------------------------
    def _forward(self, step: _Step, outs: list, arrivals: dict[str, list]) -> None:
        """``outs``: ``(record, out port, position)`` emitted by ``step``'s node."""
        buf = self._buf
        multi = step.multi
        for i, port, out, member, dest, sink in step.targets:
            if member is not None:
                lst = arrivals.setdefault(member, [])
                for rec, op, pos in outs:
                    if out is None or out == op:
                        lst.append((port, rec, pos + (i,) if multi else pos))
            elif sink:
                for rec, op, pos in outs:
                    if out is None or out == op:
                        buf.append((dest, (pos + (i,) if multi else pos, rec)))
            else:
                for rec, op, pos in outs:
                    if out is None or out == op:
                        buf.append((dest, (pos + (i,) if multi else pos, (port, rec))))

    def _run(self, arrivals: dict[str, list]) -> None:
        node_fail = self._fail
        for name in self._members:
            items = arrivals.pop(name, None)
            if not items:
                continue
            member = self._steps[name]
            if member.straight is not None:
                self._run_straight(name, member, items, arrivals)
                continue
            step = member.step
            outs: list = []
            add = outs.append

            def fail(pos: tuple, rec: Record, exc: Exception, name: str = name) -> None:
                node_fail(name, rec, exc, pos)
            driven = drive(step, ((pos, port, rec) for port, rec, pos in items), fail)
            if step.kind is BRANCH:
                for pos, res, route in driven:
                    add((res[0], route, pos))
            elif step.one_output:
                for pos, res, _ in driven:
                    for o in res:
                        add((o, None, pos))
            else:
                for pos, res, _ in driven:
                    for j, o in enumerate(res):
                        add((o, None, pos + (j,)))
            if outs:
                self._forward(member, outs, arrivals)

    def _chain(self, name: str) -> tuple[list, str | None, int | None, str | None]:
        """The stateless one-output nodes a record goes through from ``name`` on, each feeding
        the next only (``_Step.straight``): ``[(node, call, ctx)]``, and where the last one's
        outputs go (``(member, dest, port)``)."""
        chain = self._chains.get(name)
        if chain is None:
            stages = []
            n = name
            while True:
                step = self._steps[n].step
                if step.call is not _identity:  # (to_stream, repartition: nothing to run)
                    stages.append((n, step.call, step.processor.ctx))
                to, dest, port = self._steps[n].straight
                if to is None or self._steps[to].straight is None \
                        or len(self.plan.in_edges(to)) != 1:
                    break
                n = to
            chain = self._chains[name] = (stages, to, dest, port)
        return chain

    def _run_straight(self, name: str, member: _Step, items: list,
                      arrivals: dict[str, list]) -> None:
        """Records through a chain of stateless nodes with one output per record at most
        (``_chain``), record by record: what ``drive`` then ``_forward`` do node by node, in
        one loop. A record keeps its position down the chain; one that raises goes to
        ``_fail`` at it, from the node that raised. (The nodes are stateless, so running a
        record down the chain before the next node's other inputs changes no result; records
        that reach a destination by several paths are put back in position order there.)"""
        stages, to, dest, port = self._chain(name)
        fail = self._fail
        if to is not None:  # to the next member node
            add = arrivals.setdefault(to, []).append
        elif self._sorted[dest]:  # its one path: in position order, as the direct records
            add = self._direct[dest].append
            dest = None
        else:
            add = self._buf.append
        for _, rec, pos in items:
            r = rec
            for n, call, ctx in stages:
                try:
                    outs = call(r)
                except Exception as e:
                    if ctx.deferred:
                        ctx.drain(lambda x, err, n=n, pos=pos: fail(n, x, err, pos))
                    fail(n, r, e, pos)
                    break
                if ctx.deferred:
                    ctx.drain(lambda x, err, n=n, pos=pos: fail(n, x, err, pos))
                if not outs:
                    break
                r = outs[0]
            else:
                if to is not None:
                    add((port, r, pos))
                elif dest is None:
                    add((pos, r) if port is None else (pos, (port, r)))
                elif port is None:
                    add((dest, (pos, r)))
                else:
                    add((dest, (pos, (port, r))))

    def _fail(self, name: str, rec: Record | None, exc: Exception, pos: tuple) -> None:
        self._buf.append((self._errors_index,
                          (pos, record_failure(self.layout, self.on_error, name, rec, exc))))

    def run_input(self, counter: int, frontier: int, start: int, events: list,
                  share: int = 0) -> list[tuple]:
        """The input sub-topology: ``events`` are the input events ``start``, ``start + 1``...
        as ``merge_ingested`` gives them: a ``Record`` (the event ingested by the only source
        node of its topic) or ``(InputEvent, Record | None)`` (the record made by its topic's
        first source node, if any), or a ``prefilter.Dropped`` (input items counted, nothing
        more)."""
        one = self._one_entry
        if one is not None and events and set(map(type, events)) == _RECORDS:
            # the records of a topic's only source node, to the member it feeds: each at
            # (seq, 0), the arrivals made by C-level zips
            topic, node, port = one
            self.metrics.records_in += len(events)
            self.metrics.in_by_source[topic] += len(events)
            self._run({node: list(zip(repeat(port), events, zip(count(start), repeat(0))))})
            return self._messages((0, share), counter, frontier, None)
        ingest = self._ingest
        buf = self._buf
        err = self._errors_index
        arrivals: dict[str, list] = {}
        per_topic: dict[str, int] = {}
        nothing = ()
        seq = start - 1
        dropped = 0
        for item in events:
            seq += 1
            if type(item) is Record:  # its topic's only source node made it: ev not needed
                rec = item
                ev = None
                topic = rec.origin[0]
            elif type(item) is Dropped:  # items its source's filter drops (.prefilter)
                per_topic[item.topic] = per_topic.get(item.topic, 0) + item.count
                dropped += item.count - 1
                continue
            else:
                ev, rec = item
                topic = ev.topic
            per_topic[topic] = per_topic.get(topic, 0) + 1
            i = 0
            for make, name, direct, (node, port) in ingest.get(topic, nothing):
                if i != 0 or rec is None:
                    try:
                        rec = make(ev)
                    except BadRecord as e:
                        buf.append((err, ((seq, i), bad_input(self.on_error, name, str(e), ev))))
                        i += 1
                        continue
                if direct is None:
                    lst = arrivals.get(node)
                    if lst is None:
                        lst = arrivals[node] = []
                    lst.append((port, rec, (seq, i)))
                else:
                    lst, port, seqs = direct
                    if seqs is not None:
                        lst.append((port, rec))
                        seqs.append(seq)
                    elif port is None:
                        lst.append(((seq, i), rec))
                    else:
                        lst.append(((seq, i), (port, rec)))
                i += 1
        self.metrics.records_in += len(events) + dropped
        self.metrics.in_by_source.update(per_topic)
        if arrivals:
            self._run(arrivals)
        return self._messages((0, share), counter, frontier, None)

    def run_head(self, channel: tuple[int, int], counter: int, frontier: int, outputs: list,
                 errors: list, report: Metrics | None) -> list[tuple]:
        """A stateful head's outputs ``(pos, Record)`` and errors ``(pos, payload)``."""
        if outputs:
            direct = self._head_direct
            if self._head_member is not None:  # what ``_forward`` makes of them, at once
                member, port = self._head_member
                self._run({member: list(zip(repeat(port), map(_second, outputs),
                                            map(_position, outputs)))})
            elif direct is None:
                arrivals: dict[str, list] = {}
                self._forward(self._head, [(rec, None, pos) for pos, rec in outputs], arrivals)
                self._run(arrivals)
            elif direct[1] is None:
                direct[0].extend(outputs)
            else:
                port = direct[1]
                direct[0].extend([(pos, (port, rec)) for pos, rec in outputs])
        if errors:
            err = self._errors_index
            self._buf.extend((err, e) for e in errors)
        return self._messages(channel, counter, frontier, report)

    def _messages(self, channel: tuple[int, int], counter: int, frontier: int,
                  report: Metrics | None) -> list[tuple]:
        items = [lst[:] for lst in self._direct]
        for lst in self._direct:
            lst.clear()
        for idx, (pairs, seqs) in self._blocks.items():
            if pairs:
                items[idx].append(((seqs[0], 0), InBlock(pairs[:], seqs[:])))
                pairs.clear()
                seqs.clear()
        for idx, item in self._buf:
            items[idx].append(item)
        self._buf.clear()
        for idx, lst in enumerate(items):  # each channel carries its records in position order
            if len(lst) > 1 and (idx == self._errors_index or not self._sorted[idx]):
                lst.sort(key=_position)
        for idx in self._lines:  # written to a JSON-lines file: encoded here (``Lines``)
            if items[idx]:
                items[idx] = _encoded(items[idx])
        delta = None
        m = self.metrics
        if m.any:
            delta = m
            self.metrics = Metrics()
            for ctx in self._ctxs:
                ctx.metrics = self.metrics
        out = []
        for i, dest in enumerate(self.sub.dests):
            n = self._groups[i]
            tasks = self._tasks[i]
            if n == 1:
                msg = Message(dest, 0, channel, counter, frontier, items[i],
                              delta if dest == ERRORS else None, report if dest == ERRORS else None)
                out.append((tasks[0], msg))
                continue
            per: list[list] = [[] for _ in range(n)]
            route = self._routes[i]
            for item in items[i]:  # (pos, (port, rec)): the record's key picks its task
                per[route(item[1][1].key)].append(item)
            for g in range(n):
                out.append((tasks[g], Message(dest, g, channel, counter, frontier, per[g], None,
                                              None)))
        return out


_RECORDS = {Record}
_second = itemgetter(1)


_position = itemgetter(0)


def _encoded(items: list) -> list:
    """A sink's ``(pos, Record)`` and ``(pos, Block)`` items with their records encoded as
    the lines its JSON-lines file gets (a record's line as ``bytes``, a block's as ``Lines``). A record that cannot be encoded here
    stays as it is: the sink's writer meets it, and fails the run, as without encoding."""
    out = []
    add = out.append
    for pos, x in items:
        try:
            if type(x) is Block:
                add((pos, Lines(len(x), encode_records(x))))
            else:  # one record: its line, as bytes (cheaper to pickle than a Lines)
                add((pos, encode_record(x)))
        except Exception:  # noqa: BLE001 - left to the writer, which reports it
            add((pos, x))
    return out
