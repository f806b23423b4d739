"""The intermediate representation: nodes, the plan graph, validation."""

from __future__ import annotations

from .aggregators import AggFunc, Aggregator
from .fn import Fn, as_fn
from .nodes import *  # noqa: F401,F403
from .nodes import __all__ as _nodes_all
from .plan import Edge, Plan

__all__ = ["AggFunc", "Aggregator", "Fn", "as_fn", "Plan", "Edge", *_nodes_all]
