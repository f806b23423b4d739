"""Malformed SQL: each error names line:column, shows a caret under the culprit, and says what
was expected or which stream, column or function is unknown."""

from __future__ import annotations

import pytest

from streamdsl.errors import SQLError, TopologyError
from streamdsl.sql import compile_sql, load_file

S = ("CREATE STREAM s (id INT KEY, a DOUBLE, b VARCHAR, ts BIGINT) "
     "WITH (KAFKA_TOPIC='s', TIMESTAMP='ts');\n")
T = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='t');\n"
S2 = "CREATE STREAM s2 (id INT KEY) WITH (KAFKA_TOPIC='s2');\n"

# (sql, "line:col", caret text (what the ^ run underlines), words the message must contain)
CASES = [
    (S + "CREATE STREAM x AS SELECT a;", "2:28", ";", ["unexpected ';'", "expected one of", "FROM"]),
    (S + "CREATE STREAM x AS SELEC a FROM s;", "2:20", "SELEC", ["unexpected name 'SELEC'", "expected SELECT"]),
    (S + "CREATE STREAM x AS SELECT 'abc FROM s;", "2:27", "'", ["never closed"]),
    (S + "CREATE STREAM x AS SELECT a FROM nope;", "2:34", "nope", ["unknown stream or table 'NOPE'", "declared: S"]),
    (S + "CREATE STREAM x AS SELECT amount FROM s;", "2:27", "amount",
     ["unknown column 'AMOUNT'", "columns: ID, A, B, TS"]),
    (S + "CREATE STREAM x AS SELECT UPCASE(b) FROM s;", "2:27", "UPCASE",
     ["unknown function UPCASE", "did you mean UCASE?"]),
    (S + 'CREATE STREAM x AS SELECT a FROM s WHERE b = "x";', "2:46", '"', ["single quotes"]),
    (S + S2 + "CREATE STREAM x AS SELECT * FROM s JOIN s2 ON s.id = s2.id;", "3:36", "JOIN",
     ["needs a join window", "WITHIN"]),
    (S + "CREATE STREAM x AS SELECT a FROM s WINDOW TUMBLING (SIZE 1 MINUTE);", "2:36",
     "WINDOW TUMBLING (SIZE 1 MINUTE)", ["WINDOW needs GROUP BY"]),
    (S + "CREATE TABLE x AS SELECT id, b, COUNT(*) FROM s GROUP BY id;", "2:30", "b",
     ["expression B is not part of GROUP BY", "LATEST_BY_OFFSET(B)"]),
    (S + "CREATE TABLE x AS SELECT id, COUNT(*) FROM s GROUP BY id EMIT FINAL;", "2:58", "EMIT FINAL",
     ["EMIT FINAL needs a WINDOW"]),
    ("CREATE STREAM s (id INTEGR KEY) WITH (KAFKA_TOPIC='s');", "1:21", "INTEGR",
     ["unknown type INTEGR", "did you mean INTEGER?"]),
    ("CREATE STREAM s (id INT KEY) WITH (KAFKA_TOPC='s');", "1:36", "KAFKA_TOPC",
     ["unsupported property KAFKA_TOPC", "KAFKA_TOPIC"]),
    ("CREATE STREAM s (id INT KEY) WITH (TIMESTAMP='when');", "1:46", "'when'",
     ["TIMESTAMP names unknown column 'when'"]),
    (S + "CREATE STREAM x AS SELECT a FROM s WHERE COUNT(*) > 1;", "2:42", "COUNT(*)",
     ["aggregate function COUNT is not allowed in WHERE"]),
    (S + "CREATE STREAM x AS SELECT a FROM s\nCREATE STREAM y AS SELECT a FROM s;", "3:1", "CREATE",
     ["missing ';' before CREATE"]),
    (S + "CREATE STREAM x AS SELECT * FROM", "2:33", " ", ["unexpected end of input", "expected a name"]),
    (S + "CREATE TABLE x AS SELECT a FROM s;", "2:14", "x", ["produces a STREAM", "CREATE STREAM"]),
    (S + T + "CREATE STREAM x AS SELECT * FROM s RIGHT JOIN t ON s.id = t.id;", "3:36", "RIGHT",
     ["a stream-table join is INNER or LEFT", "RIGHT JOIN needs two streams or two tables"]),
    (S + "CREATE TABLE x AS SELECT COUNT(*) FROM s GROUP BY a, s.a;", "2:54", "s.a",
     ["duplicate GROUP BY expression s.a"]),
    (S + "CREATE TABLE x AS SELECT COUNT(*) FROM s GROUP BY a, b;", "2:26", "COUNT(*)",
     ["must select the GROUP BY expressions a, b"]),
    (S + "CREATE TABLE x AS SELECT a, a AS c, COUNT(*) FROM s GROUP BY a;", "2:34", "c",
     ["key column more than once: A and C"]),
    (S + "CREATE STREAM s (id INT KEY);", "2:15", "s", ["stream S is already declared (line 1)"]),
    (S + T + "CREATE STREAM x AS SELECT * FROM s JOIN t ON s.a = t.name;", "3:46", "s.a = t.name",
     ["T is a table: join on its PRIMARY KEY (ID)"]),
    ("CREATE TABLE t (id INT KEY) WITH (KAFKA_TOPIC='t');", "1:24", "KEY", ["PRIMARY KEY"]),
    (S + "CREATE STREAM x AS SELECT UCASE(a, b) FROM s;", "2:27", "UCASE(a, b)",
     ["UCASE takes 1 argument, got 2"]),
    (S + "CREATE STREAM x AS SELECT * FROM s;\nCREATE STREAM y AS SELECT * FROM x;\n"
     "INSERT INTO x SELECT * FROM s;", "4:13", "x", ["after a query read it (line 3)"]),
    (S + "CREATE STREAM x AS SELECT a # b FROM s;", "2:29", "#", ["unexpected character '#'"]),
    (S + T + "CREATE STREAM x AS SELECT * FROM s JOIN t WITHIN 1 SECOND ON s.id = t.id;", "3:43",
     "WITHIN 1 SECOND", ["WITHIN applies to stream-stream joins only"]),
    (S + "CREATE STREAM x AS SELECT a FROM s WHERE WINDOWSTART > 0;", "2:42", "WINDOWSTART",
     ["WINDOWSTART is only available"]),
    (S + "CREATE STREAM x AS SELECT a, a FROM s;", "2:30", "a", ["column name 'A' appears twice"]),
    (S + "CREATE STREAM x WITH (KAFKA_TOPIC='s') AS SELECT a FROM s;", "2:15", "x",
     ["'s' is a source of this topology"]),
    (S + "CREATE STREAM x AS SELECT id, SUM(COUNT(*)) FROM s GROUP BY id;", "2:31", "SUM(COUNT(*))",
     ["cannot be nested"]),
    (S + "CREATE STREAM x AS SELECT q.a FROM s;", "2:27", "q", ["unknown stream or alias 'Q'"]),
    (S + S2 + "CREATE STREAM x AS SELECT id FROM s JOIN s2 WITHIN 1 SECOND ON s.id = s2.id "
     "JOIN s2 WITHIN 1 SECOND ON s.id = s2.id;", "3:82", "s2", ["alias 'S2' is used twice"]),
    (S, "1:15", "s", ["declares no query"]),
    (S + "CREATE STREAM o (b VARCHAR KEY, a DOUBLE) WITH (KAFKA_TOPIC='o');\n"
     "INSERT INTO o SELECT id, a FROM s;", "3:15", "SELECT id, a FROM s",
     ["key columns (ID) do not match O's (B)", "PARTITION BY"]),
    # the error is at the token that breaks the statement
    (S + "CREATE STREAM x AS SELECT id, a, FROM s;", "2:34", "FROM",
     ["unexpected 'FROM'", "expected one of '*', an expression", "a comma before FROM"]),
    (S + "CREATE TABLE x AS SELECT id, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY id "
     "EMIT FINALLY;", "2:95", "FINALLY", ["unexpected name 'FINALLY'", "expected one of CHANGES, FINAL"]),
    (S + "SELECT a FROM s;", "2:1", "SELECT", ["pull query", "add EMIT CHANGES"]),
    (S + "SELECT a FROM s EMIT CHANGES LIMIT 0;", "2:30", "LIMIT 0", ["LIMIT takes a positive number"]),
    (S + "SHOW STREAMS;", "2:1", "SHOW", ["SHOW is a statement of the interactive shell"]),
    (S + "CREATE STREAM x AS SELECT RANDOM() AS r FROM s;", "2:27", "RANDOM()",
     ["RANDOM is not supported", "every run"]),
    (S + "CREATE STREAM x AS SELECT a FROM s WHERE a = NULL;", "2:42", "a = NULL",
     ["comparison with NULL is not supported", "IS NULL"]),
    (S + "CREATE STREAM x AS SELECT ROWTIME FROM s;", "2:27", "ROWTIME", ["ROWTIME is not supported"]),
    (S + S2 + "CREATE STREAM x AS SELECT s.a FROM s JOIN s2 WITHIN 1 SECOND ON s.id = s2.id;", "3:27",
     "s.a", ["must select the join expression S.ID or S2.ID"]),
    (S + S2 + "CREATE STREAM x AS SELECT s.a FROM s FULL OUTER JOIN s2 WITHIN 1 SECOND "
     "ON s.id = s2.id;", "3:27", "s.a", ["must select the join's key, ROWKEY"]),
    (T + "CREATE TABLE x AS SELECT name FROM t;", "2:26", "name",
     ["must select the table's key column ID"]),
    (S + "CREATE STREAM x AS SELECT id FROM s PARTITION BY a;", "2:27", "id",
     ["must select the PARTITION BY expression a"]),
]


