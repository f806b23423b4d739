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

Optionally ``IMPLS`` (the implementations it has, default all), ``canonical_hand_loop(out)``
(how the hand loop's output is normalised outside its timed run; default ``sorted``) and
``canonical_native(out)`` (the same for the native programs). The
Nexmark queries are workloads of this shape too (``nexmark()``, ``bench/nexmark/suite.py``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import enrich, fraud, join, session, stateless

__all__ = ["WORKLOADS", "get", "nexmark"]

#: In the order the table lists them.
WORKLOADS: dict[str, ModuleType] = {m.NAME: m for m in (fraud, join, enrich, stateless, session)}


def nexmark() -> dict[str, Any]:
    """The Nexmark suite's workloads (``nexmark-q0`` ...), one per query (bench/nexmark)."""
    from ..nexmark.suite import WORKLOADS as NEXMARK
    return NEXMARK


def get(name: str) -> Any:
    """A workload module, or a Nexmark query's workload (which has the same attributes)."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    if name.startswith("nexmark-") and name in nexmark():
        return nexmark()[name]
    raise SystemExit(f"unknown workload {name!r}; workloads: {', '.join(WORKLOADS)}, "
                     f"fraud-memory, {', '.join(nexmark())}")
