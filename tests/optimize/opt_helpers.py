"""Helpers of the optimizer tests: a small literal form of plans, and equivalence runs."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

from streamdsl.ir.plan import Plan
from streamdsl.optimize import OptimizerWarning
from streamdsl.testing import TestDriver


def literal(plan: Plan) -> list[str]:
    """``"name: Kind(config) <- upstream[.port]"`` per node, in topological order."""
    out = []
    for n in plan.topological():
        d = n.describe()
        ins = []
        for e in plan.in_edges(n.name):
            s = e.src + (f"[{e.out}]" if e.out else "")
            ins.append(s + (f".{e.port}" if e.port not in ("in",) else ""))
        line = f"{n.name}: {n.kind}" + (f"({d})" if d else "")
        if ins:
            line += " <- " + ", ".join(ins)
        out.append(line)
    return out


def quiet(fn: Callable[[Plan], Plan], plan: Plan) -> Plan:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizerWarning)
        return fn(plan)


Event = tuple  # (source, key, value, ts)


def run_plan(plan: Plan, events: Iterable[Event], *, on_error: str | None = None) -> dict[str, Any]:
    """Every sink's records (key, value, ts, window) and the dead letters, on local."""
    with TestDriver(plan, optimize=False, on_error=on_error) as d:
        for src, key, value, ts in events:
            d.send(src, value, key=key, timestamp=ts)
        outs = {t: [r.as_tuple() for r in d.output(t)] for t in plan.sink_topics()}
        dls = [(dl.source, dl.position, dl.key, dl.value) for dl in d.dead_letters()]
    return {"outputs": outs, "dead_letters": dls}


def assert_equivalent(before: Plan, after: Plan, events: list[Event], *,
                      on_error: str | None = "dead-letter", dead_letters: bool = True) -> dict:
    """Same sinks, same records in the same order (and the same dead-lettered inputs)."""
    a = run_plan(before, events, on_error=on_error)
    b = run_plan(after, events, on_error=on_error)
    assert a["outputs"] == b["outputs"]
    if dead_letters:
        assert a["dead_letters"] == b["dead_letters"]
    return a
