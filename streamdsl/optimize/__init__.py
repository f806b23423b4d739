"""Optimizer passes: small pure functions ``Plan -> Plan`` run in order.

(The full pass list arrives with the optimizer issue; until then ``optimize`` validates and
returns the plan unchanged.)
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..ir.plan import Plan
from ..ir.validate import validate

__all__ = ["optimize", "DEFAULT_PASSES", "Pass"]

Pass = Callable[[Plan], Plan]

DEFAULT_PASSES: tuple[Pass, ...] = ()


def optimize(plan: Plan, passes: Sequence[Pass] | None = None) -> Plan:
    """Run ``passes`` (default ``DEFAULT_PASSES``) over ``plan``; each result is validated."""
    for p in (DEFAULT_PASSES if passes is None else passes):
        plan = validate(p(plan))
    return plan
