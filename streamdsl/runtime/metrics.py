"""Run metrics: counts every backend reports the same way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Metrics"]


@dataclass
class Metrics:
    """Counters of one run.

    ``late`` counts input records dropped by a windowed operator or join because they arrived
    after their window closed (window end + grace); ``skipped`` counts records an operator
    ignores by Kafka Streams' rules (null key or value at an aggregation or join);
    ``dead_lettered`` counts records sent to the dead-letter output; ``missing_field``
    counts records dropped because an expression read a field their value does not have
    (``runtime/drops.py``), by ``(operator, field, kind)`` in ``missing_field_by_node``.
    """

    records_in: int = 0
    records_out: int = 0
    late: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    missing_field: int = 0
    late_by_node: Counter = field(default_factory=Counter)
    skipped_by_node: Counter = field(default_factory=Counter)
    out_by_sink: Counter = field(default_factory=Counter)
    in_by_source: Counter = field(default_factory=Counter)
    #: ``(operator, field, kind)`` -> records dropped (kind: ``runtime.drops.missing_field``)
    missing_field_by_node: Counter = field(default_factory=Counter)

    def record_late(self, node: str, n: int = 1) -> None:
        self.late += n
        self.late_by_node[node] += n

    def record_skipped(self, node: str, n: int = 1) -> None:
        self.skipped += n
        self.skipped_by_node[node] += n

    def record_missing(self, node: str, field_name: str, kind: str, n: int = 1) -> None:
        self.missing_field += n
        self.missing_field_by_node[(node, field_name, kind)] += n

    @property
    def any(self) -> bool:
        """Whether anything was counted (a backend sends only metrics that say something)."""
        return bool(self.records_in or self.records_out or self.late or self.dead_lettered
                    or self.skipped or self.missing_field)

    def merge(self, other: "Metrics") -> None:
        self.records_in += other.records_in
        self.records_out += other.records_out
        self.late += other.late
        self.dead_lettered += other.dead_lettered
        self.skipped += other.skipped
        self.missing_field += other.missing_field
        self.missing_field_by_node.update(other.missing_field_by_node)
        self.late_by_node.update(other.late_by_node)
        self.skipped_by_node.update(other.skipped_by_node)
        self.out_by_sink.update(other.out_by_sink)
        self.in_by_source.update(other.in_by_source)

    def to_dict(self) -> dict:
        return {"records_in": self.records_in, "records_out": self.records_out, "late": self.late,
                "dead_lettered": self.dead_lettered, "skipped": self.skipped,
                "late_by_node": dict(self.late_by_node), "skipped_by_node": dict(self.skipped_by_node),
                "out_by_sink": dict(self.out_by_sink), "in_by_source": dict(self.in_by_source),
                "missing_field": self.missing_field,
                "missing_field_by_node": [[node, f, kind, n] for (node, f, kind), n
                                          in sorted(self.missing_field_by_node.items())]}

    @staticmethod
    def from_dict(d: dict) -> "Metrics":
        m = Metrics(records_in=d.get("records_in", 0), records_out=d.get("records_out", 0),
                    late=d.get("late", 0), dead_lettered=d.get("dead_lettered", 0),
                    skipped=d.get("skipped", 0), missing_field=d.get("missing_field", 0))
        m.late_by_node.update(d.get("late_by_node", {}))
        m.skipped_by_node.update(d.get("skipped_by_node", {}))
        m.out_by_sink.update(d.get("out_by_sink", {}))
        m.in_by_source.update(d.get("in_by_source", {}))
        for node, f, kind, n in d.get("missing_field_by_node", ()):
            m.missing_field_by_node[(node, f, kind)] += n
        return m
