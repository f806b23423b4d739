"""Build the processor of any IR node: the one place that maps node kinds to semantics."""

from __future__ import annotations

from ..ir.nodes import (Aggregate, Branch, Node, Source, StreamStreamJoin, StreamTableJoin,
                        TableAggregate, TableFilter, TableGroupBy, TableMap, TableTableJoin)
from .aggregate import make_aggregate_processor
from .joins import StreamStreamJoinProcessor, StreamTableJoinProcessor, TableTableJoinProcessor
from .metrics import Metrics
from .processors import BranchProcessor, OpContext, Processor, StatelessProcessor
from .records import Record
from .tables import (TableAggregateProcessor, TableFilterProcessor, TableGroupByProcessor,
                     TableMapProcessor, TableSourceProcessor)

__all__ = ["make_processor", "SourceProcessor"]


class SourceProcessor(Processor):
    """A stream source: forwards what ingest made (``runtime/ingest.py``)."""

    def process(self, port: str, rec: Record) -> list[Record]:
        return [rec]


# Node kinds with a processor class of their own; every other kind is stateless.
_PROCESSORS: dict[type[Node], type[Processor]] = {
    TableGroupBy: TableGroupByProcessor,
    TableAggregate: TableAggregateProcessor,
    StreamStreamJoin: StreamStreamJoinProcessor,
    StreamTableJoin: StreamTableJoinProcessor,
    TableTableJoin: TableTableJoinProcessor,
    TableFilter: TableFilterProcessor,
    TableMap: TableMapProcessor,
    Branch: BranchProcessor,
}


def make_processor(node: Node, metrics: Metrics) -> Processor:
    """A fresh processor (with empty state) for ``node``."""
    ctx = OpContext(node.name, metrics)
    if isinstance(node, Source):
        return TableSourceProcessor(node, ctx) if node.table else SourceProcessor(node, ctx)
    if isinstance(node, Aggregate):
        return make_aggregate_processor(node, ctx)
    return _PROCESSORS.get(type(node), StatelessProcessor)(node, ctx)
