"""The plan as the local executor wires it: edges, sources, sinks and their writers, and the
named types its parts pass to each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from streamdsl.ir.plan import Plan
from streamdsl.runtime.metrics import Metrics
from streamdsl.runtime.records import OutputRecord, Record

__all__ = ["Target", "Part", "Wiring", "SinkWriter", "Handoff", "RepartitionWriter"]

SinkWriter = Callable[[OutputRecord], None]
#: ``write(repartition node, record, task partition, partition)``: where a run that cuts its
#: plan at the repartitions sends what a ``Repartition`` node receives in the task of ``task
#: partition`` (``partition``: the task of the record's new key)
RepartitionWriter = Callable[[str, Record, int, int], None]


class Target(NamedTuple):
    """Where a node's output goes: node ``dst`` on input ``port``; ``out`` (a branch's output
    port) restricts it to the records routed there."""

    dst: str
    port: str
    out: str | None


class Handoff(NamedTuple):
    """A record coming back from a repartition: it enters the nodes ``node`` (a
    ``Repartition``) feeds, in the task of ``partition`` (what an executor with a
    ``repartition_writer`` takes in ``feed_many`` beside input events)."""

    node: str
    partition: int
    record: Record


class Part(NamedTuple):
    """Records of one task arriving at a node on one input in a batch. ``seqs`` (None when no
    node downstream merges inputs) gives, per record, the position in the batch of the input
    record it derives from: the order depth-first processing would deliver records in.
    ``partition`` is the task's partition (every record of a part has the same)."""

    port: str
    recs: list[Record]
    seqs: list[int] | None
    partition: int = 0


@dataclass(slots=True)
class Wiring:
    """Names, edges and outputs of a plan, resolved once."""

    plan: Plan
    order: list[str]
    edges: dict[str, list[Target]]
    #: topic -> the source nodes reading it, in feeding order
    sources: dict[str, list[str]]
    #: sink node -> its writer
    writers: dict[str, SinkWriter]
    #: sink node -> its topic
    sink_topic: dict[str, str]
    metrics: Metrics
    outputs: dict[str, list[OutputRecord]] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Plan, metrics: Metrics,
           sink_writers: dict[str, SinkWriter] | None) -> "Wiring":
        order = [n.name for n in plan.topological()]
        edges = {name: [Target(e.dst, e.port, e.out) for e in plan.out_edges(name)]
                 for name in order}
        sources: dict[str, list[str]] = {}
        for s in plan.sources():
            sources.setdefault(s.topic, []).append(s.name)
        outputs: dict[str, list[OutputRecord]] = {t: [] for t in plan.sink_topics()}
        writers: dict[str, SinkWriter] = {}
        for s in plan.sinks():
            w = (sink_writers or {}).get(s.topic)
            writers[s.name] = w if w is not None else outputs[s.topic].append
        return cls(plan, order, edges, sources, writers, {s.name: s.topic for s in plan.sinks()},
                   metrics, outputs)

    def unknown_topics(self, topics) -> list[str]:
        return sorted(set(topics) - set(self.sources))

    def check_topics(self, topics) -> None:
        unknown = self.unknown_topics(topics)
        if unknown:
            raise KeyError(f"unknown source(s) {unknown}; sources: {', '.join(self.sources)}")

    def sink_output(self, sink: str) -> Callable[[list[OutputRecord]], None]:
        """``write(outputs)`` for sink node ``sink``: counts them and hands them to its writer
        (one ``extend`` when the sink collects into ``outputs``)."""
        topic = self.sink_topic[sink]
        writer = self.writers[sink]
        out_list = self.outputs.get(topic)
        metrics = self.metrics
        collect = out_list is not None and writer == out_list.append
        # a writer with ``many(records)`` takes them all in one call (``KafkaSink``)
        many = getattr(writer, "many", None)

        def write(outs: list[OutputRecord]) -> None:
            if outs:
                metrics.records_out += len(outs)
                metrics.out_by_sink[topic] += len(outs)
                if collect:
                    out_list.extend(outs)
                elif many is not None:
                    many(outs)
                else:
                    for o in outs:
                        writer(o)
        return write

    def direct_sink(self, op: str, branch: bool) -> str | None:
        """The sink that is ``op``'s only output, if any (its outputs can be built directly)."""
        edges = self.edges[op]
        if branch or len(edges) != 1 or edges[0].out is not None:
            return None
        dst = edges[0].dst
        return dst if dst in self.writers else None
