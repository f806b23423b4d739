"""``streamdsl graph|explain|validate|run FILE.sql``: the CLI takes .sql files as it takes Python
files (through ``streamdsl.sql.load_file``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from streamdsl.backend import available_backends
from streamdsl.cli.main import cli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOPO = os.path.join(ROOT, "topologies")
FRAUD_SQL = os.path.join(TOPO, "fraud_detection.sql")
CATERPILLARS_SQL = os.path.join(TOPO, "caterpillars.sql")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def read_jsonl(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.parametrize("fmt, expected", [
    ("text", ["Source: source-authorization_attempts", "Processor: aggregate-1 (Aggregate",
              "agg(KSQL_COL_0=count()) over tumbling(size=5min, grace=1min), emit final",
              "fraud_detection.sql:23:25"]),
    ("mermaid", ["flowchart", "Aggregate: aggregate-1"]),
    ("dot", ["digraph", "aggregate-1"]),
    ("json", ['"kind": "Aggregate"']),
])
def test_graph(fmt, expected):
    r = invoke("graph", FRAUD_SQL, "--format", fmt)
    assert r.exit_code == 0, r.output
    for e in expected:
        assert e in r.output


def test_graph_optimized_shows_the_optimizer_at_work_on_sql():
    r = invoke("graph", os.path.join(TOPO, "order_enrichment.sql"), "--optimized")
    assert r.exit_code == 0, r.output
    assert "project(" in r.output and "Fused" in r.output


def test_explain():
    r = invoke("explain", os.path.join(TOPO, "order_enrichment.sql"))
    assert r.exit_code == 0, r.output
    assert "Plan as written" in r.output
    assert "prune_fields" in r.output and "inserted project-3 before repartition-1" in r.output


def test_validate():
    r = invoke("validate", FRAUD_SQL)
    assert r.exit_code == 0, r.output
    assert "valid" in r.output


def test_validate_reports_sql_errors_on_one_line_with_exit_2(tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s');\nCREATE STREAM x AS SELECT b FROM s;\n")
    r = CliRunner().invoke(cli, ["validate", str(bad)])
    assert r.exit_code == 2
    # unquoted names are upper-cased, as ksqlDB does
    assert r.output.strip() == f"error: {bad}:2:27: unknown column 'B' in SELECT (columns: A)"


def test_dsl_errors_from_sql_name_the_sql_position(tmp_path):
    bad = tmp_path / "regroup.sql"
    bad.write_text("CREATE STREAM s (k INT KEY, v INT) WITH (KAFKA_TOPIC='s');\n"
                   "CREATE TABLE w AS SELECT k, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 1 MINUTE) "
                   "GROUP BY k;\n"
                   "CREATE TABLE x AS SELECT n, COUNT(*) AS c FROM w GROUP BY n;\n")
    r = CliRunner().invoke(cli, ["validate", str(bad)])
    assert r.exit_code == 2
    assert r.output.startswith(f"error: {bad}:3:59: cannot re-group a windowed table"), r.output


def test_run_with_the_bundled_data_and_no_arguments(tmp_path):
    out = tmp_path / "fraud.jsonl"
    r = invoke("run", FRAUD_SQL, "-q", "--output", f"possible_fraud={out}")
    assert r.exit_code == 0, r.output
    rows = read_jsonl(out)
    # the Python twin writes a tombstone for each window failing HAVING; ksqlDB writes only the
    # windows that pass: the twin's non-null rows
    twin = tmp_path / "twin.jsonl"
    r = invoke("run", os.path.join(TOPO, "fraud_detection.py"), "-q", "--output",
               f"possible_fraud={twin}", "--input", "authorization_attempts="
               + os.path.join(TOPO, "data", "authorization_attempts.jsonl"))
    assert r.exit_code == 0, r.output
    assert rows == [row for row in read_jsonl(twin) if row["value"] is not None]
    suspects = {(row["key"], row["value"]) for row in rows}
    assert ("4000-0000-0000-0666", 6) in suspects and ("4000-0000-0000-0777", 5) in suspects


@pytest.mark.parametrize("backend", available_backends())
def test_run_on_every_backend_matches_the_python_twin(tmp_path, backend):
    outs = {}
    for ext in ("sql", "py"):
        out = tmp_path / f"butterflies-{ext}.jsonl"
        r = invoke("run", os.path.join(TOPO, f"caterpillars.{ext}"), "-q", "--backend", backend,
                   # the SQL twin's KEY column is the record key: the file gives it with ?key=
                   "--input", f"caterpillars={os.path.join(TOPO, 'data', 'caterpillars.jsonl')}"
                   + ("?key=name" if ext == "sql" else ""),
                   "--output", f"butterflies={out}")
        assert r.exit_code == 0, r.output
        outs[ext] = read_jsonl(out)
    # ksqlDB's rules: the KEY column NAME is the record key, not in the value; names upper-case
    expected = [{**row, "value": {k.upper(): v for k, v in row["value"].items() if k != "name"}}
                for row in outs["py"]]
    assert outs["sql"] == expected and len(outs["sql"]) == 8


def test_the_console_script_takes_sql_files():
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "streamdsl"), "validate",
                        CATERPILLARS_SQL], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "caterpillars" in r.stdout
