"""Run a transcribed ksqlDB query-validation test (QTT) case on a backend.

A case file (``cases/<ksqlDB file>.json``) names the ksqlDB file it was transcribed from and
holds its cases, each under the ksqlDB test's name::

    {"test": ..., "statements": [...],
     "inputs":  [[topic, key, value, timestamp], ...],
     "outputs": [[topic, key, value, timestamp or null, [start, end] or null], ...]}

Inputs are processed in their order, whatever their topic, as ksqlDB's test driver (Kafka
Streams' ``TopologyTestDriver``) pipes them; as there, the input is never closed (no window is
flushed at the end). Outputs are compared per topic and per key, in order (what every backend
guarantees, DESIGN.md "Determinism"); a ``null`` timestamp is one the ksqlDB case does not
check. Expected values are ksqlDB's; JSON field names are written as the output schema names
them (ksqlDB's harness matches them case-insensitively).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections import Counter
from typing import Any, Iterable

from streamdsl.backend import get_backend
from streamdsl.ir.nodes import Sink, Source
from streamdsl.ir.plan import Plan
from streamdsl.optimize import optimize
from streamdsl.runtime.records import InputEvent
from streamdsl.sql import compile_sql

__all__ = ["CASES", "Case", "run_cases", "expected", "compare"]

CASES_DIR = pathlib.Path(__file__).with_name("cases")


@dataclasses.dataclass(frozen=True)
class Case:
    source: str  # the ksqlDB file
    test: str  # the ksqlDB test name
    statements: tuple[str, ...]
    inputs: tuple[tuple, ...]
    outputs: tuple[tuple, ...]

    @property
    def id(self) -> str:
        return f"{pathlib.Path(self.source).stem}: {self.test}"

    def plan(self) -> Plan:
        return compile_sql("\n".join(self.statements), name="qtt").plan()


def _load() -> list[Case]:
    out = []
    for path in sorted(CASES_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        for c in doc["cases"]:
            out.append(Case(doc["source"], c["test"], tuple(c["statements"]),
                            tuple(map(tuple, c["inputs"])), tuple(map(tuple, c["outputs"]))))
    return out


CASES = _load()


def _prefixed(plan: Plan, prefix: str) -> Plan:
    """``plan`` with every operator and topic renamed ``prefix + name`` (to run several cases
    in one plan: they stay disconnected, so each keeps its own tasks and stream time)."""
    out = Plan(prefix + plan.name, on_error=plan.on_error)
    for node in plan.nodes():
        changes: dict[str, Any] = {"name": prefix + node.name}
        if isinstance(node, (Source, Sink)):
            changes["topic"] = prefix + node.topic
        out.add(dataclasses.replace(node, **changes),
                [(prefix + e.src, e.port, e.out) for e in plan.in_edges(node.name)])
    return out


def _merged(plans: list[Plan]) -> Plan:
    merged = Plan("qtt", on_error=plans[0].on_error)
    for p in plans:
        for node in p.nodes():
            merged.add(node, [(e.src, e.port, e.out) for e in p.in_edges(node.name)])
    return merged


def run_cases(cases: Iterable[Case], backend: Any) -> list[dict[str, list[tuple]]]:
    """Each case's outputs ``{topic: [(key, value, timestamp, window), ...]}``, the cases run
    together in one plan (one run: the slow backends start their workers once)."""
    cases = list(cases)
    prefixes = [f"c{i}." if len(cases) > 1 else "" for i in range(len(cases))]
    plans = [_prefixed(c.plan(), p) for c, p in zip(cases, prefixes)]
    plan = optimize(_merged(plans) if len(plans) > 1 else plans[0])
    session = get_backend(backend).session(plan)
    pos: Counter = Counter()
    for case, prefix in zip(cases, prefixes):
        for topic, key, value, ts in case.inputs:
            topic = prefix + topic
            if topic not in plan.source_topics():
                continue  # a topic no query of the case reads
            session.send(InputEvent(topic, key, value, ts, pos[topic]))
            pos[topic] += 1
    results = []
    for case, prefix in zip(cases, prefixes):
        got = {}
        for topic in sorted({o[0] for o in case.outputs}):
            recs = session.output(prefix + topic, False)
            got[topic] = [(r.key, r.value, r.timestamp, list(r.window) if r.window else None)
                          for r in recs]
        results.append(got)
    session.close()
    return results


def expected(case: Case) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for topic, key, value, ts, window in case.outputs:
        out.setdefault(topic, []).append((key, value, ts, window))
    return out


def _per_key(records: list[tuple], with_ts: bool) -> dict:
    grouped: dict = {}
    for key, value, ts, window in records:
        k = json.dumps(key, sort_keys=True)
        grouped.setdefault(k, []).append((value, ts if with_ts else None, window))
    return grouped


def compare(case: Case, got: dict[str, list[tuple]]) -> None:
    """Assert ``got`` has ksqlDB's records (per topic, per key, in order)."""
    want = expected(case)
    for topic, records in want.items():
        with_ts = all(ts is not None for _, _, ts, _ in records)
        a, e = _per_key(got.get(topic, []), with_ts), _per_key(records, with_ts)
        assert a == e, (f"{case.id}: {topic} differs\n  statements: {' '.join(case.statements)}\n"
                        f"  got:      {got.get(topic)}\n  expected: {records}")
