"""Fixtures for the SQL front-end tests (imported by the test modules: a module of its own,
not a conftest.py, so that it never clashes with the other ``conftest`` modules of the suite).

* ``backend``: every installed backend (``streamdsl.backend.available_backends()``).
* ``run_sql(sql, sends, sink=None, backend="local")``: compile, send ``(source, key, value, ts)``
  tuples through ``TestDriver``, return ``{sink: [(key, value, ts, window), ...]}`` (or one
  sink's list when ``sink`` is given).
* ``kinds(topology)``: node kinds in topological order of the unoptimized plan.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from streamdsl.backend import available_backends
from streamdsl.sql import compile_sql
from streamdsl.testing import TestDriver

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def _run(sql: str, sends: list[tuple], sink: str | None = None, backend: str = "local",
         optimize: bool = True) -> Any:
    topo = compile_sql(sql)
    with TestDriver(topo, backend=backend, optimize=optimize) as d:
        for source, key, value, ts in sends:
            d.send(source, key=key, value=value, timestamp=ts)
        out = {s: [(r.key, r.value, r.timestamp, r.window) for r in d.output(s)] for s in topo.sinks}
    return out[sink] if sink is not None else out


@pytest.fixture
def run_sql() -> Callable[..., Any]:
    return _run


@pytest.fixture
def kinds() -> Callable[[Any], list[str]]:
    def f(topo: Any) -> list[str]:
        return [n.kind for n in topo.plan().topological()]
    return f
