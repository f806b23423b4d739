"""The benchmark workloads, one module each, by name.

A workload module defines:

* ``NAME``, ``SINK`` (the sink topic of its topology), ``SIZES`` (``{"n": events,
  "beam_n": events for the Beam implementations}`` at scale 1);
* ``generate(n) -> {topic: [dict, ...]}``: a deterministic (seeded) input of about ``n``
  events, as dicts in memory; the rate is constant, so a smaller ``n`` is a prefix-like sample
  with the same key density;
* ``topology() -> streamdsl.Topology``: the workload in the DSL;
* ``canonical(records) -> list``: our backends' output records as the sorted tuples the other
  implementations return;
* ``hand_loop(inputs)``, ``bytewax_native(inputs)``, ``beam_native(inputs)``: the same
  workload written by hand, in Bytewax and in Beam; each returns a list of tuples (any order).
"""

from __future__ import annotations

from types import ModuleType

from . import enrich, fraud, join, session, stateless

__all__ = ["WORKLOADS", "get"]

#: In the order the table lists them.
WORKLOADS: dict[str, ModuleType] = {m.NAME: m for m in (fraud, join, enrich, stateless, session)}


def get(name: str) -> ModuleType:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise SystemExit(f"unknown workload {name!r}; workloads: {', '.join(WORKLOADS)}, "
                         "fraud-memory") from None
