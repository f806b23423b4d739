"""``streamdsl run`` with kafka:// inputs and outputs, as a real subprocess: a finite run, and a
continuous run stopped with Ctrl-C (SIGINT) that commits what it finished."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)
from test_fraud_kafka import file_run, kafka_records, producer

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("streamdsl"))


def _args(kafka: Kafka, src: str, out: str, group: str, *extra: str) -> list[str]:
    return [EXE, "run", "topologies/fraud_detection.py", "--quiet",
            "--input", f"authorization_attempts={kafka.uri(src, group)}",
            "--output", f"possible_fraud={kafka.uri(out)}", *extra]


def test_cli_run_from_kafka_to_kafka(kafka: Kafka):
    src, out, group = kafka.name("attempts"), kafka.name("possible-fraud"), kafka.name("cli")
    producer.produce_fraud(kafka.bootstrap, src, partitions=2)
    dlq = kafka.name("dead-letters")
    r = subprocess.run(_args(kafka, src, out, group, "--until-idle", "0.5",
                             "--processing-guarantee", "exactly_once",
                             "--dead-letter", kafka.uri(dlq)),
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert kafka_records(kafka, out) == file_run()
    assert kafka.read(dlq) == []                    # created, and empty: no bad record


def test_cli_ctrl_c_commits_then_a_new_run_continues(kafka: Kafka):
    src, out, group = kafka.name("attempts"), kafka.name("possible-fraud"), kafka.name("cli")
    producer.produce_fraud(kafka.bootstrap, src, partitions=2)
    proc = subprocess.Popen(_args(kafka, src, out, group, "--commit-interval", "0.2"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while sum(kafka.committed(src, group, 2).values()) < 611:   # everything read, committed
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the continuous run did not commit its input"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1 and "interrupted" in err
    expected = file_run()
    running = kafka_records(kafka, out)
    assert running < expected          # the last windows wait for stream time (or an end)
    r = subprocess.run(_args(kafka, src, out, group, "--until-idle", "0.5"), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert kafka_records(kafka, out) == expected      # the end closed them; nothing repeated
