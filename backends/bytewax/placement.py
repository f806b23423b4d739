"""Spreading tasks over the workers: Bytewax keys chosen for the worker they land on.

A task is one Bytewax key (``op:<name>#<group>``, ``sink:<topic>``, ``errors``), and Bytewax
gives a key to the worker its hash picks, so a few tasks can all land on one worker (with 2
workers, ``op:join#0`` and ``op:join#1`` both go to worker 1): that worker then does all the
work of the operator. The hash is Bytewax's (Rust) own; rather than re-implement it,
:func:`worker_of` asks Bytewax: a tiny dataflow on ``workers`` threads of this process routes
candidate keys and reports where each arrived (the route depends only on the key and the
number of workers, so it is the same in a cluster of processes). :func:`placed` then gives each
task a key of the form ``<task>`` or ``<task>~<n>`` that lands on the worker wanted.

Only where tasks run changes: the key is a name, and messages carry their task's group.
"""

from __future__ import annotations

import threading
__all__ = ["worker_of", "placed"]

_ROUTES: dict[tuple[str, int], int] = {}
_LOCK = threading.Lock()
#: candidate keys tried per task (the route is a hash: each lands on a given one of ``w``
#: workers with probability 1/w)
_TRIES = 24


def worker_of(keys: list[str], workers: int) -> dict[str, int]:
    """The worker (0 to ``workers - 1``) Bytewax routes each key to."""
    with _LOCK:
        missing = [k for k in dict.fromkeys(keys) if (k, workers) not in _ROUTES]
        if missing:
            for k, w in _probe(missing, workers).items():
                _ROUTES[(k, workers)] = w
        return {k: _ROUTES[(k, workers)] for k in keys}


def _probe(keys: list[str], workers: int) -> dict[str, int]:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import TestingSource, cluster_main

    seen: dict[str, int] = {}

    class _Where(StatelessSinkPartition):
        def __init__(self, worker: int):
            self.worker = worker

        def write_batch(self, items: list) -> None:
            for key, _ in items:
                seen[key] = self.worker

    class _Sink(DynamicSink):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Where:
            return _Where(worker_index)

    flow = Dataflow("streamdsl_placement")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(keys)), lambda k: k)
    # a stateful step: each key goes to the worker that owns it, and stays there
    owned = op.stateful_map("own", keyed, lambda state, v: (None, v))
    op.output("where", owned, _Sink())
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return seen


def placed(tasks: list[tuple[str, int]], workers: int) -> dict[str, str]:
    """``{task: Bytewax key}`` for ``(task, wanted worker)`` pairs: the task itself if it
    lands there, else the first ``task~n`` that does (the task itself if none of
    ``_TRIES`` does)."""
    if workers <= 1:
        return {t: t for t, _ in tasks}
    where = worker_of([c for t, _ in tasks for c in _candidates(t)], workers)
    return {task: next((c for c in _candidates(task) if where[c] == want % workers), task)
            for task, want in tasks}


def _candidates(task: str) -> list[str]:
    """The Bytewax keys tried for ``task``, in order: itself, then ``task~1`` ..."""
    return [task, *(f"{task}~{n}" for n in range(1, _TRIES))]
