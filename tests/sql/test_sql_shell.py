"""``streamdsl sql``, the interactive shell, driven through a pseudo-terminal (pexpect), from a
pipe, and ``streamdsl run`` of a push query. Expected rows are worked out by hand from the
input records below and ksqlDB's rules (keys out of values, upper-case names)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from streamdsl.cli.shell import statement_complete

EXE = str(Path(sys.executable).with_name("streamdsl"))
ROOT = Path(__file__).resolve().parents[2]

#: topic ``pageviews`` as the files store keeps it: one {"key", "value", "timestamp"} a line
PAGEVIEWS = [
    {"key": "u1", "value": {"page": "home"}, "timestamp": 1000},
    {"key": "u2", "value": {"page": "cart"}, "timestamp": 2000},
    {"key": "u1", "value": {"page": "cart"}, "timestamp": 3000},
]
CREATE = ("CREATE STREAM pageviews_s (user_id STRING KEY, page STRING)\n"
          "  WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON');\n")


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "pageviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in PAGEVIEWS))
    return folder


def run_piped(args: list[str], stdin: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          timeout=120, check=False)


def spawn(data: Path, history: Path, backend: str = "local") -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1"}
    return pexpect.spawn(EXE, ["sql", "--data", str(data), "--history", str(history),
                               "--backend", backend],
                         encoding="utf-8", timeout=120, dimensions=(50, 220), env=env,
                         cwd=str(data.parent))


def test_an_interactive_session_through_a_pseudo_terminal(data, tmp_path):
    history = tmp_path / "history"
    sh = spawn(data, history)
    try:
        sh.expect("ksql>")
        # a statement over two lines: the continuation prompt, then the whole statement runs
        first, second = CREATE.splitlines()
        sh.send(first + "\r")
        sh.send(second + "\r")
        sh.expect("Stream created")
        sh.expect("ksql>")
        # completion: DESCR<Tab> gives the keyword, pagev<Tab> the stream's name
        sh.send("DESCR\t")
        sh.send(" pagev\t")
        sh.send(";\r")
        sh.expect(r"Name +: PAGEVIEWS_S")
        sh.expect(r"USER_ID +. STRING \(key\)")
        sh.expect("ksql>")
        sh.send("SHOW STREAMS;\r")
        sh.expect(r"PAGEVIEWS_S +. pageviews +. KAFKA +. JSON +. false")
        sh.expect("ksql>")
        # an error is printed and the session goes on
        sh.send("SELECT nope FROM pageviews_s EMIT CHANGES;\r")
        sh.expect(r"unknown column 'NOPE' in SELECT")
        sh.expect("ksql>")
        # a push query: its rows as they come, until its LIMIT
        sh.send("SELECT user_id, page FROM pageviews_s WHERE page = 'cart' EMIT CHANGES LIMIT 2;\r")
        sh.expect(r"\| USER_ID +\| PAGE +\|")
        sh.expect(r"\| u2 +\| cart +\|")
        sh.expect(r"\| u1 +\| cart +\|")
        sh.expect("Limit Reached")
        sh.expect("2 rows")
        sh.expect("ksql>")
        # a persistent query writes its topic; PRINT reads it back with keys and timestamps
        sh.send("CREATE TABLE views AS SELECT user_id, COUNT(*) AS n FROM pageviews_s "
                "GROUP BY user_id;\r")
        sh.expect("Created query with ID CTAS_VIEWS_")
        sh.expect("ksql>")
        sh.send("SHOW QUERIES;\r")
        sh.expect(r"CTAS_VIEWS_\d+ +. PERSISTENT")
        sh.expect("ksql>")
        sh.send("PRINT 'VIEWS' FROM BEGINNING LIMIT 2;\r")
        sh.expect(r'rowtime: 1970/01/01 00:00:01.000 Z, key: "u1", value: \{"N":1\}')
        sh.expect(r'rowtime: 1970/01/01 00:00:02.000 Z, key: "u2", value: \{"N":1\}')
        sh.expect(r"Topic printing ceased \(2 records\)")
        sh.expect("ksql>")
        # a push query over the table: every change of it
        sh.send("SELECT * FROM views EMIT CHANGES;\r")
        sh.expect(r"\| USER_ID +\| N +\|")
        sh.expect(r"\| u1 +\| 1 +\|")
        sh.expect(r"\| u2 +\| 1 +\|")
        sh.expect(r"\| u1 +\| 2 +\|")
        sh.expect("3 rows")
        sh.expect("ksql>")
        # RUN SCRIPT runs a file's statements; TERMINATE ends a query
        script = tmp_path / "more.sql"
        script.write_text("CREATE STREAM carts AS SELECT user_id, UCASE(page) AS p "
                          "FROM pageviews_s WHERE page = 'cart';\n")
        sh.send(f"RUN SCRIPT '{script}';\r")
        sh.expect("Created query with ID CSAS_CARTS_")
        sh.expect("ksql>")
        sh.send("TERMINATE ALL;\r")
        sh.expect(r"Query terminated: CTAS_VIEWS_\d+")
        sh.expect(r"Query terminated: CSAS_CARTS_\d+")
        sh.expect("ksql>")
        sh.send("exit\r")
        sh.expect(pexpect.EOF)
    finally:
        sh.close()
    assert sh.exitstatus == 0
    # the persistent stream query wrote ksqlDB's records: key u2 then u1, value without the key
    written = [json.loads(line) for line in (data / "CARTS.jsonl").read_text().splitlines()]
    assert [(r["key"], r["value"], r["timestamp"]) for r in written] == [
        ("u2", {"P": "CART"}, 2000), ("u1", {"P": "CART"}, 3000)]
    # line history is kept between sessions (prompt_toolkit's file history)
    assert "+SHOW STREAMS;" in history.read_text()


def test_the_shell_runs_on_another_backend(data, tmp_path):
    sh = spawn(data, tmp_path / "history", backend="bytewax")
    try:
        sh.expect("ksql>")
        sh.send(CREATE.replace("\n", " ") + "\r")
        sh.expect("Stream created")
        sh.send("SELECT page, COUNT(*) FROM pageviews_s GROUP BY page EMIT CHANGES LIMIT 3;\r")
        sh.expect(r"\| PAGE +\| KSQL_COL_0 +\|")
        sh.expect(r"\| home +\| 1 +\|")
        sh.expect(r"\| cart +\| 1 +\|")
        sh.expect(r"\| cart +\| 2 +\|")
        sh.expect("3 rows")
        sh.send("exit\r")
        sh.expect(pexpect.EOF)
    finally:
        sh.close()
    assert sh.exitstatus == 0


def test_statements_from_a_pipe_run_in_order(data):
    r = run_piped(["sql", "--data", str(data)],
                  CREATE + "SELECT page FROM pageviews_s EMIT CHANGES LIMIT 1;\n", data.parent)
    assert r.returncode == 0, r.stderr
    assert "Stream created" in r.stdout
    assert "| home" in r.stdout and "Limit Reached" in r.stdout and "| cart" not in r.stdout


def test_an_error_from_a_pipe_is_one_line_with_its_position_and_exit_code_2(data):
    r = run_piped(["sql", "--data", str(data)],
                  CREATE + "SELECT page, FROM pageviews_s EMIT CHANGES;\n", data.parent)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: <stdin>:3:14: unexpected 'FROM'"), lines


def test_creating_a_name_twice_is_an_error(data, tmp_path):
    r = run_piped(["sql", "--data", str(data)], CREATE + CREATE, data.parent)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: <stdin>:3:15: stream PAGEVIEWS_S is already declared (line 1)"


@pytest.mark.parametrize("text, complete", [
    ("SELECT 1;", True),
    ("SELECT 1", False),
    ("SELECT ';'", False),
    ("SELECT ';';", True),
    ("SELECT 1; -- done", True),
    ("SELECT 1 -- ;", False),
    ("SELECT `a;`", False),
])
def test_statement_complete(text, complete):
    assert statement_complete(text) is complete


PUSH = """\
CREATE STREAM pageviews_s (user_id STRING KEY, page STRING)
  WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PATH='{path}?envelope=true');
