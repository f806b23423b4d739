"""Optimizer passes: small pure functions ``Plan -> Plan`` run in order.

Each pass lives in its own module, named after its one public function. A pass never edits
the plan it is given (it returns a new one, or the same one when nothing applies), running
it twice changes nothing more, and on every input on which the original plan raises no
error the optimized plan gives every sink the same records (see docs/optimizer.md).

>>> import streamdsl as sd
>>> t = sd.Topology("t")
>>> t.stream("in").filter(sd.col("n") > 1).map(sd.col("n") * 2).to("out")
>>> [n.kind for n in optimize(t.plan()).topological()]
['Source', 'Fused', 'Sink']
>>> [n.kind for n in optimize(t.plan(), passes=["cull"]).topological()]
['Source', 'Filter', 'Map', 'Sink']
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import StreamDSLError
from ..ir.plan import Plan
from ..ir.validate import validate
from ._notes import OptimizerWarning, collect_notes
from .cull import cull
from .fuse_stateless import fuse_stateless
from .merge_repartitions import merge_repartitions
from .prune_fields import prune_fields
from .push_filters import push_filters
from .share_sources import share_sources

__all__ = ["optimize", "DEFAULT_PASSES", "PASSES", "Pass", "resolve_passes", "collect_notes",
           "OptimizerWarning", "share_sources", "cull", "push_filters", "merge_repartitions",
           "prune_fields", "fuse_stateless"]

Pass = Callable[[Plan], Plan]

DEFAULT_PASSES: tuple[Pass, ...] = (
    cull,                # first: no pass spends work on dead operators, and they cannot block a
                         # rewrite (an unused consumer can stop share_sources keeping order)
    share_sources,       # before the rewrites below: the consumers of a topic declared twice
                         # become siblings, so merge_repartitions can merge their re-keys
    push_filters,        # before merge_repartitions and prune_fields: a filter moved ahead of a
                         # re-key or repartition shrinks what is shuffled, and it must move while
                         # the chain is still made of separate nodes
    merge_repartitions,  # after push_filters (filters sit where they will run), before
                         # prune_fields (projections go on the repartitions that remain)
    prune_fields,        # after the repartitions are final; its projections are plain Maps that
                         # fuse_stateless then folds into the neighbouring chain
    fuse_stateless,      # last: Fused nodes are opaque to every other pass
)

#: Every pass by name (what ``--passes`` accepts).
PASSES: dict[str, Pass] = {p.__name__: p for p in DEFAULT_PASSES}


def resolve_passes(passes: Sequence[Pass | str]) -> list[Pass]:
    """Pass functions for names (or functions); an unknown name raises ``StreamDSLError``."""
    out = []
    for p in passes:
        if isinstance(p, str):
            if p not in PASSES:
                raise StreamDSLError(f"unknown optimizer pass {p!r}; passes: {', '.join(PASSES)}")
            p = PASSES[p]
        out.append(p)
    return out


def optimize(plan: Plan, passes: Sequence[Pass | str] | None = None) -> Plan:
    """Run ``passes`` (default ``DEFAULT_PASSES``; functions or names) over ``plan``; each
    result is validated."""
    for p in resolve_passes(DEFAULT_PASSES if passes is None else passes):
        plan = validate(p(plan))
    return plan
