"""Each ``topologies/*.sql`` twin against its Python topology: identical output on every
installed backend over the bundled sample data, and equivalent optimized plans.

"Equivalent plans": the same sources, sinks, shuffles (repartitions), stateful operators with
the same configuration (windows, grace, emit mode, join kind and window), in the same places;
a chain of stateless steps counts only by what it does to the record flow (re-key, fan out),
since SQL says with a projection what Python says with a function (or a ``peek``).
"""

from __future__ import annotations

import glob
import os
import runpy
from functools import lru_cache

import pytest

from streamdsl.backend import available_backends, get_backend
from streamdsl.ir.nodes import (Aggregate, FlatMap, FlatMapKV, Fused, Sink, Source, StreamStreamJoin,
                                StreamTableJoin, TableTableJoin)
from streamdsl.optimize import optimize
from streamdsl.sql import load_file

BACKENDS = available_backends()

TOPOLOGIES = os.path.join(os.path.dirname(__file__), "..", "..", "topologies")
TWINS = sorted(os.path.splitext(os.path.basename(p))[0]
               for p in glob.glob(os.path.join(TOPOLOGIES, "*.sql")))


def test_every_python_topology_of_the_talk_has_a_twin():
    assert set(TWINS) >= {"fraud_detection", "orders_payments", "order_enrichment", "caterpillars",
                          "word_count"}
    for name in TWINS:
        assert os.path.exists(os.path.join(TOPOLOGIES, name + ".py")), name


@lru_cache(maxsize=None)
def load(name: str):
    py = runpy.run_path(os.path.join(TOPOLOGIES, name + ".py"))
    return py["topology"], py["INPUTS"], load_file(os.path.join(TOPOLOGIES, name + ".sql"))


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_sql_and_python_give_identical_output(name, backend_name):
    py_topo, inputs, sql_topo = load(name)
    backend = get_backend(backend_name)
    assert sql_topo.sources == py_topo.sources
    py_out = backend.run(optimize(py_topo.plan()), inputs, {}).outputs
    sql_out = backend.run(optimize(sql_topo.plan()), inputs, {}).outputs
    for sink in py_topo.sinks:
        assert py_out[sink], f"{name}: the bundled data gives no {sink} records"
        assert sql_out[sink] == py_out[sink], f"{name}: {sink} differs on {backend_name}"


def _stateless_effects(node) -> set[str]:
    stages = node.stages if isinstance(node, Fused) else (node,)
    effects = set()
    for s in stages:
        if s.key_changing:
            effects.add("re-key")
        if isinstance(s, (FlatMap, FlatMapKV)):
            effects.add("fan-out")
    return effects


def _label(node) -> tuple:
    if isinstance(node, Source):
        return ("Source", node.topic, node.table)
    if isinstance(node, Sink):
        return ("Sink", node.topic)
    if isinstance(node, Aggregate):
        a = node.aggregator
        return ("Aggregate", a.kind, tuple(f.kind for _, f in a.fields),
                node.window.describe() if node.window else None, node.emit)
    if isinstance(node, StreamStreamJoin):
        return ("StreamStreamJoin", node.how, node.within, node.grace)
    if isinstance(node, (StreamTableJoin, TableTableJoin)):
        return (node.kind, node.how)
    return (node.kind,)


def shape(plan, name: str, effects: frozenset = frozenset()) -> tuple:
    """The plan upstream of node ``name`` with stateless runs reduced to their effects."""
    node = plan.node(name)
    ins = plan.in_edges(name)
    if node.stateless:
        eff = effects | _stateless_effects(node)
        (e,) = ins
        return shape(plan, e.src, frozenset(eff))
    out = (_label(node), tuple(shape(plan, e.src) for e in ins))
    return (tuple(sorted(effects)), out) if effects else out


@pytest.mark.parametrize("name", TWINS)
def test_optimized_plans_are_equivalent(name):
    py_topo, _, sql_topo = load(name)
    py_plan, sql_plan = optimize(py_topo.plan()), optimize(sql_topo.plan())
    for sink in py_topo.sinks:
        py_shape = shape(py_plan, f"sink-{sink}")
        sql_shape = shape(sql_plan, f"sink-{sink}")
        assert sql_shape == py_shape, (
            f"{name}: plans differ upstream of {sink}\nPython:\n{py_topo.describe()}\n"
            f"SQL:\n{sql_topo.describe()}")


@pytest.mark.parametrize("name", ["fraud_detection", "caterpillars"])
def test_same_node_kinds_where_sql_says_exactly_what_python_says(name):
    py_topo, _, sql_topo = load(name)
    assert ([n.kind for n in optimize(sql_topo.plan()).topological()]
            == [n.kind for n in optimize(py_topo.plan()).topological()])
