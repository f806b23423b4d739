"""kafka: the fraud topology on local, read from a Kafka topic and written to one, against the
same records read from a JSON-lines file and written to a file (the path ``streamdsl run`` takes
for files). Target (issue 17): Kafka in and out >= 0.5x the file path's events/s at 1M records.

The broker is the test broker (Tansu, in memory, started here: ``streamdsl.connectors.tansu``);
the input topic (4 partitions, keyed by card) is produced before the clock starts, by the
project's producer (``topologies/produce_fraud_to_kafka.py``). Each timed Kafka run uses a new
consumer group and output topic, ends with ``until_idle`` (0.3 s, included) and includes the
consumer group join. Besides wall and CPU time of this process, the broker's CPU time during
each run is recorded (``/proc``). Outputs are checked: the Kafka output read back equals the file output
(the hand loop's suspects, and our tombstones for the windows that fail HAVING).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Callable

import orjson

from .measure import median, timed
from .workloads import fraud

__all__ = ["run_kafka_bench", "SIZE", "TARGET"]

SIZE = 1_000_000
TARGET = 0.5
PARTITIONS = 4
#: a short session, as the Kafka tests use: the group join is part of each measured run
GROUP_OPTS = "session.timeout.ms=1000&heartbeat.interval.ms=100"


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system, every thread) process ``pid`` has used so far (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:  # not Linux
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_topic(bootstrap: str, topic: str, n_partitions: int) -> list[tuple]:
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-read-" + uuid.uuid4().hex,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(n_partitions)])
    out, eof = [], set()
    try:
        while len(eof) < n_partitions:
            for m in c.consume(10_000, 1.0):
                if m.error() is not None:
                    eof.add(m.partition())
                    continue
                out.append((m.key(), m.value()))
    finally:
        c.close()
    return out


def _canonical(d: dict) -> str:
    """A file output line as (card, window start, count or None)."""
    return repr((d["key"], d["window"]["start"], d["value"]))


def _from_kafka(key: bytes, value: bytes | None) -> str:
    k = orjson.loads(key)
    return repr((k["key"], k["window_start"], None if value is None else orjson.loads(value)))


def run_kafka_bench(*, n_scale: float = 1.0, reps: int = 3, timeout: float = 1800.0,
                    log: Callable[[str], None] = lambda s: None) -> dict:
    from confluent_kafka.admin import AdminClient, NewTopic

    from streamdsl.backend import get_backend
    from streamdsl.connectors.tansu import start_broker, stop_broker
    from streamdsl.optimize import optimize
    from topologies.produce_fraud_to_kafka import produce_fraud

    from .worker import scaled
    n = scaled(SIZE, n_scale)
    plan = optimize(fraud.topology().plan())
    backend = get_backend("local")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "attempts.jsonl")
        with open(path, "wb") as f:
            for e in fraud.iter_events(n, fraud.cards_for(n)):
                f.write(orjson.dumps(e) + b"\n")
        proc, port = start_broker(os.path.join(tmp, "broker.log"))
        try:
            bootstrap = f"127.0.0.1:{port}"
            topic = "attempts-" + uuid.uuid4().hex[:8]
            produce_fraud(bootstrap, topic, partitions=PARTITIONS, path=path)
            admin = AdminClient({"bootstrap.servers": bootstrap})
            seconds: dict[str, list[float]] = {"file": [], "kafka": []}
            cpu: dict[str, list[float]] = {"file": [], "kafka": []}
            broker_cpu: dict[str, list[float]] = {"file": [], "kafka": []}
            equal = True
            for rep in range(reps):
                out_path = os.path.join(tmp, "out.jsonl")
                b0 = _cpu_of(proc.pid)
                dt, cdt, _ = timed(lambda: backend.run(
                    plan, {fraud.SOURCE: path}, {fraud.SINK: out_path}, optimize=False))
                broker_cpu["file"].append(_cpu_of(proc.pid) - b0)
                seconds["file"].append(dt)
                cpu["file"].append(cdt)
                with open(out_path, "rb") as f:
                    want = sorted(_canonical(orjson.loads(line)) for line in f)
                log(f"  rep {rep + 1} file: {dt:.3f} s (cpu {cdt:.3f} s)")
                group = "bench-" + uuid.uuid4().hex[:8]
                out_topic = "suspects-" + uuid.uuid4().hex[:8]
                for fut in admin.create_topics([NewTopic(out_topic, PARTITIONS, 1)]).values():
                    fut.result(10)
                src = f"kafka://{bootstrap}/{topic}?group={group}&{GROUP_OPTS}"
                dst = f"kafka://{bootstrap}/{out_topic}"
                b0 = _cpu_of(proc.pid)
                dt, cdt, _ = timed(lambda: backend.run(
                    plan, {fraud.SOURCE: src}, {fraud.SINK: dst}, until_idle=0.3,
                    optimize=False))
                broker_cpu["kafka"].append(_cpu_of(proc.pid) - b0)
                seconds["kafka"].append(dt)
                cpu["kafka"].append(cdt)
                got = sorted(_from_kafka(k, v) for k, v in _read_topic(bootstrap, out_topic,
                                                                        PARTITIONS))
                same = got == want
                equal = equal and same
                log(f"  rep {rep + 1} kafka: {dt:.3f} s (cpu {cdt:.3f} s, broker cpu "
                    f"{broker_cpu['kafka'][-1]:.3f} s)"
                    + ("" if same else f": WRONG OUTPUT ({len(got)} records, file {len(want)})"))
        finally:
            stop_broker(proc)
    eps = {k: round(n / median(v), 1) for k, v in seconds.items()}
    cpu_eps = {k: round(n / max(median(v), 1e-9), 1) for k, v in cpu.items()}
    ratio = round(eps["kafka"] / eps["file"], 3)
    return {
        "n": n,
        "partitions": PARTITIONS,
        "events_per_s": eps,
        "cpu_events_per_s": cpu_eps,
        "seconds": {k: [round(s, 4) for s in v] for k, v in seconds.items()},
        "cpu_seconds": {k: [round(s, 4) for s in v] for k, v in cpu.items()},
        # CPU of this process (the run, librdkafka's threads included) and of the broker, per
        # input record (medians)
        "cpu_us_per_record": {k: round(median(v) / n * 1e6, 3) for k, v in cpu.items()},
        "broker_cpu_us_per_record": {k: round(median(v) / n * 1e6, 3)
                                     for k, v in broker_cpu.items()},
        "kafka_vs_file": ratio,
        "cpu_kafka_vs_file": round(cpu_eps["kafka"] / cpu_eps["file"], 3),
        "target": TARGET,
        "meets_target": ratio >= TARGET and equal,
        "outputs_equal": equal,
        "reps": reps,
        "load_average": list(os.getloadavg()),
    }