@pytest.mark.parametrize("sql, where, caret, words", CASES)
def test_malformed_sql(sql, where, caret, words):
    with pytest.raises(SQLError) as info:
        compile_sql(sql)
    msg = str(info.value)
    first = msg.splitlines()[0]
    assert first.startswith(f"line {where}: "), msg
    for w in words:
        assert w in first, msg
    # The excerpt: the offending line, then a caret run under the culprit.
    line, col = (int(x) for x in where.split(":"))
    src_line, caret_line = msg.splitlines()[1:3]
    assert src_line.endswith(sql.splitlines()[line - 1]) if sql.splitlines() else True
    offset = caret_line.index("^")
    assert offset == src_line.index("| ") + 2 + col - 1
    underlined = src_line[offset:offset + caret_line.count("^")]
    assert underlined.strip() == caret.strip(), msg
    assert (info.value.line, info.value.column) == (line, col)


def test_at_least_fifteen_malformed_inputs_are_covered():
    assert len(CASES) >= 15


def test_empty_text():
    with pytest.raises(SQLError, match="no SQL statements found"):
        compile_sql("  -- only a comment\n")


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "bad.sql"
    path.write_text(S + "CREATE STREAM x AS SELECT nope FROM s;\n")
    with pytest.raises(SQLError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}:2:27: unknown column 'NOPE'")
    with pytest.raises(SQLError, match="cannot read SQL file"):
        load_file(tmp_path / "missing.sql")


def test_dsl_errors_point_at_the_sql_position():
    # Two queries writing one table: the DSL refuses the second sink; the error carries the
    # SQL position of the statement as its site.
    with pytest.raises((SQLError, TopologyError)) as info:
        compile_sql(S + "CREATE TABLE x AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;\n"
                    "CREATE TABLE y WITH (KAFKA_TOPIC='X') AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;")
    assert "3:14" in str(info.value) and "already written" in str(info.value)
