"""The ``nexmark`` suite of ``python -m bench``: every query as a workload of its own.

``python -m bench nexmark`` (or ``--workloads nexmark``, or ``--workloads nexmark-q5,...``)
runs each query in its own process, as the other workloads run (``bench.worker``): the
hand-written baseline (``bench.nexmark.baseline``), the query in the DSL on ``local``,
``bytewax`` and ``beam`` (Beam at a smaller input), and, for the queries written natively in
the engines (``bench.nexmark.native``: q1, q2, q5, q7), ``bytewax_native`` and
``beam_native``; every output compared with the baseline's in the form ``queries.rows``
gives (the sequence per key, timestamps and windows included, or the multiset for emit-final
queries) before a figure counts.

The events are generated once per size and run: ``python -m bench`` points
``BENCH_NEXMARK_CACHE`` at a temporary directory where the first worker leaves them (a pickle)
for the next ones.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from functools import lru_cache
from typing import Any

from . import baseline, native
from .generator import Config, generate
from .queries import QUERIES, Query, records_of, rows, topology

__all__ = ["CONFIG", "SIZES", "QueryWorkload", "WORKLOADS", "SUITE", "events"]

#: The generator's defaults (Beam's and Flink's NexmarkConfiguration): 10,000 events/s.
CONFIG = Config()
#: Events generated at scale 1 (each query reads its topics of them); Beam runs a tenth.
SIZES = {"n": 500_000, "beam_n": 50_000}
#: The name ``python -m bench`` takes for the whole suite.
SUITE = "nexmark"


@lru_cache(maxsize=4)
def events(n: int) -> dict[str, list[dict]]:
    """``generate(n, CONFIG)``, from the run's cache when ``BENCH_NEXMARK_CACHE`` names one."""
    cache = os.environ.get("BENCH_NEXMARK_CACHE")
    if not cache:
        return generate(n, CONFIG)
    digest = hashlib.sha1(repr(CONFIG).encode()).hexdigest()[:12]
    path = os.path.join(cache, f"nexmark-{n}-{digest}.pickle")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    out = generate(n, CONFIG)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return out


class QueryWorkload:
    """A query as ``bench.worker`` runs a workload (see ``bench/workloads/__init__.py``)."""

    #: Every query has these; those in ``native.NATIVE`` add ``bytewax_native`` and
    #: ``beam_native`` (attributes of the instance, as a workload module's functions).
    IMPLS = ("hand_loop", "local", "bytewax", "beam")

    def __init__(self, query: Query):
        self.query = query
        self.NAME = f"{SUITE}-{query.name}"
        self.SINK = query.sink
        self.SIZES = SIZES
        programs = native.NATIVE.get(query.name, {})
        self.IMPLS = QueryWorkload.IMPLS + tuple(programs)
        for impl, fn in programs.items():
            setattr(self, impl, fn)

    def generate(self, n: int) -> dict[str, list[dict]]:
        ev = events(n)
        return {t: ev[t] for t in self.query.topics}

    def topology(self) -> Any:
        return topology(self.query, CONFIG)

    def canonical(self, records: list) -> list[tuple]:
        return rows(records_of(records), self.query.emit)

    def hand_loop(self, inputs: dict[str, list[dict]]) -> list:
        """The baseline's output records (the timed part: no normalising)."""
        return baseline.run(self.query.name, inputs, CONFIG)

    def canonical_hand_loop(self, out: list) -> list[tuple]:
        return rows(out, self.query.emit)

    def canonical_native(self, out: list) -> list[tuple]:
        """A native program's records, normalised as the baseline's."""
        return rows(out, self.query.emit)


#: ``nexmark-q0`` ... by name, in Nexmark's order.
WORKLOADS: dict[str, QueryWorkload] = {
    w.NAME: w for w in (QueryWorkload(q) for q in QUERIES.values())}
