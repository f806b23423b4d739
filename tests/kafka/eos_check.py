"""Which records of an exactly_once run's outputs were committed, without trusting the broker's
transaction isolation (Tansu shows aborted transactions to read_committed readers).

Every record an exactly_once run writes carries the header ``streamdsl.txn`` (its transaction's
id); the checkpoint written in each transaction names that id and its parent, the last commit
before it. The group's committed offsets move only with a committed transaction (on Tansu too:
``test_exactly_once.py`` probes it), so the checkpoint whose positions equal them is the last
committed one, and its chain of parents is every committed transaction of the group's history.
Records of other transactions were aborted.
"""

from __future__ import annotations

import pickle

from streamdsl.backends.local.kafka_run import CHECKPOINT_SUFFIX, TXN_HEADER

from kafka_helpers import Kafka, Msg


def committed_transactions(kafka: Kafka, group: str, source_topic: str, partitions: int) -> set[str]:
    """The committed transactions of ``group``, which reads ``source_topic`` (and whatever
    else its checkpoints hold positions of: its repartition topics)."""
    ckpts = [pickle.loads(m.value) for m in kafka.read(group + CHECKPOINT_SUFFIX, json_values=False,
                                                      isolation="read_uncommitted")
             if m.key == group]
    counts = {source_topic: partitions}
    for c in ckpts:
        for topic, p in c["positions"]:
            counts[topic] = max(counts.get(topic, 0), p + 1)
    committed = {(topic, p): off for topic, n in counts.items()
                 for p, off in kafka.committed(topic, group, n).items() if off >= 0}
    by_txn = {c["txn"]: c for c in ckpts}
    last = [c for c in ckpts if c["positions"] == committed]
    assert last, "no checkpoint matches the group's committed offsets"
    chain: set[str] = set()
    txn = last[-1]["txn"]
    while txn is not None:
        assert txn not in chain, f"a cycle in the checkpoint chain at {txn}"
        chain.add(txn)
        txn = by_txn[txn]["parent"]
    return chain


def committed_records(kafka: Kafka, topic: str, txns: set[str], *,
                      json_values: bool = True) -> list[Msg]:
    """The records of ``topic`` written by the transactions ``txns``."""
    out = []
    for m in kafka.read(topic, isolation="read_uncommitted", json_values=json_values):
        header = dict(m.headers).get(TXN_HEADER)
        assert header is not None, f"a record without the {TXN_HEADER} header: {m}"
        if header.decode() in txns:
            out.append(m)
    return out
