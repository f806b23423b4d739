"""Compile a plan into a ``bytewax.dataflow.Dataflow``.

The dataflow, for a plan ``source -> filter -> group_by -> count(window) -> to_stream -> sink``::

    input (EventSource, 1 partition)          reads and merges the inputs, numbers the events
      -> input_stage (map)                    ingest + filter + key_by (fused: one map step)
      -> input_to_<count> (flat_map, keyed)   messages for the count's task(s)
      -> op_<count> (stateful_batch)          OperatorLogic: the shared window processor
      -> op_<count>_stage (map)               to_stream (the stateless nodes after the count)
      -> ..._to_outputs (flat_map, keyed)     messages for the sinks and the errors hub
    outputs (stateful_batch)                  OutputLogic per sink topic + errors hub
      -> write_<sink> / collect               FixedPartitionedSink per sink, or collected

Every IR node kind is handled by a ``visit_<Kind>`` method; a kind without one raises
``UnsupportedNodeError`` before anything runs. Stateless kinds (and sources, sinks, table
filter/map, branch, merge) run inside the ``*_stage`` map of the sub-topology that feeds them
(:mod:`.layout`); stateful kinds become a ``stateful_batch`` step keyed by their task.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from streamdsl.errors import UnsupportedNodeError
from streamdsl.ir.nodes import Node

from .cluster import profile_this_thread
from .layout import Layout, SubTopology, step_id
from .logic import OperatorLogic, OutputLogic, RunState
from .stage import StageRunner

__all__ = ["FlowCompiler"]


class _Stage:
    """The ``map`` function of a sub-topology's stage; one ``StageRunner`` per worker thread
    (Bytewax runs the same function object on every worker thread of a process)."""

    def __init__(self, run: RunState, sub: SubTopology):
        self.run = run
        self.sub = sub
        self._local = threading.local()

    def _runner(self) -> StageRunner:
        local = self._local
        if getattr(local, "execution", None) != self.run.execution:
            profile_this_thread()
            local.runner = StageRunner(self.run.layout, self.sub, self.run.on_error)
            local.execution = self.run.execution
        return local.runner

    def __call__(self, item: Any) -> list:
        runner = self._runner()
        if self.sub.head is None:
            return runner.run_input(*item)  # an io.InputBatch
        _key, (channel, counter, frontier, outs, errors, report) = item  # a HeadOutput
        return runner.run_head(channel, counter, frontier, outs, errors, report)


class _Pick:
    """Selects the messages for some destinations (fixed places in every stage output)."""

    def __init__(self, indices: list[int]):
        self.indices = indices

    def __call__(self, msgs: list) -> list:
        return [msgs[i] for i in self.indices]


class FlowCompiler:
    """Builds the dataflow of one run.

    Args:
        backend: the backend name (for error messages).
        run: the run's settings (layout, on_error, recovery).
        source: the Bytewax source of the input events.
        attach_outputs: ``(flow, outputs_stream) -> None`` connects the terminal stream of
            ``(dest, (kind, position, payload))`` items to sinks.
    """

    def __init__(self, backend: str, run: RunState, source: Any,
                 attach_outputs: Callable[[Dataflow, Stream], None]):
        self.backend = backend
        self.run = run
        self.layout: Layout = run.layout
        self.source = source
        self.attach_outputs = attach_outputs
        self._incoming: dict[str, list[Stream]] = {}
        self._terminal: list[Stream] = []

    def compile(self) -> Dataflow:
        layout = self.layout
        flow = Dataflow(step_id(layout.plan.name))
        inp = op.input("input", flow, self.source)
        self._stage(layout.subs[0], inp, "input")
        for node in layout.plan.topological():
            self.visit(node)
        terminal = (self._terminal[0] if len(self._terminal) == 1
                    else op.merge("outputs_in", *self._terminal))
        outs = op.stateful_batch("outputs", terminal, lambda resume: OutputLogic(self.run, resume))
        dest_of = {key: d for d in layout.dests if layout.is_terminal(d)
                   for key in layout.tasks[d] if key != d}
        if dest_of:  # keys chosen for their worker (``Layout._spread``): back to the names
            outs = op.map("outputs_dest", outs, lambda kv: (dest_of.get(kv[0], kv[0]), kv[1]))
        self.attach_outputs(flow, outs)
        return flow

    # ---- dispatch ---------------------------------------------------------------------------------
    def visit(self, node: Node) -> None:
        meth = getattr(self, f"visit_{node.kind}", None)
        if meth is None:
            raise UnsupportedNodeError(self.backend, node.kind, node=node.name, site=node.site,
                                       hint="see `streamdsl backends` for what each backend runs")
        meth(node)

    def _in_stage(self, node: Node) -> None:
        """Stateless (per-record) nodes run inside the stage of the sub-topology feeding them."""

    visit_Source = _in_stage
    visit_Filter = _in_stage
    visit_Map = _in_stage
    visit_MapKV = _in_stage
    visit_FlatMap = _in_stage
    visit_FlatMapKV = _in_stage
    visit_KeyBy = _in_stage
    visit_Peek = _in_stage
    visit_Merge = _in_stage
    visit_Branch = _in_stage
    visit_Repartition = _in_stage  # the keyed exchange happens at the next stateful step
    visit_ToStream = _in_stage
    visit_TableFilter = _in_stage
    visit_TableMap = _in_stage
    visit_Fused = _in_stage
    visit_Sink = _in_stage  # written by the terminal ``outputs`` step

    def _operator(self, node: Node) -> None:
        """A stateful operator: one ``stateful_batch`` step keyed by its task."""
        layout = self.layout
        dest = layout.dest_of[node.name]
        ins = self._incoming.pop(dest)
        sid = "op_" + step_id(node.name)
        up = ins[0] if len(ins) == 1 else op.merge(sid + "_in", *ins)
        run = self.run
        name = node.name
        out = op.stateful_batch(sid, up, lambda resume: OperatorLogic(run, name, resume))
        self._stage(layout.sub_of_head[name], out, sid)

    visit_Aggregate = _operator
    visit_TableGroupBy = _operator
    visit_TableAggregate = _operator
    visit_StreamStreamJoin = _operator
    visit_StreamTableJoin = _operator
    visit_TableTableJoin = _operator

    # ---- wiring -----------------------------------------------------------------------------------
    def _stage(self, sub: SubTopology, up: Stream, sid: str) -> None:
        """The stage ``map`` of a sub-topology, then one keyed stream per destination step:
        the stage emits ``(task key, message)`` for every task of every destination, in a
        fixed order, so each destination picks its own places."""
        staged = op.map(sid + "_stage", up, _Stage(self.run, sub))
        terminal: list[int] = []
        at = 0
        for dest in sub.dests:
            places = list(range(at, at + self.layout.groups_of(dest)))
            at = places[-1] + 1
            if self.layout.is_terminal(dest):
                terminal.extend(places)
            else:
                did = step_id(dest.split(":", 1)[1])
                self._incoming.setdefault(dest, []).append(
                    op.flat_map(f"{sid}_to_{did}", staged, _Pick(places)))
        self._terminal.append(op.flat_map(f"{sid}_to_outputs", staged, _Pick(terminal)))


def supported_kinds() -> frozenset[str]:
    """Node kinds with a ``visit_<Kind>`` method."""
    from streamdsl.ir.nodes import NODE_KINDS
    return frozenset(k for k in NODE_KINDS if hasattr(FlowCompiler, f"visit_{k}"))
