"""Run metrics through Beam metrics: counters in the ``streamdsl`` namespace.

The DoFns count ``records_in``, ``records_out``, ``dead_lettered``, ``in:<source>``,
``out:<sink>``, ``late:<node>``, ``skipped:<node>`` and ``missing:[node, field, kind]``; after the run they are read back into
the ``Metrics`` every backend reports.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamdsl.runtime.metrics import Metrics

from .dofns import NAMESPACE

__all__ = ["read_metrics"]


def read_metrics(result: Any) -> Metrics:
    """The run's ``Metrics`` from a finished Beam ``PipelineResult``."""
    from apache_beam.metrics.metric import MetricsFilter
    m = Metrics()
    counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    for c in counters:
        try:
            n = c.committed
        except Exception:  # runners without committed metrics
            n = None
        if n is None:
            n = c.attempted or 0
        name = c.key.metric.name
        kind, _, what = name.partition(":")
        if kind == "records_in":
            m.records_in += n
        elif kind == "records_out":
            m.records_out += n
        elif kind == "dead_lettered":
            m.dead_lettered += n
        elif kind == "in":
            m.in_by_source[what] += n
        elif kind == "out":
            m.out_by_sink[what] += n
        elif kind == "late":
            m.record_late(what, n)
        elif kind == "skipped":
            m.record_skipped(what, n)
        elif kind == "missing":
            node, f, why = orjson.loads(what)
            m.record_missing(node, f, why, n)
    return m