SELECT user_id, page FROM pageviews_s EMIT CHANGES LIMIT 2;
"""


@pytest.mark.parametrize("backend", ["local", "bytewax", "beam"])
def test_run_prints_a_push_querys_rows_until_its_limit(data, tmp_path, backend):
    q = tmp_path / "q.sql"
    q.write_text(PUSH.format(path=data / "pageviews.jsonl"))
    r = run_piped(["run", str(q), "--backend", backend, "--quiet"], "", tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [(x["key"], x["value"]) for x in rows] == [("u1", {"PAGE": "home"}),
                                                      ("u2", {"PAGE": "cart"})]


def test_creating_a_name_of_an_earlier_statement_again_is_an_error(data, tmp_path):
    sh = spawn(data, tmp_path / "history")
    try:
        sh.expect("ksql>")
        sh.send(CREATE.replace("\n", " ") + "\r")
        sh.expect("Stream created")
        sh.send(CREATE.replace("\n", " ") + "\r")
        sh.expect("stream PAGEVIEWS_S is already declared")
        sh.send("exit\r")
        sh.expect(pexpect.EOF)
    finally:
        sh.close()


def test_print_interval_shows_every_nth_record(data):
    r = run_piped(["sql", "--data", str(data)], "PRINT pageviews FROM BEGINNING INTERVAL 2;\n",
                  data.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        'rowtime: 1970/01/01 00:00:01.000 Z, key: "u1", value: {"page":"home"}',
        'rowtime: 1970/01/01 00:00:03.000 Z, key: "u1", value: {"page":"cart"}',
        "Topic printing ceased (2 records)"]
