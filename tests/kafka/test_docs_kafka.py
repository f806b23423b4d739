"""The Python examples of docs/kafka.md run, top to bottom, against the test broker."""

from __future__ import annotations

import pathlib
import re

from kafka_helpers import Kafka, kafka  # noqa: F401  (the broker fixture)

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "kafka.md"


def test_kafka_doc_examples_run(kafka: Kafka, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 2
    ns: dict = {"__name__": "docs_kafka"}
    for i, code in enumerate(blocks):
        code = code.replace('BOOTSTRAP = "127.0.0.1:9092"', f"BOOTSTRAP = {kafka.bootstrap!r}")
        for group in ("=big-payments", "=payment-sizes"):
            code = code.replace(group, f"{group}&session.timeout.ms=1000&heartbeat.interval.ms=100")
        exec(compile(code, f"{DOC}#block{i + 1}", "exec"), ns)
    out = capsys.readouterr().out
    assert "6 payments read" in out and "2 partitions" in out
