"""Batches: runs of input records moved through the graph operator by operator.

Each node gets a runner ``parts -> [(out port, records, seqs)]``; ``BatchGraph.run`` runs
every node, in topological order, over the parts its inputs produced. That gives every
operator the input sequence depth-first processing would give it, as long as no operator has
two inputs fed by the same source topic (``batchable``): records carry the position in the
batch of the input record they derive from (``Part.seqs``), and an operator with several inputs
gets its parts merged back into that order. Row-local operators down to a sink run as one
generated loop (a fused tail, ``codegen.compile_tail``).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import networkx as nx

from streamdsl.ir.nodes import Aggregate, Fused, Repartition, Source, TableFilter
from streamdsl.ir.plan import Plan
from streamdsl.runtime.build import SourceProcessor
from streamdsl.runtime.drive import BRANCH, NodeStep, drive
from streamdsl.runtime.partitioning import Partitioner
from streamdsl.runtime.processors import StatelessProcessor
from streamdsl.runtime.records import OutputRecord, Record
from streamdsl.runtime.stateless import IDENTITY_KINDS, LINEAR
from streamdsl.windows import TumblingWindow

from . import codegen, fastpaths
from .fastpaths import Closed, Rows
from .graph import Part, RepartitionWriter, Wiring

__all__ = ["BatchGraph", "batchable", "Runner", "Inbox"]

#: ``inbox[node]``: the parts a node receives in this batch
Inbox = dict[str, list[Part]]
#: a node's runner: its parts -> ``(out port, records, seqs, partition)`` for each output part
Runner = Callable[[list[Part]], Any]

#: the table operators' one-output-per-input batch loops (``tablerows.py``)
_ROW_BATCHES = ("table-source-batch", "table-filter-batch")
#: other registered batch loops (``fastpaths.py``)
_OTHER_BATCHES = ("hopping-batch",)

NodeFail = Callable[[str, "Record | None", Exception], None]


def _merged(parts: list[Part]) -> Part:
    """Parts (each in sequence order) as one, in sequence order."""
    seqs_all: list[int] = []
    recs_all: list[Record] = []
    for p in parts:
        seqs_all += p.seqs
        recs_all += p.recs
    order = sorted(range(len(seqs_all)), key=seqs_all.__getitem__)
    return Part(parts[0].port, [recs_all[i] for i in order], [seqs_all[i] for i in order],
                parts[0].partition)


def _keys_cross_tasks(plan: Plan, sink: str) -> bool:
    """Whether records of one key can reach ``sink`` from several tasks: a path from a source
    with no stateful node or repartition on it (keyless records are spread over partitions),
    or a key changed after the last one."""
    def walk(name: str) -> bool:
        node = plan.node(name)
        if isinstance(node, Source):
            return True
        if node.stateful or isinstance(node, Repartition):
            return False
        if node.key_changing:
            return True
        return any(walk(e.src) for e in plan.in_edges(name))
    return any(walk(e.src) for e in plan.in_edges(sink))


def batchable(plan: Plan) -> bool:
    """Whether batches give record-at-a-time results: no operator has two inputs fed by the
    same source topic (a branch merged back, a self-join)."""
    g = plan.graph
    topic_of = {s.name: s.topic for s in plan.sources()}
    for n in plan.topological():
        ins = plan.in_edges(n.name)
        if len(ins) < 2:
            continue
        seen: set[str] = set()
        for e in ins:
            ups = nx.ancestors(g, e.src) | {e.src}
            topics = {topic_of[u] for u in ups if u in topic_of}
            if seen & topics:
                return False
            seen |= topics
    return True


class BatchGraph:
    """The batch runners of a plan's nodes, fused tails included.

    ``steps[name][p]`` is node ``name``'s step in the task of partition ``p`` (one shared step
    for a stateless node). With several partitions, a ``Repartition`` splits each part by its
    records' new keys, a stateful node runs each partition's parts through that task's
    processor, and the nodes a repartition feeds merge the parts of one partition by sequence
    number (what the records of several upstream tasks need to be in input order).
    """

    def __init__(self, wiring: Wiring, steps: dict[str, list[NodeStep]],
                 partitioner: Partitioner, fail: NodeFail, cut: RepartitionWriter | None = None):
        self.wiring = wiring
        #: where repartitions hand their records, if the run cuts the plan there
        self.cut = cut
        self.steps = steps
        self.partitioner = partitioner
        self.fail = fail
        plan = wiring.plan
        g = plan.graph
        multi = {n for n in wiring.order if len(plan.in_edges(n)) > 1}
        #: sinks that take several tasks' records of one key (merged back in input order)
        self.merging_sinks: set[str] = set()
        if partitioner.n > 1:
            for n in wiring.order:
                if isinstance(plan.node(n), Repartition):
                    multi.update(g.successors(n))
            self.merging_sinks = {s for s in wiring.writers if _keys_cross_tasks(plan, s)}
            multi |= self.merging_sinks
        need: dict[str, bool] = {}
        for name in reversed(wiring.order):  # does anything downstream merge inputs?
            need[name] = any(s in multi or need[s] for s in g.successors(name))
        self.need_seq = need
        #: emit-final tumbling windows whose only consumer is a tail reading ``Rows`` (True)
        #: or, a count, the windows it closes (``fastpaths.CLOSED``: ``window-close-tail``)
        self.rows_nodes: dict[str, bool | str] = {}
        #: fused tails: [first node, the nodes it absorbs...]
        self.tails: list[list[str]] = []
        tails: dict[str, Runner] = {}
        absorbed: set[str] = set()
        for name in wiring.order:
            if name not in absorbed:
                tail = self._make_tail(name)
                if tail is not None:
                    tails[name], chain = tail
                    absorbed.update(chain)
                    self.tails.append([name, *chain])
        self.runners: dict[str, Runner] = {
            name: tails.get(name) or self._make_runner(name, need[name]) for name in wiring.order}

    # ---- a node's batch function -------------------------------------------------------------------
    def batch_fn(self, name: str, partition: int = 0) -> Callable[[str, list[Record], Any], list]:
        """``(port, records, fail) -> outputs`` in the task of ``partition``: the node's
        registered fast path, else its processor's ``process_batch``."""
        step = self.steps[name][partition]
        for fp_name in ("stateless-batch", "tumbling-batch", *_ROW_BATCHES, *_OTHER_BATCHES):
            fp = fastpaths.find(fp_name, step.node)
            if fp is not None:
                if fp_name == "tumbling-batch":
                    return fp.build(step.processor, rows=self.rows_nodes.get(name, False))
                return fp.build(step.processor)
        return step.processor.process_batch

    def fast_paths(self, name: str) -> list[str]:
        """Names of the fast paths node ``name`` runs with in batches."""
        node = self.steps[name][0].node
        fused = any(name in tail for tail in self.tails)  # the tail's loop runs it
        closed = ["window-close-tail"] if self.rows_nodes.get(name) == fastpaths.CLOSED else []
        return [n for n in ("stateless-batch", "tumbling-batch", *_ROW_BATCHES, *_OTHER_BATCHES)
                if fastpaths.find(n, node)
                and not (fused and n in (*_ROW_BATCHES, *_OTHER_BATCHES))] + closed

    # ---- runners -----------------------------------------------------------------------------------
    def _make_runner(self, name: str, need_seq: bool) -> Runner:  # noqa: C901 - one closure per case
        steps = self.steps[name]
        step = steps[0]
        node_fail = self.fail

        def fail(rec: Record, exc: Exception) -> None:
            node_fail(name, rec, exc)

        if name in self.wiring.writers:
            write = self.wiring.sink_output(name)
            new = tuple.__new__
            merging = name in self.merging_sinks

            def sink_runner(parts: list[Part]):
                if merging and len(parts) > 1:
                    parts = [_merged(parts)]
                for part in parts:
                    write([new(OutputRecord, (r.key, r.value, r.ts, r.window)) for r in part.recs])
                return ()
            return sink_runner

        if isinstance(step.node, Repartition) and self.cut is not None:
            cut = self.cut
            partition_of = self.partitioner

            def repartition_cut_runner(parts: list[Part]):
                # in input order: the parts of several upstream tasks merged by sequence
                items = [(rec, part) for _port, recs, _seqs, part in parts for rec in recs]
                if len(parts) > 1 and all(p.seqs is not None for p in parts):
                    seqs = [s for p in parts for s in p.seqs]
                    items = [items[i] for i in sorted(range(len(items)), key=seqs.__getitem__)]
                for rec, part in items:
                    k = rec.key
                    cut(name, rec, part, part if k is None else partition_of(k, 0))
                return ()
            return repartition_cut_runner

        if isinstance(step.node, Repartition) and self.partitioner.n > 1:
            partition_of = self.partitioner

            def repartition_runner(parts: list[Part]):
                out = []
                for _port, recs, seqs, part in parts:
                    by: dict[int, tuple[list, list | None]] = {}
                    for i, rec in enumerate(recs):
                        k = rec.key
                        q = part if k is None else partition_of(k, 0)
                        got = by.get(q)
                        if got is None:
                            got = by[q] = ([], [] if seqs is not None else None)
                        got[0].append(rec)
                        if seqs is not None:
                            got[1].append(seqs[i])
                    out += [(None, recs_q, seqs_q, q) for q, (recs_q, seqs_q) in sorted(by.items())]
                return out
            return repartition_runner

        if step.kind is BRANCH:
            route = step.call

            def branch_runner(parts: list[Part]):
                out = []
                for port, recs, seqs, part in parts:
                    by_port: dict[str, tuple[list, list | None]] = {}
                    for i, rec in enumerate(recs):
                        try:
                            r = route(rec)
                        except Exception as e:
                            fail(rec, e)
                            continue
                        if r is not None:
                            got = by_port.get(r)
                            if got is None:
                                got = by_port[r] = ([], [] if seqs is not None else None)
                            got[0].append(rec)
                            if got[1] is not None:
                                got[1].append(seqs[i])
                    out += [(r, recs, seqs, part) for r, (recs, seqs) in by_port.items()]
                return out
            return branch_runner

        if isinstance(step.processor, SourceProcessor):  # forwards what it ingested
            def source_runner(parts: list[Part]):
                return [(None, p.recs, p.seqs, p.partition) for p in parts]
            return source_runner

        batch_fns: dict[int, Callable] = {}

        def batch_of(part: int) -> Callable:
            fn = batch_fns.get(part)
            if fn is None:
                fn = batch_fns[part] = self.batch_fn(name, part)
            return fn

        def one_by_one(items, part: int):
            """Outputs and their sequence numbers, record by record (``drive``)."""
            outs: list[Record] = []
            oseqs: list[int] = []
            for s, o, _ in drive(steps[part], items, lambda s, rec, e: fail(rec, e)):
                outs.extend(o)
                oseqs.extend([s] * len(o))
            return (None, outs, oseqs, part)

        seq_batch = None  # a stateless node's generated loop carrying sequence numbers
        if need_seq and isinstance(step.processor, StatelessProcessor):
            fp = fastpaths.find("stateless-batch", step.node)
            if fp is not None:
                seq_batch = fp.build(step.processor, seqs=True)
        elif need_seq and isinstance(step.node, Aggregate) and step.node.emit == "final" \
                and fastpaths.find("tumbling-batch", step.node) is not None:
            # an emit-final tumbling window: its batch loop cut where windows can close
            fp = fastpaths.find("tumbling-batch", step.node)
            seq_batches = {}

            def seq_batch(port, recs, fail, seqs, part=0):
                fn = seq_batches.get(part)
                if fn is None:
                    fn = seq_batches[part] = fp.build(steps[part].processor, seqs=True)
                return fn(port, recs, fail, seqs)
        elif need_seq and (len(steps) == 1 or steps[1:2] == steps[:1]):
            # a table source or filter (one processor for every task): one output per input
            fp = next(filter(None, (fastpaths.find(n, step.node) for n in _ROW_BATCHES)), None)
            if fp is not None:
                seq_batch = fp.build(step.processor, seqs=True)

        def run_task(parts: list[Part], part: int):
            if len(parts) == 1:
                port, recs, seqs, _ = parts[0]
                if need_seq and seqs is not None:
                    if seq_batch is not None:
                        outs, oseqs = (seq_batch(port, recs, fail, seqs, part)
                                       if isinstance(step.node, Aggregate)
                                       else seq_batch(port, recs, fail, seqs))
                        return (None, outs, oseqs, part)
                    return one_by_one(zip(seqs, itertools.repeat(port), recs), part)
                return (None, batch_of(part)(port, recs, fail), None, part)
            # Each part is in sequence order: a stable sort by sequence number merges them
            # (at C speed: Timsort merges the runs).
            seqs_all: list[int] = []
            pairs: list[tuple[str, Record]] = []
            for port, recs, seqs, _ in parts:
                seqs_all += seqs
                pairs += zip(itertools.repeat(port, len(recs)), recs)
            order = sorted(range(len(seqs_all)), key=seqs_all.__getitem__)
            items = [pairs[i] for i in order]
            if need_seq:
                return one_by_one(((seqs_all[i], port, r) for i, (port, r) in zip(order, items)),
                                  part)
            return (None, steps[part].processor.process_mixed(items, fail), None, part)

        def runner(parts: list[Part]):
            if len(parts) == 1:
                return [run_task(parts, parts[0].partition)]
            by: dict[int, list[Part]] = {}
            for p in parts:
                by.setdefault(p.partition, []).append(p)
            return [run_task(ps, q) for q, ps in sorted(by.items())]
        return runner

    def _make_tail(self, name: str) -> tuple[Runner, list[str]] | None:
        """A runner for ``name`` and the row-local operators after it down to a sink, fused
        (the ``fused-tail`` fast path), and the names of the nodes it absorbs; or None."""
        wiring = self.wiring
        plan = wiring.plan
        steps = self.steps

        def eligible(n: str) -> bool:
            node = plan.node(n)
            if n in wiring.writers:
                return n not in self.merging_sinks
            if steps[n][0].kind is BRANCH or len(plan.in_edges(n)) != 1:
                return False
            if isinstance(node, TableFilter) or node.kind in IDENTITY_KINDS:
                return not (isinstance(node, Repartition)
                            and (self.partitioner.n > 1 or self.cut is not None))
            stages = node.stages if isinstance(node, Fused) else (node,)
            return (isinstance(steps[n][0].processor, StatelessProcessor)
                    and all(isinstance(st, LINEAR) for st in stages))
        if name in wiring.writers or not eligible(name) or \
                isinstance(steps[name][0].processor, SourceProcessor):
            return None
        chain = [name]
        cur = name
        while cur not in wiring.writers:
            edges = wiring.edges[cur]
            if len(edges) != 1 or edges[0].out is not None or not eligible(edges[0].dst):
                return None
            cur = edges[0].dst
            chain.append(cur)
        if any(fastpaths.find("fused-tail", plan.node(n)) is None for n in chain):
            return None
        stages: list[tuple[str, Any]] = []
        for n in chain:
            node = plan.node(n)
            stages += [(n, st) for st in (node.stages if isinstance(node, Fused) else (node,))]
        ctxs = {n: steps[n][0].processor.ctx for n in chain}
        fn = codegen.compile_tail(stages, ctxs=ctxs)
        if fn is None:
            return None
        # An emit-final tumbling window feeding only this tail hands over rows, not records.
        fn_rows = None
        ups = list(plan.graph.predecessors(name))
        if len(ups) == 1 and len(wiring.edges[ups[0]]) == 1:
            up = plan.node(ups[0])
            if up.kind == "Aggregate" and up.emit == "final" and \
                    isinstance(up.window, TumblingWindow):
                # a count hands over the windows it closes (the tail makes their rows)
                how = fastpaths.CLOSED if fastpaths.find("window-close-tail", up) else True
                fn_rows = codegen.compile_tail(stages, rows=how, ctxs=ctxs)
                self.rows_nodes[ups[0]] = how
        fail = self.fail
        fails = {n: (lambda rec, e, n=n: fail(n, rec, e)) for n in chain}
        write = wiring.sink_output(chain[-1])

        def tail_runner(parts: list[Part]):
            for part in parts:
                recs = part.recs
                write(fn_rows(recs, fails) if type(recs) in (Rows, Closed) else fn(recs, fails))
            return ()
        return tail_runner, chain[1:]

    # ---- running -----------------------------------------------------------------------------------
    def run(self, inbox: Inbox) -> None:
        """Run every node, in topological order, over the parts its inputs produced."""
        runners = self.runners
        edges = self.wiring.edges
        for name in self.wiring.order:
            parts = inbox.pop(name, None)
            if parts is None:
                continue
            for out_port, outs, seqs, partition in runners[name](parts):
                if outs:
                    for dst, port, want in edges[name]:
                        if want is None or want == out_port:
                            part = Part(port, outs, seqs, partition)
                            got = inbox.get(dst)
                            if got is None:
                                inbox[dst] = [part]
                            else:
                                got.append(part)
