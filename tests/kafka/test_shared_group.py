"""Several instances of one topology in one consumer group share its tasks, as Kafka Streams
instances do: each owns some partitions of the input topic (a task per partition), checkpoints
each task apart, and a task that moves to another instance (a rebalance, a member killed)
continues there from its last checkpoint. Two instances together, and one killed part-way,
give what one instance gives.

The topology counts per card in 5-minute windows and emits every update, so each input record
has its own output and a task restored with the wrong state shows in the counts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import slow_counts
from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)

import streamdsl as sd  # noqa: F401
from streamdsl.backend import get_backend

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("streamdsl"))
TOPOLOGY = str(Path(slow_counts.__file__))
N = 3_000


def expected(n: int = N) -> set[tuple]:
    res = get_backend("local").run(slow_counts.topology.plan(),
                                   {"attempts": {"type": "memory",
                                                 "records": slow_counts.records(n)}}, {})
    return {(r.key, r.value, r.window) for r in res.outputs["counts"]}


def _setup(kafka: Kafka) -> tuple[str, str, str]:
    src = kafka.topic("attempts", partitions=4)
    kafka.produce(src, [(r["card_number"], r, None, None) for r in slow_counts.records(N)])
    return src, kafka.topic("counts", partitions=2), kafka.name("shared")


def _instance(kafka: Kafka, src: str, out: str, group: str, delay_ms: int = 1) -> subprocess.Popen:
    env = {**os.environ, "SLOW_COUNTS_MS": str(delay_ms)}
    return subprocess.Popen(
        [EXE, "run", TOPOLOGY, "--commit-interval", "0.1", "--until-idle", "3",
         "--input", f"attempts={kafka.uri(src, group)}", "--output", f"counts={kafka.uri(out)}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _read(proc: subprocess.Popen, timeout: float = 120) -> int:
    """The number of records the instance read (its summary), once it has ended."""
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return int(re.search(r"read:\s+([\d,]+)", err).group(1).replace(",", ""))


def _outputs(kafka: Kafka, out: str) -> tuple[set[tuple], dict[tuple, int]]:
    """Every (card, count, window) written, and each (card, window)'s last count."""
    msgs = kafka.read(out)
    last: dict[tuple, int] = {}
    for m in msgs:  # one output partition per key: its records in the order written
        last[(m.key_json["key"], m.key_json["window_start"])] = m.value
    return ({(m.key_json["key"], m.value, (m.key_json["window_start"], m.key_json["window_end"]))
             for m in msgs}, last)


def _wait_for_outputs(kafka: Kafka, out: str, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(kafka.read(out)) < n:
        time.sleep(0.2)
    assert len(kafka.read(out)) >= n


def _final(rows: set[tuple]) -> dict[tuple, int]:
    final: dict[tuple, int] = {}
    for key, value, window in rows:
        final[(key, window[0])] = max(final.get((key, window[0]), 0), value)
    return final


def test_two_instances_share_the_partitions_and_give_one_instances_results(kafka: Kafka):  # noqa: F811
    src, out, group = _setup(kafka)
    # a owns every partition and has begun; slowed down (4 ms a record: 12 s for all of them)
    # so that it is still running when b has started and joined, however loaded the machine
    a = _instance(kafka, src, out, group, delay_ms=4)
    _wait_for_outputs(kafka, out, N // 10)
    b = _instance(kafka, src, out, group)  # b's joining takes some tasks, and their state, from it
    read_a, read_b = _read(a), _read(b)
    assert read_a > 0 and read_b > 0, (read_a, read_b)   # both did part of the work
    rows, last = _outputs(kafka, out)
    want = expected()
    assert rows == want               # every update, none wrong (a moved task went on from its state)
    assert last == _final(want)       # and each window's count ends where one instance's ends
    assert sum(Counter(kafka.committed(src, group, 4)).values()) == N


def test_an_instance_killed_part_way_leaves_its_tasks_to_the_other(kafka: Kafka):  # noqa: F811
    src, out, group = _setup(kafka)
    a = _instance(kafka, src, out, group)
    time.sleep(1.0)
    b = _instance(kafka, src, out, group)
    _wait_for_outputs(kafka, out, N // 3)
    assert b.poll() is None, "b ended before it could be killed"
    b.send_signal(signal.SIGKILL)
    b.wait(10)
    _read(a)
    rows, last = _outputs(kafka, out)
    want = expected()
    assert rows == want    # at least once: b's uncommitted updates may repeat, none is missing
    assert last == _final(want)
    assert sum(Counter(kafka.committed(src, group, 4)).values()) == N
