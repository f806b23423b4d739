"""``streamdsl sql --bootstrap-server``: the shell with Kafka topics, driven through a
pseudo-terminal. A persistent query runs in a process of its own until TERMINATE; a push
query reads the topic and stops at its LIMIT; PRINT reads a topic back. Expected records are
worked out by hand from the produced ones and ksqlDB's rules (keys out of values, upper-case
names)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect

from kafka_helpers import GROUP_OPTS, Kafka, kafka  # noqa: F401  (the broker fixture)

EXE = str(Path(sys.executable).with_name("streamdsl"))


def test_the_shell_on_kafka(kafka: Kafka, tmp_path):
    src = kafka.topic("pageviews")
    kafka.produce(src, [("u1", {"page": "home"}, 1000, None), ("u2", {"page": "cart"}, 2000, None),
                        ("u1", {"page": "cart"}, 3000, None)])
    out = kafka.name("CARTS")
    env = {**os.environ, "TERM": "xterm", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1"}
    sh = pexpect.spawn(EXE, ["sql", "--bootstrap-server", kafka.bootstrap, "--kafka-options",
                             GROUP_OPTS, "--history", str(tmp_path / "history")],
                       encoding="utf-8", timeout=120, dimensions=(50, 220), env=env)
    try:
        sh.expect("ksql>")
        sh.send(f"CREATE STREAM pv (user_id STRING KEY, page STRING) WITH (KAFKA_TOPIC='{src}', "
                "VALUE_FORMAT='JSON');\r")
        sh.expect("Stream created")
        sh.send("SELECT user_id, page FROM pv EMIT CHANGES LIMIT 2;\r")
        sh.expect(r"\| u1 +\| home +\|")
        sh.expect(r"\| u2 +\| cart +\|")
        sh.expect("Limit Reached")
        sh.expect("ksql>")
        sh.send(f"CREATE STREAM carts WITH (KAFKA_TOPIC='{out}') AS SELECT user_id, UCASE(page) AS p "
                "FROM pv WHERE page = 'cart';\r")
        sh.expect(r"Created query with ID (CSAS_CARTS_\d+)")
        qid = sh.match.group(1)
        sh.expect("ksql>")
        sh.send("SHOW QUERIES;\r")
        sh.expect(rf"{qid} +. PERSISTENT +. RUNNING")
        sh.expect("ksql>")
        sh.send(f"PRINT '{out}' FROM BEGINNING LIMIT 2;\r")
        sh.expect(r'key: "u2", value: \{"P":"CART"\}')
        sh.expect(r'key: "u1", value: \{"P":"CART"\}')
        sh.expect(r"Topic printing ceased \(2 records\)")
        sh.expect("ksql>")
        sh.send(f"TERMINATE {qid};\r")
        sh.expect(f"Query terminated: {qid}")
        sh.expect("ksql>")
        sh.send("exit\r")
        sh.expect(pexpect.EOF)
    finally:
        sh.close()
    assert sh.exitstatus == 0
    # KEY_FORMAT KAFKA: a STRING key is its text (UTF-8 bytes, not JSON)
    assert [(m.key, m.value, m.timestamp) for m in kafka.read(out)] == [
        ("u2", {"P": "CART"}, 2000), ("u1", {"P": "CART"}, 3000)]
